//! `revocations` table: what makes an access token inactive before it expires, shared by every
//! replica and kept across restarts. One row per revoked thing, keyed by kind:
//! `jti:<jti>` (one access token, RFC 7009), `sid:<session>` (a login session that ended:
//! every access token issued under it), `fid:<family>` (a refresh-token family that was revoked
//! or reused: every access token it produced). A row lives as long as a token it can concern
//! and is then pruned.

use diesel::prelude::*;

use super::schema::revocations;
use super::{DbConn, StoreError};

/// How long a session's or a family's revocation must be kept: the longest an access token
/// lives (`tokens.access_token_ttl` is at most 15 minutes) plus a minute of clock skew.
pub const COVERS_ACCESS_TOKENS: i64 = 15 * 60 + 60;

/// The `sid` an access token issued under the login session stored as `session_hash` carries:
/// derived from it, so the token names its session without revealing what the database keys
/// it by.
pub fn session_claim(session_hash: &str) -> String {
    crate::crypto::hash_id(&format!("session:{session_hash}"))
}

/// The `fid` an access token produced by the refresh-token family `family_id` carries (derived,
/// like [`session_claim`]).
pub fn family_claim(family_id: &str) -> String {
    crate::crypto::hash_id(&format!("family:{family_id}"))
}

/// The revocation id of one access token.
pub fn token_id(jti: &str) -> String {
    format!("jti:{jti}")
}

/// The revocation id of a login session, by the `sid` its access tokens carry
/// ([`session_claim`]).
pub fn session_id(sid: &str) -> String {
    format!("sid:{sid}")
}

/// The revocation id of a refresh-token family, by the `fid` its access tokens carry
/// ([`family_claim`]).
pub fn family_id(fid: &str) -> String {
    format!("fid:{fid}")
}

/// Record that `id` is revoked until `expires_at` (a later expiry wins if it is already there).
/// Safe when two replicas record the same id at once: the loser of the insert race updates.
pub fn insert(conn: &mut DbConn, id: &str, expires_at: i64) -> Result<(), StoreError> {
    let extend = |c: &mut DbConn| {
        diesel::update(
            revocations::table
                .find(id)
                .filter(revocations::expires_at.lt(expires_at)),
        )
        .set(revocations::expires_at.eq(expires_at))
        .execute(c)
    };
    let exists: i64 = revocations::table.find(id).count().get_result(conn)?;
    if exists > 0 {
        extend(conn)?;
        return Ok(());
    }
    // In its own (nested: a savepoint) transaction, so a lost race does not abort a caller's
    // transaction on PostgreSQL.
    let inserted = conn.transaction(|c| {
        diesel::insert_into(revocations::table)
            .values((
                revocations::id.eq(id),
                revocations::expires_at.eq(expires_at),
            ))
            .execute(c)
            .map_err(StoreError::from)
    });
    match inserted {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict(_)) => {
            extend(conn)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether any of `ids` is revoked at `now`.
pub fn any(conn: &mut DbConn, ids: &[String], now: i64) -> Result<bool, StoreError> {
    if ids.is_empty() {
        return Ok(false);
    }
    let found: i64 = revocations::table
        .filter(revocations::id.eq_any(ids))
        .filter(revocations::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}

/// Delete rows that no longer concern any token. Returns how many.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(revocations::table.filter(revocations::expires_at.le(now))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn store(dir: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
        let url = format!("sqlite://{}", dir.join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        Ok(store)
    }

    #[test]
    fn a_revocation_holds_until_it_expires_and_a_later_expiry_wins() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store(dir.path())?;
        store.run_blocking(|c| {
            insert(c, "jti:a", 100)?;
            insert(c, "jti:a", 50)?;
            assert!(any(c, &["jti:a".into()], 99)?, "the later expiry stays");
            insert(c, "jti:a", 200)?;
            assert!(any(c, &["x".into(), "jti:a".into()], 150)?);
            assert!(!any(c, &["jti:a".into()], 200)?, "expired");
            assert!(!any(c, &[], 0)?);
            assert_eq!(prune(c, 200)?, 1);
            assert!(!any(c, &["jti:a".into()], 0)?, "pruned");
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }
}
