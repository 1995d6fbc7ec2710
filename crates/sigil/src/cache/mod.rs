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

/// A bounded map of key → expiry.
#[derive(Debug)]
pub struct InProcessCache {
    entries: Mutex<HashMap<String, i64>>,
    capacity: usize,
}

impl InProcessCache {
    fn insert_if_absent(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, CacheError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| CacheError::Unavailable("cache lock poisoned".into()))?;
        if let Some(exp) = map.get(key)
            && *exp > now
        {
            return Ok(false);
        }
        if map.len() >= self.capacity {
            map.retain(|_, exp| *exp > now);
            if map.len() >= self.capacity {
                return Err(CacheError::Unavailable("in-process cache is full".into()));
            }
        }
        map.insert(key.to_owned(), expires_at);
        Ok(true)
    }

    fn prune(&self, now: i64) -> usize {
        match self.entries.lock() {
            Ok(mut map) => {
                let before = map.len();
                map.retain(|_, exp| *exp > now);
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
}
