//! Strict, canonical base64url (RFC 7515 §2 / RFC 4648 §5 without padding).
//!
//! Rejects padding, the standard alphabet's `+` and `/`, whitespace, a length of 1 mod 4 and
//! non-zero trailing bits, so every byte string has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

/// Decodes into `out` (which must be exactly [`decoded_len`] long).
pub(crate) fn decode_into(input: &[u8], out: &mut [u8], what: &'static str) -> Result<(), Error> {
    match URL_SAFE_NO_PAD.decode_slice(input, out) {
        Ok(n) if n == out.len() => Ok(()),
        _ => Err(Error::malformed(what)),
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
    URL_SAFE_NO_PAD.encode(bytes)
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
