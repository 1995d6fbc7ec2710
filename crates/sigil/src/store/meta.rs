//! Change counters (`meta`) and job leases (`leases`).

use diesel::prelude::*;

use super::schema::{leases, meta};
use super::{DbConn, StoreError};

/// Bumped by every change to `signing_keys`.
pub const KEYS_VERSION: &str = "keys_version";
/// Bumped by every change to `clients`.
pub const CLIENTS_VERSION: &str = "clients_version";
/// Bumped by every change to `users`.
pub const USERS_VERSION: &str = "users_version";

/// Increment a counter (inside the caller's transaction when there is one).
pub fn bump(conn: &mut DbConn, name: &str) -> Result<(), StoreError> {
    diesel::update(meta::table.find(name))
        .set(meta::value.eq(meta::value + 1))
        .execute(conn)?;
    Ok(())
}

/// The change counters servers poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// `keys_version`.
    pub keys: i64,
    /// `clients_version`.
    pub clients: i64,
    /// `authz_version` (roles and APIs).
    pub authz: i64,
}

/// The current change counters, in one query.
pub fn versions(conn: &mut DbConn) -> Result<Versions, StoreError> {
    let rows: Vec<(String, i64)> = meta::table.select((meta::name, meta::value)).load(conn)?;
    let get = |n: &str| {
        rows.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    Ok(Versions {
        keys: get(KEYS_VERSION),
        clients: get(CLIENTS_VERSION),
        authz: get(super::roles::AUTHZ_VERSION),
    })
}

/// Take or renew the lease `name` for `holder` until `until`, if it is free, expired, or already
/// ours. One conditional UPDATE, atomic on both backends.
pub fn try_lease(
    conn: &mut DbConn,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        leases::table
            .filter(leases::name.eq(name))
            .filter(leases::expires_at.le(now).or(leases::holder.eq(holder))),
    )
    .set((leases::holder.eq(holder), leases::expires_at.eq(until)))
    .execute(conn)?;
    Ok(n == 1)
}

/// The lease the rotation job runs under.
pub const ROTATION_LEASE: &str = "key_rotation";
/// The lease the prune job runs under.
pub const PRUNE_LEASE: &str = "prune";

/// Run `f` on `conn` if `holder` takes or renews the lease `name` until `until` ([`try_lease`]);
/// `None` when another holder has it. The lease is taken in its own statement, not in one
/// transaction with `f`: other processes see it held at once and skip their turn rather than
/// wait for `f`, and when `f` fails the lease still runs out at `until`.
pub fn leased<T, E>(
    conn: &mut DbConn,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<Option<T>, E>
where
    E: From<StoreError>,
{
    if !try_lease(conn, name, holder, now, until)? {
        return Ok(None);
    }
    f(conn).map(Some)
}

/// Run `f` in a transaction that first takes the write lock of the lease row `name`, so that
/// concurrent writers in other processes wait for each other on both backends (a row lock on
/// PostgreSQL, the database write lock on SQLite).
pub fn locked<T, E>(
    conn: &mut DbConn,
    name: &str,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<StoreError> + From<diesel::result::Error>,
{
    conn.transaction(|c| {
        let n = diesel::update(leases::table.find(name))
            .set(leases::holder.eq(leases::holder))
            .execute(c)
            .map_err(StoreError::from)?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!("lock row {name} is missing")).into());
        }
        f(c)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    #[test]
    fn leased_work_runs_for_one_holder_at_a_time() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        let run = |holder: &str, now: i64, fail: bool| {
            store.run_blocking(|c| {
                leased(c, PRUNE_LEASE, holder, now, now + 100, |_| {
                    if fail {
                        Err(StoreError::Conflict("work failed".into()))
                    } else {
                        Ok(holder.to_owned())
                    }
                })
            })
        };
        assert_eq!(run("a", 10, false)?, Some("a".to_owned()));
        assert_eq!(run("b", 20, false)?, None, "b waits for a's lease");
        assert!(run("a", 30, true).is_err(), "a renews, and its work fails");
        assert_eq!(
            run("b", 129, false)?,
            None,
            "a failure does not free the lease"
        );
        assert_eq!(run("b", 130, false)?, Some("b".to_owned()), "it runs out");
        // Another lease is another turn.
        let rotation = store.run_blocking(|c| {
            leased(
                c,
                ROTATION_LEASE,
                "a",
                140,
                200,
                |_| Ok::<_, StoreError>(()),
            )
        })?;
        assert_eq!(rotation, Some(()));
        Ok(())
    }
}
