//! `GET,POST /userinfo` (OIDC Core §5.3): claims about the bearer's subject, by scope.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::error::ApiError;
use super::rate_limit::Limits;
use super::request_log::LogFields;
use crate::oauth::OAuthError;
use crate::oauth::bearer::BearerError;
use crate::ratelimit::Class;
use crate::state::AppState;
use crate::store::users as user_store;

/// The answer: `sub`, then what the token's scopes release, as in the ID token, then the roles
/// the user holds now and the permissions a token for the same audience would carry now.
#[derive(serde::Serialize)]
struct UserInfo {
    sub: String,
    #[serde(flatten)]
    claims: sigil_verify::UserClaims,
    roles: Vec<String>,
    permissions: Vec<String>,
}

fn challenge(error: Option<&str>, status: actix_web::http::StatusCode) -> HttpResponse {
    let value = match error {
        Some(e) => format!("Bearer realm=\"sigil\", error=\"{e}\""),
        None => "Bearer realm=\"sigil\"".to_owned(),
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.insert_header((header::WWW_AUTHENTICATE, v));
    }
    match error {
        Some(e) => resp.json(serde_json::json!({"error": e})),
        None => resp.finish(),
    }
}

/// The bearer token from `Authorization: Bearer …` (RFC 6750 §2.1).
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The userinfo endpoint, under its rate limits (`rate_limit`): per token subject, and per
/// address while no valid token was shown.
///
/// A refused token gets the RFC 6750 challenge; when Sigil cannot answer, the API error
/// (`ApiError`: 503 with `Retry-After`, or 500).
pub async fn userinfo(req: HttpRequest, ctx: web::Data<AppState>, log: LogFields) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "userinfo");
    let result = answer(&req, &ctx, &log, &mut limits).await;
    limits.finish_api(result).await
}

async fn answer(
    req: &HttpRequest,
    ctx: &AppState,
    log: &LogFields,
    limits: &mut Limits<'_>,
) -> Result<HttpResponse, ApiError> {
    use actix_web::http::StatusCode;
    limits.global().await?;
    let Some(token) = bearer(req) else {
        return Ok(challenge(None, StatusCode::UNAUTHORIZED));
    };
    let claims = match ctx.own_tokens.verify(ctx, token) {
        Ok(c) => c,
        Err(BearerError::InvalidToken(reason)) => {
            tracing::info!(reason = %reason, "userinfo: token refused");
            log.record("outcome", "invalid_token");
            return Ok(challenge(Some("invalid_token"), StatusCode::UNAUTHORIZED));
        }
        Err(BearerError::Unavailable(cause)) => return Err(OAuthError::Unavailable(cause).into()),
    };
    limits
        .principal(Class::UserinfoPerSubject, &claims.sub)
        .await?;
    if let Some(c) = &claims.client_id {
        log.record("client_id", c.as_str());
        // Only a browser request needs to know the token's client (CORS).
        if super::cors::has_origin(req)
            && let Ok(Some(reg)) = ctx.clients.get(&ctx.store, c.as_str()).await
        {
            super::cors::allow_client(req, &reg);
        }
    }
    if crate::oauth::bearer::is_revoked(ctx, &claims).await? {
        return Ok(challenge(Some("invalid_token"), StatusCode::UNAUTHORIZED));
    }
    if !claims.has_scope("openid") {
        return Ok(challenge(Some("insufficient_scope"), StatusCode::FORBIDDEN));
    }
    let sub = claims.sub.clone();
    let user = match ctx
        .store
        .run(move |c| user_store::find_by_id(c, &sub))
        .await
    {
        Ok(Some(u)) if crate::oauth::bearer::user_may_hold(&u, claims.iat) => u,
        Ok(_) => return Ok(challenge(Some("invalid_token"), StatusCode::UNAUTHORIZED)),
        Err(e) => return Err(OAuthError::from(e).into()),
    };
    let roles: Vec<String> = user.roles.iter().map(|r| r.as_str().to_owned()).collect();
    let aud: Vec<String> = claims.aud.iter().map(str::to_owned).collect();
    let permissions = ctx.authz.load().permissions(&roles, &aud);
    let body = UserInfo {
        claims: user.scoped_claims(|s| claims.has_scope(s)),
        sub: user.id,
        roles,
        permissions,
    };
    log.record("outcome", "ok");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body))
}
