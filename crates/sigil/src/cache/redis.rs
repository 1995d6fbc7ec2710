//! Redis: the shared state of any number of replicas, through a deadpool-redis pool of
//! multiplexed connections.
//!
//! Every value carries its expiry as Sigil's clock sees it (`<unix seconds>\n<tag><payload>`,
//! tag `b` bytes, `m` marker, `c` counter), so what is live is decided by `now`, as on the other
//! backends; Redis also expires each key itself, by a TTL computed from the same expiry
//! (`PX expires_at - now`), so nothing needs pruning. The primitives:
//! * `put`: `SET … PX`; `take`: `GETDEL` (Redis ≥ 6.2); `get`: `GET`;
//! * `insert_if_absent`: a script doing `SET … NX PX`, and when something is there, replacing
//!   it only if its recorded expiry has passed (a replica's clock may run ahead of Redis');
//! * `incr`: a script that counts within the live window or starts a new one, keeping or
//!   setting its TTL;
//! * `rate_limit`: the GCRA ([`super::gcra`]) in a script, its state the TAT in microseconds.
//!
//! Scripts run atomically, so of concurrent callers on one key exactly one wins. Time limits:
//! the client connects within 1 s and expects each answer within 0.5 s (redis-rs defaults), the
//! pool waits, connects and checks a connection within [`OP_TIMEOUT`] each, and every operation
//! as a whole is cut at [`OP_TIMEOUT`]: an unreachable Redis is a quick
//! [`CacheError::Unavailable`], and the pool reconnects by itself once Redis is back.

use std::time::{Duration, SystemTime};

use deadpool_redis::redis::{self, Script};
use deadpool_redis::{Pool, PoolError, Runtime};

use super::CacheError;
use super::gcra::{RateDecision, RateQuota, unix_micros};

/// The longest any one operation (and each pool stage) may take.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections per process (each multiplexes any number of concurrent commands).
const POOL_SIZE: usize = 8;

const INSERT_IF_ABSENT: &str = r"
-- KEYS[1]: the key. ARGV[1]: now; ARGV[2]: the entry; ARGV[3]: its TTL (ms).
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return 1
end
-- Something is there: it stands unless its recorded expiry has passed by Sigil's clock.
local cur = redis.call('GET', KEYS[1])
if cur then
  local exp = tonumber(string.match(cur, '^(%-?%d+)\n'))
  if exp == nil or exp > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

const INCR: &str = r"
-- KEYS[1]: the key. ARGV[1]: now; ARGV[2]: the end of a new window; ARGV[3]: its TTL (ms).
local cur = redis.call('GET', KEYS[1])
if cur then
  local exp, n = string.match(cur, '^(%-?%d+)\nc(%d+)$')
  if exp and tonumber(exp) > tonumber(ARGV[1]) then
    n = tonumber(n) + 1
    redis.call('SET', KEYS[1], exp .. '\nc' .. string.format('%d', n), 'KEEPTTL')
    return n
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. '\nc1', 'PX', ARGV[3])
return 1
";

const GCRA: &str = r"
-- KEYS[1]: the key. ARGV[1]: now; ARGV[2]: emission interval t; ARGV[3]: tolerance tau
-- (microseconds). Passes when tat - tau <= now, moving tat to max(tat, now) + t; a refusal
-- changes nothing. Returns {allowed, tat}.
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1]) or now
if tat < now then
  tat = now
end
if tat - tonumber(ARGV[3]) > now then
  return {0, tat}
end
tat = tat + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
return {1, tat}
";

/// The Redis backend.
pub struct RedisCache {
    pool: Pool,
    insert_if_absent: Script,
    incr: Script,
    gcra: Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").finish_non_exhaustive()
    }
}

/// Whether a Redis error means "cannot serve now" (503) rather than "refused what Sigil sent"
/// (a bug, 500): lost or refused connections, time-outs, a loading, read-only or out-of-memory
/// server, a failed login.
fn classify(e: &redis::RedisError) -> CacheError {
    use redis::{ErrorKind, ServerErrorKind};
    let outage = match e.kind() {
        ErrorKind::Io | ErrorKind::AuthenticationFailed => true,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        ErrorKind::Extension => matches!(e.code(), Some("OOM" | "BUSY" | "NOAUTH")),
        _ => e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal(),
    };
    if outage {
        CacheError::Unavailable(format!("redis: {e}"))
    } else {
        CacheError::Failed(format!("redis: {e}"))
    }
}

fn pool_error(e: PoolError) -> CacheError {
    match e {
        PoolError::Backend(e) => classify(&e),
        e => CacheError::Unavailable(format!("redis pool: {e}")),
    }
}

/// A TTL in milliseconds for an entry expiring at `expires_at`, seen at `now` (at least 1).
fn ttl_ms(expires_at: i64, now: i64) -> i64 {
    expires_at.saturating_sub(now).saturating_mul(1000).max(1)
}

fn encode(expires_at: i64, tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = format!("{expires_at}\n").into_bytes();
    v.push(tag);
    v.extend_from_slice(payload);
    v
}

/// The payload of a stored value if it holds bytes and is live at `now`.
fn live_bytes(raw: Option<Vec<u8>>, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let corrupt = || CacheError::Failed("redis holds a value Sigil did not write".into());
    let nl = raw.iter().position(|&b| b == b'\n').ok_or_else(corrupt)?;
    let expires_at: i64 = std::str::from_utf8(&raw[..nl])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(corrupt)?;
    let tag = raw.get(nl + 1).copied();
    if expires_at <= now || tag != Some(b'b') {
        return Ok(None);
    }
    Ok(Some(raw[nl + 2..].to_vec()))
}

impl RedisCache {
    /// A pool for `url` (`redis://[user:password@]host[:port][/db]`). Connects on first use.
    pub fn new(url: &str) -> Result<RedisCache, CacheError> {
        let pool = deadpool_redis::Config::from_url(url)
            .builder()
            .map_err(|e| CacheError::Failed(format!("redis.url: {e}")))?
            .max_size(POOL_SIZE)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(OP_TIMEOUT))
            .recycle_timeout(Some(OP_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| CacheError::Failed(format!("redis pool: {e}")))?;
        Ok(RedisCache {
            pool,
            insert_if_absent: Script::new(INSERT_IF_ABSENT),
            incr: Script::new(INCR),
            gcra: Script::new(GCRA),
        })
    }

    /// Run `op` on a pooled connection, all of it within [`OP_TIMEOUT`].
    async fn with_conn<T, F>(&self, op: F) -> Result<T, CacheError>
    where
        F: AsyncFnOnce(&mut deadpool_redis::Connection) -> redis::RedisResult<T>,
    {
        let work = async {
            let mut conn = self.pool.get().await.map_err(pool_error)?;
            op(&mut conn).await.map_err(|e| classify(&e))
        };
        tokio::time::timeout(OP_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(CacheError::Unavailable(format!(
                    "redis did not answer within {OP_TIMEOUT:?}"
                )))
            })
    }

    /// See [`super::Cache::insert_if_absent`].
    pub async fn insert_if_absent(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, CacheError> {
        let entry = encode(expires_at, b'm', b"");
        let recorded: i64 = self
            .with_conn(async |c| {
                self.insert_if_absent
                    .key(key)
                    .arg(now)
                    .arg(&entry)
                    .arg(ttl_ms(expires_at, now))
                    .invoke_async(c)
                    .await
            })
            .await?;
        Ok(recorded == 1)
    }

    /// See [`super::Cache::put`].
    pub async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        expires_at: i64,
        now: i64,
    ) -> Result<(), CacheError> {
        let entry = encode(expires_at, b'b', &value);
        self.with_conn(async |c| {
            redis::cmd("SET")
                .arg(key)
                .arg(&entry)
                .arg("PX")
                .arg(ttl_ms(expires_at, now))
                .query_async::<()>(c)
                .await
        })
        .await
    }

    /// See [`super::Cache::take`].
    pub async fn take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let raw: Option<Vec<u8>> = self
            .with_conn(async |c| redis::cmd("GETDEL").arg(key).query_async(c).await)
            .await?;
        live_bytes(raw, now)
    }

    /// See [`super::Cache::get`].
    pub async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let raw: Option<Vec<u8>> = self
            .with_conn(async |c| redis::cmd("GET").arg(key).query_async(c).await)
            .await?;
        live_bytes(raw, now)
    }

    /// See [`super::Cache::incr`].
    pub async fn incr(&self, key: &str, window_end: i64, now: i64) -> Result<u64, CacheError> {
        let n: i64 = self
            .with_conn(async |c| {
                self.incr
                    .key(key)
                    .arg(now)
                    .arg(window_end)
                    .arg(ttl_ms(window_end, now))
                    .invoke_async(c)
                    .await
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// See [`super::Cache::rate_limit`].
    pub async fn rate_limit(
        &self,
        key: &str,
        quota: RateQuota,
        now: SystemTime,
    ) -> Result<RateDecision, CacheError> {
        let now_us = unix_micros(now);
        let (t, tau) = quota.micros();
        let (allowed, tat): (i64, i64) = self
            .with_conn(async |c| {
                self.gcra
                    .key(key)
                    .arg(now_us)
                    .arg(t)
                    .arg(tau)
                    .invoke_async(c)
                    .await
            })
            .await?;
        Ok(RateDecision::from_micros(quota, now_us, tat, allowed == 1))
    }

    /// `PING`, within [`OP_TIMEOUT`].
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.with_conn(async |c| redis::cmd("PING").query_async::<()>(c).await)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_expiry_and_kind() -> Result<(), CacheError> {
        let v = encode(100, b'b', b"a\nb");
        assert_eq!(v, b"100\nba\nb");
        assert_eq!(live_bytes(Some(v.clone()), 99)?, Some(b"a\nb".to_vec()));
        assert_eq!(live_bytes(Some(v), 100)?, None, "expired by Sigil's clock");
        assert_eq!(
            live_bytes(Some(encode(100, b'm', b"")), 0)?,
            None,
            "a marker"
        );
        assert_eq!(
            live_bytes(Some(encode(100, b'c', b"3")), 0)?,
            None,
            "a counter"
        );
        assert!(live_bytes(Some(b"junk".to_vec()), 0).is_err());
        assert_eq!(ttl_ms(100, 40), 60_000);
        assert_eq!(ttl_ms(100, 200), 1, "already expired: gone at once");
        Ok(())
    }

    #[test]
    fn a_tls_url_without_tls_support_is_refused_up_front() {
        assert!(RedisCache::new("rediss://cache.internal:6380").is_err());
        assert!(RedisCache::new("redis://127.0.0.1:6379/0").is_ok());
    }
}
