//! `GET,POST /authorize`: validate the request (`oauth::request`), answer from an existing
//! session, or show the sign-in page; and what follows any authentication (a code, or the
//! consent screen first). The sign-in form's target is `login.rs`, the consent screen
//! `consent.rs`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RootSpan;

use super::cookies::{self, see_other};
use super::error::PageError;
use super::form::{self, Form};
use super::pages::{self, LoginPage};
use super::rate_limit::Limits;
use crate::domain::RedirectUri;
use crate::domain::user::User;
use crate::oauth::clients::RegisteredClient;
use crate::oauth::pending::{self, PENDING_TTL};
use crate::oauth::request::{self, AuthorizationRequest, AuthorizeError, AuthorizeParams};
use crate::oauth::{authorization_code, consent, policy, session};
use crate::state::AppState;
use crate::store::sessions::SessionRow;

/// The longest authorization request accepted (query string or form body), bytes. A real one is
/// well under 2 KiB; a longer one is refused before any parsing, with Sigil's own page (no
/// redirect: the client is not known yet).
pub const MAX_AUTHORIZE_REQUEST: usize = 8 * 1024;

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

/// An authorization error sent back to the client (only once its redirect URI is known good).
pub(super) fn error_redirect(
    ctx: &AppState,
    redirect_uri: &RedirectUri,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Result<HttpResponse, PageError> {
    tracing::Span::current().record("outcome", error);
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", ctx.issuer.as_str()));
    see_other(&redirect_uri.with_query(&params))
}

/// `GET /authorize`. A request refused on Sigil's own page counts against the address's
/// failures (`rate_limits.failures_per_ip`, in `rate_limit`).
pub async fn authorize_get(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let limits = Limits::new(&req, &ctx, "authorize");
    limits
        .finish_page(from_query(&req, &ctx, &root).await)
        .await
}

async fn from_query(
    req: &HttpRequest,
    ctx: &AppState,
    root: &RootSpan,
) -> Result<HttpResponse, PageError> {
    if req.query_string().len() > MAX_AUTHORIZE_REQUEST {
        return Err(PageError::Refused {
            status: StatusCode::URI_TOO_LONG,
            code: "invalid_request",
            message: "The request is too long.",
        });
    }
    let form = form::parse(req.query_string().as_bytes()).map_err(|_| {
        PageError::bad_request(
            "invalid_request",
            "The request is malformed (a parameter is repeated or not UTF-8).",
        )
    })?;
    authorize(req, ctx, root, &form).await
}

/// `POST /authorize` (form-encoded request, OIDC Core §3.1.2.1), limited as `GET`.
pub async fn authorize_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> HttpResponse {
    let limits = Limits::new(&req, &ctx, "authorize");
    let result = async {
        let max = ctx.settings.http.max_body.min(MAX_AUTHORIZE_REQUEST);
        let form = form::read(&req, payload, max)
            .await
            .map_err(|_| PageError::bad_request("invalid_request", "The request is malformed."))?;
        authorize(&req, &ctx, &root, &form).await
    }
    .await;
    limits.finish_page(result).await
}

async fn authorize(
    req: &HttpRequest,
    ctx: &AppState,
    root: &RootSpan,
    form: &Form,
) -> Result<HttpResponse, PageError> {
    let (reg, request) = match request::validate(ctx, params_of(form)).await {
        Ok(v) => v,
        Err(AuthorizeError::Page { code, message }) => {
            return Err(PageError::bad_request(code, message));
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state,
        }) => {
            return error_redirect(ctx, &redirect_uri, error, description, state.as_deref());
        }
        Err(AuthorizeError::Failed(e)) => return Err(e.into()),
    };
    root.record("client_id", request.client_id.as_str());
    if let Some(value) = cookies::session_value(req, ctx)
        && let Some(live) = session::find(ctx, &value).await?
        && policy::session_satisfies(
            request.session_demands(),
            &live.user.id,
            live.row.auth_time,
            ctx.now(),
        )
    {
        root.record("outcome", "session");
        return after_authentication(ctx, &reg, &request, &live.user, &live.row).await;
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

/// The sign-in page for `request`, with a binding cookie for this browser.
pub(super) async fn show_login(
    ctx: &AppState,
    client_name: &str,
    request: AuthorizationRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let csp = pages::login_csp(request.redirect_uri.as_str());
    let started = pending::start_login(ctx, request)?;
    let page = LoginPage {
        product: &ctx.settings.ui.product_name,
        client_name,
        authz: &started.id,
        csrf: &started.csrf,
        username,
        error,
    };
    let binding = cookies::cookie(
        ctx,
        cookies::binding_name(ctx),
        started.binding,
        PENDING_TTL,
    );
    Ok(pages::html(status, &page, |b| {
        b.cookie(binding);
        b.insert_header((header::CONTENT_SECURITY_POLICY, csp));
    }))
}

/// After authentication: a code, or first the consent screen (303 to `/consent`), or for
/// `prompt=none` the `consent_required` error.
pub(super) async fn after_authentication(
    ctx: &AppState,
    reg: &RegisteredClient,
    request: &AuthorizationRequest,
    user: &User,
    session: &SessionRow,
) -> Result<HttpResponse, PageError> {
    if !consent::needed(ctx, &reg.client, request, &user.id).await? {
        let location = authorization_code::issue(ctx, request, user, session).await?;
        return see_other(&location);
    }
    if request.prompt_none {
        return error_redirect(
            ctx,
            &request.redirect_uri,
            "consent_required",
            "the user has not granted these scopes",
            request.state.as_deref(),
        );
    }
    let started = pending::start_consent(ctx, request.clone(), &user.id, &session.id_hash).await?;
    let mut resp = see_other(&format!("/consent?authz={}", started.id))?;
    let _ = resp.add_cookie(&cookies::cookie(
        ctx,
        cookies::binding_name(ctx),
        started.binding,
        PENDING_TTL,
    ));
    Ok(resp)
}
