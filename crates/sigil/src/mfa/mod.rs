//! Second factors: a TOTP authenticator (RFC 6238, [`totp`]) with single-use recovery codes
//! ([`recovery`]). Enrolment (`sigil users totp enroll`) makes a random secret, seals it under
//! the master key like a signing key (AES-256-GCM, the user id as associated data) and stores
//! the keyed hashes of ten recovery codes; the secret and the codes are shown once.
//! Verification ([`check`]) opens the secret, finds the time step of the presented code, and
//! records that step as used for the user in the shared cache (`insert_if_absent`), so a code is
//! accepted once across every replica; a recovery code is deleted in the transaction that
//! matches it.
//!
//! What a failed check does to the sign-in (the lock after repeated failures, the audit trail,
//! metrics) is `oauth::login`'s; this module knows no HTTP and no session.

pub mod recovery;
pub mod totp;

use secrecy::{ExposeSecret, SecretSlice};

use crate::cache::{Cache, CacheError};
use crate::crypto::MasterKey;
use crate::store::mfa::{self as mfa_store, TotpRow};
use crate::store::{Store, StoreError};

/// Why a second-factor operation could not be carried out (never "the code was wrong": that is
/// [`Check::Wrong`]).
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared cache (a used code could not be recorded: refuse, never forget).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A stored secret does not open under this master key.
    #[error("the TOTP secret of {0} does not open: wrong master key or a tampered row")]
    Sealed(String),
}

/// What enrolment hands the operator, once. Its `Debug` shows no secret.
pub struct Enrolment {
    /// The shared secret, base32 (RFC 4648, no padding).
    pub secret: String,
    /// The `otpauth://totp/…` URI for authenticator apps.
    pub otpauth_uri: String,
    /// The recovery codes, in their written form.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// Associated data of a user's sealed secret: it opens only in that user's row.
fn aad(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// Enrol `user_id` (enrolling again replaces the secret and every recovery code), with
/// `issuer` and `account` naming the entry in authenticator apps. Blocking (the CLI).
pub fn enroll_blocking(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    issuer: &str,
    account: &str,
    now: i64,
) -> Result<Enrolment, MfaError> {
    let secret = totp::new_secret();
    let codes = recovery::generate();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .filter_map(|c| recovery::normalize(c))
        .map(|c| master.hash_recovery_code(user_id, &c))
        .collect();
    let row = TotpRow {
        user_id: user_id.to_owned(),
        secret: master.seal(&aad(user_id), secret.expose_secret()),
        created_at: now,
    };
    store.run_blocking(|c| mfa_store::enroll(c, &row, &hashes))?;
    Ok(Enrolment {
        secret: totp::base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, issuer, account),
        recovery_codes: codes,
    })
}

/// Remove the user's factor and recovery codes. True when there was one. Blocking (the CLI).
pub fn remove_blocking(store: &Store, user_id: &str) -> Result<bool, MfaError> {
    Ok(store.run_blocking(|c| mfa_store::remove(c, user_id))?)
}

/// Whether the user signs in with a second factor.
pub async fn is_enrolled(store: &Store, user_id: &str) -> Result<bool, MfaError> {
    let id = user_id.to_owned();
    Ok(store.run(move |c| mfa_store::find(c, &id)).await?.is_some())
}

/// The outcome of one presented second-factor code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The current TOTP code (within the skew), not used before.
    Totp,
    /// An unused recovery code, now used; `left` remain.
    Recovery {
        /// Recovery codes left.
        left: i64,
    },
    /// A TOTP code of a time step already used for this user.
    Replayed,
    /// Neither a valid code nor an unused recovery code.
    Wrong,
    /// The user has no factor (removed while the sign-in was in progress).
    NotEnrolled,
}

/// The cache key recording that `user_id` used the code of time step `step` (kind `totp_used`).
fn used_key(user_id: &str, step: i64) -> String {
    format!("totp_used:{user_id}:{step}")
}

/// Check `input` (a 6-digit code, spaces allowed, or a recovery code) for `user_id` at `now`.
/// A TOTP code is accepted once: its step is recorded until it can no longer be valid, and
/// so are the (older) steps before it, so a code seen before a later one was used is refused too.
pub async fn check(
    store: &Store,
    cache: &Cache,
    master: &MasterKey,
    user_id: &str,
    input: &str,
    now: i64,
) -> Result<Check, MfaError> {
    let compact: String = input.chars().filter(|c| *c != ' ').collect();
    if totp::is_code(&compact) {
        let id = user_id.to_owned();
        let Some(row) = store.run(move |c| mfa_store::find(c, &id)).await? else {
            return Ok(Check::NotEnrolled);
        };
        let secret = master
            .open(&aad(user_id), &row.secret)
            .map(SecretSlice::from)
            .map_err(|_| MfaError::Sealed(user_id.to_owned()))?;
        let Some(step) = totp::matching_step(&secret, &compact, now) else {
            return Ok(Check::Wrong);
        };
        let valid_until = |s: i64| (s + totp::SKEW + 1) * totp::STEP;
        if !cache
            .insert_if_absent(&used_key(user_id, step), valid_until(step), now)
            .await?
        {
            return Ok(Check::Replayed);
        }
        for older in step - 2 * totp::SKEW..step {
            if valid_until(older) > now {
                cache
                    .insert_if_absent(&used_key(user_id, older), valid_until(older), now)
                    .await?;
            }
        }
        return Ok(Check::Totp);
    }
    let Some(code) = recovery::normalize(input.trim()) else {
        return Ok(Check::Wrong);
    };
    let hash = master.hash_recovery_code(user_id, &code);
    let id = user_id.to_owned();
    Ok(
        match store
            .run(move |c| mfa_store::use_recovery_code(c, &id, &hash))
            .await?
        {
            Some(left) => Check::Recovery { left },
            None => Check::Wrong,
        },
    )
}
