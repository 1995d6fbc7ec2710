//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662). Both require client
//! authentication, like `/token`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::cors;
use super::error::ApiError;
use super::form;
use super::request_log::LogFields;
use super::token::credentials;
use crate::oauth::{OAuthError, client_auth, revocation};
use crate::state::AppState;

/// The revocation endpoint: 200 for any token, valid or not.
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> Result<HttpResponse, ApiError> {
    let form = form::read(&req, payload, ctx.settings.http.max_body).await?;
    let reg = client_auth::authenticate(&ctx, credentials(&req, &form)?).await?;
    cors::allow_client(&req, &reg);
    log.record("client_id", reg.client.id.as_str());
    let token = form
        .get("token")
        .ok_or(OAuthError::InvalidRequest("token is required"))?;
    revocation::revoke(&ctx, &reg, token, form.get("token_type_hint")).await?;
    log.record("outcome", "revoked");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish())
}

/// The introspection endpoint.
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> Result<HttpResponse, ApiError> {
    let form = form::read(&req, payload, ctx.settings.http.max_body).await?;
    let reg = client_auth::authenticate(&ctx, credentials(&req, &form)?).await?;
    cors::allow_client(&req, &reg);
    if reg.client.public {
        return Err(OAuthError::InvalidClient {
            description: "client authentication failed",
            basic: false,
        }
        .into());
    }
    log.record("client_id", reg.client.id.as_str());
    let token = form
        .get("token")
        .ok_or(OAuthError::InvalidRequest("token is required"))?;
    let body = revocation::introspect(&ctx, &reg, token, form.get("token_type_hint")).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}
