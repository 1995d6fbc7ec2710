//! Rate limits per class of request ([`Class`], one setting each in `[rate_limits]`), on the
//! GCRA of [`crate::cache::Cache::rate_limit`]: governor in process, a Lua script on Redis, one
//! statement on PostgreSQL.
//!
//! Two kinds of class:
//! * **every request** of a principal or address counts: `/token`, `/introspect` and `/revoke`
//!   per authenticated client, `/userinfo` per token subject, the login form per address, and
//!   the global count per endpoint ([`RateLimits::admit`]);
//! * **failures** only count: failed client authentication, and other failures before anyone
//!   was identified, per address ([`RateLimits::failure`]). Once a failure is refused, this
//!   process remembers the refusal until the limit lets one through again
//!   ([`RateLimits::refused_here`]), so an address over the client-authentication limit is
//!   refused before its credentials are checked, at no shared-state round trip.
//!
//! Where each is counted: the failure classes, the login form and the global count in the
//! shared state (every replica alike); the per-client and per-subject classes in this process's
//! memory, so the token path makes no shared-state round trip and keeps serving cached clients
//! while the shared state is down; with `rate_limits.share_principal_limits` they are shared
//! too (exact across replicas, one round trip per request). A refusal is counted in
//! `sigil_rate_limited_total{class}`. Like every use of the cache, an unreachable or full store
//! is [`CacheError::Unavailable`]: the caller refuses (503), it never lets the request through
//! uncounted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus::IntCounter;

use crate::cache::gcra::{ceil_secs, unix_micros};
use crate::cache::{Bounds, Cache, CacheError, RateDecision, RateQuota};
use crate::config::{Rate, RateLimitSettings};

/// A class of request with a limit of its own (its name is its setting's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `rate_limits.token_per_client`.
    TokenPerClient,
    /// `rate_limits.introspect_per_client`.
    IntrospectPerClient,
    /// `rate_limits.revoke_per_client`.
    RevokePerClient,
    /// `rate_limits.userinfo_per_subject`.
    UserinfoPerSubject,
    /// `rate_limits.admin_per_principal`.
    AdminPerPrincipal,
    /// `rate_limits.client_auth_failures_per_ip` (failures only).
    ClientAuthFailuresPerIp,
    /// `rate_limits.login_per_ip`.
    LoginPerIp,
    /// `rate_limits.failures_per_ip` (failures only).
    FailuresPerIp,
    /// `rate_limits.global`, keyed by endpoint.
    Global,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 9] = [
        Class::TokenPerClient,
        Class::IntrospectPerClient,
        Class::RevokePerClient,
        Class::UserinfoPerSubject,
        Class::AdminPerPrincipal,
        Class::ClientAuthFailuresPerIp,
        Class::LoginPerIp,
        Class::FailuresPerIp,
        Class::Global,
    ];

    /// Its setting's name in `[rate_limits]`, and its `class` label in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Class::TokenPerClient => "token_per_client",
            Class::IntrospectPerClient => "introspect_per_client",
            Class::RevokePerClient => "revoke_per_client",
            Class::UserinfoPerSubject => "userinfo_per_subject",
            Class::AdminPerPrincipal => "admin_per_principal",
            Class::ClientAuthFailuresPerIp => "client_auth_failures_per_ip",
            Class::LoginPerIp => "login_per_ip",
            Class::FailuresPerIp => "failures_per_ip",
            Class::Global => "global",
        }
    }

    /// The cache kind of its keys (`<kind>:<key>`), so each class is bounded on its own.
    fn kind(self) -> &'static str {
        match self {
            Class::TokenPerClient => "rl_token",
            Class::IntrospectPerClient => "rl_introspect",
            Class::RevokePerClient => "rl_revoke",
            Class::UserinfoPerSubject => "rl_userinfo",
            Class::AdminPerPrincipal => "rl_admin",
            Class::ClientAuthFailuresPerIp => "rl_client_auth",
            Class::LoginPerIp => "rl_login",
            Class::FailuresPerIp => "rl_fail",
            Class::Global => "rl_global",
        }
    }

    /// Whether it counts one principal's requests (a client, a subject).
    fn is_principal(self) -> bool {
        matches!(
            self,
            Class::TokenPerClient
                | Class::IntrospectPerClient
                | Class::RevokePerClient
                | Class::UserinfoPerSubject
                | Class::AdminPerPrincipal
        )
    }

    fn index(self) -> usize {
        self as usize
    }

    fn setting(self, s: &RateLimitSettings) -> Rate {
        match self {
            Class::TokenPerClient => s.token_per_client,
            Class::IntrospectPerClient => s.introspect_per_client,
            Class::RevokePerClient => s.revoke_per_client,
            Class::UserinfoPerSubject => s.userinfo_per_subject,
            Class::AdminPerPrincipal => s.admin_per_principal,
            Class::ClientAuthFailuresPerIp => s.client_auth_failures_per_ip,
            Class::LoginPerIp => s.login_per_ip,
            Class::FailuresPerIp => s.failures_per_ip,
            Class::Global => s.global,
        }
    }
}

/// The quota a setting describes (`None`: off).
pub fn quota_of(rate: Rate) -> Option<RateQuota> {
    match rate {
        Rate::Off => None,
        Rate::Limit { requests, per } => RateQuota::new(requests, per),
    }
}

/// Every limit of one process.
pub struct RateLimits {
    quotas: [Option<RateQuota>; Class::ALL.len()],
    shared: Arc<Cache>,
    /// This process's counts (principal classes unless shared) and remembered refusals.
    local: Cache,
    share_principals: bool,
    refused: [IntCounter; Class::ALL.len()],
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("quotas", &self.quotas)
            .field("share_principals", &self.share_principals)
            .finish_non_exhaustive()
    }
}

/// The kind of this process's remembered refusals.
const REFUSED_KIND: &str = "rl_refused";

impl RateLimits {
    /// The limits `settings` describe, counted in `shared` (and this process's memory), refusals
    /// counted in `sigil_rate_limited_total{class}`.
    pub fn new(
        settings: &RateLimitSettings,
        shared: Arc<Cache>,
        metrics: &crate::metrics::Metrics,
    ) -> RateLimits {
        RateLimits {
            quotas: Class::ALL.map(|c| quota_of(c.setting(settings))),
            shared,
            local: Cache::in_process("", Bounds::default()),
            share_principals: settings.share_principal_limits,
            refused: Class::ALL.map(|c| metrics.rate_limited.with_label_values(&[c.name()])),
        }
    }

    /// The quota of `class` (`None`: off).
    pub fn quota(&self, class: Class) -> Option<RateQuota> {
        self.quotas[class.index()]
    }

    /// Where `class` is counted.
    fn store(&self, class: Class) -> &Cache {
        if class.is_principal() && !self.share_principals {
            &self.local
        } else {
            &self.shared
        }
    }

    /// Count one request of `class` for `key` at `now`: its decision, `None` when the class is
    /// off. A refused request is not counted.
    pub async fn admit(
        &self,
        class: Class,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<RateDecision>, CacheError> {
        let Some(quota) = self.quota(class) else {
            return Ok(None);
        };
        let d = self
            .store(class)
            .rate_limit(&cache_key(class.kind(), key), quota, now)
            .await?;
        if !d.allowed {
            self.refused[class.index()].inc();
        }
        Ok(Some(d))
    }

    /// Count one failure of `class` for `key` at `now` (always in the shared state). A refused
    /// one is remembered in this process until the limit would let one through
    /// ([`RateLimits::refused_here`]).
    pub async fn failure(
        &self,
        class: Class,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<RateDecision>, CacheError> {
        let Some(quota) = self.quota(class) else {
            return Ok(None);
        };
        let d = self
            .shared
            .rate_limit(&cache_key(class.kind(), key), quota, now)
            .await?;
        if !d.allowed {
            self.refused[class.index()].inc();
            let until = unix_micros(now).saturating_add(micros(d.retry_after));
            let mut value = Vec::with_capacity(16);
            value.extend_from_slice(&until.to_be_bytes());
            value.extend_from_slice(&d.reset_at.to_be_bytes());
            // Best effort: without the note the next failure asks the shared state again.
            let _ = self
                .local
                .put(&refused_key(class, key), value, ceil_secs(until), secs(now))
                .await;
        }
        Ok(Some(d))
    }

    /// Whether this process saw `class` refuse `key` and the limit would still refuse it at
    /// `now`: the refusal to answer with (no I/O, nothing counted in the shared state).
    pub async fn refused_here(
        &self,
        class: Class,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<RateDecision>, CacheError> {
        let Some(quota) = self.quota(class) else {
            return Ok(None);
        };
        let Some(value) = self.local.get(&refused_key(class, key), secs(now)).await? else {
            return Ok(None);
        };
        let (Some(until), Some(reset_at)) = (be_i64(&value, 0), be_i64(&value, 8)) else {
            return Err(CacheError::Failed("malformed rate-limit refusal".into()));
        };
        let wait = until - unix_micros(now);
        if wait <= 0 {
            return Ok(None);
        }
        self.refused[class.index()].inc();
        Ok(Some(RateDecision {
            allowed: false,
            limit: quota.limit(),
            remaining: 0,
            reset_at,
            retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
        }))
    }

    /// Drop this process's expired counts and refusals (the prune job). Returns how many.
    pub async fn prune(&self, now: i64) -> Result<usize, CacheError> {
        self.local.prune(now).await
    }
}

fn cache_key(kind: &str, key: &str) -> String {
    let mut k = String::with_capacity(kind.len() + 1 + key.len());
    k.push_str(kind);
    k.push(':');
    k.push_str(key);
    k
}

fn refused_key(class: Class, key: &str) -> String {
    format!("{REFUSED_KIND}:{}:{key}", class.name())
}

fn be_i64(bytes: &[u8], at: usize) -> Option<i64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(i64::from_be_bytes(chunk))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn secs(t: SystemTime) -> i64 {
    unix_micros(t).div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000) + Duration::from_secs_f64(s)
    }

    fn settings(env: &[(&str, &str)]) -> RateLimitSettings {
        crate::config::Settings::load(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &crate::config::Overrides::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .rate_limits
    }

    fn limits(s: &RateLimitSettings, shared: &Arc<Cache>) -> RateLimits {
        let metrics = crate::metrics::Metrics::new().unwrap_or_else(|e| panic!("{e}"));
        RateLimits::new(s, shared.clone(), &metrics)
    }

    fn shared() -> Arc<Cache> {
        Arc::new(Cache::in_process("t:", Bounds::default()))
    }

    #[test]
    fn every_class_is_named_by_its_setting() -> Result<(), Box<dyn std::error::Error>> {
        let defaults = serde_json::to_value(RateLimitSettings::default())?;
        for c in Class::ALL {
            assert!(defaults.get(c.name()).is_some(), "{}", c.name());
            assert_eq!(Class::ALL[c.index()], c);
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_class_admits_its_limit_then_refuses_until_a_slot_frees() -> Result<(), CacheError> {
        let s = settings(&[("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "3/1m")]);
        let l = limits(&s, &shared());
        for left in [2, 1, 0] {
            let d = l.admit(Class::TokenPerClient, "c1", at(0.0)).await?;
            assert_eq!(d.map(|d| (d.allowed, d.remaining)), Some((true, left)));
        }
        let d = l.admit(Class::TokenPerClient, "c1", at(1.0)).await?;
        let d = d.ok_or_else(|| CacheError::Failed("on".into()))?;
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs(), 19, "one slot every 20 s");
        assert!(
            l.admit(Class::TokenPerClient, "c2", at(1.0))
                .await?
                .is_some_and(|d| d.allowed),
            "each client its own count"
        );
        assert!(
            l.admit(Class::TokenPerClient, "c1", at(20.0))
                .await?
                .is_some_and(|d| d.allowed)
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_off_class_decides_nothing() -> Result<(), CacheError> {
        let l = limits(&settings(&[]), &shared());
        assert_eq!(l.admit(Class::Global, "token", at(0.0)).await?, None);
        let s = settings(&[("SIGIL_RATE_LIMITS_LOGIN_PER_IP", "off")]);
        let l = limits(&s, &shared());
        assert_eq!(
            l.admit(Class::LoginPerIp, "192.0.2.1", at(0.0)).await?,
            None
        );
        Ok(())
    }

    #[tokio::test]
    async fn principal_classes_count_per_process_unless_shared() -> Result<(), CacheError> {
        let store = shared();
        let s = settings(&[("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "1/1m")]);
        let (a, b) = (limits(&s, &store), limits(&s, &store));
        let allowed = async |l: &RateLimits| -> Result<bool, CacheError> {
            Ok(l.admit(Class::TokenPerClient, "c", at(0.0))
                .await?
                .is_some_and(|d| d.allowed))
        };
        assert!(allowed(&a).await? && allowed(&b).await?, "one each");
        assert!(!allowed(&a).await?);
        let s = settings(&[
            ("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "1/1m"),
            ("SIGIL_RATE_LIMITS_SHARE_PRINCIPAL_LIMITS", "true"),
        ]);
        let store = shared();
        let (a, b) = (limits(&s, &store), limits(&s, &store));
        assert!(allowed(&a).await?);
        assert!(!allowed(&b).await?, "one between them");
        Ok(())
    }

    #[tokio::test]
    async fn a_refused_failure_is_remembered_here_until_the_limit_frees() -> Result<(), CacheError>
    {
        let store = shared();
        let s = settings(&[("SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP", "2/1m")]);
        let (here, other) = (limits(&s, &store), limits(&s, &store));
        let class = Class::ClientAuthFailuresPerIp;
        let ip = "192.0.2.9";
        assert_eq!(here.refused_here(class, ip, at(0.0)).await?, None);
        for _ in 0..2 {
            assert!(
                here.failure(class, ip, at(0.0))
                    .await?
                    .is_some_and(|d| d.allowed)
            );
        }
        assert_eq!(
            here.refused_here(class, ip, at(0.0)).await?,
            None,
            "not yet"
        );
        // The failures are shared: the other process's next one is refused, and it remembers.
        let d = other.failure(class, ip, at(1.0)).await?;
        assert!(d.is_some_and(|d| !d.allowed));
        let d = other.refused_here(class, ip, at(2.0)).await?;
        let d = d.ok_or_else(|| CacheError::Failed("refused".into()))?;
        assert_eq!((d.allowed, d.remaining), (false, 0));
        assert_eq!(d.retry_after_secs(), 28, "a slot every 30 s");
        assert_eq!(
            here.refused_here(class, ip, at(2.0)).await?,
            None,
            "per process"
        );
        assert_eq!(
            other.refused_here(class, "192.0.2.10", at(2.0)).await?,
            None,
            "per address"
        );
        assert_eq!(
            other.refused_here(class, ip, at(30.0)).await?,
            None,
            "freed"
        );
        assert!(
            other
                .failure(class, ip, at(30.0))
                .await?
                .is_some_and(|d| d.allowed)
        );
        Ok(())
    }
}
