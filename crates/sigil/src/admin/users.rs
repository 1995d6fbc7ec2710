//! Changing users through the admin API: what `sigil users create|disable|enable|set-roles|
//! reset-password|delete` do, with the same rules (username, email, role and password policy),
//! the same audit events and the same `--json` answers. The password comes in the body, is
//! hashed on the server's bounded bcrypt threads and is never answered or logged.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Actor, AdminError, NameText, UserBody, existing_roles, record, text_schema};
use crate::domain::user::{Email, User, Username};
use crate::passwords::{Password, PolicyError};
use crate::state::AppState;
use crate::store::{StoreError, users as user_store};

/// A username as the API documents it (the rule of `domain::user::Username::parse`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct UsernameText(pub String);

impl utoipa::PartialSchema for UsernameText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        text_schema(
            r"^[a-zA-Z0-9_-]{1,50}$",
            Some(1),
            50,
            "1 to 50 letters, digits, '_' and '-'",
        )
    }
}

impl ToSchema for UsernameText {}

/// An email address as the API documents it (the rule of `domain::user::Email::parse`: one
/// `@`, a non-empty local part, a dotted domain, no spaces or control characters).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct EmailText(pub String);

/// Neither `@`, nor a control character, nor white space (as Rust's `char::is_whitespace`).
const NOT_AT_OR_SPACE: &str =
    r"@ \u0000-\u001f\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

impl utoipa::PartialSchema for EmailText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let c = format!("[^{NOT_AT_OR_SPACE}]");
        let d = format!("[^.{NOT_AT_OR_SPACE}]");
        text_schema(
            &format!("^{c}+@{d}{c}*\\.{c}*{d}$"),
            Some(5),
            254,
            "An email address such as name@example.com",
        )
    }
}

impl ToSchema for EmailText {}

/// A new password: 8 to 100 characters, judged by the password policy (a guessable one is
/// refused with 422). Never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct PasswordText(pub String);

impl std::fmt::Debug for PasswordText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordText(<redacted>)")
    }
}

impl utoipa::PartialSchema for PasswordText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(8))
            .max_length(Some(100))
            .description(Some(
                "8 to 100 characters, not easy to guess (else 422); never answered",
            ))
            .into()
    }
}

impl ToSchema for PasswordText {}

/// A user to create (as `sigil users create`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub username: UsernameText,
    /// Email address.
    #[serde(default)]
    pub email: Option<EmailText>,
    /// Whether the address is known to be the user's (needs `email`, else 422).
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// Roles, each of which must exist (else 409).
    #[serde(default)]
    pub roles: Vec<NameText>,
    /// The password.
    pub password: PasswordText,
}

/// A user's new roles (as `sigil users set-roles`; empty: none).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRolesChange {
    /// Roles, each of which must exist (else 409).
    pub roles: Vec<NameText>,
}

/// A user's new password (as `sigil users reset-password`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// The password.
    pub password: PasswordText,
}

/// `sigil users disable --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDisabled {
    /// The username.
    pub disabled: String,
}

/// `sigil users enable --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEnabled {
    /// The username.
    pub enabled: String,
}

/// `sigil users set-roles --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRoles {
    /// The username.
    pub username: String,
    /// The roles now held, sorted.
    pub roles: Vec<String>,
}

/// `sigil users reset-password --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// The username.
    pub password_reset: String,
}

/// `sigil users delete --json`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDeleted {
    /// The username.
    pub deleted: String,
}

fn not_found(username: &str) -> AdminError {
    AdminError::NotFound(format!("no user named {username}"))
}

/// A length the schema states is malformed (400); a guessable password is refused (422).
fn policy(e: PolicyError) -> AdminError {
    match e {
        PolicyError::Length => AdminError::Invalid(e.to_string()),
        PolicyError::Weak(_) => AdminError::Unprocessable(e.to_string()),
    }
}

async fn hash(ctx: &AppState, password: Password) -> Result<String, AdminError> {
    ctx.hasher
        .hash(password)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))
}

async fn find(ctx: &AppState, username: &str) -> Result<User, AdminError> {
    let u = username.to_owned();
    ctx.store
        .run(move |c| user_store::find_by_username(c, &u))
        .await?
        .ok_or_else(|| not_found(username))
}

/// A store change on one user, its `NotFound` the API's 404.
fn changed(username: &str, r: Result<(), StoreError>) -> Result<(), AdminError> {
    match r {
        Err(StoreError::NotFound) => Err(not_found(username)),
        other => Ok(other?),
    }
}

/// Create a user (`sigil users create`): the same checks in the same order (username, roles,
/// email, password policy), audited as `user.create`.
pub async fn create_user(
    ctx: &AppState,
    actor: &Actor,
    body: NewUser,
) -> Result<UserBody, AdminError> {
    let username = Username::parse(&body.username.0).map_err(|e| AdminError::Invalid(e.into()))?;
    let roles = existing_roles(ctx, &body.roles).await?;
    let email = body
        .email
        .as_ref()
        .map(|e| Email::parse(&e.0))
        .transpose()
        .map_err(|e| AdminError::Invalid(e.into()))?;
    if body.email_verified.is_some() && email.is_none() {
        return Err(AdminError::Unprocessable(
            "email_verified needs an email".into(),
        ));
    }
    let password = Password::for_user(
        &body.password.0,
        username.as_str(),
        email.as_ref().map(Email::as_str),
    )
    .map_err(policy)?;
    let hash = hash(ctx, password).await?;
    let user = User::new(
        username,
        email,
        body.email_verified.unwrap_or(false),
        hash,
        roles,
        ctx.now(),
    );
    let stored = user.clone();
    match ctx.store.run(move |c| user_store::insert(c, &stored)).await {
        Err(StoreError::Conflict(_)) => {
            return Err(AdminError::Conflict(format!(
                "the username {} is taken",
                user.username.as_str()
            )));
        }
        other => other?,
    }
    record(
        ctx,
        actor,
        "user.create",
        Some(user.id.clone()),
        serde_json::json!({"username": user.username.as_str(), "roles": user.roles}),
    )
    .await;
    // As `users show` prints a new user: no second factor yet.
    let mut body = UserBody::from(&user);
    body.totp = Some(super::TotpStatus {
        enrolled: false,
        enrolled_at: None,
        recovery_codes_left: None,
    });
    Ok(body)
}

/// Forbid (`disabled`) or allow logins again (`sigil users disable|enable`), audited as
/// `user.disable` / `user.enable`. Answers [`UserDisabled`] or [`UserEnabled`].
pub async fn set_user_disabled(
    ctx: &AppState,
    actor: &Actor,
    username: &str,
    disabled: bool,
) -> Result<serde_json::Value, AdminError> {
    let user = find(ctx, username).await?;
    let (u, now) = (username.to_owned(), ctx.now());
    changed(
        username,
        ctx.store
            .run(move |c| user_store::set_disabled(c, &u, disabled, now))
            .await,
    )?;
    let (kind, answer) = if disabled {
        (
            "user.disable",
            serde_json::to_value(UserDisabled {
                disabled: username.to_owned(),
            }),
        )
    } else {
        (
            "user.enable",
            serde_json::to_value(UserEnabled {
                enabled: username.to_owned(),
            }),
        )
    };
    record(
        ctx,
        actor,
        kind,
        Some(user.id),
        serde_json::json!({"username": username}),
    )
    .await;
    answer.map_err(|e| AdminError::Internal(e.to_string()))
}

/// Replace a user's roles (`sigil users set-roles`), each of which must exist; audited as
/// `user.set_roles`.
pub async fn set_user_roles(
    ctx: &AppState,
    actor: &Actor,
    username: &str,
    change: UserRolesChange,
) -> Result<UserRoles, AdminError> {
    let roles = existing_roles(ctx, &change.roles).await?;
    let user = find(ctx, username).await?;
    let (u, now, stored) = (username.to_owned(), ctx.now(), roles.clone());
    changed(
        username,
        ctx.store
            .run(move |c| user_store::set_roles(c, &u, &stored, now))
            .await,
    )?;
    let names: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    record(
        ctx,
        actor,
        "user.set_roles",
        Some(user.id),
        serde_json::json!({"username": username, "roles": names}),
    )
    .await;
    Ok(UserRoles {
        username: username.to_owned(),
        roles: names,
    })
}

/// Set a new password (`sigil users reset-password`), judged with the user's username and
/// email; audited as `user.reset_password` (without the password).
pub async fn reset_password(
    ctx: &AppState,
    actor: &Actor,
    username: &str,
    body: NewPassword,
) -> Result<PasswordReset, AdminError> {
    let user = find(ctx, username).await?;
    let password = Password::for_user(
        &body.password.0,
        user.username.as_str(),
        user.email.as_ref().map(Email::as_str),
    )
    .map_err(policy)?;
    let hash = hash(ctx, password).await?;
    let (u, now) = (username.to_owned(), ctx.now());
    changed(
        username,
        ctx.store
            .run(move |c| user_store::set_password(c, &u, &hash, now))
            .await,
    )?;
    record(
        ctx,
        actor,
        "user.reset_password",
        Some(user.id),
        serde_json::json!({"username": username}),
    )
    .await;
    Ok(PasswordReset {
        password_reset: username.to_owned(),
    })
}

/// Delete a user (`sigil users delete`), audited as `user.delete`.
pub async fn delete_user(
    ctx: &AppState,
    actor: &Actor,
    username: &str,
) -> Result<UserDeleted, AdminError> {
    let user = find(ctx, username).await?;
    let u = username.to_owned();
    if !ctx.store.run(move |c| user_store::delete(c, &u)).await? {
        return Err(not_found(username));
    }
    record(
        ctx,
        actor,
        "user.delete",
        Some(user.id),
        serde_json::json!({"username": username}),
    )
    .await;
    Ok(UserDeleted {
        deleted: username.to_owned(),
    })
}
