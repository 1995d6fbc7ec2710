//! PostgreSQL: the shared state of replicas that share a PostgreSQL database and no Redis, in
//! the tables of `store::shared_state`, one statement per primitive, on the store's blocking
//! pool ([`Store::run`]), so a request waits at most `database.connect_timeout` for a
//! connection. An unreachable database is [`CacheError::Unavailable`]; a query it refused is
//! [`CacheError::Failed`].

use std::time::SystemTime;

use super::CacheError;
use super::gcra::{RateDecision, RateQuota, unix_micros};
use crate::store::{Store, StoreError, shared_state as sql};

/// The PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresCache {
    store: Store,
}

impl PostgresCache {
    /// The tables of `store`'s database.
    pub fn new(store: Store) -> PostgresCache {
        PostgresCache { store }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::store::DbConn) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CacheError> {
        Ok(self.store.run(f).await?)
    }

    /// See [`super::Cache::insert_if_absent`].
    pub async fn insert_if_absent(
        &self,
        key: String,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, CacheError> {
        self.run(move |c| sql::insert_if_absent(c, &key, expires_at, now))
            .await
    }

    /// See [`super::Cache::put`].
    pub async fn put(
        &self,
        key: String,
        value: Vec<u8>,
        expires_at: i64,
        _now: i64,
    ) -> Result<(), CacheError> {
        self.run(move |c| sql::put(c, &key, &value, expires_at))
            .await
    }

    /// See [`super::Cache::take`].
    pub async fn take(&self, key: String, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(move |c| sql::take(c, &key, now)).await
    }

    /// See [`super::Cache::get`].
    pub async fn get(&self, key: String, now: i64) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(move |c| sql::get(c, &key, now)).await
    }

    /// See [`super::Cache::incr`].
    pub async fn incr(&self, key: String, window_end: i64, now: i64) -> Result<u64, CacheError> {
        self.run(move |c| sql::incr(c, &key, window_end, now)).await
    }

    /// See [`super::Cache::rate_limit`].
    pub async fn rate_limit(
        &self,
        key: String,
        quota: RateQuota,
        now: SystemTime,
    ) -> Result<RateDecision, CacheError> {
        let now_us = unix_micros(now);
        let (t, tau) = quota.micros();
        let (tat, allowed) = self
            .run(move |c| sql::rate_limit(c, &key, now_us, t, tau))
            .await?;
        Ok(RateDecision::from_micros(quota, now_us, tat, allowed))
    }

    /// Delete expired rows.
    pub async fn prune(&self, now: i64) -> Result<usize, CacheError> {
        self.run(move |c| sql::prune(c, now)).await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), CacheError> {
        Ok(self.store.ping().await?)
    }
}
