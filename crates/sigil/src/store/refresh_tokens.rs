//! `refresh_tokens` table. Rotation ([`rotate`]) starts with a conditional UPDATE, so exactly one
//! of any number of concurrent uses (in any process) wins. On PostgreSQL the common case, the
//! first use of a live token, is one statement ([`first_use_pg`]); everything else (a repeat, reuse,
//! an invalid token) goes through one transaction that decides which it is.

use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::{DbConn, StoreError, audit, sessions};
use crate::crypto::MasterKey;
use crate::domain::user::User;

/// One refresh token.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    /// SHA-256 of the token id.
    pub id_hash: String,
    /// Rotation family (the first token's id hash).
    pub family_id: String,
    /// Client.
    pub client_id: String,
    /// User.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// Original authentication time.
    pub auth_time: i64,
    /// Session the family is bound to (none with offline_access).
    pub session_hash: Option<String>,
    /// Issued.
    pub created_at: i64,
    /// Expiry of this token.
    pub expires_at: i64,
    /// Expiry of the whole family.
    pub family_expires_at: i64,
    /// When it was exchanged.
    pub used_at: Option<i64>,
    /// Revoked (family reuse, /revoke, user disabled).
    pub revoked: bool,
}

/// Insert a token (ignores a duplicate id: the successor may be inserted twice in a race). The
/// insert runs in a savepoint so a duplicate does not abort the caller's PostgreSQL transaction.
pub fn insert(conn: &mut DbConn, row: &RefreshRow) -> Result<(), StoreError> {
    match conn.transaction(|c| {
        diesel::insert_into(refresh_tokens::table)
            .values(row)
            .execute(c)
    }) {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Find by id hash.
pub fn find(conn: &mut DbConn, id_hash: &str) -> Result<Option<RefreshRow>, StoreError> {
    Ok(refresh_tokens::table
        .find(id_hash)
        .select(RefreshRow::as_select())
        .first(conn)
        .optional()?)
}

/// Mark a token used if it is not yet: true for the one caller that did.
pub fn mark_used(conn: &mut DbConn, id_hash: &str, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id_hash)
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked.eq(false)),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revoke a whole family, and with it (in the same transaction) every access token it produced
/// (`revocations`, `fid:`). Returns how many refresh tokens.
pub fn revoke_family(conn: &mut DbConn, family_id: &str, now: i64) -> Result<usize, StoreError> {
    conn.transaction(|c| {
        let n =
            diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
                .set(refresh_tokens::revoked.eq(true))
                .execute(c)?;
        super::revocations::insert(
            c,
            &super::revocations::family_id(&super::revocations::family_claim(family_id)),
            now + super::revocations::COVERS_ACCESS_TOKENS,
        )?;
        Ok(n)
    })
}

/// Revoke the whole family of the token stored as `id_hash` (RFC 7009 revocation of a refresh
/// token), if it exists. Returns how many tokens.
pub fn revoke_family_of(conn: &mut DbConn, id_hash: &str, now: i64) -> Result<usize, StoreError> {
    conn.transaction(|c| match find(c, id_hash)? {
        Some(row) => revoke_family(c, &row.family_id, now),
        None => Ok(0),
    })
}

/// Revoke every token of a user.
pub fn revoke_user(conn: &mut DbConn, user_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::update(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user_id)))
            .set(refresh_tokens::revoked.eq(true))
            .execute(conn)?,
    )
}

/// Delete expired tokens.
pub fn prune(conn: &mut DbConn, now: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_expires_at.le(now)))
            .execute(conn)?,
    )
}

/// One presentation of a refresh token, as [`rotate`] needs it.
#[derive(Debug)]
pub struct RotateRequest<'a> {
    /// Hash of the presented token's id.
    pub parent_hash: &'a str,
    /// Hash of its successor's id (a keyed hash of the parent's, so always the same).
    pub successor_hash: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// `tokens.refresh_reuse_window` in seconds (0: no window).
    pub window: i64,
    /// `tokens.refresh_token_idle` in seconds.
    pub idle: i64,
    /// Sessions idle since before this are over.
    pub session_idle_cutoff: i64,
    /// The request gives up at this instant: past it the transaction rolls back rather than
    /// commit work whose answer nobody receives (a late rotation would turn the client's retry
    /// into "reuse").
    pub deadline: std::time::Instant,
}

/// Refuse to commit once the request's deadline passed (the transaction rolls back).
fn before(deadline: std::time::Instant) -> Result<(), StoreError> {
    if std::time::Instant::now() >= deadline {
        return Err(StoreError::Unavailable(
            "the request's deadline passed before the rotation could commit".into(),
        ));
    }
    Ok(())
}

/// What presenting a refresh token came to.
#[derive(Debug)]
pub enum Rotation {
    /// The successor to hand out (the first use, or a repeat while the successor is unused).
    Successor(RefreshRow),
    /// Reuse: the whole family was revoked, and the event audited in the same transaction.
    Reused,
    /// Unknown, revoked or expired token.
    Invalid,
    /// The login session the family was bound to has ended.
    SessionEnded,
}

/// [`rotate`], and with a successor its user (`None` once deleted), on one connection. On
/// PostgreSQL the first use of a live token, the common case, is one call ([`first_use_pg`]);
/// anything else takes [`rotate`]'s transaction.
pub fn rotate_with_user(
    conn: &mut DbConn,
    master: &MasterKey,
    req: &RotateRequest<'_>,
) -> Result<(Rotation, Option<User>), StoreError> {
    let fast = match conn {
        DbConn::Pg(pg) => first_use_pg(pg, req)?,
        DbConn::Sqlite(_) => None,
    };
    let rotation = match fast {
        Some(successor) => Rotation::Successor(successor),
        None => rotate(conn, master, req)?,
    };
    let user = match &rotation {
        Rotation::Successor(s) if !s.revoked => super::users::find_by_id(conn, &s.user_id)?,
        _ => None,
    };
    Ok((rotation, user))
}

/// Rotate a refresh token: one transaction whose first statement marks the parent used if it is
/// not yet (the one winner across processes; on SQLite the transaction holds the write lock from
/// there, on PostgreSQL the row lock queues concurrent uses). The winner stores the successor. A
/// loser gets that same successor only within `window` of the first use and only while the
/// successor is itself unused; otherwise it is reuse: the family is revoked and the event appended
/// to the audit trail before the transaction commits.
pub fn rotate(
    conn: &mut DbConn,
    master: &MasterKey,
    req: &RotateRequest<'_>,
) -> Result<Rotation, StoreError> {
    conn.transaction::<_, StoreError, _>(|c| {
        let now = req.now;
        let won = mark_used(c, req.parent_hash, now)?;
        let Some(row) = find(c, req.parent_hash)? else {
            return Ok(Rotation::Invalid);
        };
        if row.revoked || now >= row.expires_at || now >= row.family_expires_at {
            return Ok(Rotation::Invalid);
        }
        if let Some(session) = &row.session_hash
            && sessions::find_live(c, session, now, req.session_idle_cutoff)?.is_none()
        {
            return Ok(Rotation::SessionEnded);
        }
        let stored = find(c, req.successor_hash)?;
        if !won {
            let within = req.window > 0 && row.used_at.is_some_and(|u| now - u <= req.window);
            let successor_unused = stored
                .as_ref()
                .is_none_or(|s| s.used_at.is_none() && !s.revoked);
            if !(within && successor_unused) {
                revoke_family(c, &row.family_id, now)?;
                audit::append(
                    c,
                    master,
                    audit::NewEvent {
                        at: now,
                        kind: "refresh_token.reuse",
                        actor: format!("client:{}", row.client_id),
                        subject: Some(row.user_id.clone()),
                        client_id: Some(row.client_id.clone()),
                        details: serde_json::json!({
                            "family": row.family_id,
                            "first_used_at": row.used_at,
                            "successor_used": !successor_unused,
                            "family_revoked": true,
                        }),
                    },
                )?;
                before(req.deadline)?;
                return Ok(Rotation::Reused);
            }
        }
        if let Some(existing) = stored {
            // A repeat within the window gets the successor as stored by the first use.
            return Ok(Rotation::Successor(existing));
        }
        let successor = RefreshRow {
            id_hash: req.successor_hash.to_owned(),
            family_id: row.family_id.clone(),
            client_id: row.client_id.clone(),
            user_id: row.user_id.clone(),
            scope: row.scope.clone(),
            auth_time: row.auth_time,
            session_hash: row.session_hash.clone(),
            created_at: now,
            expires_at: (now + req.idle).min(row.family_expires_at),
            family_expires_at: row.family_expires_at,
            used_at: None,
            revoked: false,
        };
        insert(c, &successor)?;
        before(req.deadline)?;
        Ok(Rotation::Successor(
            find(c, req.successor_hash)?.unwrap_or(successor),
        ))
    })
}

/// The first use of a live token on PostgreSQL, in one call of the `sigil_refresh_first_use`
/// function (migration `2026-12-16-000001_refresh_first_use`; one round trip, committed on its
/// own, its plan kept per connection): touch the live session, mark the parent used if it is
/// unused, unrevoked, unexpired and its session (if any) live, and insert its successor. `None` when the parent was not all
/// of that, or the statement ran past the request's deadline by the database's clock (so a
/// statement delayed in the network commits nothing): [`rotate`]'s transaction then decides
/// what the presentation is, exactly as for any repeat.
///
/// Concurrent uses queue on the parent's row lock; PostgreSQL re-checks `used_at IS NULL` on the
/// row as committed by the winner, so every loser matches nothing.
pub fn first_use_pg(
    conn: &mut diesel::PgConnection,
    req: &RotateRequest<'_>,
) -> Result<Option<RefreshRow>, StoreError> {
    use diesel::sql_types::{BigInt, Text};
    let left = req
        .deadline
        .saturating_duration_since(std::time::Instant::now());
    let deadline_ms = (std::time::SystemTime::now() + left)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut rows: Vec<RefreshRow> = diesel::sql_query(
        "SELECT id_hash, family_id, client_id, user_id, scope, auth_time, session_hash, \
           created_at, expires_at, family_expires_at, used_at, revoked \
         FROM sigil_refresh_first_use($1, $2, $3, $4, $5, $6)",
    )
    .bind::<Text, _>(req.parent_hash)
    .bind::<BigInt, _>(req.now)
    .bind::<BigInt, _>(req.session_idle_cutoff)
    .bind::<Text, _>(req.successor_hash)
    .bind::<BigInt, _>(deadline_ms)
    .bind::<BigInt, _>(req.idle)
    .load(conn)?;
    Ok(rows.pop())
}
