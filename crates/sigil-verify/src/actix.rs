//! actix-web integration (feature `actix`): the [`Authenticated`] extractor and the
//! [`Require`] guard.
//!
//! Register the verifier as app data (`App::new().app_data(verifier.clone())`, or wrapped in
//! `web::Data`). Failures answer as RFC 6750 says: `401` with
//! `WWW-Authenticate: Bearer error="invalid_token"` for a bad token, `401` with a bare
//! `WWW-Authenticate: Bearer` when no token was sent, `403` with
//! `error="insufficient_scope"` when a [`Require`] guard or
//! [`Authenticated::require_scope`] is not met.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use sigil_verify::actix::{Authenticated, Require};
//!
//! async fn orders(auth: Authenticated) -> String {
//!     format!("hello {}", auth.sub)
//! }
//!
//! # async fn run(verifier: sigil_verify::Verifier) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new().app_data(verifier.clone()).service(
//!         web::scope("/orders")
//!             .wrap(Require::scope("orders:read"))
//!             .route("", web::get().to(orders)),
//!     )
//! })
//! .bind(("127.0.0.1", 8081))?
//! .run()
//! .await
//! # }
//! ```

use std::fmt;
use std::future::{Future, Ready, ready};
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use crate::{Claims, Error, ErrorKind, Verifier};

/// A verified bearer token's claims. Dereferences to [`Claims`].
#[derive(Clone, Debug)]
pub struct Authenticated(pub Claims);

impl Deref for Authenticated {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Authenticated {
    /// The claims.
    pub fn into_inner(self) -> Claims {
        self.0
    }

    /// `Ok` if the token has scope `s`, else a 403 `insufficient_scope` error.
    pub fn require_scope(&self, s: &str) -> Result<(), AuthError> {
        check(&self.0, &Requirement::Scope(s.to_owned()))
    }

    /// `Ok` if the token has role `r`, else a 403 `insufficient_scope` error.
    pub fn require_role(&self, r: &str) -> Result<(), AuthError> {
        check(&self.0, &Requirement::Role(r.to_owned()))
    }

    /// `Ok` if the token has permission `p`, else a 403 `insufficient_scope` error.
    pub fn require_permission(&self, p: &str) -> Result<(), AuthError> {
        check(&self.0, &Requirement::Permission(p.to_owned()))
    }
}

/// The error the extractor and the guard answer with; its response follows RFC 6750 §3.
#[derive(Debug)]
pub struct AuthError {
    error: Error,
    scope: Option<String>,
}

impl AuthError {
    /// The underlying verification error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl From<Error> for AuthError {
    fn from(error: Error) -> AuthError {
        AuthError { error, scope: None }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// Makes text safe inside a quoted-string of `WWW-Authenticate`.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self.error.kind() {
            ErrorKind::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ErrorKind::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::KeySource(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut res = HttpResponse::build(status);
        let challenge = match self.error.kind() {
            // RFC 6750 §3.1: no error code when the request had no token at all.
            ErrorKind::MissingToken => "Bearer".to_owned(),
            ErrorKind::Config(_) => String::new(),
            _ => {
                let mut c = format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.error.rfc6750_code(),
                    quoted(&self.error.to_string())
                );
                if let Some(scope) = &self.scope {
                    c.push_str(&format!(", scope=\"{}\"", quoted(scope)));
                }
                c
            }
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            if !challenge.is_empty() {
                res.insert_header((header::WWW_AUTHENTICATE, v));
            }
        }
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        if matches!(
            self.error.kind(),
            ErrorKind::MissingToken | ErrorKind::Config(_)
        ) {
            return res.finish();
        }
        res.json(serde_json::json!({
            "error": self.error.rfc6750_code(),
            "error_description": self.error.to_string(),
        }))
    }
}

fn verifier_of(req: &HttpRequest) -> Option<Verifier> {
    req.app_data::<Verifier>().cloned().or_else(|| {
        req.app_data::<web::Data<Verifier>>()
            .map(|d| d.get_ref().clone())
    })
}

/// The bearer token of `req` (RFC 6750 §2.1 header form only; the scheme is
/// case-insensitive).
pub fn bearer_token(req: &HttpRequest) -> Result<&str, Error> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let value = values
        .next()
        .ok_or_else(|| Error::new(ErrorKind::MissingToken))?;
    if values.next().is_some() {
        return Err(Error::malformed("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Error::malformed("Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim_start_matches(' ');
            if token.is_empty() {
                Err(Error::new(ErrorKind::MissingToken))
            } else {
                Ok(token)
            }
        }
        _ => Err(Error::new(ErrorKind::MissingToken)),
    }
}

/// Verifies the request's bearer token, reusing claims a [`Require`] guard already verified.
fn authenticate(req: &HttpRequest) -> Result<Claims, AuthError> {
    if let Some(claims) = req.extensions().get::<Claims>() {
        return Ok(claims.clone());
    }
    let verifier = verifier_of(req).ok_or_else(|| {
        Error::new(ErrorKind::Config(
            "no sigil_verify::Verifier registered as app data",
        ))
    })?;
    let token = bearer_token(req)?;
    Ok(verifier.verify(token)?)
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Ready<Result<Authenticated, AuthError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(Authenticated))
    }
}

#[derive(Clone, Debug)]
enum Requirement {
    Any,
    Scope(String),
    Role(String),
    Permission(String),
}

fn check(claims: &Claims, what: &Requirement) -> Result<(), AuthError> {
    let (ok, name) = match what {
        Requirement::Any => return Ok(()),
        Requirement::Scope(s) => (claims.has_scope(s), s),
        Requirement::Role(r) => (claims.has_role(r), r),
        Requirement::Permission(p) => (claims.has_permission(p), p),
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError {
            error: Error::new(ErrorKind::InsufficientScope(name.clone())),
            scope: matches!(what, Requirement::Scope(_)).then(|| name.clone()),
        })
    }
}

/// Middleware that lets a request through only with a valid bearer token that has a scope, a
/// role or a permission; the verified [`Claims`] are stored in the request extensions, where
/// [`Authenticated`] picks them up without verifying twice.
#[derive(Clone, Debug)]
pub struct Require(Requirement);

impl Require {
    /// Any valid token.
    pub fn token() -> Require {
        Require(Requirement::Any)
    }

    /// A valid token whose `scope` contains `s`.
    pub fn scope(s: impl Into<String>) -> Require {
        Require(Requirement::Scope(s.into()))
    }

    /// A valid token whose `roles` contain `r`.
    pub fn role(r: impl Into<String>) -> Require {
        Require(Requirement::Role(r.into()))
    }

    /// A valid token whose `permissions` contain `p`.
    pub fn permission(p: impl Into<String>) -> Require {
        Require(Requirement::Permission(p.into()))
    }
}

impl<S, B> Transform<S, ServiceRequest> for Require
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<RequireMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireMiddleware {
            service: Rc::new(service),
            what: self.0.clone(),
        }))
    }
}

/// The service [`Require`] wraps around a route.
#[derive(Debug)]
pub struct RequireMiddleware<S> {
    service: Rc<S>,
    what: Requirement,
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for RequireMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let verdict = authenticate(req.request()).and_then(|c| check(&c, &self.what).map(|()| c));
        match verdict {
            Ok(claims) => {
                req.extensions_mut().insert(claims);
                let fut = self.service.call(req);
                Box::pin(async move { fut.await.map(ServiceResponse::map_into_left_body) })
            }
            Err(e) => {
                let res = e.error_response();
                Box::pin(ready(Ok(req.into_response(res).map_into_right_body())))
            }
        }
    }
}
