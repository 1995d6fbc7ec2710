//! `consents` table: which scopes a user has granted a (third-party) client.

use diesel::prelude::*;

use crate::domain::ScopeSet;

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

/// Record that `user_id` granted `asked` to `client_id`, adding to what they granted before
/// (read and written in one transaction).
pub fn grant_more(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    asked: &ScopeSet,
    now: i64,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        let before = granted(c, user_id, client_id)?.unwrap_or_default();
        let union = ScopeSet::from_scopes(
            ScopeSet::parse_param(&before)
                .unwrap_or_default()
                .iter()
                .chain(asked.iter())
                .cloned(),
        );
        grant(c, user_id, client_id, &union.to_param(), now)
    })
}

/// Record that `user_id` granted exactly `scope` to `client_id`.
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
