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
//!
//! [`Cors`] is the middleware (`App::wrap`): a `Transform` whose service answers a preflight
//! itself and otherwise returns a small concrete future that adds the headers, so a request
//! costs no allocation here (an `Origin` is copied only on the client endpoints).

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use pin_project_lite::pin_project;

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

/// The middleware.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cors;

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CorsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorsService { service }))
    }
}

/// The service [`Cors`] wraps around the app.
#[derive(Debug)]
pub struct CorsService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for CorsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = CorsResponse<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let policy = policy(req.path());
        if policy == Policy::None {
            return CorsResponse::Untouched {
                inner: self.service.call(req),
            };
        }
        if is_preflight(&req) {
            let resp = preflight(&req, policy);
            return CorsResponse::Preflight {
                response: Some(req.into_response(resp)),
            };
        }
        // Only a client endpoint compares the origin with the client's, after the handler.
        let origin = match policy {
            Policy::Client(_) => origin_of(&req),
            Policy::Public | Policy::None => None,
        };
        CorsResponse::Actual {
            inner: self.service.call(req),
            policy,
            origin,
        }
    }
}

pin_project! {
    /// What [`CorsService`] answers: the app's response as it is, a preflight answered here, or
    /// the app's response given its CORS headers when it is ready.
    #[project = CorsResponseProj]
    pub enum CorsResponse<F> {
        /// A path without CORS.
        Untouched { #[pin] inner: F },
        /// A preflight (taken out when polled).
        Preflight { response: Option<ServiceResponse<BoxBody>> },
        /// An actual request on a CORS path, and its `Origin` on a client endpoint.
        Actual { #[pin] inner: F, policy: Policy, origin: Option<String> },
    }
}

impl<F, B> Future for CorsResponse<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsResponseProj::Untouched { inner } => inner
                .poll(cx)
                .map(|r| r.map(ServiceResponse::map_into_left_body)),
            CorsResponseProj::Preflight { response } => match response.take() {
                Some(res) => Poll::Ready(Ok(res.map_into_right_body())),
                // Polled again after it was answered: a bug in the caller, not a client's doing.
                None => Poll::Ready(Err(actix_web::error::ErrorInternalServerError(
                    "CORS preflight polled after completion",
                ))),
            },
            CorsResponseProj::Actual {
                inner,
                policy,
                origin,
            } => {
                let Poll::Ready(result) = inner.poll(cx) else {
                    return Poll::Pending;
                };
                Poll::Ready(result.map(|mut res| {
                    add_headers(&mut res, *policy, origin.as_deref());
                    res.map_into_left_body()
                }))
            }
        }
    }
}

/// The CORS headers of an actual request's response.
fn add_headers<B>(res: &mut ServiceResponse<B>, policy: Policy, origin: Option<&str>) {
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
            let allowed = origin.and_then(|origin| {
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
