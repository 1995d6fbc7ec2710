//! `shared_state` and `shared_rate_limits`: the shared cache's tables on PostgreSQL (used by
//! `cache::postgres` when no Redis is configured). SQLite never uses them: a SQLite server keeps
//! this state in process, and its migration of the same name creates nothing.
//!
//! Each function is one statement, so replicas racing on one key serialize on its row (or its
//! primary-key entry) and exactly one wins: `INSERT … ON CONFLICT … DO UPDATE … WHERE` for
//! insert-if-absent and counters, `DELETE … RETURNING` for take-once, and the GCRA update in
//! one upsert. Every read ignores rows whose expiry has passed; [`prune`] deletes them.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};

use super::{DbConn, StoreError};

fn pg(conn: &mut DbConn) -> Result<&mut diesel::PgConnection, StoreError> {
    match conn {
        DbConn::Pg(c) => Ok(c),
        DbConn::Sqlite(_) => Err(StoreError::Query(diesel::result::Error::QueryBuilderError(
            "shared state in the database is PostgreSQL's; SQLite keeps it in process".into(),
        ))),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Nullable<Binary>)]
    value: Option<Vec<u8>>,
    #[diesel(sql_type = BigInt)]
    expires_at: i64,
}

#[derive(QueryableByName)]
struct Gcra {
    #[diesel(sql_type = BigInt)]
    tat: i64,
    #[diesel(sql_type = Bool)]
    allowed: bool,
}

/// Record `key` until `expires_at` unless a live row holds it. True for the one caller that
/// recorded it.
pub fn insert_if_absent(
    conn: &mut DbConn,
    key: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let row = diesel::sql_query(
        "INSERT INTO shared_state AS s (key, value, count, expires_at) VALUES ($1, NULL, 0, $2) \
         ON CONFLICT (key) DO UPDATE SET value = NULL, count = 0, expires_at = EXCLUDED.expires_at \
         WHERE s.expires_at <= $3 \
         RETURNING s.count",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(expires_at)
    .bind::<BigInt, _>(now)
    .get_result::<Count>(pg(conn)?)
    .optional()?;
    Ok(row.is_some())
}

/// Store `value` under `key` until `expires_at`, replacing any row.
pub fn put(conn: &mut DbConn, key: &str, value: &[u8], expires_at: i64) -> Result<(), StoreError> {
    diesel::sql_query(
        "INSERT INTO shared_state (key, value, count, expires_at) VALUES ($1, $2, 0, $3) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, count = 0, \
         expires_at = EXCLUDED.expires_at",
    )
    .bind::<Text, _>(key)
    .bind::<Binary, _>(value)
    .bind::<BigInt, _>(expires_at)
    .execute(pg(conn)?)?;
    Ok(())
}

/// Delete the row of `key` and return its value if it was live (of concurrent takes, one gets
/// the row; the others find none).
pub fn take(conn: &mut DbConn, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let row =
        diesel::sql_query("DELETE FROM shared_state WHERE key = $1 RETURNING value, expires_at")
            .bind::<Text, _>(key)
            .get_result::<Stored>(pg(conn)?)
            .optional()?;
    Ok(row.filter(|r| r.expires_at > now).and_then(|r| r.value))
}

/// The live value of `key`.
pub fn get(conn: &mut DbConn, key: &str, now: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let row = diesel::sql_query(
        "SELECT value, expires_at FROM shared_state WHERE key = $1 AND expires_at > $2",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(now)
    .get_result::<Stored>(pg(conn)?)
    .optional()?;
    Ok(row.and_then(|r| r.value))
}

/// Count one event under `key` in the window ending at `window_end` (a live row keeps its
/// window; an expired one starts a new window at 1). Returns the count with this event.
pub fn incr(conn: &mut DbConn, key: &str, window_end: i64, now: i64) -> Result<u64, StoreError> {
    let row = diesel::sql_query(
        "INSERT INTO shared_state AS s (key, value, count, expires_at) VALUES ($1, NULL, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
         count = CASE WHEN s.expires_at > $3 THEN s.count + 1 ELSE 1 END, \
         value = CASE WHEN s.expires_at > $3 THEN s.value END, \
         expires_at = CASE WHEN s.expires_at > $3 THEN s.expires_at ELSE EXCLUDED.expires_at END \
         RETURNING s.count",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(window_end)
    .bind::<BigInt, _>(now)
    .get_result::<Count>(pg(conn)?)?;
    Ok(u64::try_from(row.count).unwrap_or(0))
}

/// One GCRA decision for `key` at `now_us` with emission interval `t_us` and tolerance
/// `tau_us` (all microseconds): the request passes when `tat - tau <= now`, moving `tat` to
/// `max(tat, now) + t`; a refusal leaves `tat` as it was. Every `SET` expression reads the row
/// as it was before the update, so `allowed` records this decision. Returns (TAT after, allowed).
pub fn rate_limit(
    conn: &mut DbConn,
    key: &str,
    now_us: i64,
    t_us: i64,
    tau_us: i64,
) -> Result<(i64, bool), StoreError> {
    let row = diesel::sql_query(
        "INSERT INTO shared_rate_limits AS r (key, tat, allowed) VALUES ($1, $2 + $3, TRUE) \
         ON CONFLICT (key) DO UPDATE SET \
         allowed = r.tat - $4 <= $2, \
         tat = CASE WHEN r.tat - $4 <= $2 THEN GREATEST(r.tat, $2) + $3 ELSE r.tat END \
         RETURNING r.tat, r.allowed",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(now_us)
    .bind::<BigInt, _>(t_us)
    .bind::<BigInt, _>(tau_us)
    .get_result::<Gcra>(pg(conn)?)?;
    Ok((row.tat, row.allowed))
}

/// Delete expired rows: entries at or past their expiry, rate-limit states whose TAT has passed
/// (the same as no state). Returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    let c = pg(conn)?;
    let entries = diesel::sql_query("DELETE FROM shared_state WHERE expires_at <= $1")
        .bind::<BigInt, _>(now)
        .execute(c)?;
    let limits = diesel::sql_query("DELETE FROM shared_rate_limits WHERE tat <= $1")
        .bind::<BigInt, _>(now.saturating_mul(1_000_000))
        .execute(c)?;
    Ok(entries + limits)
}
