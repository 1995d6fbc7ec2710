//! `sessions` table: browser sessions at Sigil, keyed by the SHA-256 of the cookie value.

use diesel::prelude::*;

use super::schema::sessions;
use super::{DbConn, StoreError};

/// One session.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// SHA-256 (base64url) of the cookie value.
    pub id_hash: String,
    /// The user.
    pub user_id: String,
    /// Last password entry.
    pub auth_time: i64,
    /// Created.
    pub created_at: i64,
    /// Last use.
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// The methods the sign-in used (OIDC `amr`), a JSON list: `["pwd"]`, `["pwd","otp"]`.
    pub amr: String,
}

impl SessionRow {
    /// The sign-in methods as a list (`["pwd"]` for a row that cannot be read as one).
    pub fn methods(&self) -> Vec<String> {
        super::from_json_list::<String>(&self.amr, "sessions.amr")
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| vec!["pwd".to_owned()])
    }

    /// The `amr` column's text for `methods`.
    pub fn amr_of(methods: &[&str]) -> String {
        super::to_json_list(methods)
    }
}

/// Insert a session.
pub fn insert(conn: &mut DbConn, row: &SessionRow) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Find a session that is neither past its absolute end nor idle since `idle_cutoff`; touches
/// `last_seen_at`.
pub fn find_live(
    conn: &mut DbConn,
    id_hash: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Option<SessionRow>, StoreError> {
    let row = sessions::table
        .find(id_hash)
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(idle_cutoff))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?;
    if row.is_some() {
        diesel::update(sessions::table.find(id_hash))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(row)
}

/// A live session ([`find_live`]) together with its user, in one call.
pub fn find_live_with_user(
    conn: &mut DbConn,
    id_hash: &str,
    now: i64,
    idle_cutoff: i64,
) -> Result<Option<(SessionRow, crate::domain::user::User)>, StoreError> {
    let Some(row) = find_live(conn, id_hash, now, idle_cutoff)? else {
        return Ok(None);
    };
    let user = super::users::find_by_id(conn, &row.user_id)?;
    Ok(user.map(|u| (row, u)))
}

/// Start `row`, ending the session `previous_hash` (the browser's earlier one) in the same
/// transaction: a sign-in never leaves two sessions behind one cookie.
pub fn replace(
    conn: &mut DbConn,
    previous_hash: Option<&str>,
    row: &SessionRow,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        if let Some(prev) = previous_hash {
            delete(c, prev)?;
        }
        insert(c, row)
    })
}

/// End one session.
pub fn delete(conn: &mut DbConn, id_hash: &str) -> Result<(), StoreError> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// End a session (sign-out) and, in the same transaction, record `revocation` (the session's
/// revocation id) until `until`, so the access tokens issued under it stop being active.
pub fn end(
    conn: &mut DbConn,
    id_hash: &str,
    revocation: &str,
    until: i64,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        delete(c, id_hash)?;
        super::revocations::insert(c, revocation, until)
    })
}

/// End every session of a user (disable, delete, password reset).
pub fn delete_for_user(conn: &mut DbConn, user_id: &str) -> Result<usize, StoreError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}

/// Delete sessions past their absolute end or idle since `idle_cutoff`.
pub fn prune(conn: &mut DbConn, now: i64, idle_cutoff: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(idle_cutoff)),
        ),
    )
    .execute(conn)?)
}
