//! `GET /logout` (RP-initiated logout, the `end_session_endpoint`) and `POST /logout` (the
//! confirmation form). `oauth::logout` decides; this file translates HTTP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use tracing_actix_web::RootSpan;

use super::cookies::{self, see_other};
use super::error::PageError;
use super::form::{self, Form};
use super::pages;
use crate::crypto::hash_id;
use crate::oauth::logout::{self, LogoutDecision, LogoutError, LogoutRequest};
use crate::oauth::session;
use crate::state::AppState;

fn request_of(form: &Form) -> LogoutRequest {
    let get = |k: &str| form.get(k).map(str::to_owned);
    LogoutRequest {
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    }
}

fn malformed() -> PageError {
    PageError::bad_request("invalid_request", "The sign-out request is malformed.")
}

/// `GET /logout`: ends the session at once when a valid `id_token_hint` names this session's
/// user (or there is no session), else asks the user to confirm. A hint that does not verify is
/// an error and ends nothing.
pub async fn logout_get(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> Result<HttpResponse, PageError> {
    let form = form::parse(req.query_string().as_bytes()).map_err(|_| malformed())?;
    let request = request_of(&form);
    let cookie_value = cookies::session_value(&req, &ctx);
    let live = match cookie_value.as_deref() {
        Some(value) => session::find(&ctx, value).await?,
        None => None,
    };
    match logout::decide(&ctx, &request, live.as_ref().map(|l| l.user.id.as_str())).await {
        Ok(LogoutDecision::End { return_to }) => {
            end_session(&ctx, &root, cookie_value.as_deref(), return_to).await
        }
        Ok(LogoutDecision::Confirm {
            client_id,
            return_to,
        }) => {
            root.record("outcome", "confirm");
            let csrf = live
                .as_ref()
                .map(|l| logout::confirmation_token(&ctx, &l.row.id_hash))
                .unwrap_or_default();
            let page = pages::LogoutConfirmPage {
                product: &ctx.settings.ui.product_name,
                csrf: &csrf,
                client_id: client_id.as_deref().unwrap_or(""),
                post_logout_redirect_uri: request.post_logout_redirect_uri.as_deref().unwrap_or(""),
                state: request.state.as_deref().unwrap_or(""),
            };
            // Browsers apply form-action to the redirect that follows the POST.
            let csp = return_to.as_deref().map(pages::login_csp);
            Ok(pages::html(StatusCode::OK, &page, |b| {
                if let Some(csp) = csp {
                    b.insert_header((actix_web::http::header::CONTENT_SECURITY_POLICY, csp));
                }
            }))
        }
        Err(e @ (LogoutError::InvalidHint | LogoutError::ClientMismatch)) => {
            tracing::info!(reason = %e, "logout refused");
            Err(PageError::bad_request(
                "invalid_request",
                "This sign-out request is not valid, so you are still signed in. Return to the application and try again.",
            ))
        }
        Err(LogoutError::Unavailable(e)) => Err(e.into()),
    }
}

/// `POST /logout`: the user confirmed. The anti-CSRF token must belong to this browser's session.
pub async fn logout_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    root: RootSpan,
) -> Result<HttpResponse, PageError> {
    let form = form::read(&req, payload, ctx.settings.http.max_body)
        .await
        .map_err(|_| malformed())?;
    let cookie_value = cookies::session_value(&req, &ctx);
    let token_ok = match (cookie_value.as_deref(), form.get("csrf")) {
        (Some(value), Some(token)) => logout::confirmation_token_ok(&ctx, &hash_id(value), token),
        _ => false,
    };
    if !token_ok {
        return Err(PageError::bad_request(
            "invalid_request",
            "This sign-out page has expired or was not opened in this browser, so you are still signed in.",
        ));
    }
    let return_to = logout::confirmed_return_to(&ctx, &request_of(&form)).await?;
    end_session(&ctx, &root, cookie_value.as_deref(), return_to).await
}

/// Delete the session (if any), clear its cookie, then redirect or show the signed-out page.
async fn end_session(
    ctx: &AppState,
    root: &RootSpan,
    cookie_value: Option<&str>,
    return_to: Option<String>,
) -> Result<HttpResponse, PageError> {
    if let Some(value) = cookie_value {
        session::end(ctx, value).await?;
    }
    root.record("outcome", "logged_out");
    let mut resp = match return_to {
        Some(location) => see_other(&location)?,
        None => pages::html(
            StatusCode::OK,
            &pages::SignedOutPage {
                product: &ctx.settings.ui.product_name,
            },
            |_| {},
        ),
    };
    let _ = resp.add_cookie(&cookies::removal(ctx, cookies::session_name(ctx)));
    Ok(resp)
}
