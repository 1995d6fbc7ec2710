//! `GET /consent` (the consent screen for a pending request) and `POST /consent` (the user's
//! decision). A screen is honoured only in the browser that holds both its binding cookie and
//! the session it was opened for, with its anti-CSRF token; one decision per screen.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RootSpan;

use super::authorize::error_redirect;
use super::cookies::{self, see_other};
use super::error::PageError;
use super::form;
use super::pages;
use crate::crypto::ct_eq;
use crate::oauth::pending::{self, PendingConsent};
use crate::oauth::{authorization_code, consent, session};
use crate::state::AppState;

fn expired() -> PageError {
    PageError::bad_request(
        "invalid_request",
        "This page has expired or was not opened in this browser. Return to the application and start again.",
    )
}

fn browser_ok(req: &HttpRequest, ctx: &AppState, pending: &PendingConsent) -> bool {
    cookies::matches(req, cookies::binding_name(ctx), &pending.binding)
        && cookies::matches(req, cookies::session_name(ctx), &pending.session_hash)
}

/// `GET /consent`: the consent screen for a pending request.
pub async fn consent_page(
    req: HttpRequest,
    ctx: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let form = form::parse(req.query_string().as_bytes()).unwrap_or_default();
    let authz = form.get("authz").ok_or_else(expired)?;
    let pending = pending::consent(&ctx, authz, false)
        .await?
        .ok_or_else(expired)?;
    if !browser_ok(&req, &ctx, &pending) {
        return Err(expired());
    }
    let client_name = ctx
        .clients
        .get(&ctx.store, pending.request.client_id.as_str())
        .await
        .map_err(crate::oauth::OAuthError::from)?
        .ok_or_else(expired)?
        .client
        .name
        .clone();
    let scopes: Vec<String> = pending
        .request
        .scope
        .iter()
        .map(|s| pages::describe_scope(s.as_str()))
        .collect();
    let csp = pages::login_csp(pending.request.redirect_uri.as_str());
    Ok(pages::html(
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
    ))
}

/// `POST /consent`: the user's decision.
pub async fn consent_decision(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> Result<HttpResponse, PageError> {
    let form = form::read(&req, payload, ctx.settings.http.max_body)
        .await
        .map_err(|_| expired())?;
    let authz = form.get("authz").ok_or_else(expired)?;
    let pending = pending::consent(&ctx, authz, false)
        .await?
        .ok_or_else(expired)?;
    let csrf_ok = form
        .get("csrf")
        .is_some_and(|c| ct_eq(c.as_bytes(), pending.csrf.as_bytes()));
    if !csrf_ok || !browser_ok(&req, &ctx, &pending) {
        return Err(expired());
    }
    // Consume it: one decision per screen.
    let pending = pending::consent(&ctx, authz, true)
        .await?
        .ok_or_else(expired)?;
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
    let cookie = cookies::session_value(&req, &ctx).unwrap_or_default();
    let live = session::find(&ctx, &cookie)
        .await?
        .filter(|l| l.user.id == pending.user_id)
        .ok_or_else(expired)?;
    consent::record(&ctx, &live.user.id, request).await?;
    root.record("outcome", "consented");
    let location = authorization_code::issue(&ctx, request, &live.user, &live.row).await?;
    see_other(&location)
}
