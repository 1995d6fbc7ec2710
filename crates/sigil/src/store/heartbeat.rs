//! The write probe behind `/readyz` (`heartbeat`, one row): a database that answers reads but
//! commits no write (SQLite on a full disk, a read-only file or volume, a PostgreSQL standby)
//! must not be reported ready, and `SELECT 1` cannot tell. [`WriteProbe`] rewrites the row at
//! most once per [`PROBE_EVERY`] per process and hands the outcome to every `/readyz` in
//! between, so readiness under load is not a write per request.

use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::schema::heartbeat;
use super::{DbConn, Store, StoreError};

/// How long one probe's outcome answers for.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The id of the one row.
const ROW: i32 = 1;

/// Rewrite the heartbeat row with `at_ms` (Unix milliseconds): one autocommitted UPDATE, or
/// the INSERT of the row if someone deleted it.
pub fn beat(conn: &mut DbConn, at_ms: i64) -> Result<(), StoreError> {
    let updated = diesel::update(heartbeat::table.find(ROW))
        .set(heartbeat::at.eq(at_ms))
        .execute(conn)?;
    if updated == 0 {
        match diesel::insert_into(heartbeat::table)
            .values((heartbeat::id.eq(ROW), heartbeat::at.eq(at_ms)))
            .execute(conn)
            .map_err(StoreError::from)
        {
            // Another process put it back first: its write committed, and so can ours.
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What [`WriteProbe::writable`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writable {
    /// The last probe's outcome, from within [`PROBE_EVERY`].
    Cached(bool),
    /// A probe made for this call (and the calls that waited for it).
    Probed(bool),
}

impl Writable {
    /// Whether the database committed the last write probe.
    pub fn ok(self) -> bool {
        match self {
            Writable::Cached(ok) | Writable::Probed(ok) => ok,
        }
    }
}

/// The process's write probe: the last outcome and when it was found. Callers that arrive
/// while a probe runs wait for it (one write, whatever the number of callers).
#[derive(Debug, Default)]
pub struct WriteProbe {
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl WriteProbe {
    /// Whether `store` commits writes: the outcome of the last probe if it is younger than
    /// [`PROBE_EVERY`], else of a new one ([`beat`] with `at_ms`) given at most `limit`. A
    /// change of outcome is logged once (a warning with the cause, then when writes commit
    /// again).
    pub async fn writable(&self, store: &Store, limit: Duration, at_ms: i64) -> Writable {
        let mut last = self.last.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < PROBE_EVERY
        {
            return Writable::Cached(ok);
        }
        let outcome = match tokio::time::timeout(limit, store.run(move |c| beat(c, at_ms))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(super::error_chain(&e)),
            Err(_) => Err(format!(
                "the write probe did not commit within {} ms",
                limit.as_millis()
            )),
        };
        let ok = outcome.is_ok();
        let was = last.map(|(_, ok)| ok);
        match (&outcome, was) {
            (Err(e), Some(true) | None) => {
                tracing::warn!(error = %e, "the database does not commit writes; /readyz fails until it does")
            }
            (Ok(()), Some(false)) => tracing::info!("the database commits writes again"),
            _ => {}
        }
        *last = Some((Instant::now(), ok));
        Writable::Probed(ok)
    }
}
