//! Strict, canonical base64url (RFC 7515 §2 / RFC 4648 §5 without padding).
//!
//! Rejects padding, the standard alphabet's `+` and `/`, whitespace, a length of 1 mod 4 and
//! non-zero trailing bits, so every byte string has exactly one accepted encoding.

use std::mem::MaybeUninit;

use base64_simd::{Out, URL_SAFE_NO_PAD};

use crate::error::Error;

/// Exact number of bytes `len` canonical base64url characters decode to, or `None` if no
/// canonical encoding has that length.
pub(crate) fn decoded_len(len: usize) -> Option<usize> {
    let rem = match len % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    Some(len / 4 * 3 + rem)
}

/// Decodes into `out`, which must be exactly [`decoded_len`] long (anything else is an error,
/// never a panic). The SIMD decoder checks the alphabet, the length and the trailing bits.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8], what: &'static str) -> Result<(), Error> {
    if decoded_len(input.len()) != Some(out.len()) {
        return Err(Error::malformed(what));
    }
    // Same length arithmetic as the library's, so its `dst.len() >= m` assertion holds.
    URL_SAFE_NO_PAD
        .decode(input, Out::from_slice(out))
        .map(|_| ())
        .map_err(|_| Error::malformed(what))
}

/// Decodes into uninitialised memory (nothing to zero first) and returns the decoded bytes;
/// `out` must be exactly [`decoded_len`] long, as for [`decode_into`].
pub(crate) fn decode_uninit<'a>(
    input: &[u8],
    out: &'a mut [MaybeUninit<u8>],
    what: &'static str,
) -> Result<&'a [u8], Error> {
    if decoded_len(input.len()) != Some(out.len()) {
        return Err(Error::malformed(what));
    }
    match URL_SAFE_NO_PAD.decode(input, Out::from_uninit_slice(out)) {
        Ok(decoded) => Ok(decoded),
        Err(_) => Err(Error::malformed(what)),
    }
}

/// Decodes canonical base64url into a new vector.
pub(crate) fn decode(input: &[u8], what: &'static str) -> Result<Vec<u8>, Error> {
    let len = decoded_len(input.len()).ok_or_else(|| Error::malformed(what))?;
    let mut out = vec![0; len];
    decode_into(input, &mut out, what)?;
    Ok(out)
}

/// Encodes as base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// Decodes standard, padded base64 (PEM bodies), canonical only.
pub(crate) fn decode_standard(input: &[u8]) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(input).ok()
}

/// Public for property tests and tools: strict canonical base64url decoding as the verifier
/// does it.
///
/// ```
/// assert_eq!(sigil_verify::base64url::decode("aGk").unwrap(), b"hi");
/// assert!(sigil_verify::base64url::decode("aGk=").is_err()); // padding
/// assert!(sigil_verify::base64url::decode("aGl").is_err()); // non-zero trailing bits
/// ```
pub mod base64url {
    use crate::error::Error;

    /// Decodes canonical, unpadded base64url; anything else is
    /// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed).
    pub fn decode(input: &str) -> Result<Vec<u8>, Error> {
        super::decode(input.as_bytes(), "base64url")
    }

    /// Encodes as unpadded base64url.
    pub fn encode(bytes: &[u8]) -> String {
        super::encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use proptest::prelude::*;

    /// Accepts exactly what the `base64` crate's strict engine accepts, with the same bytes.
    fn same_as_base64_crate(text: &str) -> Result<(), TestCaseError> {
        let ours = super::decode(text.as_bytes(), "t").ok();
        prop_assert_eq!(ours, URL_SAFE_NO_PAD.decode(text).ok(), "{:?}", text);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

        #[test]
        fn decode_agrees_with_base64_crate(text in "[A-Za-z0-9_=+/ .\n-]{0,200}") {
            same_as_base64_crate(&text)?;
        }

        /// Valid encodings (short and long enough for the SIMD loop) with one byte changed.
        #[test]
        fn decode_agrees_on_near_misses(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            at in any::<prop::sample::Index>(),
            with in prop::sample::select(&["=", "+", "/", " ", "\n", "A", "B", "_", "-", "é", "\u{0}", ""][..]),
        ) {
            let mut text = super::encode(&bytes);
            prop_assert_eq!(&text, &URL_SAFE_NO_PAD.encode(&bytes));
            same_as_base64_crate(&text)?;
            if !text.is_empty() {
                let i = at.index(text.len());
                text.replace_range(i..=i, with);
                same_as_base64_crate(&text)?;
            }
        }

        #[test]
        fn standard_agrees_with_base64_crate(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
            with in prop::sample::select(&["=", "+", "/", " ", "\n", "A", "B", "_", "-", ""][..]),
        ) {
            let mut text = STANDARD.encode(&bytes);
            prop_assert_eq!(super::decode_standard(text.as_bytes()), Some(bytes));
            if !text.is_empty() {
                let i = at.index(text.len());
                text.replace_range(i..=i, with);
                prop_assert_eq!(super::decode_standard(text.as_bytes()), STANDARD.decode(&text).ok());
            }
        }
    }

    #[test]
    fn decode_uninit_checks_the_length_and_decodes() {
        let mut out = [std::mem::MaybeUninit::uninit(); 4];
        assert!(super::decode_uninit(b"aGk", &mut out, "t").is_err());
        assert!(super::decode_uninit(b"aGk", &mut out[..1], "t").is_err());
        assert!(super::decode_uninit(b"aGl", &mut out[..2], "t").is_err());
        assert_eq!(
            super::decode_uninit(b"aGk", &mut out[..2], "t").unwrap(),
            b"hi"
        );
    }

    #[test]
    fn decode_into_refuses_a_wrong_length_buffer() {
        let mut out = [0u8; 4];
        assert!(super::decode_into(b"aGk", &mut out, "t").is_err());
        assert!(super::decode_into(b"aGk", &mut out[..1], "t").is_err());
        super::decode_into(b"aGk", &mut out[..2], "t").unwrap();
        assert_eq!(&out[..2], b"hi");
    }
}
