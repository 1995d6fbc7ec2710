//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! One [`Metrics`] per process, in the request [`AppState`](crate::state::AppState). Counters only
//! grow; they are per process, so sum them across replicas in queries.

use crate::domain::GrantType;
use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// The process's counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Refresh tokens presented again after the reuse window: each revoked a family.
    pub refresh_token_reuse: IntCounter,
    /// Authorization codes presented a second time: each revoked what the first issued.
    pub authorization_code_replay: IntCounter,
    /// Login form posts by outcome: `success`, `failure` (wrong credentials, unknown,
    /// disabled or locked account: one outcome, as on the page), `rate_limited`.
    pub logins: IntCounterVec,
    /// Accounts locked after too many failures.
    pub account_lockouts: IntCounter,
    /// Second-factor codes by outcome: `success` (a TOTP code), `recovery` (a recovery code),
    /// `failure` (wrong or already used), `locked` (refused unchecked: the factor is locked).
    pub mfa: IntCounterVec,
    /// Second factors locked after too many wrong codes.
    pub mfa_lockouts: IntCounter,
    /// `sigil_tokens_issued_total{grant}`, one series per grant resolved once: `/token` is
    /// the hot path, and a label lookup takes a hash and a lock. See [`Metrics::token_issued`].
    issued_by_grant: [IntCounter; 3],
    /// Audit events that could not be written (each is also logged as an error).
    pub audit_write_failures: IntCounter,
    /// Client look-ups the client cache could not answer (each went to the database).
    pub client_cache_misses: IntCounter,
    /// Requests refused by a rate limit (429), by class (`ratelimit::Class::name`); its zero
    /// series are made by `ratelimit::RateLimits::new`.
    pub rate_limited: IntCounterVec,
    /// `/readyz` write probes (`store::heartbeat`) by outcome, `ok` or `failed`: at most one a
    /// second per process, however often `/readyz` is asked.
    pub database_write_probes: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Register every counter in a fresh registry.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let vec =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let tokens_issued = vec(
            "sigil_tokens_issued_total",
            "Successful /token responses by grant.",
            "grant",
        )?;
        let m = Metrics {
            refresh_token_reuse: counter(
                "sigil_refresh_token_reuse_total",
                "Refresh tokens reused after rotation (each revoked its family).",
            )?,
            authorization_code_replay: counter(
                "sigil_authorization_code_replay_total",
                "Authorization codes redeemed twice (each revoked what the first issued).",
            )?,
            logins: vec(
                "sigil_logins_total",
                "Login form posts by outcome.",
                "outcome",
            )?,
            account_lockouts: counter(
                "sigil_account_lockouts_total",
                "Accounts locked after repeated login failures.",
            )?,
            mfa: vec(
                "sigil_mfa_total",
                "Second-factor codes presented at sign-in, by outcome.",
                "outcome",
            )?,
            mfa_lockouts: counter(
                "sigil_mfa_lockouts_total",
                "Second factors locked after repeated wrong codes.",
            )?,
            audit_write_failures: counter(
                "sigil_audit_write_failures_total",
                "Audit events that could not be written.",
            )?,
            client_cache_misses: counter(
                "sigil_client_cache_misses_total",
                "Client look-ups not answered from memory (each queried the database).",
            )?,
            rate_limited: vec(
                "sigil_rate_limited_total",
                "Requests refused by a rate limit (429), by class.",
                "class",
            )?,
            database_write_probes: vec(
                "sigil_database_write_probes_total",
                "Readiness write probes of the database by outcome (at most one a second).",
                "outcome",
            )?,
            issued_by_grant: [
                tokens_issued.with_label_values(&[GrantType::AuthorizationCode.as_str()]),
                tokens_issued.with_label_values(&[GrantType::RefreshToken.as_str()]),
                tokens_issued.with_label_values(&[GrantType::ClientCredentials.as_str()]),
            ],
            registry,
        };
        // Zero series exist from the start, so rate() and absent() behave.
        for outcome in ["success", "failure", "rate_limited"] {
            m.logins.with_label_values(&[outcome]);
        }
        for outcome in ["success", "failure", "locked", "recovery"] {
            m.mfa.with_label_values(&[outcome]);
        }
        for outcome in ["ok", "failed"] {
            m.database_write_probes.with_label_values(&[outcome]);
        }
        Ok(m)
    }

    /// Count a successful `/token` response.
    pub fn token_issued(&self, grant: GrantType) {
        let i = match grant {
            GrantType::AuthorizationCode => 0,
            GrantType::RefreshToken => 1,
            GrantType::ClientCredentials => 2,
        };
        self.issued_by_grant[i].inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}
