//! `signing_keys` table. Private keys arrive here already sealed; this module never sees plaintext.

use diesel::prelude::*;

use super::schema::signing_keys;
use super::{DbConn, StoreError, meta};

/// One stored key.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct KeyRow {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// JWS algorithm name.
    pub alg: String,
    /// nonce ‖ AES-256-GCM ciphertext of the PKCS#8 document.
    pub private_key: Vec<u8>,
    /// Public JWK JSON.
    pub public_jwk: String,
    /// Public SPKI PEM.
    pub public_pem: String,
    /// Published from.
    pub created_at: i64,
    /// Signs from.
    pub activates_at: i64,
    /// Stops signing at.
    pub deactivates_at: Option<i64>,
    /// Leaves the ring (and the JWKS, if still there) at.
    pub retires_at: Option<i64>,
    /// Leaves the JWKS at; NULL: at `retires_at`.
    pub unpublishes_at: Option<i64>,
}

/// Every key, oldest first.
pub fn all(conn: &mut DbConn) -> Result<Vec<KeyRow>, StoreError> {
    Ok(signing_keys::table
        .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
        .select(KeyRow::as_select())
        .load(conn)?)
}

/// Whether any key exists (a database with keys needs its master key).
pub fn any(conn: &mut DbConn) -> Result<bool, StoreError> {
    let n: i64 = signing_keys::table.count().get_result(conn)?;
    Ok(n > 0)
}

/// Insert a key. Bumps `keys_version`.
pub fn insert(conn: &mut DbConn, row: &KeyRow) -> Result<(), StoreError> {
    diesel::insert_into(signing_keys::table)
        .values(row)
        .execute(conn)?;
    meta::bump(conn, meta::KEYS_VERSION)
}

/// A key's new schedule.
#[derive(Debug, Clone, Copy, AsChangeset)]
#[diesel(table_name = signing_keys, treat_none_as_null = true)]
pub struct KeySchedule {
    /// Signs from.
    pub activates_at: i64,
    /// Stops signing at.
    pub deactivates_at: Option<i64>,
    /// Leaves the JWKS at.
    pub unpublishes_at: Option<i64>,
    /// Leaves the ring at.
    pub retires_at: Option<i64>,
}

/// Set a key's schedule. Bumps `keys_version`.
pub fn set_schedule(conn: &mut DbConn, kid: &str, schedule: KeySchedule) -> Result<(), StoreError> {
    let n = diesel::update(signing_keys::table.find(kid))
        .set(schedule)
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    meta::bump(conn, meta::KEYS_VERSION)
}

/// Delete keys retired before `cutoff`. Returns how many.
pub fn delete_retired_before(conn: &mut DbConn, cutoff: i64) -> Result<usize, StoreError> {
    let n = diesel::delete(signing_keys::table.filter(signing_keys::retires_at.lt(cutoff)))
        .execute(conn)?;
    if n > 0 {
        meta::bump(conn, meta::KEYS_VERSION)?;
    }
    Ok(n)
}
