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
    /// Unpublished from.
    pub retires_at: Option<i64>,
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

/// Set a key's schedule. Bumps `keys_version`.
pub fn set_schedule(
    conn: &mut DbConn,
    kid: &str,
    activates_at: i64,
    deactivates_at: Option<i64>,
    retires_at: Option<i64>,
) -> Result<(), StoreError> {
    let n = diesel::update(signing_keys::table.find(kid))
        .set((
            signing_keys::activates_at.eq(activates_at),
            signing_keys::deactivates_at.eq(deactivates_at),
            signing_keys::retires_at.eq(retires_at),
        ))
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
