//! Thin wrappers over `ring` for the few primitives Sigil uses outside signing:
//! randomness, the keyed hashes of client secrets and recovery codes, and AES-256-GCM for
//! private keys and TOTP secrets at rest.
//! Nothing here implements a primitive; every operation is ring's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hkdf, hmac};

/// `n` random bytes from the OS generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails if the OS generator is unavailable, which is unrecoverable.
    #[expect(
        clippy::expect_used,
        reason = "no OS randomness means no safe way to continue"
    )]
    SystemRandom::new()
        .fill(&mut buf)
        .expect("OS random number generator failed");
    buf
}

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(n))
}

/// The SHA-256 (base64url) of a secret value, as stored in place of the value (session
/// cookies, browser bindings, codes, refresh-token ids).
pub fn hash_id(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        value.as_bytes(),
    ))
}

/// The 32-byte master key. It encrypts private keys at rest and derives the secret-hashing key.
pub struct MasterKey {
    aead: aead::LessSafeKey,
    secret_hmac: hmac::Key,
    refresh_hmac: hmac::Key,
    audit_hmac: hmac::Key,
    form_hmac: hmac::Key,
    recovery_hmac: hmac::Key,
    page_aead: aead::LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Decryption failed: wrong master key or a tampered row.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt private key {kid}: wrong master key or corrupted data")]
pub struct DecryptError {
    /// The key whose private part failed to decrypt.
    pub kid: String,
}

const NONCE_LEN: usize = 12;

impl MasterKey {
    /// Build from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, String> {
        if bytes.len() != 32 {
            return Err(format!("master key must be 32 bytes, got {}", bytes.len()));
        }
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, bytes)
            .map_err(|_| "master key rejected by AES-256-GCM".to_owned())?;
        // A separate key for hashing client secrets, derived so the master key itself is never
        // used for two purposes.
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sigil").extract(bytes);
        let okm = prk
            .expand(&[b"client-secret-hmac"], hmac::HMAC_SHA256)
            .map_err(|_| "key derivation failed".to_owned())?;
        let refresh = prk
            .expand(&[b"refresh-successor"], hmac::HMAC_SHA256)
            .map_err(|_| "key derivation failed".to_owned())?;
        let audit = prk
            .expand(&[b"audit-chain"], hmac::HMAC_SHA256)
            .map_err(|_| "key derivation failed".to_owned())?;
        let form = prk
            .expand(&[b"form-token"], hmac::HMAC_SHA256)
            .map_err(|_| "key derivation failed".to_owned())?;
        let recovery = prk
            .expand(&[b"recovery-code-hmac"], hmac::HMAC_SHA256)
            .map_err(|_| "key derivation failed".to_owned())?;
        let page = prk
            .expand(&[b"sealed-page-state"], &aead::AES_256_GCM)
            .map_err(|_| "key derivation failed".to_owned())?;
        Ok(MasterKey {
            aead: aead::LessSafeKey::new(unbound),
            secret_hmac: hmac::Key::from(okm),
            refresh_hmac: hmac::Key::from(refresh),
            audit_hmac: hmac::Key::from(audit),
            form_hmac: hmac::Key::from(form),
            recovery_hmac: hmac::Key::from(recovery),
            page_aead: aead::LessSafeKey::new(aead::UnboundKey::from(page)),
        })
    }

    /// Encrypt `plaintext` with a fresh random nonce, binding `kid` as associated data.
    /// Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonce_bytes);
        let mut in_out = plaintext.to_vec();
        #[expect(clippy::expect_used, reason = "sealing only fails for > 64 GiB inputs")]
        self.aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM seal of a small key");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        out
    }

    /// Decrypt what [`MasterKey::seal`] produced for the same `kid`.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let err = || DecryptError {
            kid: kid.to_owned(),
        };
        if sealed.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(err());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| err())?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, aead::Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| err())?;
        Ok(plain.to_vec())
    }

    /// Keyed hash of a client secret (HMAC-SHA256). Random 256-bit secrets need no slow hash.
    pub fn hash_secret(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.secret_hmac, secret.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// The id of a refresh token's successor: a keyed hash of the parent's id, so it can be
    /// derived again (same successor for a repeat) without being stored or guessed.
    pub fn refresh_successor(&self, parent_id: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(hmac::sign(&self.refresh_hmac, parent_id.as_bytes()).as_ref())
    }

    /// The id of the first refresh token of the family a redemption of the authorization code
    /// `code` starts: a keyed hash of the code, so a replay of the code finds that family from
    /// the code alone, even when the process that redeemed it died before recording anything
    /// else. The `code:` prefix keeps these apart from successor ids (token ids are base64url,
    /// never containing `:`).
    pub fn code_family(&self, code: &str) -> String {
        self.refresh_successor(&format!("code:{code}"))
    }

    /// The keyed hash that links one audit event to the next (base64url): without the master
    /// key nobody can rewrite the chain so that `sigil audit verify` still passes.
    pub fn audit_mac(&self, data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(hmac::sign(&self.audit_hmac, data).as_ref())
    }

    /// An anti-CSRF token for a form of `purpose` bound to `subject` (e.g. the hash of a session
    /// cookie): the same browser session gets the same token on every replica, and no state is
    /// stored to issue it.
    pub fn form_token(&self, purpose: &str, subject: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.form_hmac,
            &form_token_input(purpose, subject),
        ))
    }

    /// Constant-time check of a token made by [`MasterKey::form_token`].
    pub fn verify_form_token(&self, purpose: &str, subject: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        hmac::verify(&self.form_hmac, &form_token_input(purpose, subject), &tag).is_ok()
    }

    /// Seal state a page carries instead of the server keeping it (AES-256-GCM under a key
    /// derived from the master key, `purpose` as associated data, a fresh random nonce):
    /// base64url of nonce ‖ ciphertext ‖ tag. Only this master key opens it, and only for the
    /// same `purpose`.
    pub fn seal_page(&self, purpose: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonce_bytes);
        let mut in_out = plaintext.to_vec();
        #[expect(clippy::expect_used, reason = "sealing only fails for > 64 GiB inputs")]
        self.page_aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(purpose.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM seal of a page's state");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Open what [`MasterKey::seal_page`] sealed for `purpose`; `None` for anything else
    /// (tampered, truncated, another purpose or another master key).
    pub fn open_page(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ct.to_vec();
        let plain = self
            .page_aead
            .open_in_place(nonce, aead::Aad::from(purpose.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }

    /// Keyed hash (HMAC-SHA256, its own derived key) of a recovery code of `user_id`, as stored
    /// in its place: the user id is bound in, so a stored hash matches only that user's code.
    /// Random codes of 80 bits need no slow hash; comparing is the caller's, in constant time.
    pub fn hash_recovery_code(&self, user_id: &str, code: &str) -> Vec<u8> {
        hmac::sign(&self.recovery_hmac, &form_token_input(user_id, code))
            .as_ref()
            .to_vec()
    }

    /// Constant-time check of a presented secret against a stored keyed hash.
    pub fn verify_secret(&self, secret: &str, stored: &[u8]) -> bool {
        hmac::verify(&self.secret_hmac, secret.as_bytes(), stored).is_ok()
    }
}

/// `purpose ‖ 0 ‖ subject`: a purpose can never be read as the prefix of another's subject.
fn form_token_input(purpose: &str, subject: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(purpose.len() + 1 + subject.len());
    input.extend_from_slice(purpose.as_bytes());
    input.push(0);
    input.extend_from_slice(subject.as_bytes());
    input
}

/// Constant-time equality of two byte strings (`subtle`); lengths may differ (that is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Result<MasterKey, String> {
        MasterKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn seal_open_round_trip_and_kid_binding() -> Result<(), String> {
        let k = key()?;
        let sealed = k.seal("kid-1", b"private");
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            k.open("kid-1", &sealed).map_err(|e| e.to_string())?,
            b"private"
        );
        assert!(
            k.open("kid-2", &sealed).is_err(),
            "kid is bound as associated data"
        );
        let other = MasterKey::from_bytes(&[8u8; 32])?;
        assert!(
            other.open("kid-1", &sealed).is_err(),
            "wrong master key fails"
        );
        assert!(k.open("kid-1", &sealed[..5]).is_err());
        Ok(())
    }

    #[test]
    fn sealed_page_state_opens_only_for_its_purpose_and_key() -> Result<(), String> {
        let k = key()?;
        let sealed = k.seal_page("login", b"request");
        assert_eq!(
            k.open_page("login", &sealed).as_deref(),
            Some(&b"request"[..])
        );
        assert_ne!(
            sealed,
            k.seal_page("login", b"request"),
            "a fresh nonce each time"
        );
        assert!(
            k.open_page("consent", &sealed).is_none(),
            "purpose is bound"
        );
        assert!(
            MasterKey::from_bytes(&[8u8; 32])?
                .open_page("login", &sealed)
                .is_none()
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).map_err(|e| e.to_string())?;
        assert!(
            k.open_page("login", &tampered).is_none(),
            "tampering is detected"
        );
        assert!(k.open_page("login", &sealed[..10]).is_none());
        assert!(k.open_page("login", "not base64!").is_none());
        Ok(())
    }

    #[test]
    fn secret_hash_verifies_only_the_same_secret() -> Result<(), String> {
        let k = key()?;
        let h = k.hash_secret("sgl_secret_abc");
        assert!(k.verify_secret("sgl_secret_abc", &h));
        assert!(!k.verify_secret("sgl_secret_abd", &h));
        assert!(!k.verify_secret("sgl_secret_abc", &h[..31]));
        Ok(())
    }

    #[test]
    fn a_recovery_code_hash_is_keyed_and_bound_to_its_user() -> Result<(), String> {
        let k = key()?;
        let h = k.hash_recovery_code("usr_a", "abcd-efgh");
        assert_eq!(h, k.hash_recovery_code("usr_a", "abcd-efgh"));
        assert_ne!(h, k.hash_recovery_code("usr_b", "abcd-efgh"));
        assert_ne!(h, k.hash_recovery_code("usr_a", "abcd-efgi"));
        assert_ne!(h, k.hash_secret("abcd-efgh"), "not the client-secret key");
        assert_ne!(
            h,
            MasterKey::from_bytes(&[8u8; 32])?.hash_recovery_code("usr_a", "abcd-efgh")
        );
        Ok(())
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(MasterKey::from_bytes(&[0u8; 16]).is_err());
    }
}
