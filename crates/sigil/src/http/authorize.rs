//! `GET,POST /authorize` and `POST /login` (the login form's target).

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RootSpan;

use super::form::{self, Form};
use super::pages::{self, LoginPage};
use crate::crypto::ct_eq;
use crate::domain::user::Username;
use crate::oauth::authorize::{
    self, AuthorizationRequest, AuthorizeError, AuthorizeParams, PENDING_TTL, SESSION_ABSOLUTE,
    hash_id, with_query,
};
use crate::state::AppState;
use crate::store::users as user_store;

/// Failed logins per account within the window before it locks.
pub const MAX_FAILURES: u64 = 5;
/// Lock window.
pub const FAILURE_WINDOW: i64 = 15 * 60;
/// The longest authorization request accepted (query string or form body), bytes. A real one is
/// well under 2 KiB; a longer one is refused before any parsing, with Sigil's own page (no
/// redirect: the client is not known yet).
pub const MAX_AUTHORIZE_REQUEST: usize = 8 * 1024;

/// Count a failed login of an unknown name (per network and overall, in the shared cache) and
/// say what the audit trail gets for it. When the counters cannot be reached the event is
/// recorded: better a row too many than a failure forgotten.
async fn anonymous_failure_record(
    ctx: &AppState,
    ip: &str,
    now: i64,
) -> crate::oauth::anonymous::Record {
    use crate::oauth::anonymous::{Record, WINDOW, bucket, decide, window_start};
    let start = window_start(now);
    let end = start + WINDOW;
    let network = ctx
        .cache
        .incr(&format!("anon_fail:{}:{start}", bucket(ip)), end, now)
        .await;
    let overall = ctx
        .cache
        .incr(&format!("anon_fail:*:{start}"), end, now)
        .await;
    match (network, overall) {
        (Ok(n), Ok(all)) => decide(n, all),
        _ => Record::Event,
    }
}

/// The one message for every login failure.
pub const LOGIN_FAILED: &str =
    "Incorrect username or password, or this account cannot sign in right now.";

fn secure_cookies(ctx: &AppState) -> bool {
    ctx.issuer.starts_with("https://")
}

/// Session cookie name (`__Host-` under https).
pub fn session_cookie_name(ctx: &AppState) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sigil_session"
    } else {
        "sigil_session"
    }
}

fn binding_cookie_name(ctx: &AppState) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sigil_login"
    } else {
        "sigil_login"
    }
}

/// SameSite=Lax: the browser sends the session cookie on the top-level GET navigation from the
/// application to `/authorize` (so an existing session and `prompt=none` work), but not on
/// cross-site subrequests or POSTs. Strict would drop it on that navigation.
pub(super) fn cookie<'a>(ctx: &AppState, name: &'a str, value: String, max_age: i64) -> Cookie<'a> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(secure_cookies(ctx));
    c.set_same_site(SameSite::Lax);
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

fn params_of(form: &Form) -> AuthorizeParams {
    let get = |k: &str| form.get(k).map(str::to_owned);
    AuthorizeParams {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        max_age: get("max_age"),
        login_hint: get("login_hint"),
        id_token_hint: get("id_token_hint"),
        response_mode: get("response_mode"),
        request: get("request"),
        request_uri: get("request_uri"),
    }
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    match HeaderValue::from_str(location) {
        Ok(v) => pages::secure(HttpResponse::SeeOther())
            .insert_header((header::LOCATION, v))
            .finish(),
        Err(_) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The redirect target is not valid.",
        ),
    }
}

fn error_redirect(
    ctx: &AppState,
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> HttpResponse {
    tracing::Span::current().record("outcome", error);
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", ctx.issuer.as_str()));
    see_other(&with_query(redirect_uri, &params))
}

pub(super) fn unavailable(cause: &str) -> HttpResponse {
    tracing::warn!(cause = %cause, "authorization unavailable");
    let mut resp = pages::error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "Sigil cannot complete sign-in right now. Please try again in a moment.",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// `GET /authorize`
pub async fn authorize_get(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    if req.query_string().len() > MAX_AUTHORIZE_REQUEST {
        return pages::error_page(
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            "The request is too long.",
        );
    }
    match form::parse(req.query_string().as_bytes()) {
        Ok(f) => authorize(&req, &ctx, &root, &f).await,
        Err(_) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is malformed (a parameter is repeated or not UTF-8).",
        ),
    }
}

/// `POST /authorize` (form-encoded request, OIDC Core §3.1.2.1)
pub async fn authorize_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let max = ctx.settings.http.max_body.min(MAX_AUTHORIZE_REQUEST);
    match form::read(&req, payload, max).await {
        Ok(f) => authorize(&req, &ctx, &root, &f).await,
        Err(_) => pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is malformed.",
        ),
    }
}

async fn authorize(
    req: &HttpRequest,
    ctx: &AppState,
    root: &RootSpan,
    form: &Form,
) -> HttpResponse {
    let (reg, request) = match authorize::validate(ctx, params_of(form)).await {
        Ok(v) => v,
        Err(AuthorizeError::Page { code, message }) => {
            return pages::error_page(StatusCode::BAD_REQUEST, code, message);
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state,
        }) => {
            return error_redirect(ctx, &redirect_uri, error, description, state.as_deref());
        }
        Err(AuthorizeError::Unavailable(cause)) => return unavailable(&cause),
    };
    root.record("client_id", request.client_id.as_str());
    let now = ctx.now();
    let session_cookie = req
        .cookie(session_cookie_name(ctx))
        .map(|c| c.value().to_owned());
    if let Some(value) = &session_cookie {
        match authorize::session(ctx, value).await {
            Ok(Some(live)) if authorize::session_satisfies(&request, &live.row, now) => {
                root.record("outcome", "session");
                return after_authentication(ctx, &reg, &request, &live.user, &live.row).await;
            }
            Ok(_) => {}
            Err(e) => return unavailable(&e.to_string()),
        }
    }
    if request.prompt_none {
        return error_redirect(
            ctx,
            &request.redirect_uri,
            "login_required",
            "the user is not signed in",
            request.state.as_deref(),
        );
    }
    let hint = request.login_hint.clone().unwrap_or_default();
    show_login(ctx, &reg.client.name, request, &hint, None, StatusCode::OK).await
}

async fn show_login(
    ctx: &AppState,
    client_name: &str,
    request: AuthorizationRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let csp = pages::login_csp(&request.redirect_uri);
    let (id, csrf, binding) = match authorize::start_login(ctx, request).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e.to_string()),
    };
    let page = LoginPage {
        product: &ctx.settings.ui.product_name,
        client_name,
        authz: &id,
        csrf: &csrf,
        username,
        error,
    };
    let binding_cookie = cookie(ctx, binding_cookie_name(ctx), binding, PENDING_TTL);
    pages::html(status, &page, |b| {
        b.cookie(binding_cookie);
        b.insert_header((header::CONTENT_SECURITY_POLICY, csp));
    })
}

/// `POST /login`
pub async fn login(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let form = match form::read(&req, payload, ctx.settings.http.max_body).await {
        Ok(f) => f,
        Err(_) => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The sign-in form was malformed.",
            );
        }
    };
    let expired = || {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "This sign-in page has expired or was not opened in this browser. Return to the application and start again.",
        )
    };
    let Some(authz) = form.get("authz") else {
        return expired();
    };
    let pending = match authorize::pending(&ctx, authz).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    let binding_ok = req
        .cookie(binding_cookie_name(&ctx))
        .is_some_and(|c| ct_eq(hash_id(c.value()).as_bytes(), pending.binding.as_bytes()));
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| ct_eq(c.as_bytes(), pending.csrf.as_bytes()));
    if !binding_ok || !csrf_ok {
        return expired();
    }
    root.record("client_id", pending.request.client_id.as_str());
    let now = ctx.now();

    // Per-IP limit on login POSTs.
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    match ctx
        .cache
        .incr(&format!("login_ip:{ip}"), now + 60, now)
        .await
    {
        Ok(n) if n > ctx.settings.passwords.max_logins_per_ip_minute => {
            root.record("outcome", "rate_limited");
            ctx.metrics
                .logins
                .with_label_values(&["rate_limited"])
                .inc();
            let mut resp = pages::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "Too many sign-in attempts from your network. Wait a minute and try again.",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return resp;
        }
        Ok(_) => {}
        Err(e) => return unavailable(&e.to_string()),
    }

    let raw_username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("").to_owned();
    let username = Username::parse(raw_username).ok();
    let fail_key = username
        .as_ref()
        .map(|u| format!("login_fail:{}", u.as_str().to_ascii_lowercase()));
    let locked = match &fail_key {
        Some(k) => match ctx.cache.get(&format!("{k}:locked"), now).await {
            Ok(v) => v.is_some(),
            Err(e) => return unavailable(&e.to_string()),
        },
        None => false,
    };
    let user = match &username {
        Some(u) => {
            let name = u.as_str().to_owned();
            match ctx
                .store
                .run(move |c| user_store::find_by_username(c, &name))
                .await
            {
                Ok(u) => u,
                Err(e) => return unavailable(&e.to_string()),
            }
        }
        None => None,
    };
    // Always one bcrypt verification, whoever asks: unknown users hit a dummy hash.
    let verified = match ctx
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
    {
        Ok(v) => v,
        Err(e) => return unavailable(&e.to_string()),
    };
    let user = match user {
        Some(u) if verified && !u.disabled && !locked => u,
        _ => {
            let reason = match &user {
                None => "unknown_user",
                Some(_) if locked => "locked",
                Some(u) if u.disabled => "disabled",
                Some(_) => "wrong_password",
            };
            let user_id = user.as_ref().map(|u| u.id.clone());
            let client_id = pending.request.client_id.as_str().to_owned();
            let record = if user.is_some() {
                crate::oauth::anonymous::Record::Event
            } else {
                anonymous_failure_record(&ctx, &ip.to_string(), now).await
            };
            use crate::oauth::anonymous::Record;
            match record {
                Record::Event => {
                    let mut event = ctx.event("login.failure", "anonymous".to_owned());
                    event.subject = user_id.clone();
                    event.client_id = Some(client_id);
                    event.details = serde_json::json!({ "reason": reason, "ip": ip });
                    ctx.audit(event).await;
                }
                Record::NetworkSummary { count } => {
                    let mut event = ctx.event("login.failure.summary", "anonymous".to_owned());
                    event.details = serde_json::json!({
                        "reason": "unknown_user",
                        "network": crate::oauth::anonymous::bucket(&ip.to_string()),
                        "count": count,
                        "since": crate::oauth::anonymous::window_start(now),
                    });
                    ctx.audit(event).await;
                }
                Record::OverallSummary { count } => {
                    let mut event = ctx.event("login.failure.summary", "anonymous".to_owned());
                    event.details = serde_json::json!({
                        "reason": "unknown_user",
                        "network": "all",
                        "count": count,
                        "since": crate::oauth::anonymous::window_start(now),
                    });
                    ctx.audit(event).await;
                }
                Record::Nothing => {}
            }
            ctx.metrics.logins.with_label_values(&["failure"]).inc();
            if let Some(k) = &fail_key {
                match ctx.cache.incr(k, now + FAILURE_WINDOW, now).await {
                    Ok(n) if n >= MAX_FAILURES => {
                        if n == MAX_FAILURES {
                            ctx.metrics.account_lockouts.inc();
                            let mut event = ctx.event("account.lock", "system".to_owned());
                            event.subject = user_id.clone();
                            event.details = serde_json::json!({
                                "failures": n,
                                "known_user": user_id.is_some(),
                                "until": now + FAILURE_WINDOW,
                            });
                            ctx.audit(event).await;
                        }
                        if let Err(e) = ctx
                            .cache
                            .put(&format!("{k}:locked"), vec![1], now + FAILURE_WINDOW, now)
                            .await
                        {
                            return unavailable(&e.to_string());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => return unavailable(&e.to_string()),
                }
            }
            root.record("outcome", "login_failed");
            let client_name = match ctx
                .clients
                .get(&ctx.store, &pending.request.client_id)
                .await
            {
                Ok(Some(r)) => r.client.name.clone(),
                Ok(None) => return expired(),
                Err(e) => return unavailable(&e.to_string()),
            };
            let shown = username
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default();
            return show_login(
                &ctx,
                &client_name,
                pending.request,
                &shown,
                Some(LOGIN_FAILED),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
    };
    if let Some(k) = &fail_key {
        let _ = ctx.cache.take(k, now).await;
    }
    let previous = req
        .cookie(session_cookie_name(&ctx))
        .map(|c| c.value().to_owned());
    let (session_id, row) = match authorize::create_session(&ctx, &user, previous).await {
        Ok(v) => v,
        Err(e) => return unavailable(&e.to_string()),
    };
    if let Err(e) = authorize::finish_login(&ctx, authz).await {
        return unavailable(&e.to_string());
    }
    let reg = match ctx
        .clients
        .get(&ctx.store, &pending.request.client_id)
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    root.record("outcome", "logged_in");
    ctx.metrics.logins.with_label_values(&["success"]).inc();
    let mut event = ctx.event("login.success", format!("user:{}", user.id));
    event.subject = Some(user.id.clone());
    event.client_id = Some(pending.request.client_id.as_str().to_owned());
    event.details = serde_json::json!({ "ip": ip });
    ctx.audit(event).await;
    let mut resp = after_authentication(&ctx, &reg, &pending.request, &user, &row).await;
    // A consent screen follows: it set its own binding cookie, which must stay.
    let binding_set = resp
        .cookies()
        .any(|c| c.name() == binding_cookie_name(&ctx));
    let session = cookie(
        &ctx,
        session_cookie_name(&ctx),
        session_id,
        SESSION_ABSOLUTE,
    );
    let mut clear = cookie(&ctx, binding_cookie_name(&ctx), String::new(), 0);
    clear.make_removal();
    let _ = resp.add_cookie(&session);
    if !binding_set {
        let _ = resp.add_cookie(&clear);
    }
    resp
}

/// After authentication: a code, or first the consent screen (303 to `/consent`), or for
/// `prompt=none` the `consent_required` error.
async fn after_authentication(
    ctx: &AppState,
    reg: &crate::oauth::clients::RegisteredClient,
    request: &AuthorizationRequest,
    user: &crate::domain::user::User,
    session: &crate::store::sessions::SessionRow,
) -> HttpResponse {
    match authorize::needs_consent(ctx, &reg.client, request, &user.id).await {
        Ok(false) => match authorize::issue_code(ctx, request, user, session).await {
            Ok(location) => see_other(&location),
            Err(e) => unavailable(&e.to_string()),
        },
        Ok(true) if request.prompt_none => error_redirect(
            ctx,
            &request.redirect_uri,
            "consent_required",
            "the user has not granted these scopes",
            request.state.as_deref(),
        ),
        Ok(true) => {
            match authorize::start_consent(ctx, request.clone(), &user.id, &session.id_hash).await {
                Ok((id, _, binding)) => {
                    let mut resp = see_other(&format!("/consent?authz={id}"));
                    let _ = resp.add_cookie(&cookie(
                        ctx,
                        binding_cookie_name(ctx),
                        binding,
                        PENDING_TTL,
                    ));
                    resp
                }
                Err(e) => unavailable(&e.to_string()),
            }
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

fn consent_expired() -> HttpResponse {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "This page has expired or was not opened in this browser. Return to the application and start again.",
    )
}

fn consent_browser_ok(
    req: &HttpRequest,
    ctx: &AppState,
    binding: &str,
    session_hash: &str,
) -> bool {
    let binding_ok = req
        .cookie(binding_cookie_name(ctx))
        .is_some_and(|c| ct_eq(hash_id(c.value()).as_bytes(), binding.as_bytes()));
    let session_ok = req
        .cookie(session_cookie_name(ctx))
        .is_some_and(|c| ct_eq(hash_id(c.value()).as_bytes(), session_hash.as_bytes()));
    binding_ok && session_ok
}

/// `GET /consent`: the consent screen for a pending request.
pub async fn consent_page(req: HttpRequest, ctx: web::Data<AppState>) -> HttpResponse {
    let form = form::parse(req.query_string().as_bytes()).unwrap_or_default();
    let Some(authz) = form.get("authz") else {
        return consent_expired();
    };
    let pending = match authorize::pending_consent(&ctx, authz, false).await {
        Ok(Some(p)) => p,
        Ok(None) => return consent_expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    if !consent_browser_ok(&req, &ctx, &pending.binding, &pending.session_hash) {
        return consent_expired();
    }
    let client_name = match ctx
        .clients
        .get(&ctx.store, &pending.request.client_id)
        .await
    {
        Ok(Some(r)) => r.client.name.clone(),
        Ok(None) => return consent_expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    let scopes: Vec<String> = pending
        .request
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(pages::describe_scope)
        .collect();
    let csp = pages::login_csp(&pending.request.redirect_uri);
    pages::html(
        StatusCode::OK,
        &pages::ConsentPage {
            product: &ctx.settings.ui.product_name,
            client_name: &client_name,
            scopes,
            authz,
            csrf: &pending.csrf,
        },
        |b| {
            b.insert_header((header::CONTENT_SECURITY_POLICY, csp));
        },
    )
}

/// `POST /consent`: the user's decision.
pub async fn consent_decision(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let form = match form::read(&req, payload, ctx.settings.http.max_body).await {
        Ok(f) => f,
        Err(_) => return consent_expired(),
    };
    let Some(authz) = form.get("authz") else {
        return consent_expired();
    };
    let pending = match authorize::pending_consent(&ctx, authz, false).await {
        Ok(Some(p)) => p,
        Ok(None) => return consent_expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| ct_eq(c.as_bytes(), pending.csrf.as_bytes()));
    if !csrf_ok || !consent_browser_ok(&req, &ctx, &pending.binding, &pending.session_hash) {
        return consent_expired();
    }
    // Consume it: one decision per screen.
    let pending = match authorize::pending_consent(&ctx, authz, true).await {
        Ok(Some(p)) => p,
        Ok(None) => return consent_expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    root.record("client_id", pending.request.client_id.as_str());
    let request = &pending.request;
    if form.get("decision") != Some("allow") {
        return error_redirect(
            &ctx,
            &request.redirect_uri,
            "access_denied",
            "the user denied the request",
            request.state.as_deref(),
        );
    }
    let session_cookie = req
        .cookie(session_cookie_name(&ctx))
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let live = match authorize::session(&ctx, &session_cookie).await {
        Ok(Some(l)) if l.user.id == pending.user_id => l,
        Ok(_) => return consent_expired(),
        Err(e) => return unavailable(&e.to_string()),
    };
    if let Err(e) =
        authorize::record_consent(&ctx, &live.user.id, &request.client_id, &request.scope).await
    {
        return unavailable(&e.to_string());
    }
    root.record("outcome", "consented");
    match authorize::issue_code(&ctx, request, &live.user, &live.row).await {
        Ok(location) => see_other(&location),
        Err(e) => unavailable(&e.to_string()),
    }
}
