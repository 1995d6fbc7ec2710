//! Short-lived shared state behind one type, [`Cache`], on three backends chosen at start-up
//! ([`Choice`]) without a setting of their own:
//! * **Redis** ([`redis`], deadpool-redis) when `redis.url` is set;
//! * **PostgreSQL** ([`postgres`], two tables through `store::shared_state`) when the database is
//!   PostgreSQL and no Redis is configured, so a PostgreSQL-only deployment is correct with any
//!   number of replicas;
//! * **process memory** ([`memory`]) on SQLite, which serves one server.
//!
//! What lives here: consent screens in progress, authorization codes (taken once) and what
//! a redeemed code issued, login failure, lock and per-IP counters, anonymous failure counters,
//! used client-assertion `jti`s, and GCRA rate limits
//! ([`gcra`]).
//!
//! Every primitive is atomic on every backend (one Lua script or command on Redis, one SQL
//! statement on PostgreSQL, one lock in process), so replicas racing on one key have exactly one
//! winner. Every key is prefixed with the cache's namespace (`redis.key_prefix`, `sigil:` by
//! default). A key's *kind* is its text before the first `:` (`code`, `consent`, `login_fail`,
//! ...): the in-process backend bounds each kind on its own, so a flood of one cannot crowd out
//! another. A key holds one kind of value: a marker (`insert_if_absent`), bytes (`put`), a
//! counter (`incr`) or a rate-limit state (`rate_limit`); `get` and `take` return bytes only.
//!
//! Time is Sigil's clock (the `now` arguments), never the backend's: an entry is gone for every
//! read once `now` reaches its expiry, whatever the backend still holds. The backends also drop
//! expired entries themselves (Redis by a TTL set from the same expiry, PostgreSQL in the prune
//! job, memory from the front of each kind's expiry index), so nothing grows without bound.
//!
//! Failure: full or unreachable is [`CacheError::Unavailable`] (HTTP 503 with `Retry-After`); a
//! backend that answered and refused (a bug) is [`CacheError::Failed`] (HTTP 500). The cache
//! refuses, it never forgets, and no caller treats an error as "absent".

pub mod gcra;
pub mod memory;
pub mod postgres;
pub mod redis;

use std::fmt;
use std::time::SystemTime;

pub use gcra::{RateDecision, RateQuota};
pub use memory::Bounds;

use crate::config::Settings;

/// Cache errors: the caller fails closed, never open.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend cannot take more entries or cannot be reached now (retry later: 503).
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The backend answered and refused the operation, or returned what Sigil did not write:
    /// a bug, not an outage (500).
    #[error("cache operation failed: {0}")]
    Failed(String),
}

impl From<crate::store::StoreError> for CacheError {
    /// An unreachable or overloaded database is an outage; anything else it said is a bug.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::{StoreError, error_chain};
        match e {
            StoreError::Unavailable(_) => CacheError::Unavailable(error_chain(&e)),
            _ => CacheError::Failed(error_chain(&e)),
        }
    }
}

/// Which backend holds the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `redis.url` is set.
    Redis,
    /// The database is PostgreSQL and no Redis is configured.
    Postgres,
    /// SQLite: one server, state in its memory.
    InProcess,
}

impl Choice {
    /// The backend these settings select: Redis when a URL is set; else PostgreSQL when the
    /// database is PostgreSQL; else process memory.
    pub fn for_settings(settings: &Settings) -> Choice {
        if settings.redis.url.is_some() {
            Choice::Redis
        } else if crate::store::Backend::of_url(&settings.database_url())
            == Some(crate::store::Backend::Postgres)
        {
            Choice::Postgres
        } else {
            Choice::InProcess
        }
    }

    /// How `sigil config check` and the start-up log describe it.
    pub fn describe(self) -> &'static str {
        match self {
            Choice::Redis => "Redis (redis.url): shared by every replica",
            Choice::Postgres => {
                "PostgreSQL (the database's shared_state tables): shared by every replica"
            }
            Choice::InProcess => "in-process (SQLite): correct for one server only",
        }
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Choice::Redis => "redis",
            Choice::Postgres => "postgres",
            Choice::InProcess => "in-process",
        })
    }
}

/// The backend in use.
enum Backend {
    Memory(memory::MemoryCache),
    Redis(redis::RedisCache),
    Postgres(postgres::PostgresCache),
}

/// Short-lived shared state: one namespace on one backend.
pub struct Cache {
    namespace: String,
    backend: Backend,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.choice())
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// A key's kind: its text before the first `:` (empty for a key without one).
pub fn kind_of(key: &str) -> &str {
    key.split_once(':').map_or("", |(kind, _)| kind)
}

impl Cache {
    /// Process memory with per-kind `bounds`, every key prefixed with `namespace`.
    pub fn in_process(namespace: impl Into<String>, bounds: Bounds) -> Cache {
        Cache {
            namespace: namespace.into(),
            backend: Backend::Memory(memory::MemoryCache::new(bounds)),
        }
    }

    /// Redis at `url` (a pool; nothing connects until the first use), keys prefixed with
    /// `namespace`. Fails only on a URL the client cannot use.
    pub fn redis(url: &str, namespace: impl Into<String>) -> Result<Cache, CacheError> {
        Ok(Cache {
            namespace: namespace.into(),
            backend: Backend::Redis(redis::RedisCache::new(url)?),
        })
    }

    /// The PostgreSQL tables of `store`'s database, keys prefixed with `namespace`.
    pub fn postgres(store: crate::store::Store, namespace: impl Into<String>) -> Cache {
        Cache {
            namespace: namespace.into(),
            backend: Backend::Postgres(postgres::PostgresCache::new(store)),
        }
    }

    /// The backend `settings` select ([`Choice::for_settings`]), on `store` for PostgreSQL, with
    /// `redis.key_prefix` as the namespace.
    pub fn for_settings(
        settings: &Settings,
        store: &crate::store::Store,
    ) -> Result<Cache, CacheError> {
        use secrecy::ExposeSecret;
        let namespace = settings.redis.key_prefix.clone();
        match (Choice::for_settings(settings), &settings.redis.url) {
            (Choice::Redis, Some(url)) => Cache::redis(url.expose_secret(), namespace),
            (Choice::Postgres, _) => Ok(Cache::postgres(store.clone(), namespace)),
            _ => Ok(Cache::in_process(namespace, Bounds::default())),
        }
    }

    /// Which backend this is.
    pub fn choice(&self) -> Choice {
        match &self.backend {
            Backend::Memory(_) => Choice::InProcess,
            Backend::Redis(_) => Choice::Redis,
            Backend::Postgres(_) => Choice::Postgres,
        }
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.namespace.len() + key.len());
        full.push_str(&self.namespace);
        full.push_str(key);
        full
    }

    /// Record `key` until `expires_at` (Unix seconds) unless it is already recorded and live.
    /// Returns `true` when it was newly recorded (first use), `false` for a replay.
    pub async fn insert_if_absent(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.insert_if_absent(kind_of(key), full, expires_at, now),
            Backend::Redis(c) => c.insert_if_absent(&full, expires_at, now).await,
            Backend::Postgres(c) => c.insert_if_absent(full, expires_at, now).await,
        }
    }

    /// Store `value` under `key` until `expires_at`, replacing any previous value.
    pub async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: i64,
        now: i64,
    ) -> Result<(), CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.put(kind_of(key), full, value, expires_at, now),
            Backend::Redis(c) => c.put(&full, value, expires_at, now).await,
            Backend::Postgres(c) => c.put(full, value, expires_at, now).await,
        }
    }

    /// Remove and return the live value under `key` (single use: of any number of concurrent
    /// takes, in any process, one gets it). Removes a marker or counter too, returning `None`.
    pub async fn take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.take(kind_of(key), &full, now),
            Backend::Redis(c) => c.take(&full, now).await,
            Backend::Postgres(c) => c.take(full, now).await,
        }
    }

    /// The live value under `key`, left in place.
    pub async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.get(kind_of(key), &full, now),
            Backend::Redis(c) => c.get(&full, now).await,
            Backend::Postgres(c) => c.get(full, now).await,
        }
    }

    /// Count one event under `key` in a window ending at `window_end` (the first event of a window
    /// sets it); returns the count including this event.
    pub async fn incr(&self, key: &str, window_end: i64, now: i64) -> Result<u64, CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.incr(kind_of(key), full, window_end, now),
            Backend::Redis(c) => c.incr(&full, window_end, now).await,
            Backend::Postgres(c) => c.incr(full, window_end, now).await,
        }
    }

    /// One request under the GCRA limit `quota` for `key` at `now` (sub-second precision, hence
    /// a `SystemTime`): whether it may pass, and the figures for `X-RateLimit-*` and
    /// `Retry-After`. A refused request does not count against the limit.
    pub async fn rate_limit(
        &self,
        key: &str,
        quota: RateQuota,
        now: SystemTime,
    ) -> Result<RateDecision, CacheError> {
        let full = self.key(key);
        match &self.backend {
            Backend::Memory(c) => c.rate_limit(kind_of(key), full, quota, now),
            Backend::Redis(c) => c.rate_limit(&full, quota, now).await,
            Backend::Postgres(c) => c.rate_limit(full, quota, now).await,
        }
    }

    /// Drop expired entries (the prune job; Redis expires its own). Returns how many.
    pub async fn prune(&self, now: i64) -> Result<usize, CacheError> {
        match &self.backend {
            Backend::Memory(c) => Ok(c.prune(now)),
            Backend::Redis(_) => Ok(0),
            Backend::Postgres(c) => c.prune(now).await,
        }
    }

    /// Whether the backend answers (for `/readyz`), within the backend's own time limit.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match &self.backend {
            Backend::Memory(c) => c.ping(),
            Backend::Redis(c) => c.ping().await,
            Backend::Postgres(c) => c.ping().await,
        }
    }

    /// Whether this backend is shared by every process on the database, so that pruning it is
    /// the prune lease holder's job alone.
    pub fn is_shared(&self) -> bool {
        !matches!(self.backend, Backend::Memory(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_the_text_before_the_first_colon() {
        assert_eq!(kind_of("code:abc"), "code");
        assert_eq!(kind_of("login_fail:alice:locked"), "login_fail");
        assert_eq!(kind_of("anon_fail:*:100"), "anon_fail");
        assert_eq!(kind_of("plain"), "");
    }

    #[test]
    fn the_backend_follows_the_settings() {
        let load = |env: &[(&str, &str)]| {
            crate::config::Settings::load(
                None,
                env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
                &crate::config::Overrides::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(Choice::for_settings(&load(&[])), Choice::InProcess);
        let pg = ("SIGIL_DATABASE_URL", "postgres://sigil@db/sigil");
        assert_eq!(Choice::for_settings(&load(&[pg])), Choice::Postgres);
        let redis = ("SIGIL_REDIS_URL", "redis://127.0.0.1:6379");
        assert_eq!(Choice::for_settings(&load(&[pg, redis])), Choice::Redis);
        assert_eq!(Choice::for_settings(&load(&[redis])), Choice::Redis);
    }

    #[tokio::test]
    async fn keys_carry_the_namespace() -> Result<(), CacheError> {
        let a = Cache::in_process("a:", Bounds::default());
        assert_eq!(a.key("code:x"), "a:code:x");
        a.put("code:x", b"1".to_vec(), 100, 0).await?;
        assert_eq!(a.get("code:x", 1).await?, Some(b"1".to_vec()));
        Ok(())
    }
}
