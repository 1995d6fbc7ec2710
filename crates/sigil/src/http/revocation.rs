//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662). Both require client
//! authentication, like `/token`, and have the same rate limits (`rate_limit`): per client,
//! and per address for failed client authentication.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::cors;
use super::error::ApiError;
use super::form;
use super::rate_limit::Limits;
use super::request_log::LogFields;
use super::token::credentials;
use crate::oauth::clients::RegisteredClient;
use crate::oauth::{OAuthError, client_auth, revocation};
use crate::ratelimit::Class;
use crate::state::AppState;

/// The revocation endpoint: 200 for any token, valid or not.
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "revoke");
    let result = async {
        let (reg, form) =
            authenticated(&req, payload, &ctx, &mut limits, Class::RevokePerClient).await?;
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
    .await;
    limits.finish_api(result).await
}

/// The introspection endpoint.
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "introspect");
    let result = async {
        let (reg, form) =
            authenticated(&req, payload, &ctx, &mut limits, Class::IntrospectPerClient).await?;
        if reg.client.public {
            return Err(OAuthError::InvalidClient("client authentication failed").into());
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
    .await;
    limits.finish_api(result).await
}

/// Read the form and authenticate the client, under the endpoint's limits: the global count,
/// the address's client-authentication failures (checked first), then `class` for the client.
async fn authenticated(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppState,
    limits: &mut Limits<'_>,
    class: Class,
) -> Result<(std::sync::Arc<RegisteredClient>, form::Form), ApiError> {
    limits.global().await?;
    limits.not_refused(Class::ClientAuthFailuresPerIp).await?;
    let form = form::read(req, payload, ctx.settings.http.max_body).await?;
    let reg = client_auth::authenticate(ctx, credentials(req, &form)?).await?;
    cors::allow_client(req, &reg);
    limits.principal(class, reg.client.id.as_str()).await?;
    Ok((reg, form))
}
