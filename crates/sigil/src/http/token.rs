//! `POST /token`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::cors;
use super::error::ApiError;
use super::form::{self, Form};
use super::request_log::LogFields;
use crate::domain::GrantType;
use crate::oauth::OAuthError;
use crate::oauth::authorization_code::{self, CodeRequest};
use crate::oauth::client_auth::{self, Credentials, JWT_BEARER};
use crate::oauth::client_credentials::{self, ClientCredentialsRequest};
use crate::oauth::refresh;
use crate::state::AppState;

/// The token endpoint.
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> Result<HttpResponse, ApiError> {
    let form = form::read(&req, payload, ctx.settings.http.max_body).await?;
    let grant = match form.get("grant_type") {
        None => return Err(OAuthError::InvalidRequest("grant_type is required").into()),
        Some(g) => GrantType::parse(g).ok_or(OAuthError::UnsupportedGrantType)?,
    };
    log.record("grant", grant.as_str());
    // `resource` (RFC 8707, may repeat) and `audience` narrow the access token on every grant.
    let audiences: Vec<String> = form
        .all("resource")
        .into_iter()
        .chain(form.get("audience").map(str::to_owned))
        .collect();
    let creds = credentials(&req, &form)?;
    let reg = client_auth::authenticate(&ctx, creds).await?;
    cors::allow_client(&req, &reg);
    log.record("client_id", reg.client.id.as_str());
    let response = match grant {
        GrantType::ClientCredentials => client_credentials::grant(
            &ctx,
            &reg,
            ClientCredentialsRequest {
                scope: form.get("scope").map(str::to_owned),
                audiences,
            },
        )?,
        GrantType::AuthorizationCode => {
            authorization_code::grant(
                &ctx,
                &reg,
                CodeRequest {
                    code: form.get("code").map(str::to_owned),
                    redirect_uri: form.get("redirect_uri").map(str::to_owned),
                    code_verifier: form.get("code_verifier").map(str::to_owned),
                    audiences,
                },
            )
            .await?
        }
        GrantType::RefreshToken => {
            refresh::grant(
                &ctx,
                &reg,
                form.get("refresh_token"),
                form.get("scope"),
                &audiences,
            )
            .await?
        }
    };
    log.record("outcome", "issued");
    ctx.metrics.token_issued(grant);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(response))
}

/// Work out which client authentication method was used; more than one is an error.
pub fn credentials(req: &HttpRequest, form: &Form) -> Result<Credentials, ApiError> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            parse_basic(value.as_bytes()).ok_or(OAuthError::InvalidClient {
                description: "the Authorization header is malformed",
                basic: true,
            })?,
        ),
    };
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let methods = usize::from(basic.is_some())
        + usize::from(form_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(
            OAuthError::InvalidRequest("use exactly one client authentication method").into(),
        );
    }
    if let Some((id, secret)) = basic {
        if form_id.is_some_and(|f| f != id) {
            return Err(OAuthError::InvalidRequest(
                "client_id does not match the Authorization header",
            )
            .into());
        }
        return Ok(Credentials::Basic { id, secret });
    }
    if let Some(secret) = form_secret {
        let id = form_id.ok_or(OAuthError::InvalidRequest(
            "client_id is required with client_secret",
        ))?;
        return Ok(Credentials::Post {
            id: id.to_owned(),
            secret: secret.to_owned(),
        });
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::InvalidRequest("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer").into());
        }
        return Ok(Credentials::Assertion {
            assertion: assertion.to_owned(),
            id: form_id.map(str::to_owned),
        });
    }
    Ok(match form_id {
        Some(id) => Credentials::IdOnly(id.to_owned()),
        None => Credentials::None,
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let pos = decoded.iter().position(|b| *b == b':')?;
    let id = form::decode(&decoded[..pos]).ok()?;
    let secret = form::decode(&decoded[pos + 1..]).ok()?;
    if id.is_empty() {
        return None;
    }
    Some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let enc = STANDARD.encode("sgl_a%2Bb:s%3Ae");
        assert_eq!(
            parse_basic(format!("Basic {enc}").as_bytes()),
            Some(("sgl_a+b".to_owned(), "s:e".to_owned()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        assert_eq!(
            parse_basic(format!("Basic {}", STANDARD.encode("nocolon")).as_bytes()),
            None
        );
        assert_eq!(
            parse_basic(format!("Basic {}", STANDARD.encode(":secret")).as_bytes()),
            None
        );
    }
}
