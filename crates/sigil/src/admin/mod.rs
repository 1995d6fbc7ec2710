//! The admin API's use cases (`http::admin` only translates HTTP): who is asking ([`Actor`],
//! from a verified access token) and whether they may ([`authorize`]), then one function per
//! operation on plain types. Every change is appended to the audit trail with the token's `sub`
//! as actor and its `client_id`. The bodies are the CLI's `--json` shapes (CONTRACT.md).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Name;
use crate::domain::authz::{Permission, Role, SIGIL_ADMIN, normalize};
use crate::state::AppState;
use crate::store::{StoreError, audit, roles as role_store, users as user_store};

mod users;

pub use users::{
    EmailText, NewPassword, NewUser, PasswordReset, PasswordText, UserDeleted, UserDisabled,
    UserEnabled, UserRoles, UserRolesChange, UsernameText, create_user, delete_user,
    reset_password, set_user_disabled, set_user_roles,
};

/// Why an admin request was not done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No valid access token of this issuer (401 with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token lacks the permission (403, `insufficient_scope`).
    #[error("this needs the permission {0}")]
    Forbidden(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or is built in (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed (400).
    #[error("{0}")]
    Invalid(String),
    /// Well formed, but refused by a rule the schema cannot state, such as the password policy
    /// (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Sigil failed for a reason of its own (500; the cause is logged, never answered).
    #[error("{0}")]
    Internal(String),
    /// The database could not answer (503) or failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whoever a valid admin token speaks for.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The token's `sub`: a user id, or a client id for `client_credentials`.
    pub sub: String,
    /// The token's `client_id`.
    pub client_id: Option<String>,
}

/// Read or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GET`: `admin:<resource>:read`.
    Read,
    /// Anything else: `admin:<resource>:write`.
    Write,
}

/// The permission an operation on `resource` needs.
pub fn permission(resource: &str, access: Access) -> String {
    let action = match access {
        Access::Read => "read",
        Access::Write => "write",
    };
    format!("admin:{resource}:{action}")
}

/// Check an access token for an operation: valid for this issuer (an access token whose `aud`
/// holds the issuer: ID and refresh tokens are refused), not revoked, its subject still standing
/// behind it, and the permission both in the token and among what the subject holds now (a
/// role taken away ends admin rights at once, not at the token's expiry).
pub async fn authorize(
    ctx: &AppState,
    token: Option<&str>,
    resource: &str,
    access: Access,
) -> Result<Actor, AdminError> {
    use crate::oauth::bearer::{BearerError, current_roles, is_revoked};
    let token = token.ok_or(AdminError::Unauthenticated("no bearer token"))?;
    let claims = match ctx.own_tokens.verify(ctx, token) {
        Ok(c) => c,
        Err(BearerError::InvalidToken(_)) => {
            return Err(AdminError::Unauthenticated("invalid token"));
        }
        Err(BearerError::Unavailable(e)) => return Err(StoreError::Unavailable(e).into()),
    };
    if is_revoked(ctx, &claims).await.map_err(oauth_store)? {
        return Err(AdminError::Unauthenticated("invalid token"));
    }
    let Some(roles) = current_roles(ctx, &claims).await? else {
        return Err(AdminError::Unauthenticated("invalid token"));
    };
    let needed = permission(resource, access);
    let aud: Vec<String> = claims.aud.iter().map(str::to_owned).collect();
    let now_held = ctx.authz.load().permissions(&roles, &aud);
    // The same rule as the token's check (`job:*`-style grants included).
    let holds_now = now_held
        .iter()
        .any(|p| sigil_verify::permission_covers(p, &needed));
    if !claims.has_permission(&needed) || !holds_now {
        return Err(AdminError::Forbidden(needed));
    }
    Ok(Actor {
        sub: claims.sub,
        client_id: claims.client_id,
    })
}

fn oauth_store(e: crate::oauth::OAuthError) -> AdminError {
    match e {
        crate::oauth::OAuthError::Unavailable(m) => StoreError::Unavailable(m).into(),
        other => StoreError::Unavailable(other.to_string()).into(),
    }
}

/// Append a change to the audit trail with `actor` as its actor.
async fn record(
    ctx: &AppState,
    actor: &Actor,
    kind: &'static str,
    subject: Option<String>,
    details: serde_json::Value,
) {
    let mut event = ctx.event(kind, actor.sub.clone());
    event.subject = subject;
    event.client_id = actor.client_id.clone();
    event.details = details;
    ctx.audit(event).await;
}

/// Parse role names (400) and require each to exist (409), the rule of `sigil … --role`;
/// sorted and unique.
async fn existing_roles(ctx: &AppState, raw: &[NameText]) -> Result<Vec<Name>, AdminError> {
    let raw: Vec<String> = raw.iter().map(|r| r.0.clone()).collect();
    let names = crate::domain::authz::role_names(&raw, "a role").map_err(AdminError::Invalid)?;
    if names.is_empty() {
        return Ok(names);
    }
    let wanted = names.clone();
    let unknown = ctx
        .store
        .run(move |c| role_store::unknown(c, &wanted))
        .await?;
    if !unknown.is_empty() {
        return Err(AdminError::Conflict(
            crate::domain::authz::unknown_roles_message(&unknown),
        ));
    }
    Ok(names)
}

/// A role as the CLI's `roles show --json` prints it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleBody {
    /// Name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Permissions, sorted.
    pub permissions: Vec<String>,
    /// Whether it is built in (`sigil-admin`).
    pub builtin: bool,
    /// Created, Unix seconds (0 when built in).
    pub created_at: i64,
    /// Last changed, Unix seconds.
    pub updated_at: i64,
}

impl From<&Role> for RoleBody {
    fn from(r: &Role) -> Self {
        RoleBody {
            name: r.name.as_str().to_owned(),
            description: r.description.clone(),
            permissions: r
                .permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            builtin: r.builtin(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A permission as the API documents it (the rule `domain::authz::Permission::parse` applies).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct PermissionText(pub String);

/// A name as the API documents it (the rule of `domain::Name::parse`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct NameText(pub String);

/// A string schema with these bounds.
fn text_schema(
    pattern: &str,
    min: Option<usize>,
    max: usize,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(Some(max))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for PermissionText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        text_schema(
            r"^[a-z0-9_.\-]+(:[a-z0-9_.*\-]+)+$",
            Some(3),
            200,
            "A permission such as job:create",
        )
    }
}

impl ToSchema for PermissionText {}

impl utoipa::PartialSchema for NameText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        text_schema(
            r"^[^\s\u0000-\u001f\u007f-\u009f]([^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f])?$",
            Some(1),
            100,
            "1 to 100 characters, no control characters, no spaces at the ends",
        )
    }
}

impl ToSchema for NameText {}

/// A role to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Name.
    pub name: NameText,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Permissions.
    #[serde(default)]
    pub permissions: Vec<PermissionText>,
}

/// A change to a role (as `sigil roles update`). An empty change answers the role as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// Permissions to add.
    #[serde(default)]
    pub add_permissions: Vec<PermissionText>,
    /// Permissions to remove (each must be held, else 409).
    #[serde(default)]
    pub remove_permissions: Vec<PermissionText>,
    /// A new description.
    #[serde(default)]
    pub description: Option<String>,
}

fn permissions(raw: &[PermissionText]) -> Result<Vec<Permission>, AdminError> {
    raw.iter()
        .map(|p| Permission::parse(&p.0).map_err(AdminError::Invalid))
        .collect::<Result<Vec<_>, _>>()
        .map(normalize)
}

/// Every role, `sigil-admin` first.
pub async fn list_roles(ctx: &AppState) -> Result<Vec<RoleBody>, AdminError> {
    let stored = ctx.store.run(role_store::list).await?;
    let mut all = vec![RoleBody::from(&Role::sigil_admin())];
    all.extend(stored.iter().map(RoleBody::from));
    Ok(all)
}

/// One role.
pub async fn show_role(ctx: &AppState, name: &str) -> Result<RoleBody, AdminError> {
    if name == SIGIL_ADMIN {
        return Ok(RoleBody::from(&Role::sigil_admin()));
    }
    let n = name.to_owned();
    ctx.store
        .run(move |c| role_store::find(c, &n))
        .await?
        .map(|r| RoleBody::from(&r))
        .ok_or_else(|| AdminError::NotFound(format!("no role named {name}")))
}

/// Create a role.
pub async fn create_role(
    ctx: &AppState,
    actor: &Actor,
    body: NewRole,
) -> Result<RoleBody, AdminError> {
    let name = Name::parse(&body.name.0, "name").map_err(AdminError::Invalid)?;
    if name.as_str() == SIGIL_ADMIN {
        return Err(AdminError::Conflict(format!("{SIGIL_ADMIN} is built in")));
    }
    let now = ctx.now();
    let role = Role {
        name,
        description: body.description,
        permissions: permissions(&body.permissions)?,
        created_at: now,
        updated_at: now,
    };
    let stored = role.clone();
    match ctx.store.run(move |c| role_store::insert(c, &stored)).await {
        Err(StoreError::Conflict(_)) => {
            return Err(AdminError::Conflict(format!(
                "a role named {} exists",
                role.name.as_str()
            )));
        }
        other => other?,
    }
    record(
        ctx,
        actor,
        "role.create",
        Some(role.name.as_str().to_owned()),
        serde_json::json!({"permissions": role.permissions}),
    )
    .await;
    Ok(RoleBody::from(&role))
}

/// Change a role's permissions or description.
pub async fn update_role(
    ctx: &AppState,
    actor: &Actor,
    name: &str,
    patch: RolePatch,
) -> Result<RoleBody, AdminError> {
    if name == SIGIL_ADMIN {
        return Err(AdminError::Conflict(format!(
            "{SIGIL_ADMIN} is built in and cannot be changed"
        )));
    }
    let change = role_store::RoleChange {
        add: permissions(&patch.add_permissions)?,
        remove: permissions(&patch.remove_permissions)?,
        description: patch.description,
    };
    let n = name.to_owned();
    let before = ctx
        .store
        .run(move |c| role_store::find(c, &n))
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no role named {name}")))?;
    if change.add.is_empty() && change.remove.is_empty() && change.description.is_none() {
        return Ok(RoleBody::from(&before));
    }
    if let Some(p) = change
        .remove
        .iter()
        .find(|p| !before.permissions.contains(p))
    {
        return Err(AdminError::Conflict(format!(
            "role {name} does not hold {}",
            p.as_str()
        )));
    }
    let now = ctx.now();
    let (n, details) = (
        name.to_owned(),
        serde_json::json!({
            "added": change.add,
            "removed": change.remove,
            "description_changed": change.description.is_some(),
        }),
    );
    let role = match ctx
        .store
        .run(move |c| role_store::update(c, &n, &change, now))
        .await
    {
        Err(StoreError::NotFound) => {
            return Err(AdminError::NotFound(format!("no role named {name}")));
        }
        other => other?,
    };
    record(ctx, actor, "role.update", Some(name.to_owned()), details).await;
    Ok(RoleBody::from(&role))
}

/// Delete a role, taking it from its holders.
pub async fn delete_role(
    ctx: &AppState,
    actor: &Actor,
    name: &str,
) -> Result<serde_json::Value, AdminError> {
    if name == SIGIL_ADMIN {
        return Err(AdminError::Conflict(format!(
            "{SIGIL_ADMIN} is built in and cannot be deleted"
        )));
    }
    let (n, now) = (name.to_owned(), ctx.now());
    let holders = match ctx.store.run(move |c| role_store::delete(c, &n, now)).await {
        Err(StoreError::NotFound) => {
            return Err(AdminError::NotFound(format!("no role named {name}")));
        }
        other => other?,
    };
    let details = serde_json::json!({"users": holders.users, "clients": holders.clients});
    record(
        ctx,
        actor,
        "role.delete",
        Some(name.to_owned()),
        details.clone(),
    )
    .await;
    Ok(serde_json::json!({"deleted": name, "removed_from": details}))
}

/// A user as `sigil users show --json` prints it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    /// Id (`usr_…`, the tokens' `sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: Option<String>,
    /// Whether the address is known to be the user's.
    pub email_verified: bool,
    /// Whether sign-in is refused.
    pub disabled: bool,
    /// Roles held.
    pub roles: Vec<String>,
    /// Created (RFC 3339).
    pub created_at: Option<String>,
    /// Last changed (RFC 3339).
    pub updated_at: Option<String>,
    /// Last password change (RFC 3339).
    pub password_changed_at: Option<String>,
    /// The second factor (shown for one user, as `users show`; not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpStatus>,
}

/// Whether a user has TOTP, as `users show --json` says it (never the secret or a code).
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpStatus {
    /// Enrolled.
    pub enrolled: bool,
    /// When (RFC 3339), if enrolled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolled_at: Option<String>,
    /// Recovery codes not yet used, if enrolled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes_left: Option<i64>,
}

impl From<&crate::domain::user::User> for UserBody {
    fn from(u: &crate::domain::user::User) -> Self {
        use crate::clock::rfc3339;
        UserBody {
            id: u.id.clone(),
            username: u.username.as_str().to_owned(),
            email: u.email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified: u.email_verified,
            disabled: u.disabled,
            roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            password_changed_at: rfc3339(u.password_changed_at),
            totp: None,
        }
    }
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsersPage {
    /// The users, by username.
    pub users: Vec<UserBody>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<String>,
}

/// The largest page.
pub const MAX_PAGE: i64 = 200;

/// A page of users after `after`, at most `limit` (1..=[`MAX_PAGE`], default 50).
pub async fn list_users(
    ctx: &AppState,
    after: Option<String>,
    limit: Option<i64>,
) -> Result<UsersPage, AdminError> {
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AdminError::Invalid(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    // One more than asked, to know whether there is a next page.
    let rows = ctx
        .store
        .run(move |c| user_store::page(c, after.as_deref(), limit + 1))
        .await?;
    let more = rows.len() as i64 > limit;
    let users: Vec<UserBody> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(UserBody::from)
        .collect();
    let next = more
        .then(|| users.last().map(|u| u.username.clone()))
        .flatten();
    Ok(UsersPage { users, next })
}

/// One user by username, with whether they have a second factor.
pub async fn show_user(ctx: &AppState, username: &str) -> Result<UserBody, AdminError> {
    let u = username.to_owned();
    let found = ctx
        .store
        .run(move |c| crate::store::mfa::user_with_summary(c, &u))
        .await?;
    let (user, totp) =
        found.ok_or_else(|| AdminError::NotFound(format!("no user named {username}")))?;
    let mut body = UserBody::from(&user);
    body.totp = Some(match totp {
        Some(t) => TotpStatus {
            enrolled: true,
            enrolled_at: crate::clock::rfc3339(t.created_at),
            recovery_codes_left: Some(t.recovery_codes_left),
        },
        None => TotpStatus {
            enrolled: false,
            enrolled_at: None,
            recovery_codes_left: None,
        },
    });
    Ok(body)
}

/// One audit event as `sigil audit tail --json` prints it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventBody {
    /// Position in the chain.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: Option<String>,
    /// What happened (`user.create`, `login.failure`, ...).
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// Whom or what it concerned.
    pub subject: Option<String>,
    /// The client involved.
    pub client_id: Option<String>,
    /// Details (never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The event's chain hash.
    pub hash: String,
}

/// The newest `n` events (1..=1000, default 50), oldest first.
pub async fn audit_tail(ctx: &AppState, n: Option<i64>) -> Result<Vec<AuditEventBody>, AdminError> {
    let n = n.unwrap_or(50);
    if !(1..=1000).contains(&n) {
        return Err(AdminError::Invalid("n must be 1 to 1000".into()));
    }
    let rows = ctx.store.run(move |c| audit::tail(c, n)).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEventBody {
            seq: r.seq,
            at: crate::clock::rfc3339(r.at),
            kind: r.kind,
            actor: r.actor,
            subject: r.subject,
            client_id: r.client_id,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            hash: r.hash,
        })
        .collect())
}

/// Verify the audit trail's hash chain (as `sigil audit verify --json`).
pub async fn audit_verify(ctx: &AppState) -> Result<serde_json::Value, AdminError> {
    let master = ctx.master.clone();
    let verdict = ctx.store.run(move |c| audit::verify(c, &master)).await?;
    serde_json::to_value(verdict).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}
