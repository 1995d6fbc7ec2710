//! `POST /token`: read the form, authenticate the client, run the grant; under the rate limits
//! of `rate_limit` (the client's, and its address's failures).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::cors;
use super::error::ApiError;
use super::form::{self, Form};
use super::rate_limit::Limits;
use super::request_log::LogFields;
use crate::domain::{ClientId, GrantType};
use crate::oauth::OAuthError;
use crate::oauth::authorization_code::{self, CodeRequest};
use crate::oauth::client_auth::{self, Credentials, JWT_BEARER};
use crate::oauth::client_credentials::{self, ClientCredentialsRequest};
use crate::oauth::refresh;
use crate::ratelimit::Class;
use crate::state::AppState;

/// The token endpoint, under its rate limits (`http::rate_limit`).
pub async fn token(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppState>,
    log: LogFields,
) -> HttpResponse {
    let mut limits = Limits::new(&req, &ctx, "token");
    let result = issue(&req, payload, &ctx, &log, &mut limits).await;
    limits.finish_api(result).await
}

async fn issue(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppState,
    log: &LogFields,
    limits: &mut Limits<'_>,
) -> Result<HttpResponse, ApiError> {
    limits.global().await?;
    // An address over the client-authentication failure limit is refused before anything of
    // its request is read or checked.
    limits.not_refused(Class::ClientAuthFailuresPerIp).await?;
    let form = form::read(req, payload, ctx.settings.http.max_body).await?;
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
    let creds = credentials(req, &form)?;
    let reg = client_auth::authenticate(ctx, creds).await?;
    cors::allow_client(req, &reg);
    log.record("client_id", reg.client.id.as_str());
    limits
        .principal(Class::TokenPerClient, reg.client.id.as_str())
        .await?;
    let response = match grant {
        GrantType::ClientCredentials => client_credentials::grant(
            ctx,
            &reg,
            ClientCredentialsRequest {
                scope: form.get("scope").map(str::to_owned),
                audiences,
            },
        )?,
        GrantType::AuthorizationCode => {
            authorization_code::grant(
                ctx,
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
                ctx,
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

/// A client id as sent: one [`ClientId::parse`] refuses authenticates nobody.
fn client_id(raw: &str) -> Result<ClientId, OAuthError> {
    ClientId::parse(raw).map_err(|_| OAuthError::InvalidClient("client authentication failed"))
}

/// Work out which client authentication method was used; more than one is an error.
pub fn credentials(req: &HttpRequest, form: &Form) -> Result<Credentials, ApiError> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            parse_basic(value.as_bytes()).ok_or(OAuthError::InvalidClient(
                "the Authorization header is malformed",
            ))?,
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
        return Ok(Credentials::Basic {
            id: client_id(&id)?,
            secret,
        });
    }
    if let Some(secret) = form_secret {
        let id = form_id.ok_or(OAuthError::InvalidRequest(
            "client_id is required with client_secret",
        ))?;
        return Ok(Credentials::Post {
            id: client_id(id)?,
            secret: secret.to_owned(),
        });
    }
    if let Some(assertion) = assertion {
        if form.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::InvalidRequest("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer").into());
        }
        return Ok(Credentials::Assertion {
            assertion: assertion.to_owned(),
            id: form_id.map(client_id).transpose()?,
        });
    }
    Ok(match form_id {
        Some(id) => Credentials::IdOnly(client_id(id)?),
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
        // Whether the id is a client id is `ClientId::parse`'s call, in `credentials`.
        assert_eq!(
            parse_basic(format!("Basic {}", STANDARD.encode(":secret")).as_bytes()),
            Some((String::new(), "secret".to_owned()))
        );
    }

    #[test]
    fn every_method_names_its_client_by_the_client_id_rule() -> Result<(), ApiError> {
        use actix_web::test::TestRequest;
        let long = "c".repeat(129);
        let basic = |id: &str| format!("Basic {}", STANDARD.encode(format!("{id}:s")));
        for bad in ["", "a%20b", "a%01", long.as_str()] {
            let decoded = form::decode(bad.as_bytes()).map_err(ApiError::from)?;
            let with_header = TestRequest::default()
                .insert_header((header::AUTHORIZATION, basic(bad)))
                .to_http_request();
            let plain = TestRequest::default().to_http_request();
            let mut cases = vec![(&with_header, String::new())];
            // An empty form field is an absent one (`invalid_request`), not a client id.
            if !bad.is_empty() {
                cases.extend([
                    (&plain, format!("client_id={bad}&client_secret=s")),
                    (&plain, format!("client_id={bad}")),
                    (
                        &plain,
                        format!("client_id={bad}&client_assertion=a.b.c&client_assertion_type={JWT_BEARER}"),
                    ),
                ]);
            }
            for (req, body) in cases {
                let form = form::parse(body.as_bytes()).map_err(ApiError::from)?;
                let got = credentials(req, &form);
                assert!(
                    matches!(got, Err(ApiError::OAuth(OAuthError::InvalidClient(_)))),
                    "{decoded:?} in {body:?}: {got:?}"
                );
            }
        }
        let ok = TestRequest::default()
            .insert_header((header::AUTHORIZATION, basic("sgl_a")))
            .to_http_request();
        let form = form::parse(b"").map_err(ApiError::from)?;
        assert!(matches!(
            credentials(&ok, &form)?,
            Credentials::Basic { id, .. } if id.as_str() == "sgl_a"
        ));
        Ok(())
    }
}
