//! actix-web integration (feature `actix`): the [`Authenticated`] extractor, the typed guards
//! [`RequirePermission`], [`RequireScope`] and [`RequireRole`] (handler arguments), and the
//! [`Require`] middleware (also built by `RequirePermission::new("...")` and its siblings).
//!
//! Register the verifier as app data (`App::new().app_data(verifier.clone())`, or wrapped in
//! `web::Data`). Failures answer as RFC 6750 says, exactly as [`Error::http_status`],
//! [`Error::www_authenticate`] and [`Error::rfc6750_body`] describe for other frameworks:
//! `401` with a bare `WWW-Authenticate: Bearer` when no token was sent, `401` with
//! `Bearer error="invalid_token"` for a bad token, `403` with `error="insufficient_scope"`
//! (and `scope="..."` for a scope) when a guard is not met.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use sigil_verify::actix::{Authenticated, RequirePermission, RequireRole};
//!
//! sigil_verify::permission!(OrdersRead = "orders:read");
//!
//! // A typed guard as a handler argument: verified, and holding `orders:read` (or `orders:*`).
//! async fn orders(auth: RequirePermission<OrdersRead>) -> String {
//!     format!("orders of {}", auth.sub)
//! }
//!
//! async fn admin(auth: Authenticated) -> String {
//!     format!("hello {}", auth.sub)
//! }
//!
//! # async fn run(verifier: sigil_verify::Verifier) -> std::io::Result<()> {
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(verifier.clone())
//!         .route("/orders", web::get().to(orders))
//!         // The same checks as middleware, for everything under a scope.
//!         .service(
//!             web::scope("/admin")
//!                 .wrap(RequireRole::new("admin"))
//!                 .route("", web::get().to(admin)),
//!         )
//! })
//! .bind(("127.0.0.1", 8081))?
//! .run()
//! .await
//! # }
//! ```
//!
//! A complete resource server is `examples/resource_server.rs`.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

use crate::{Claims, Error, ErrorKind, PermissionName, RoleName, ScopeName, Verifier};

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

    /// `Ok` if the token has scope `s`, else a 403 `insufficient_scope` error (with
    /// `scope="s"`).
    pub fn require_scope(&self, s: &str) -> Result<(), AuthError> {
        Ok(self.0.require_scope(s)?)
    }

    /// `Ok` if the token has role `r`, else a 403 `insufficient_scope` error.
    pub fn require_role(&self, r: &str) -> Result<(), AuthError> {
        Ok(self.0.require_role(r)?)
    }

    /// `Ok` if the token's permissions grant `p` (wildcards included, see
    /// [`Claims::has_permission`]), else a 403 `insufficient_scope` error.
    pub fn require_permission(&self, p: &str) -> Result<(), AuthError> {
        Ok(self.0.require_permission(p)?)
    }
}

/// The error the extractors and the guards answer with; its response is the one
/// [`Error::http_status`], [`Error::www_authenticate`] and [`Error::rfc6750_body`] describe
/// (RFC 6750 §3), plus `Cache-Control: no-store`.
#[derive(Debug)]
pub struct AuthError {
    error: Error,
}

impl AuthError {
    /// The underlying verification error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl From<Error> for AuthError {
    fn from(error: Error) -> AuthError {
        AuthError { error }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.error.http_status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(v) = self
            .error
            .www_authenticate()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.insert_header((header::WWW_AUTHENTICATE, v));
        }
        res.insert_header((header::CACHE_CONTROL, "no-store"));
        match self.error.rfc6750_body() {
            Some(body) => res.insert_header(ContentType::json()).body(body),
            None => res.finish(),
        }
    }
}

fn verifier_of(req: &HttpRequest) -> Option<Verifier> {
    req.app_data::<Verifier>().cloned().or_else(|| {
        req.app_data::<web::Data<Verifier>>()
            .map(|d| d.get_ref().clone())
    })
}

/// The bearer token of `req` (RFC 6750 §2.1 header form only; the scheme is
/// case-insensitive). More than one `Authorization` header, or one that is not visible ASCII,
/// is malformed; no header, another scheme or an empty token is [`ErrorKind::MissingToken`].
pub fn bearer_token(req: &HttpRequest) -> Result<&str, Error> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let value = values.next();
    if values.next().is_some() {
        return Err(Error::malformed("more than one Authorization header"));
    }
    let value = value
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::malformed("Authorization header is not ASCII"))
        })
        .transpose()?;
    crate::verifier::bearer_token(value)
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
    match what {
        Requirement::Any => Ok(()),
        Requirement::Scope(s) => Ok(claims.require_scope(s)?),
        Requirement::Role(r) => Ok(claims.require_role(r)?),
        Requirement::Permission(p) => Ok(claims.require_permission(p)?),
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

    /// A valid token whose `permissions` grant `p` (wildcards included, see
    /// [`Claims::has_permission`]).
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

/// The typed guards: one extractor type per kind of requirement, generic over the name.
macro_rules! typed_guard {
    (
        $(#[$doc:meta])*
        $guard:ident<$param:ident: $trait:ident>, $what:literal, $require:ident, $constructor:ident
    ) => {
        $(#[$doc])*
        pub struct $guard<$param> {
            claims: Claims,
            name: PhantomData<fn() -> $param>,
        }

        impl $guard<()> {
            #[doc = concat!(
                "Middleware that lets through only a valid token with the ", $what,
                " given: the same as [`Require::", stringify!($constructor), "`], for `.wrap(",
                stringify!($guard), "::new(...))` on a scope or a resource. The claims it verified ",
                "are reused by the extractors ([`Authenticated`] and the typed guards)."
            )]
            #[expect(clippy::new_ret_no_self, reason = "the untyped form is the Require middleware")]
            pub fn new($constructor: impl Into<String>) -> Require {
                Require::$constructor($constructor)
            }
        }

        impl<$param> $guard<$param> {
            /// The verified claims.
            pub fn into_inner(self) -> Claims {
                self.claims
            }
        }

        impl<$param> Deref for $guard<$param> {
            type Target = Claims;

            fn deref(&self) -> &Claims {
                &self.claims
            }
        }

        impl<$param> Clone for $guard<$param> {
            fn clone(&self) -> Self {
                $guard {
                    claims: self.claims.clone(),
                    name: PhantomData,
                }
            }
        }

        impl<$param: $trait> fmt::Debug for $guard<$param> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field($what, &$param::NAME)
                    .field("claims", &self.claims)
                    .finish()
            }
        }

        impl<$param: $trait> FromRequest for $guard<$param> {
            type Error = AuthError;
            type Future = Ready<Result<Self, AuthError>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                ready(authenticate(req).and_then(|claims| {
                    claims.$require($param::NAME)?;
                    Ok($guard {
                        claims,
                        name: PhantomData,
                    })
                }))
            }
        }
    };
}

typed_guard! {
    /// A handler argument that verifies the bearer token and requires the permission `P` names
    /// (wildcards included: a held `job:*` grants `job:run`); dereferences to [`Claims`].
    ///
    /// Declare `P` with [`permission!`](crate::permission!). No token: 401 with
    /// `WWW-Authenticate: Bearer`; a bad token: 401 `error="invalid_token"`; a valid token
    /// without the permission: 403 `error="insufficient_scope"`.
    ///
    /// ```
    /// use sigil_verify::actix::RequirePermission;
    /// sigil_verify::permission!(OrdersRead = "orders:read");
    ///
    /// async fn orders(auth: RequirePermission<OrdersRead>) -> String {
    ///     format!("orders of {}", auth.sub)
    /// }
    /// # let _ = actix_web::web::get().to(orders);
    /// ```
    ///
    /// `RequirePermission::new("orders:read")` is the same check as middleware (a [`Require`]).
    RequirePermission<P: PermissionName>, "permission", require_permission, permission
}

typed_guard! {
    /// A handler argument that verifies the bearer token and requires the scope `S` names;
    /// dereferences to [`Claims`].
    ///
    /// Declare `S` with [`scope!`](crate::scope!). No token: 401 with
    /// `WWW-Authenticate: Bearer`; a bad token: 401 `error="invalid_token"`; a valid token
    /// without the scope: 403 `error="insufficient_scope"` with `scope="<S>"`.
    ///
    /// ```
    /// use sigil_verify::actix::RequireScope;
    /// sigil_verify::scope!(Profile = "profile");
    ///
    /// async fn me(auth: RequireScope<Profile>) -> String {
    ///     auth.sub.clone()
    /// }
    /// # let _ = actix_web::web::get().to(me);
    /// ```
    ///
    /// `RequireScope::new("profile")` is the same check as middleware (a [`Require`]).
    RequireScope<S: ScopeName>, "scope", require_scope, scope
}

typed_guard! {
    /// A handler argument that verifies the bearer token and requires the role `R` names;
    /// dereferences to [`Claims`].
    ///
    /// Declare `R` with [`role!`](crate::role!). No token: 401 with
    /// `WWW-Authenticate: Bearer`; a bad token: 401 `error="invalid_token"`; a valid token
    /// without the role: 403 `error="insufficient_scope"`.
    ///
    /// ```
    /// use sigil_verify::actix::RequireRole;
    /// sigil_verify::role!(Admin = "admin");
    ///
    /// async fn admin(auth: RequireRole<Admin>) -> String {
    ///     auth.sub.clone()
    /// }
    /// # let _ = actix_web::web::get().to(admin);
    /// ```
    ///
    /// `RequireRole::new("admin")` is the same check as middleware (a [`Require`]).
    RequireRole<R: RoleName>, "role", require_role, role
}
