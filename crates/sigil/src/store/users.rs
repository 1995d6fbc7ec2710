//! `users` table. Changes that end what a user holds (disable, password reset, delete) are each one
//! transaction: sessions and refresh tokens end together with the change, or nothing happens.

use diesel::prelude::*;

use super::schema::users;
use super::{DbConn, StoreError, from_json_list, meta, to_json_list};
use crate::domain::Name;
use crate::domain::user::{Email, User, Username};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    username: String,
    email: Option<String>,
    email_verified: bool,
    password_hash: String,
    disabled: bool,
    roles: String,
    created_at: i64,
    updated_at: i64,
    password_changed_at: i64,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        UserRow {
            id: u.id.clone(),
            username: u.username.as_str().to_owned(),
            email: u.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: u.email_verified,
            password_hash: u.password_hash.clone(),
            disabled: u.disabled,
            roles: to_json_list(&u.roles),
            created_at: u.created_at,
            updated_at: u.updated_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<User, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", r.id));
        Ok(User {
            username: Username::parse(&r.username).map_err(|_| corrupt("username"))?,
            email: r
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|_| corrupt("email"))?,
            email_verified: r.email_verified,
            roles: from_json_list::<Name>(&r.roles, "roles")?,
            id: r.id,
            password_hash: r.password_hash,
            disabled: r.disabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
            password_changed_at: r.password_changed_at,
        })
    }
}

/// Insert a user; a taken username is `Conflict`.
pub fn insert(conn: &mut DbConn, user: &User) -> Result<(), StoreError> {
    diesel::insert_into(users::table)
        .values(UserRow::from(user))
        .execute(conn)?;
    meta::bump(conn, meta::USERS_VERSION)
}

/// Find by username.
pub fn find_by_username(conn: &mut DbConn, username: &str) -> Result<Option<User>, StoreError> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

/// One page of users by username: at most `limit`, after `after` (exclusive). Reads only that
/// page, however many users there are (the username index orders it).
pub fn page(conn: &mut DbConn, after: Option<&str>, limit: i64) -> Result<Vec<User>, StoreError> {
    let mut q = users::table
        .order(users::username.asc())
        .select(UserRow::as_select())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(users::username.gt(a.to_owned()));
    }
    q.load(conn)?.into_iter().map(User::try_from).collect()
}

/// Every user, by username.
pub fn list(conn: &mut DbConn) -> Result<Vec<User>, StoreError> {
    users::table
        .order(users::username.asc())
        .select(UserRow::as_select())
        .load(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}

/// End every session of the user named `username` and revoke their refresh tokens.
fn end_sessions(conn: &mut DbConn, username: &str) -> Result<usize, StoreError> {
    let id: Option<String> = users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(conn)
        .optional()?;
    match id {
        Some(id) => {
            super::refresh_tokens::revoke_user(conn, &id)?;
            super::sessions::delete_for_user(conn, &id)
        }
        None => Ok(0),
    }
}

/// Take the write lock on the user's row before a transaction reads anything: on SQLite a
/// transaction that reads first and then writes fails at once ("database is locked", no busy
/// wait) when another connection wrote in between, which concurrent admin requests do; on
/// PostgreSQL it holds the row against a concurrent change. False when no such user.
fn lock_user(conn: &mut DbConn, username: &str) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set(users::updated_at.eq(users::updated_at))
        .execute(conn)?;
    Ok(n > 0)
}

/// Enable or disable, in one transaction: disabling ends the user's sessions and revokes their
/// refresh tokens together with setting the flag, so a failure midway changes nothing.
/// `NotFound` when no such user.
pub fn set_disabled(
    conn: &mut DbConn,
    username: &str,
    disabled: bool,
    now: i64,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        // The write comes first (see `lock_user`).
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
            .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            end_sessions(c, username)?;
        }
        meta::bump(c, meta::USERS_VERSION)
    })
}

/// Replace the roles.
pub fn set_roles(
    conn: &mut DbConn,
    username: &str,
    roles: &[Name],
    now: i64,
) -> Result<(), StoreError> {
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::roles.eq(to_json_list(roles)),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    meta::bump(conn, meta::USERS_VERSION)
}

/// Reset the password, in one transaction: the user's sessions end, their refresh tokens are
/// revoked and the hash and `password_changed_at` change together (tokens issued before it are
/// inactive), so a failure midway changes nothing. `NotFound` when no such user.
pub fn set_password(
    conn: &mut DbConn,
    username: &str,
    hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.transaction(|c| {
        // The write comes first (see `lock_user`).
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set((
                users::password_hash.eq(hash),
                users::updated_at.eq(now),
                users::password_changed_at.eq(now),
            ))
            .execute(c)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        end_sessions(c, username)?;
        meta::bump(c, meta::USERS_VERSION)
    })
}

/// Delete a user with their sessions, refresh tokens and second factor, in one transaction.
/// False when no such user.
pub fn delete(conn: &mut DbConn, username: &str) -> Result<bool, StoreError> {
    conn.transaction(|c| {
        if !lock_user(c, username)? {
            return Ok(false);
        }
        end_sessions(c, username)?;
        let id: Option<String> = users::table
            .filter(users::username.eq(username))
            .select(users::id)
            .first(c)
            .optional()?;
        if let Some(id) = &id {
            super::mfa::remove(c, id)?;
        }
        let n = diesel::delete(users::table.filter(users::username.eq(username))).execute(c)?;
        if n > 0 {
            meta::bump(c, meta::USERS_VERSION)?;
        }
        Ok(n > 0)
    })
}

/// A change to a user's profile (`users update`); `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChange {
    /// New email address (`Some(None)` removes it).
    pub email: Option<Option<Email>>,
    /// New verification state of the address.
    pub email_verified: Option<bool>,
}

/// Apply a profile change. A new email address is unverified unless the change says otherwise.
/// Returns the updated user; `NotFound` when no such user.
pub fn update_profile(
    conn: &mut DbConn,
    username: &str,
    change: &ProfileChange,
    now: i64,
) -> Result<User, StoreError> {
    conn.transaction(|conn| {
        let mut user = find_by_username(conn, username)?.ok_or(StoreError::NotFound)?;
        if let Some(email) = &change.email
            && *email != user.email
        {
            user.email = email.clone();
            user.email_verified = false;
        }
        if let Some(v) = change.email_verified {
            user.email_verified = v;
        }
        user.email_verified &= user.email.is_some();
        user.updated_at = now;
        diesel::update(users::table.find(&user.id))
            .set((
                users::email.eq(user.email.as_ref().map(Email::as_str)),
                users::email_verified.eq(user.email_verified),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        meta::bump(conn, meta::USERS_VERSION)?;
        Ok(user)
    })
}

/// Find by id (the `sub`).
pub fn find_by_id(conn: &mut DbConn, id: &str) -> Result<Option<User>, StoreError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .map(User::try_from)
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::store::refresh_tokens::{self, RefreshRow};
    use crate::store::sessions::{self as session_store, SessionRow};
    use crate::store::{Store, StoreError};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A migrated SQLite store holding user `ada` with one session and one refresh token.
    fn store_with_ada(dir: &std::path::Path) -> Result<Store, Box<dyn std::error::Error>> {
        let url = format!("sqlite://{}", dir.join("sigil.db").display());
        let store = Store::open(&url, 1, Duration::from_secs(5), Duration::from_secs(5))?;
        store.migrate()?;
        let user = User {
            id: "usr_ada".into(),
            username: Username::parse("ada")?,
            email: None,
            email_verified: false,
            password_hash: "old-hash".into(),
            disabled: false,
            roles: vec![],
            created_at: 1,
            updated_at: 1,
            password_changed_at: 1,
        };
        store.run_blocking(|c| {
            insert(c, &user)?;
            session_store::insert(
                c,
                &SessionRow {
                    id_hash: "s1".into(),
                    user_id: "usr_ada".into(),
                    auth_time: 1,
                    created_at: 1,
                    last_seen_at: 1,
                    expires_at: i64::MAX,
                    amr: SessionRow::amr_of(&["pwd"]),
                },
            )?;
            refresh_tokens::insert(
                c,
                &RefreshRow {
                    id_hash: "r1".into(),
                    family_id: "r1".into(),
                    client_id: "sgl_x".into(),
                    user_id: "usr_ada".into(),
                    scope: "openid".into(),
                    auth_time: 1,
                    session_hash: None,
                    created_at: 1,
                    expires_at: i64::MAX,
                    family_expires_at: i64::MAX,
                    used_at: None,
                    revoked: false,
                },
            )
        })?;
        Ok(store)
    }

    /// Make the last step of every later change fail (the bump of the change counters, after
    /// the user row, sessions and tokens were written), as a lost connection would midway.
    fn break_user_updates(store: &Store) -> Result<(), StoreError> {
        store.run_blocking(|c| {
            c.batch_execute(
                "CREATE TRIGGER fail_meta BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .map_err(StoreError::from)
        })
    }

    fn untouched(store: &Store) -> Result<bool, StoreError> {
        store.run_blocking(|c| {
            let session = session_store::find_live(c, "s1", 2, 0)?.is_some();
            let token = refresh_tokens::find(c, "r1")?.is_some_and(|r| !r.revoked);
            let user = find_by_id(c, "usr_ada")?;
            Ok(session
                && token
                && user.is_some_and(|u| u.password_hash == "old-hash" && !u.disabled))
        })
    }

    #[test]
    fn a_password_reset_that_fails_midway_changes_nothing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store_with_ada(dir.path())?;
        break_user_updates(&store)?;
        assert!(
            store
                .run_blocking(|c| set_password(c, "ada", "new-hash", 5))
                .is_err()
        );
        assert!(
            untouched(&store)?,
            "sessions and tokens survive a failed reset"
        );
        Ok(())
    }

    #[test]
    fn disabling_that_fails_midway_changes_nothing() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store_with_ada(dir.path())?;
        break_user_updates(&store)?;
        assert!(
            store
                .run_blocking(|c| set_disabled(c, "ada", true, 5))
                .is_err()
        );
        assert!(
            untouched(&store)?,
            "sessions and tokens survive a failed disable"
        );
        Ok(())
    }

    #[test]
    fn a_password_reset_ends_sessions_and_tokens_with_the_new_hash() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = store_with_ada(dir.path())?;
        store.run_blocking(|c| set_password(c, "ada", "new-hash", 5))?;
        store.run_blocking(|c| {
            assert!(session_store::find_live(c, "s1", 6, 0)?.is_none());
            assert!(refresh_tokens::find(c, "r1")?.is_some_and(|r| r.revoked));
            let user = find_by_id(c, "usr_ada")?.ok_or(StoreError::NotFound)?;
            assert_eq!(user.password_hash, "new-hash");
            assert_eq!(user.password_changed_at, 5);
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }
}
