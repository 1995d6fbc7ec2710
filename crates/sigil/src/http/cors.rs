//! CORS (Fetch standard), in one middleware wrapped once in `startup.rs`, for the endpoints a
//! browser app (a `--public` client, or any client's web front end) calls directly:
//!
//! * discovery and `/jwks.json` answer any origin (`Access-Control-Allow-Origin: *`, never with
//!   credentials): they are public documents;
//! * `/token`, `/userinfo`, `/revoke` and `/introspect` answer only a client's web origins (its
//!   `--web-origin`s and the origins of its redirect URIs). A preflight names no client, so it is
//!   answered when *any* client registered the origin (a set kept in memory by the client cache);
//!   the actual request is answered only when the origin is one of the client that authenticated,
//!   or whose access token it is, which the handler records with [`allow_client`];
//! * everything else (`/authorize`, the login form, consent, logout, every page, `/metrics`)
//!   sends no CORS headers at all.
//!
//! No cookie is involved on these endpoints (client credentials and bearer tokens travel in
//! headers or the body), so `Access-Control-Allow-Credentials` is never sent.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::oauth::clients::RegisteredClient;
use crate::state::AppState;

/// How long a browser may cache a preflight answer, seconds.
const PREFLIGHT_MAX_AGE: &str = "600";
/// Response headers a browser app may read besides the CORS-safelisted ones.
const EXPOSE_CLIENT: &str =
    "WWW-Authenticate, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset";
/// Request headers a browser app may send to the client endpoints.
const ALLOW_HEADERS_CLIENT: &str = "Authorization, Content-Type";

/// Which CORS answer a path gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Any origin (discovery, JWKS).
    Public,
    /// The web origins of the client concerned, with these methods.
    Client(&'static str),
    /// No CORS headers.
    None,
}

/// The policy for a request path.
pub fn policy(path: &str) -> Policy {
    match path {
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/jwks.json" => Policy::Public,
        "/userinfo" => Policy::Client("GET, POST"),
        "/token" | "/revoke" | "/introspect" => Policy::Client("POST"),
        _ => Policy::None,
    }
}

/// The client a response on a client endpoint belongs to, left on the request by its handler.
#[derive(Debug, Clone)]
struct CorsClient(Arc<RegisteredClient>);

/// Record that this request's response belongs to `client` (it authenticated, or the bearer
/// token was issued to it), so a browser on one of its web origins may read it.
pub fn allow_client(req: &HttpRequest, client: &Arc<RegisteredClient>) {
    if req.headers().contains_key(header::ORIGIN) {
        req.extensions_mut().insert(CorsClient(client.clone()));
    }
}

/// Whether a request carries an `Origin` (only then is a CORS answer worth working out).
pub fn has_origin(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::ORIGIN)
}

fn origin_of(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight(req: &ServiceRequest, policy: Policy) -> HttpResponse {
    let mut resp = HttpResponse::NoContent();
    match policy {
        Policy::Public => {
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"));
            // Whatever headers the app wants to send to a public document (If-None-Match, ...).
            if let Some(h) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                resp.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone()));
            }
            resp.finish()
        }
        Policy::Client(methods) => {
            resp.insert_header((header::VARY, "Origin"));
            let registered = origin_of(req).is_some_and(|origin| {
                req.app_data::<web::Data<AppState>>()
                    .is_some_and(|ctx| ctx.clients.any_client_allows_origin(&origin))
            });
            if !registered {
                let mut refused = HttpResponse::build(StatusCode::FORBIDDEN);
                refused.insert_header((header::VARY, "Origin"));
                return refused.finish();
            }
            if let Some(origin) = req.headers().get(header::ORIGIN) {
                resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
            }
            resp.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS_CLIENT))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE));
            resp.finish()
        }
        Policy::None => HttpResponse::NoContent().finish(),
    }
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let policy = policy(req.path());
    if policy == Policy::None {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    if is_preflight(&req) {
        let resp = preflight(&req, policy);
        return Ok(req.into_response(resp).map_into_right_body());
    }
    let origin = origin_of(&req);
    let mut res = next.call(req).await?;
    match policy {
        Policy::Public => {
            let h = res.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("ETag"),
            );
        }
        Policy::Client(_) => {
            let allowed = origin.as_deref().and_then(|origin| {
                let ext = res.request().extensions();
                let client = ext.get::<CorsClient>()?;
                client
                    .0
                    .allows_origin(origin)
                    .then(|| HeaderValue::from_str(origin).ok())
                    .flatten()
            });
            let h = res.headers_mut();
            h.append(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = allowed {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                h.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSE_CLIENT),
                );
            }
        }
        Policy::None => {}
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_path() {
        assert_eq!(policy("/jwks.json"), Policy::Public);
        assert_eq!(policy("/.well-known/openid-configuration"), Policy::Public);
        assert_eq!(policy("/token"), Policy::Client("POST"));
        assert_eq!(policy("/userinfo"), Policy::Client("GET, POST"));
        for none in [
            "/authorize",
            "/login",
            "/consent",
            "/logout",
            "/metrics",
            "/",
            "/token/",
        ] {
            assert_eq!(policy(none), Policy::None, "{none}");
        }
    }
}
