//! The security headers every response carries, set once here (wrapped around the whole app in
//! `startup.rs`) instead of per handler, so 404s, errors and `/metrics` get them too:
//! `X-Content-Type-Options: nosniff` always; `Strict-Transport-Security: max-age=31536000` when
//! the issuer is `https`; `Cross-Origin-Opener-Policy: same-origin` on HTML pages. The
//! page-specific headers (CSP, frame and referrer policy) stay with the pages (`pages.rs`).
//!
//! [`Security`] is the middleware itself (`App::wrap`): a `Transform` whose service returns a
//! small concrete future, so a request costs no allocation here.
//!
//! While a graceful stop drains (`AppState::draining`), every response also closes its
//! connection, so keep-alive clients reconnect (to another replica) before the listener closes.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pin_project_lite::pin_project;

/// One year, the least HSTS preload lists accept.
pub const HSTS: &str = "max-age=31536000";

/// The middleware, and what it adds; fixed at start-up from the issuer.
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    /// Send `Strict-Transport-Security` (the issuer is `https`).
    pub hsts: bool,
}

impl SecurityHeaders {
    /// The policy for an issuer URL.
    pub fn for_issuer(issuer: &str) -> SecurityHeaders {
        SecurityHeaders {
            hsts: issuer.starts_with("https://"),
        }
    }

    /// Add the headers to a response's header map.
    pub fn apply(self, headers: &mut HeaderMap) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if self.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        // The media type, before any parameters: `text/html; charset=utf-8`.
        let html = headers.get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .split(|b| *b == b';')
                .next()
                .is_some_and(|m| m.trim_ascii().eq_ignore_ascii_case(b"text/html"))
        });
        if html {
            headers.insert(
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            );
        }
    }
}

/// The middleware: the headers of [`SecurityHeaders`], and `Connection: close` while draining.
#[derive(Debug, Clone)]
pub struct Security {
    /// What every response gets.
    pub policy: SecurityHeaders,
    /// Set when a graceful stop begins.
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<S, B> Transform<S, ServiceRequest> for Security
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = SecurityHeadersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SecurityHeadersService {
            service,
            policy: self.policy,
            draining: self.draining.clone(),
        }))
    }
}

/// The service [`Security`] wraps around the app.
#[derive(Debug)]
pub struct SecurityHeadersService<S> {
    service: S,
    policy: SecurityHeaders,
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<S, B> Service<ServiceRequest> for SecurityHeadersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = WithSecurityHeaders<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        WithSecurityHeaders {
            inner: self.service.call(req),
            policy: self.policy,
            close: self.draining.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

pin_project! {
    /// The inner service's answer, given the headers when it is ready.
    pub struct WithSecurityHeaders<F> {
        #[pin]
        inner: F,
        policy: SecurityHeaders,
        close: bool,
    }
}

impl<F, B> Future for WithSecurityHeaders<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Poll::Ready(result) = this.inner.poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(match result {
            Ok(mut res) => {
                this.policy.apply(res.headers_mut());
                if *this.close {
                    res.response_mut()
                        .head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                }
                Ok(res)
            }
            // An error that reaches this far (rather than a response) is given its response
            // here, so that response carries the headers as well.
            Err(e) => {
                let mut resp = e.error_response();
                this.policy.apply(resp.headers_mut());
                if *this.close {
                    resp.head_mut()
                        .set_connection_type(actix_web::http::ConnectionType::Close);
                }
                Err(InternalError::from_response(e, resp).into())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_for(content_type: Option<&'static str>, hsts: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        SecurityHeaders { hsts }.apply(&mut h);
        h
    }

    #[test]
    fn nosniff_always_hsts_for_https_coop_on_html() {
        let json = headers_for(Some("application/json"), false);
        assert_eq!(
            json.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
        assert!(json.get("strict-transport-security").is_none());
        assert!(json.get("cross-origin-opener-policy").is_none());
        let html = headers_for(Some("Text/HTML; charset=utf-8"), true);
        assert_eq!(
            html.get("cross-origin-opener-policy").map(|v| v.as_bytes()),
            Some(&b"same-origin"[..])
        );
        assert_eq!(
            html.get("strict-transport-security").map(|v| v.as_bytes()),
            Some(HSTS.as_bytes())
        );
        assert!(
            headers_for(None, false)
                .get("x-content-type-options")
                .is_some()
        );
        assert!(SecurityHeaders::for_issuer("https://id.example").hsts);
        assert!(!SecurityHeaders::for_issuer("http://127.0.0.1:8080").hsts);
    }
}
