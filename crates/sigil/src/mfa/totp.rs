//! RFC 6238 time-based one-time codes, as every authenticator app computes them by default:
//! HMAC-SHA-1, 6 digits, 30-second steps, with one step of clock skew either way. The
//! arithmetic is the `totp-rs` crate's; this file only fixes the parameters, finds which time
//! step a code belongs to (so a used step can be recorded), and writes the `otpauth://` URI.

use secrecy::{ExposeSecret, SecretSlice};
use totp_rs::{Algorithm, TOTP};

use crate::crypto::ct_eq;

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP: i64 = 30;
/// Steps of clock skew accepted either way.
pub const SKEW: i64 = 1;
/// Bytes of a new secret: 160 bits, the HMAC-SHA-1 block RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// A new random shared secret.
pub fn new_secret() -> SecretSlice<u8> {
    SecretSlice::from(crate::crypto::random_bytes(SECRET_LEN))
}

fn totp(secret: &SecretSlice<u8>, issuer: Option<String>, account: String) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        SKEW as u8,
        STEP as u64,
        secret.expose_secret().to_vec(),
        issuer,
        account,
    )
}

/// The secret in base32 without padding (RFC 4648), as typed into an authenticator app.
pub fn base32(secret: &SecretSlice<u8>) -> String {
    totp(secret, None, String::new()).get_secret_base32()
}

/// The `otpauth://totp/<issuer>:<account>?secret=…&issuer=…` URI authenticator apps import (as a
/// QR code or a link). `:` is the label's separator, so it is replaced in both names.
pub fn otpauth_uri(secret: &SecretSlice<u8>, issuer: &str, account: &str) -> String {
    let clean = |s: &str| s.replace(':', " ").trim().to_owned();
    let issuer = clean(issuer);
    let issuer = (!issuer.is_empty()).then_some(issuer);
    totp(secret, issuer, clean(account)).get_url()
}

/// Whether `input` has the shape of a code (six ASCII digits), as opposed to a recovery code.
pub fn is_code(input: &str) -> bool {
    input.len() == DIGITS && input.bytes().all(|b| b.is_ascii_digit())
}

/// The time step (Unix time / 30) whose code `code` is, among the steps within [`SKEW`] of
/// `now`; `None` when it is none of them. Every candidate is compared, in constant time.
pub fn matching_step(secret: &SecretSlice<u8>, code: &str, now: i64) -> Option<i64> {
    if !is_code(code) || now < STEP * SKEW {
        return None;
    }
    let t = totp(secret, None, String::new());
    let current = now / STEP;
    let mut found = None;
    for step in current - SKEW..=current + SKEW {
        // Non-negative: `now` is at least one skew's worth of steps past the epoch.
        let expected = t.generate((step * STEP) as u64);
        if ct_eq(expected.as_bytes(), code.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 key, and its 8-digit vectors cut to the 6 digits Sigil uses
    /// (a code's last digits are the same value modulo a smaller power of ten).
    fn rfc_secret() -> SecretSlice<u8> {
        SecretSlice::from(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(
                matching_step(&rfc_secret(), code, time),
                Some(time / STEP),
                "{time}"
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let s = rfc_secret();
        let t = 1_111_111_109;
        assert_eq!(matching_step(&s, "081804", t + STEP), Some(t / STEP));
        assert_eq!(matching_step(&s, "081804", t - STEP), Some(t / STEP));
        assert_eq!(matching_step(&s, "081804", t + 2 * STEP), None);
        assert_eq!(matching_step(&s, "081804", t - 2 * STEP), None);
    }

    #[test]
    fn only_six_digits_are_a_code() {
        let s = rfc_secret();
        assert!(is_code("012345"));
        for wrong in ["", "12345", "1234567", "12345a", "12 345", "１２３４５６"] {
            assert!(!is_code(wrong), "{wrong:?}");
            assert_eq!(matching_step(&s, wrong, 59), None);
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_secret() {
        let s = rfc_secret();
        let uri = otpauth_uri(&s, "Acme: ID", "alice");
        assert_eq!(base32(&s), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(
            uri.starts_with("otpauth://totp/Acme%20%20ID:alice?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Acme%20%20ID"), "{uri}");
        assert_eq!(new_secret().expose_secret().len(), SECRET_LEN);
    }
}
