//! `users` table.

use diesel::prelude::*;

use super::schema::{sessions, users};
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
            Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?)
        }
        None => Ok(0),
    }
}

/// Enable or disable. Disabling ends the user's sessions. `NotFound` when no such user.
pub fn set_disabled(
    conn: &mut DbConn,
    username: &str,
    disabled: bool,
    now: i64,
) -> Result<(), StoreError> {
    if disabled {
        end_sessions(conn, username)?;
    }
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    meta::bump(conn, meta::USERS_VERSION)
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

/// Replace the password hash; ends the user's sessions.
pub fn set_password(
    conn: &mut DbConn,
    username: &str,
    hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    end_sessions(conn, username)?;
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(now),
            users::password_changed_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    meta::bump(conn, meta::USERS_VERSION)
}

/// Delete a user and their sessions. False when no such user.
pub fn delete(conn: &mut DbConn, username: &str) -> Result<bool, StoreError> {
    end_sessions(conn, username)?;
    let n = diesel::delete(users::table.filter(users::username.eq(username))).execute(conn)?;
    if n > 0 {
        meta::bump(conn, meta::USERS_VERSION)?;
    }
    Ok(n > 0)
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
