//! `refresh_tokens` table. The rotation step is one conditional UPDATE, so exactly one of any
//! number of concurrent uses (in any process) wins.

use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::{DbConn, StoreError};

/// One refresh token.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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

/// Revoke a whole family. Returns how many tokens.
pub fn revoke_family(conn: &mut DbConn, family_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
            .set(refresh_tokens::revoked.eq(true))
            .execute(conn)?,
    )
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
