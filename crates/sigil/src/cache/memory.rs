//! Process memory: the backend of a single server (SQLite).
//!
//! Each kind of entry (the key's text before its first `:`, see [`super::kind_of`]) has a shelf
//! of its own with its own bounds ([`Bounds`]: live entries and bytes), so a flood of one kind
//! (failed-login counters from a password-spraying botnet, say) cannot fill the cache
//! for the others (codes, lockouts, used assertion ids). A full shelf refuses
//! ([`CacheError::Unavailable`]); it never evicts a live entry, which could be a lockout or a
//! spent code.
//!
//! Expiry costs no sweep on the request path: each shelf indexes its entries by (expiry,
//! sequence), and every operation on a shelf first drops at most [`EXPIRE_PER_OP`] expired
//! entries from the front of that index (O(log n) each, every entry dropped once); reads ignore
//! expired entries anyway. The prune job empties the fronts of every shelf.
//!
//! Rate limits are governor's GCRA on a one-key state store ([`Slot`]) seeded from the shelf, at
//! the caller's `now` ([`At`]), so the decision is governor's and the state is bounded like any
//! other entry.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use governor::RateLimiter;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};

use super::CacheError;
use super::gcra::{RateDecision, RateQuota, unix_nanos};

/// Expired entries an operation drops from the front of its shelf before doing its work: enough
/// to keep pace with any insertion rate (one insertion frees at least one slot when the front is
/// expired), small enough that no request pays for a backlog.
pub const EXPIRE_PER_OP: usize = 16;

/// Most kinds the cache keeps apart (Sigil has about ten); another kind is refused.
const MAX_KINDS: usize = 64;

/// Bytes an entry costs besides its key and value (map slot, index node, sequence, expiry).
const ENTRY_OVERHEAD: usize = 96;

/// Bounds of each kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Live entries of one kind.
    pub entries: usize,
    /// Bytes (keys, values and overhead) of one kind.
    pub bytes: usize,
}

impl Default for Bounds {
    /// 100 000 entries and 64 MiB per kind: a single server's day at several hundred sign-ins a
    /// second, far below a machine's memory even with every kind full.
    fn default() -> Self {
        Bounds {
            entries: 100_000,
            bytes: 64 << 20,
        }
    }
}

/// What one entry holds.
#[derive(Debug)]
enum Value {
    Marker,
    Bytes(Vec<u8>),
    Count(u64),
    /// A rate limit's theoretical arrival time, Unix nanoseconds.
    Tat(u64),
}

impl Value {
    fn len(&self) -> usize {
        match self {
            Value::Bytes(v) => v.len(),
            _ => 8,
        }
    }
}

#[derive(Debug)]
struct Entry {
    expires_at: i64,
    seq: u64,
    value: Value,
}

/// The entries of one kind.
#[derive(Debug, Default)]
struct Shelf {
    entries: HashMap<String, Entry>,
    by_expiry: BTreeMap<(i64, u64), String>,
    bytes: usize,
    next_seq: u64,
}

fn cost(key: &str, value: &Value) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl Shelf {
    /// Drop up to `limit` entries whose expiry is at or before `now`, oldest first.
    fn expire(&mut self, now: i64, limit: usize) -> usize {
        let mut dropped = 0;
        while dropped < limit {
            match self.by_expiry.first_key_value() {
                Some((&(exp, _), _)) if exp <= now => {}
                _ => break,
            }
            if let Some((_, key)) = self.by_expiry.pop_first()
                && let Some(entry) = self.entries.remove(&key)
            {
                self.bytes = self.bytes.saturating_sub(cost(&key, &entry.value));
            }
            dropped += 1;
        }
        dropped
    }

    fn live(&self, key: &str, now: i64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.expires_at > now)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.by_expiry.remove(&(entry.expires_at, entry.seq));
        self.bytes = self.bytes.saturating_sub(cost(key, &entry.value));
        Some(entry)
    }

    /// Put `value` under `key` (replacing what is there) unless that would pass `bounds`: then
    /// refuse and leave everything as it was.
    fn insert(
        &mut self,
        key: String,
        value: Value,
        expires_at: i64,
        bounds: &Bounds,
        kind: &str,
    ) -> Result<(), CacheError> {
        let new_cost = cost(&key, &value);
        let (entries, bytes) = match self.entries.get(&key) {
            Some(old) => (
                self.entries.len(),
                self.bytes.saturating_sub(cost(&key, &old.value)) + new_cost,
            ),
            None => (self.entries.len() + 1, self.bytes + new_cost),
        };
        if entries > bounds.entries || bytes > bounds.bytes {
            return Err(CacheError::Unavailable(format!(
                "in-process cache is full for {kind:?} entries ({} entries, {} bytes)",
                self.entries.len(),
                self.bytes
            )));
        }
        self.remove(&key);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires_at, seq), key.clone());
        self.bytes += new_cost;
        self.entries.insert(
            key,
            Entry {
                expires_at,
                seq,
                value,
            },
        );
        Ok(())
    }
}

/// The in-process backend.
#[derive(Debug)]
pub struct MemoryCache {
    shelves: RwLock<HashMap<String, Arc<Mutex<Shelf>>>>,
    bounds: Bounds,
}

fn poisoned<T>(_: T) -> CacheError {
    CacheError::Unavailable("in-process cache lock poisoned".into())
}

impl MemoryCache {
    /// An empty cache bounding every kind by `bounds`.
    pub fn new(bounds: Bounds) -> MemoryCache {
        MemoryCache {
            shelves: RwLock::new(HashMap::new()),
            bounds,
        }
    }

    /// Run `f` on the shelf of `kind` (made on first use), after dropping what expired at its
    /// front.
    fn with_shelf<T>(
        &self,
        kind: &str,
        now: i64,
        f: impl FnOnce(&mut Shelf) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let existing = self.shelves.read().map_err(poisoned)?.get(kind).cloned();
        let shelf = match existing {
            Some(s) => s,
            None => {
                let mut all = self.shelves.write().map_err(poisoned)?;
                if !all.contains_key(kind) && all.len() >= MAX_KINDS {
                    return Err(CacheError::Unavailable(format!(
                        "in-process cache holds {MAX_KINDS} kinds of entries already"
                    )));
                }
                all.entry(kind.to_owned()).or_default().clone()
            }
        };
        let mut shelf = shelf.lock().map_err(poisoned)?;
        shelf.expire(now, EXPIRE_PER_OP);
        f(&mut shelf)
    }

    /// See [`super::Cache::insert_if_absent`].
    pub fn insert_if_absent(
        &self,
        kind: &str,
        key: String,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, CacheError> {
        self.with_shelf(kind, now, |s| {
            if s.live(&key, now).is_some() {
                return Ok(false);
            }
            s.insert(key, Value::Marker, expires_at, &self.bounds, kind)?;
            Ok(true)
        })
    }

    /// See [`super::Cache::put`].
    pub fn put(
        &self,
        kind: &str,
        key: String,
        value: Vec<u8>,
        expires_at: i64,
        now: i64,
    ) -> Result<(), CacheError> {
        self.with_shelf(kind, now, |s| {
            s.insert(key, Value::Bytes(value), expires_at, &self.bounds, kind)
        })
    }

    /// See [`super::Cache::take`].
    pub fn take(&self, kind: &str, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        self.with_shelf(kind, now, |s| {
            Ok(match s.remove(key) {
                Some(Entry {
                    expires_at,
                    value: Value::Bytes(v),
                    ..
                }) if expires_at > now => Some(v),
                _ => None,
            })
        })
    }

    /// See [`super::Cache::get`].
    pub fn get(&self, kind: &str, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        self.with_shelf(kind, now, |s| {
            Ok(match s.live(key, now) {
                Some(Entry {
                    value: Value::Bytes(v),
                    ..
                }) => Some(v.clone()),
                _ => None,
            })
        })
    }

    /// See [`super::Cache::incr`].
    pub fn incr(
        &self,
        kind: &str,
        key: String,
        window_end: i64,
        now: i64,
    ) -> Result<u64, CacheError> {
        self.with_shelf(kind, now, |s| {
            if let Some(Entry {
                expires_at,
                value: Value::Count(n),
                ..
            }) = s.entries.get_mut(&key)
                && *expires_at > now
            {
                *n += 1;
                return Ok(*n);
            }
            s.insert(key, Value::Count(1), window_end, &self.bounds, kind)?;
            Ok(1)
        })
    }

    /// See [`super::Cache::rate_limit`]: governor decides, on the state this shelf keeps.
    pub fn rate_limit(
        &self,
        kind: &str,
        key: String,
        quota: RateQuota,
        now: SystemTime,
    ) -> Result<RateDecision, CacheError> {
        let gq = quota
            .governor()
            .ok_or_else(|| CacheError::Failed("rate-limit quota out of range".into()))?;
        let now_ns = unix_nanos(now);
        let now_s = i64::try_from(now_ns / 1_000_000_000).unwrap_or(i64::MAX);
        self.with_shelf(kind, now_s, |s| {
            // The stored TAT, relative to now (governor's time starts at this decision).
            let stored = match s.live(&key, now_s) {
                Some(Entry {
                    value: Value::Tat(tat),
                    ..
                }) => Some(tat.saturating_sub(now_ns)),
                _ => None,
            };
            let limiter: RateLimiter<NotKeyed, Slot, At, StateInformationMiddleware> =
                RateLimiter::new(
                    gq,
                    Slot(Cell::new(stored.map(Nanos::from))),
                    At(Nanos::from(0)),
                );
            match limiter.check() {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let tat_rel = limiter.into_state_store().0.get().map_or(0, Nanos::as_u64);
                    let tat = now_ns.saturating_add(tat_rel);
                    let reset_at = ceil_secs_ns(tat);
                    s.insert(key, Value::Tat(tat), reset_at, &self.bounds, kind)?;
                    Ok(RateDecision {
                        allowed: true,
                        limit: quota.limit(),
                        remaining,
                        reset_at,
                        retry_after: Duration::ZERO,
                    })
                }
                Err(not_until) => Ok(RateDecision {
                    allowed: false,
                    limit: quota.limit(),
                    remaining: 0,
                    reset_at: ceil_secs_ns(now_ns.saturating_add(stored.unwrap_or(0))),
                    retry_after: not_until
                        .wait_time_from(Nanos::from(0))
                        .max(Duration::from_nanos(1)),
                }),
            }
        })
    }

    /// Drop every expired entry. Returns how many.
    pub fn prune(&self, now: i64) -> usize {
        let Ok(all) = self.shelves.read() else {
            return 0;
        };
        all.values()
            .filter_map(|s| s.lock().ok().map(|mut s| s.expire(now, usize::MAX)))
            .sum()
    }

    /// Whether the cache can be used (its locks are sound).
    pub fn ping(&self) -> Result<(), CacheError> {
        self.shelves.read().map(drop).map_err(poisoned)
    }
}

/// Unix seconds, rounded up, of Unix nanoseconds.
fn ceil_secs_ns(ns: u64) -> i64 {
    i64::try_from(ns.div_ceil(1_000_000_000)).unwrap_or(i64::MAX)
}

/// Governor's clock for one decision: always the decision's instant, so governor's time is
/// relative to it (zero), and stored TATs are converted to and from Unix time around the call.
#[derive(Debug, Clone, Copy)]
pub struct At(Nanos);

impl Clock for At {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        self.0
    }
}

/// Governor's state store for one key: the TAT read from the shelf before the decision, and
/// the TAT to write back after it.
#[derive(Debug)]
pub struct Slot(Cell<Option<Nanos>>);

impl StateStore for Slot {
    type Key = NotKeyed;

    fn measure_and_replace<T, F, E>(&self, _key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let (outcome, next) = f(self.0.get())?;
        self.0.set(Some(next));
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Bounds = Bounds {
        entries: 2,
        bytes: 1 << 20,
    };

    #[test]
    fn a_full_kind_refuses_and_leaves_the_others_alone() -> Result<(), CacheError> {
        let c = MemoryCache::new(TINY);
        assert!(c.insert_if_absent("pending", "pending:1".into(), 100, 0)?);
        assert!(c.insert_if_absent("pending", "pending:2".into(), 100, 0)?);
        assert!(
            c.insert_if_absent("pending", "pending:3".into(), 100, 0)
                .is_err(),
            "full: refuse, never forget"
        );
        assert!(
            c.insert_if_absent("code", "code:1".into(), 100, 0)?,
            "another kind has its own room"
        );
        // Replacing an entry needs no room.
        c.put("pending", "pending:1".into(), b"v".to_vec(), 100, 0)?;
        // Once the front expires, the next operation makes room by itself: no prune needed.
        assert!(c.insert_if_absent("pending", "pending:3".into(), 200, 100)?);
        Ok(())
    }

    #[test]
    fn bytes_are_bounded_too() -> Result<(), CacheError> {
        let c = MemoryCache::new(Bounds {
            entries: 100,
            bytes: 1000,
        });
        c.put("pending", "pending:1".into(), vec![0; 600], 100, 0)?;
        assert!(
            c.put("pending", "pending:2".into(), vec![0; 600], 100, 0)
                .is_err()
        );
        // A smaller replacement of the same key fits.
        c.put("pending", "pending:1".into(), vec![0; 10], 100, 0)?;
        c.put("pending", "pending:2".into(), vec![0; 600], 100, 0)?;
        Ok(())
    }

    #[test]
    fn expiry_drops_a_few_per_operation_and_prune_the_rest() -> Result<(), CacheError> {
        let c = MemoryCache::new(Bounds::default());
        for i in 0..100 {
            c.put("code", format!("code:{i}"), vec![1], 10, 0)?;
        }
        let len = |c: &MemoryCache| -> usize {
            c.shelves
                .read()
                .ok()
                .and_then(|all| {
                    all.get("code")
                        .and_then(|s| s.lock().ok().map(|s| s.entries.len()))
                })
                .unwrap_or(0)
        };
        assert_eq!(
            c.get("code", "code:5", 10)?,
            None,
            "reads ignore expired entries"
        );
        assert_eq!(
            len(&c),
            100 - EXPIRE_PER_OP,
            "one operation drops a bounded number"
        );
        assert_eq!(c.prune(10), 100 - EXPIRE_PER_OP);
        assert_eq!(len(&c), 0);
        Ok(())
    }

    #[test]
    fn counters_reset_with_their_window_and_take_removes_them() -> Result<(), CacheError> {
        let c = MemoryCache::new(Bounds::default());
        assert_eq!(c.incr("login_fail", "login_fail:a".into(), 100, 0)?, 1);
        assert_eq!(c.incr("login_fail", "login_fail:a".into(), 100, 99)?, 2);
        assert_eq!(c.incr("login_fail", "login_fail:a".into(), 200, 100)?, 1);
        assert_eq!(
            c.take("login_fail", "login_fail:a", 101)?,
            None,
            "bytes only"
        );
        assert_eq!(
            c.incr("login_fail", "login_fail:a".into(), 200, 101)?,
            1,
            "removed"
        );
        Ok(())
    }

    #[test]
    fn governor_decides_with_the_callers_clock() -> Result<(), CacheError> {
        let c = MemoryCache::new(Bounds::default());
        let q = RateQuota::new(2, Duration::from_secs(10)).ok_or(CacheError::Failed("q".into()))?;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let d = c.rate_limit("rl", "rl:a".into(), q, at(0.0))?;
        assert_eq!((d.allowed, d.remaining, d.reset_at), (true, 1, 1_005));
        let d = c.rate_limit("rl", "rl:a".into(), q, at(0.0))?;
        assert_eq!((d.allowed, d.remaining, d.reset_at), (true, 0, 1_010));
        let d = c.rate_limit("rl", "rl:a".into(), q, at(1.0))?;
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Duration::from_secs(4));
        assert_eq!(d.reset_at, 1_010, "a refusal changes nothing");
        assert!(c.rate_limit("rl", "rl:a".into(), q, at(5.0))?.allowed);
        // Long after, the key is as good as new (and its state was dropped).
        let d = c.rate_limit("rl", "rl:a".into(), q, at(100.0))?;
        assert_eq!((d.allowed, d.remaining), (true, 1));
        Ok(())
    }
}
