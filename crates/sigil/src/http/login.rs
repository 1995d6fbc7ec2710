//! `POST /login`, the sign-in form's target: check that the form belongs to a sign-in page this
//! browser opened (page id, binding cookie, anti-CSRF token), count it against the address's
//! login limit (`rate_limit`), hand the attempt to `oauth::login::sign_in`, and render its
//! outcome. For a user with a second factor that is the code form, whose target is
//! `POST /login/otp` ([`login_otp`]): the same checks of its sealed state, binding cookie and
//! anti-CSRF token, the same limit, then `oauth::login::second_factor`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RootSpan;

use super::authorize::{after_authentication, show_login};
use super::cookies;
use super::error::PageError;
use super::form;
use super::pages::{self, OtpPage};
use super::rate_limit::{Limits, Stop};
use crate::crypto::ct_eq;
use crate::domain::user::User;
use crate::oauth::clients::RegisteredClient;
use crate::oauth::login::{self, Attempt, Outcome, SecondAttempt};
use crate::oauth::pending::{self, MFA_TTL};
use crate::oauth::request::AuthorizationRequest;
use crate::oauth::session::SESSION_ABSOLUTE;
use crate::ratelimit::Class;
use crate::state::AppState;
use crate::store::sessions::SessionRow;

/// The one message for every sign-in failure.
pub const LOGIN_FAILED: &str =
    "Incorrect username or password, or this account cannot sign in right now.";

/// The one message for every wrong, used or locked second-factor code.
pub const MFA_FAILED: &str = "That code is not valid, or this account cannot sign in right now.";

fn expired() -> PageError {
    PageError::bad_request(
        "invalid_request",
        "This sign-in page has expired or was not opened in this browser. Return to the application and start again.",
    )
}

/// What every sign-in step's POST does first: the global limit, the form, the sealed step it
/// names (`open`), and its CSRF field and binding cookie (`secrets` gives both); anything
/// missing or not matching is the same "expired" page.
async fn open_step<P>(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppState,
    limits: &mut Limits<'_>,
    open: impl FnOnce(&AppState, &str) -> Option<P>,
    secrets: impl Fn(&P) -> (&str, &str),
) -> Result<(form::Form, P), PageError> {
    limits.global().await?;
    let form = form::read(req, payload, ctx.settings.http.max_body)
        .await
        .map_err(|_| {
            PageError::bad_request("invalid_request", "The sign-in form was malformed.")
        })?;
    let authz = form.get("authz").ok_or_else(expired)?;
    let pending = open(ctx, authz).ok_or_else(expired)?;
    let (csrf, binding) = secrets(&pending);
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| ct_eq(c.as_bytes(), csrf.as_bytes()));
    if !csrf_ok || !cookies::matches(req, cookies::binding_name(ctx), binding) {
        return Err(expired());
    }
    Ok((form, pending))
}

/// Count a sign-in attempt against the address's `rate_limits.login_per_ip`.
async fn count_attempt(ctx: &AppState, limits: &mut Limits<'_>) -> Result<(), PageError> {
    if let Err(stop) = limits.address(Class::LoginPerIp).await {
        if matches!(stop, Stop::Over(_)) {
            ctx.metrics
                .logins
                .with_label_values(&["rate_limited"])
                .inc();
        }
        return Err(stop.into());
    }
    Ok(())
}

/// `POST /login`, under its rate limits (`rate_limit`): every attempt counts against the
/// address's `rate_limits.login_per_ip`; a form refused before that (expired, forged) counts as
/// the address's failure.
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "login");
    let result = attempt(&req, payload, &ctx, &root, &mut limits).await;
    limits.finish_page(result).await
}

async fn attempt(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppState,
    root: &RootSpan,
    limits: &mut Limits<'_>,
) -> Result<HttpResponse, PageError> {
    let (form, pending) = open_step(req, payload, ctx, limits, pending::login, |p| {
        (p.csrf.as_str(), p.binding.as_str())
    })
    .await?;
    let request = pending.request;
    root.record("client_id", request.client_id.as_str());
    count_attempt(ctx, limits).await?;
    let client = super::client_ip::of(
        req,
        &ctx.settings.http.trusted_proxies,
        ctx.settings.http.forwarded_header,
    );
    let ip = client.map(|c| c.to_string()).unwrap_or_default();
    let ip_bucket = client.map(super::client_ip::bucket).unwrap_or_default();
    let outcome = login::sign_in(
        ctx,
        Attempt {
            username: form.get("username").unwrap_or(""),
            password: form.get("password").unwrap_or("").to_owned(),
            ip: &ip,
            ip_bucket: &ip_bucket,
            client_id: &request.client_id,
            previous_session: cookies::session_value(req, ctx),
            device: req
                .cookie(cookies::device_name(ctx))
                .map(|c| c.value().to_owned())
                .as_deref(),
        },
    )
    .await?;
    let reg = ctx
        .clients
        .get(&ctx.store, request.client_id.as_str())
        .await
        .map_err(crate::oauth::OAuthError::from)?
        .ok_or_else(expired)?;
    match outcome {
        Outcome::Refused { username } => {
            root.record("outcome", "login_failed");
            show_login(
                ctx,
                &reg.client.name,
                request,
                &username,
                Some(LOGIN_FAILED),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Outcome::SecondFactor { user } => {
            root.record("outcome", "mfa_required");
            let expires_at = ctx.now() + MFA_TTL;
            show_otp(
                ctx,
                &reg,
                request,
                &user.id,
                expires_at,
                None,
                StatusCode::OK,
            )
        }
        Outcome::Expired => Err(expired()),
        Outcome::SignedIn {
            user,
            session_id,
            session,
            device,
        } => {
            root.record("outcome", "logged_in");
            signed_in(ctx, &reg, &request, &user, session_id, &session, device).await
        }
    }
}

/// What follows a complete sign-in (a code, or the consent screen), with the new session and
/// device cookies, and the binding cookie removed unless a consent screen set its own.
async fn signed_in(
    ctx: &AppState,
    reg: &RegisteredClient,
    request: &AuthorizationRequest,
    user: &User,
    session_id: String,
    session: &SessionRow,
    device: String,
) -> Result<HttpResponse, PageError> {
    let mut resp = after_authentication(ctx, reg, request, user, session).await?;
    // A consent screen follows: it set its own binding cookie, which must stay.
    let binding_set = resp
        .cookies()
        .any(|c| c.name() == cookies::binding_name(ctx));
    let _ = resp.add_cookie(&cookies::cookie(
        ctx,
        cookies::session_name(ctx),
        session_id,
        SESSION_ABSOLUTE,
    ));
    let _ = resp.add_cookie(&cookies::cookie(
        ctx,
        cookies::device_name(ctx),
        device,
        crate::oauth::login::DEVICE_TTL,
    ));
    if !binding_set {
        let _ = resp.add_cookie(&cookies::removal(ctx, cookies::binding_name(ctx)));
    }
    Ok(resp)
}

/// The second-factor form for `user_id`, usable until `expires_at`, with a new binding cookie
/// for this browser (the sign-in page's is replaced).
fn show_otp(
    ctx: &AppState,
    reg: &RegisteredClient,
    request: AuthorizationRequest,
    user_id: &str,
    expires_at: i64,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let csp = pages::login_csp(request.redirect_uri.as_str());
    let started = pending::start_mfa(ctx, request, user_id, expires_at)?;
    let page = OtpPage {
        product: &ctx.settings.ui.product_name,
        client_name: &reg.client.name,
        authz: &started.id,
        csrf: &started.csrf,
        error,
    };
    let binding = cookies::cookie(
        ctx,
        cookies::binding_name(ctx),
        started.binding,
        (expires_at - ctx.now()).max(1),
    );
    Ok(pages::html(status, &page, |b| {
        b.cookie(binding);
        b.insert_header((actix_web::http::header::CONTENT_SECURITY_POLICY, csp));
    }))
}

/// `POST /login/otp`, the second-factor form's target, under the same limits as `POST /login`
/// (`rate_limits.login_per_ip` counts every attempt).
pub async fn login_otp(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "login");
    let result = otp_attempt(&req, payload, &ctx, &root, &mut limits).await;
    limits.finish_page(result).await
}

async fn otp_attempt(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppState,
    root: &RootSpan,
    limits: &mut Limits<'_>,
) -> Result<HttpResponse, PageError> {
    let (form, pending) = open_step(req, payload, ctx, limits, pending::mfa, |p| {
        (p.csrf.as_str(), p.binding.as_str())
    })
    .await?;
    let request = pending.request;
    root.record("client_id", request.client_id.as_str());
    count_attempt(ctx, limits).await?;
    let client = super::client_ip::of(
        req,
        &ctx.settings.http.trusted_proxies,
        ctx.settings.http.forwarded_header,
    );
    let ip = client.map(|c| c.to_string()).unwrap_or_default();
    let outcome = login::second_factor(
        ctx,
        SecondAttempt {
            user_id: &pending.user_id,
            code: form.get("totp").unwrap_or("").to_owned(),
            ip: &ip,
            client_id: &request.client_id,
            previous_session: cookies::session_value(req, ctx),
        },
    )
    .await?;
    let reg = ctx
        .clients
        .get(&ctx.store, request.client_id.as_str())
        .await
        .map_err(crate::oauth::OAuthError::from)?
        .ok_or_else(expired)?;
    match outcome {
        Outcome::Refused { .. } => {
            root.record("outcome", "mfa_failed");
            show_otp(
                ctx,
                &reg,
                request,
                &pending.user_id,
                pending.expires_at,
                Some(MFA_FAILED),
                StatusCode::UNAUTHORIZED,
            )
        }
        Outcome::SignedIn {
            user,
            session_id,
            session,
            device,
        } => {
            root.record("outcome", "logged_in");
            signed_in(ctx, &reg, &request, &user, session_id, &session, device).await
        }
        Outcome::SecondFactor { .. } | Outcome::Expired => Err(expired()),
    }
}
