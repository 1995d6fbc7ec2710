//! What the prune job deletes besides retired keys (those go through `keys::KeyService::prune`,
//! under the `keys` lock): rows whose time is up, across tables.

use super::{DbConn, StoreError, clients, refresh_tokens, revocations, sessions};

/// How many rows [`expired`] removed or cleared, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Previous client secrets whose overlap ended.
    pub previous_secrets: usize,
    /// Refresh tokens past their family's end.
    pub refresh_tokens: usize,
    /// Sessions past their absolute end or idle since `session_idle_cutoff`.
    pub sessions: usize,
    /// Revocations that no longer concern any live access token.
    pub revocations: usize,
}

impl Expired {
    /// All rows together.
    pub fn total(&self) -> usize {
        self.previous_secrets + self.refresh_tokens + self.sessions + self.revocations
    }
}

/// Forget expired previous client secrets, and delete refresh tokens, sessions and revocations
/// whose time is up. Each is its own statement (and the secrets' with their `clients_version` bump, one
/// transaction): nothing here must change together, and a failure midway leaves the rest for
/// the next run.
pub fn expired(
    conn: &mut DbConn,
    now: i64,
    session_idle_cutoff: i64,
) -> Result<Expired, StoreError> {
    Ok(Expired {
        previous_secrets: clients::prune_previous_secrets(conn, now)?,
        refresh_tokens: refresh_tokens::prune(conn, now)?,
        sessions: sessions::prune(conn, now, session_idle_cutoff)?,
        revocations: revocations::prune(conn, now)?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::Store;
    use crate::store::refresh_tokens::RefreshRow;
    use crate::store::sessions::SessionRow;

    fn session(id: &str, last_seen_at: i64, expires_at: i64) -> SessionRow {
        SessionRow {
            id_hash: id.into(),
            user_id: "usr_1".into(),
            auth_time: 1,
            created_at: 1,
            last_seen_at,
            expires_at,
            amr: SessionRow::amr_of(&["pwd"]),
        }
    }

    fn token(id: &str, expires_at: i64, family_expires_at: i64) -> RefreshRow {
        RefreshRow {
            id_hash: id.into(),
            family_id: id.into(),
            client_id: "sgl_c".into(),
            user_id: "usr_1".into(),
            scope: "openid".into(),
            auth_time: 1,
            session_hash: None,
            created_at: 1,
            expires_at,
            family_expires_at,
            used_at: None,
            revoked: false,
        }
    }

    #[test]
    fn expired_rows_go_and_live_ones_stay() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        let (now, idle_cutoff) = (1000, 900);
        store.run_blocking(|c| {
            sessions::insert(c, &session("ended", 950, 1000))?;
            sessions::insert(c, &session("idle", 900, 5000))?;
            sessions::insert(c, &session("live", 950, 5000))?;
            refresh_tokens::insert(c, &token("old", 500, 500))?;
            refresh_tokens::insert(c, &token("live", 5000, 5000))
        })?;
        let first = store.run_blocking(|c| expired(c, now, idle_cutoff))?;
        assert_eq!(
            (first.sessions, first.refresh_tokens, first.previous_secrets),
            (2, 1, 0)
        );
        assert_eq!(first.total(), 3);
        store.run_blocking(|c| {
            assert!(sessions::find_live(c, "live", now, idle_cutoff)?.is_some());
            assert!(refresh_tokens::find(c, "live")?.is_some());
            Ok::<_, StoreError>(())
        })?;
        let again = store.run_blocking(|c| expired(c, now, idle_cutoff))?;
        assert_eq!(again, Expired::default(), "nothing left to prune");
        Ok(())
    }
}
