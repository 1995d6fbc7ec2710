//! `/admin/api/v1/…`: the admin API over HTTP. Handlers only translate: read the bearer token
//! and the request into `admin` calls, and render their outcome as JSON; `admin::authorize`
//! decides. No cookies are read, so there is no CSRF surface, and no CORS headers are sent. The
//! OpenAPI 3.1 document is generated from these handlers (utoipa) and served without
//! authentication at `/admin/api/v1/openapi.json`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::rate_limit::Limits;
use crate::admin::{
    self, Access, Actor, AdminError, AuditEventBody, EmailText, NameText, NewPassword, NewRole,
    NewUser, PasswordReset, PasswordText, PermissionText, RoleBody, RolePatch, UserBody,
    UserDeleted, UserDisabled, UserEnabled, UserRoles, UserRolesChange, UsernameText, UsersPage,
};
use crate::ratelimit::Class;
use crate::state::AppState;

/// The error body of every admin API failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A code: `invalid_token`, `insufficient_scope`, `not_found`, `conflict`,
    /// `invalid_request`, `refused` (422: well formed but against a policy), `slow_down`, `temporarily_unavailable`, `server_error`.
    pub error: String,
    /// What went wrong, for people.
    pub error_description: String,
}

/// Register the admin routes. Each path answers its documented methods; any other method is
/// 405 with `Allow`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    fn allow(methods: &'static str) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
        move || {
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method not allowed here",
            );
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(methods));
            std::future::ready(resp)
        }
    }
    cfg.service(
        web::scope("/admin/api/v1")
            .service(
                web::resource("/openapi.json")
                    .route(web::get().to(openapi))
                    .default_service(web::to(allow("GET"))),
            )
            .service(
                web::resource("/roles")
                    .route(web::get().to(list_roles))
                    .route(web::post().to(create_role))
                    .default_service(web::to(allow("GET, POST"))),
            )
            .service(
                web::resource("/roles/{name}")
                    .route(web::get().to(show_role))
                    .route(web::patch().to(update_role))
                    .route(web::delete().to(delete_role))
                    .default_service(web::to(allow("GET, PATCH, DELETE"))),
            )
            .service(
                web::resource("/users")
                    .route(web::get().to(list_users))
                    .route(web::post().to(create_user))
                    .default_service(web::to(allow("GET, POST"))),
            )
            .service(
                web::resource("/users/{username}")
                    .route(web::get().to(show_user))
                    .route(web::delete().to(delete_user))
                    .default_service(web::to(allow("GET, DELETE"))),
            )
            .service(
                web::resource("/users/{username}/disable")
                    .route(web::post().to(disable_user))
                    .default_service(web::to(allow("POST"))),
            )
            .service(
                web::resource("/users/{username}/enable")
                    .route(web::post().to(enable_user))
                    .default_service(web::to(allow("POST"))),
            )
            .service(
                web::resource("/users/{username}/roles")
                    .route(web::put().to(set_user_roles))
                    .default_service(web::to(allow("PUT"))),
            )
            .service(
                web::resource("/users/{username}/reset-password")
                    .route(web::post().to(reset_password))
                    .default_service(web::to(allow("POST"))),
            )
            .service(
                web::resource("/audit")
                    .route(web::get().to(audit_tail))
                    .default_service(web::to(allow("GET"))),
            )
            .service(
                web::resource("/audit/verify")
                    .route(web::get().to(audit_verify))
                    .default_service(web::to(allow("GET"))),
            )
            .default_service(web::to(not_found)),
    );
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Sigil admin API", description = "Administer a Sigil tenant with access tokens holding admin:<resource>:read|write."),
    paths(list_roles, create_role, show_role, update_role, delete_role, list_users, create_user, show_user,
        delete_user, disable_user, enable_user, set_user_roles, reset_password, audit_tail, audit_verify),
    components(schemas(ErrorBody, RoleBody, NewRole, RolePatch, UserBody, UsersPage, NewUser, UserRolesChange,
        NewPassword, UserDisabled, UserEnabled, UserRoles, PasswordReset, UserDeleted, AuditEventBody,
        PermissionText, NameText, UsernameText, EmailText, PasswordText, admin::TotpStatus)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

async fn openapi() -> HttpResponse {
    match AdminApi::openapi().to_json() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the admin API document");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn not_found() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

fn error(status: StatusCode, code: &str, description: &str) -> HttpResponse {
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let challenge = match code {
        "invalid_token" => Some("Bearer realm=\"sigil\", error=\"invalid_token\""),
        "missing_token" => Some("Bearer realm=\"sigil\""),
        "insufficient_scope" => Some("Bearer realm=\"sigil\", error=\"insufficient_scope\""),
        _ => None,
    };
    if let Some(c) = challenge {
        resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(c)));
    }
    if code == "temporarily_unavailable" {
        resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
    }
    if code == "missing_token" {
        return resp.json(ErrorBody {
            error: "invalid_request".into(),
            error_description: description.into(),
        });
    }
    resp.json(ErrorBody {
        error: code.into(),
        error_description: description.into(),
    })
}

/// The response of a failed call.
fn failure(e: &AdminError) -> HttpResponse {
    use crate::store::StoreError;
    match e {
        AdminError::Unauthenticated("no bearer token") => error(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "an access token is required (Authorization: Bearer)",
        ),
        AdminError::Unauthenticated(_) => error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is not valid here",
        ),
        AdminError::Forbidden(p) => error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            &format!("this needs the permission {p}"),
        ),
        AdminError::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m),
        AdminError::Conflict(m) => error(StatusCode::CONFLICT, "conflict", m),
        AdminError::Invalid(m) => error(StatusCode::BAD_REQUEST, "invalid_request", m),
        AdminError::Unprocessable(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "refused", m),
        AdminError::Internal(cause) => {
            tracing::error!(cause = %cause, "admin API failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
        AdminError::Store(StoreError::Unavailable(cause)) => {
            tracing::warn!(cause = %cause, "admin API: database unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again shortly",
            )
        }
        AdminError::Store(cause) => {
            tracing::error!(cause = %crate::store::error_chain(cause), "admin API failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
    }
}

/// Authenticate and authorize, count the request against the caller's limit, run `op`, and
/// answer with `X-RateLimit-*` headers.
async fn guarded<T, F, Fut>(
    req: &HttpRequest,
    ctx: &AppState,
    resource: &str,
    access: Access,
    status: StatusCode,
    op: F,
) -> HttpResponse
where
    T: Serialize,
    F: FnOnce(Actor) -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    let mut limits = Limits::new(req, ctx, "admin");
    let result = async {
        if let Err(stop) = limits.global().await {
            return Err(stop.into());
        }
        let token = super::userinfo::bearer(req);
        let actor = match admin::authorize(ctx, token, resource, access).await {
            Ok(a) => a,
            Err(e) => return Ok(failure(&e)),
        };
        if let Err(stop) = limits.principal(Class::AdminPerPrincipal, &actor.sub).await {
            return Err(stop.into());
        }
        super::request_log::record_current("client_id", actor.client_id.as_deref().unwrap_or(""));
        Ok(match op(actor).await {
            Ok(body) => HttpResponse::build(status)
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(body),
            Err(e) => failure(&e),
        })
    }
    .await;
    limits.finish_api(result).await
}

/// A JSON body, or the admin API's 400.
fn json_body<T: for<'de> Deserialize<'de>>(body: &web::Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError::Invalid(format!("invalid JSON body: {e}")))
}

/// Every role (`sigil roles list --json`).
#[utoipa::path(get, path = "/admin/api/v1/roles", tag = "roles",
    responses((status = 200, body = [RoleBody]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_roles(req: HttpRequest, ctx: web::Data<AppState>) -> HttpResponse {
    guarded(&req, &ctx, "roles", Access::Read, StatusCode::OK, |_| {
        admin::list_roles(&ctx)
    })
    .await
}

/// Create a role (`sigil roles create`).
#[utoipa::path(post, path = "/admin/api/v1/roles", tag = "roles", request_body = NewRole,
    responses((status = 201, body = RoleBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_role(req: HttpRequest, ctx: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (c, b) = (&ctx, &body);
    guarded(
        &req,
        &ctx,
        "roles",
        Access::Write,
        StatusCode::CREATED,
        move |actor| async move {
            let new: NewRole = json_body(b)?;
            admin::create_role(c, &actor, new).await
        },
    )
    .await
}

/// One role (`sigil roles show`).
#[utoipa::path(get, path = "/admin/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "Role name")),
    responses((status = 200, body = RoleBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_role(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    guarded(&req, &ctx, "roles", Access::Read, StatusCode::OK, |_| {
        admin::show_role(&ctx, name.as_str())
    })
    .await
}

/// Add or remove permissions, or change the description (`sigil roles update`).
#[utoipa::path(patch, path = "/admin/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "Role name")),
    request_body = RolePatch,
    responses((status = 200, body = RoleBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_role(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (c, b, n) = (&ctx, &body, name.as_str());
    guarded(
        &req,
        &ctx,
        "roles",
        Access::Write,
        StatusCode::OK,
        move |actor| async move {
            let patch: RolePatch = json_body(b)?;
            admin::update_role(c, &actor, n, patch).await
        },
    )
    .await
}

/// Delete a role; its holders lose it (`sigil roles delete`).
#[utoipa::path(delete, path = "/admin/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "Role name")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_role(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    let (c, n) = (&ctx, name.as_str());
    guarded(
        &req,
        &ctx,
        "roles",
        Access::Write,
        StatusCode::OK,
        move |actor| async move { admin::delete_role(c, &actor, n).await },
    )
    .await
}

/// Paging through users.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Return users whose username sorts after this one (the previous page's `next`).
    pub after: Option<String>,
    /// At most this many (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of users by username (`sigil users list --json`, paginated).
#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users", params(PageQuery),
    responses((status = 200, body = UsersPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(req: HttpRequest, ctx: web::Data<AppState>) -> HttpResponse {
    let query = web::Query::<PageQuery>::from_query(req.query_string());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Read,
        StatusCode::OK,
        |_| async {
            let q = query
                .map_err(|e| AdminError::Invalid(e.to_string()))?
                .into_inner();
            admin::list_users(&ctx, q.after, q.limit).await
        },
    )
    .await
}

/// One user (`sigil users show --json`; never the password hash).
#[utoipa::path(get, path = "/admin/api/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn show_user(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
) -> HttpResponse {
    guarded(&req, &ctx, "users", Access::Read, StatusCode::OK, |_| {
        admin::show_user(&ctx, username.as_str())
    })
    .await
}

/// Create a user (`sigil users create`; the password in the body, never answered).
#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "The username is taken, or a role does not exist"),
        (status = 422, body = ErrorBody, description = "The password policy refused the password, or email_verified came without email")))]
async fn create_user(req: HttpRequest, ctx: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (c, b) = (&ctx, &body);
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::CREATED,
        move |actor| async move {
            let new: NewUser = json_body(b)?;
            admin::create_user(c, &actor, new).await
        },
    )
    .await
}

/// Delete a user (`sigil users delete --json`).
#[utoipa::path(delete, path = "/admin/api/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserDeleted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_user(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
) -> HttpResponse {
    let (c, u) = (&ctx, username.as_str());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::OK,
        move |actor| async move { admin::delete_user(c, &actor, u).await },
    )
    .await
}

/// Forbid the user's logins (`sigil users disable --json`).
#[utoipa::path(post, path = "/admin/api/v1/users/{username}/disable", tag = "users", params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserDisabled), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn disable_user(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
) -> HttpResponse {
    let (c, u) = (&ctx, username.as_str());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::OK,
        move |actor| async move { admin::set_user_disabled(c, &actor, u, true).await },
    )
    .await
}

/// Allow the user's logins again (`sigil users enable --json`).
#[utoipa::path(post, path = "/admin/api/v1/users/{username}/enable", tag = "users", params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = UserEnabled), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn enable_user(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
) -> HttpResponse {
    let (c, u) = (&ctx, username.as_str());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::OK,
        move |actor| async move { admin::set_user_disabled(c, &actor, u, false).await },
    )
    .await
}

/// Replace the user's roles (`sigil users set-roles --json`); each must exist.
#[utoipa::path(put, path = "/admin/api/v1/users/{username}/roles", tag = "users", params(("username" = String, Path, description = "Username")),
    request_body = UserRolesChange,
    responses((status = 200, body = UserRoles), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "A role does not exist")))]
async fn set_user_roles(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (c, b, u) = (&ctx, &body, username.as_str());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::OK,
        move |actor| async move {
            let change: UserRolesChange = json_body(b)?;
            admin::set_user_roles(c, &actor, u, change).await
        },
    )
    .await
}

/// Set a new password (`sigil users reset-password --json`; the password in the body).
#[utoipa::path(post, path = "/admin/api/v1/users/{username}/reset-password", tag = "users", params(("username" = String, Path, description = "Username")),
    request_body = NewPassword,
    responses((status = 200, body = PasswordReset), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The password policy refused the password")))]
async fn reset_password(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    username: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (c, b, u) = (&ctx, &body, username.as_str());
    guarded(
        &req,
        &ctx,
        "users",
        Access::Write,
        StatusCode::OK,
        move |actor| async move {
            let new: NewPassword = json_body(b)?;
            admin::reset_password(c, &actor, u, new).await
        },
    )
    .await
}

/// How many events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TailQuery {
    /// The newest this many (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<i64>,
}

/// The newest audit events, oldest first (`sigil audit tail --json`).
#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", params(TailQuery),
    responses((status = 200, body = [AuditEventBody]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit_tail(req: HttpRequest, ctx: web::Data<AppState>) -> HttpResponse {
    let query = web::Query::<TailQuery>::from_query(req.query_string());
    guarded(
        &req,
        &ctx,
        "audit",
        Access::Read,
        StatusCode::OK,
        |_| async {
            let q = query
                .map_err(|e| AdminError::Invalid(e.to_string()))?
                .into_inner();
            admin::audit_tail(&ctx, q.n).await
        },
    )
    .await
}

/// Verify the audit trail's hash chain (`sigil audit verify --json`).
#[utoipa::path(get, path = "/admin/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn audit_verify(req: HttpRequest, ctx: web::Data<AppState>) -> HttpResponse {
    guarded(&req, &ctx, "audit", Access::Read, StatusCode::OK, |_| {
        admin::audit_verify(&ctx)
    })
    .await
}
