//! Short-lived shared state behind one interface: used client-assertion ids now; revocations,
//! rate-limit counters and codes later. The in-process backend serves a single instance; a Redis
//! backend (for several replicas) plugs in here without touching callers.

use std::collections::HashMap;
use std::sync::Mutex;

/// Cache errors: the caller fails closed (503), never open.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend cannot take more entries or cannot be reached.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

/// The cache in use.
#[derive(Debug)]
pub enum Cache {
    /// Process memory: one instance only.
    InProcess(InProcessCache),
}

impl Cache {
    /// A new in-process cache holding at most `capacity` live entries.
    pub fn in_process(capacity: usize) -> Cache {
        Cache::InProcess(InProcessCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        })
    }

    /// Record `key` until `expires_at` (Unix seconds) unless it is already recorded and live.
    /// Returns `true` when it was newly recorded (first use), `false` for a replay.
    pub async fn insert_if_absent(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, CacheError> {
        match self {
            Cache::InProcess(c) => c.insert_if_absent(key, expires_at, now),
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
        match self {
            Cache::InProcess(c) => c.put(key, value, expires_at, now),
        }
    }

    /// Remove and return the live value under `key` (single use: a second take finds nothing).
    pub async fn take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Cache::InProcess(c) => c.take(key, now),
        }
    }

    /// The live value under `key`, left in place.
    pub async fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Cache::InProcess(c) => c.get(key, now),
        }
    }

    /// Count one event under `key` in a window ending at `window_end` (the first event of a window
    /// sets it); returns the count including this event.
    pub async fn incr(&self, key: &str, window_end: i64, now: i64) -> Result<u64, CacheError> {
        match self {
            Cache::InProcess(c) => c.incr(key, window_end, now),
        }
    }

    /// Drop expired entries. Returns how many.
    pub async fn prune(&self, now: i64) -> Result<usize, CacheError> {
        match self {
            Cache::InProcess(c) => Ok(c.prune(now)),
        }
    }

    /// Whether the cache answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::InProcess(_) => Ok(()),
        }
    }
}

/// What one in-process entry holds.
#[derive(Debug)]
enum Value {
    Marker,
    Bytes(Vec<u8>),
    Count(u64),
}

/// Key → (expiry in Unix seconds, value).
type Entries = HashMap<String, (i64, Value)>;

/// A bounded map of key → (expiry, value).
#[derive(Debug)]
pub struct InProcessCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl InProcessCache {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Entries>, CacheError> {
        self.entries
            .lock()
            .map_err(|_| CacheError::Unavailable("cache lock poisoned".into()))
    }

    fn make_room(
        &self,
        map: &mut HashMap<String, (i64, Value)>,
        now: i64,
    ) -> Result<(), CacheError> {
        if map.len() >= self.capacity {
            map.retain(|_, (exp, _)| *exp > now);
            if map.len() >= self.capacity {
                return Err(CacheError::Unavailable("in-process cache is full".into()));
            }
        }
        Ok(())
    }

    fn put(&self, key: &str, value: Vec<u8>, expires_at: i64, now: i64) -> Result<(), CacheError> {
        let mut map = self.lock()?;
        if !map.contains_key(key) {
            self.make_room(&mut map, now)?;
        }
        map.insert(key.to_owned(), (expires_at, Value::Bytes(value)));
        Ok(())
    }

    fn take(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let mut map = self.lock()?;
        Ok(match map.remove(key) {
            Some((exp, Value::Bytes(v))) if exp > now => Some(v),
            _ => None,
        })
    }

    fn get(&self, key: &str, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        let map = self.lock()?;
        Ok(match map.get(key) {
            Some((exp, Value::Bytes(v))) if *exp > now => Some(v.clone()),
            _ => None,
        })
    }

    fn incr(&self, key: &str, window_end: i64, now: i64) -> Result<u64, CacheError> {
        let mut map = self.lock()?;
        if let Some((exp, Value::Count(n))) = map.get_mut(key)
            && *exp > now
        {
            *n += 1;
            return Ok(*n);
        }
        self.make_room(&mut map, now)?;
        map.insert(key.to_owned(), (window_end, Value::Count(1)));
        Ok(1)
    }

    fn insert_if_absent(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, CacheError> {
        let mut map = self.lock()?;
        if let Some((exp, _)) = map.get(key)
            && *exp > now
        {
            return Ok(false);
        }
        self.make_room(&mut map, now)?;
        map.insert(key.to_owned(), (expires_at, Value::Marker));
        Ok(true)
    }

    fn prune(&self, now: i64) -> usize {
        match self.entries.lock() {
            Ok(mut map) => {
                let before = map.len();
                map.retain(|_, (exp, _)| *exp > now);
                before - map.len()
            }
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_is_detected_until_expiry_and_capacity_fails_closed() -> Result<(), CacheError> {
        let c = Cache::in_process(2);
        assert!(c.insert_if_absent("a", 100, 0).await?);
        assert!(!c.insert_if_absent("a", 100, 50).await?);
        assert!(
            c.insert_if_absent("a", 200, 100).await?,
            "expired entries may be reused"
        );
        assert!(c.insert_if_absent("b", 100, 0).await?);
        assert!(
            c.insert_if_absent("c", 100, 0).await.is_err(),
            "full: refuse, never forget"
        );
        assert_eq!(c.prune(150).await?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn values_are_single_use_and_counters_window() -> Result<(), CacheError> {
        let c = Cache::in_process(10);
        c.put("code", b"v".to_vec(), 60, 0).await?;
        assert_eq!(c.get("code", 1).await?, Some(b"v".to_vec()));
        assert_eq!(c.take("code", 1).await?, Some(b"v".to_vec()));
        assert_eq!(c.take("code", 1).await?, None, "single use");
        c.put("late", b"v".to_vec(), 60, 0).await?;
        assert_eq!(c.take("late", 60).await?, None, "expired");
        assert_eq!(c.incr("fails", 100, 0).await?, 1);
        assert_eq!(c.incr("fails", 100, 10).await?, 2);
        assert_eq!(c.incr("fails", 200, 100).await?, 1, "a new window");
        Ok(())
    }
}
