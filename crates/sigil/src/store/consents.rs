//! `consents` table: which scopes a user has granted a (third-party) client.

use diesel::prelude::*;

use super::schema::consents;
use super::{DbConn, StoreError};

/// The scopes `user_id` granted `client_id` so far (space-delimited), if any.
pub fn granted(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(consents::scope)
        .first(conn)
        .optional()?)
}

/// Record that `user_id` granted `scope` (the union with earlier grants) to `client_id`.
pub fn grant(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        let n = diesel::update(consents::table.find((user_id, client_id)))
            .set((consents::scope.eq(scope), consents::granted_at.eq(now)))
            .execute(c)?;
        if n == 0 {
            diesel::insert_into(consents::table)
                .values((
                    consents::user_id.eq(user_id),
                    consents::client_id.eq(client_id),
                    consents::scope.eq(scope),
                    consents::granted_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}
