//! The security headers every response carries, set once here (wrapped around the whole app in
//! `startup.rs`) instead of per handler, so 404s, errors and `/metrics` get them too:
//! `X-Content-Type-Options: nosniff` always; `Strict-Transport-Security: max-age=31536000` when
//! the issuer is `https`; `Cross-Origin-Opener-Policy: same-origin` on HTML pages. The
//! page-specific headers (CSP, frame and referrer policy) stay with the pages (`pages.rs`).
//!
//! While a graceful stop drains (`AppState::draining`), every response also closes its
//! connection, so keep-alive clients reconnect (to another replica) before the listener closes.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// One year, the least HSTS preload lists accept.
pub const HSTS: &str = "max-age=31536000";

/// What the middleware adds; fixed at start-up from the issuer.
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
        let html = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
            });
        if html {
            headers.insert(
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            );
        }
    }
}

/// The middleware (`actix_web::middleware::from_fn`). An error that reaches it (rather than a
/// response) is given its response here, so that response carries the headers as well.
pub async fn security_headers(
    policy: SecurityHeaders,
    draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let close = || draining.load(std::sync::atomic::Ordering::Relaxed);
    match next.call(req).await {
        Ok(mut res) => {
            policy.apply(res.headers_mut());
            if close() {
                res.response_mut()
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
            Ok(res)
        }
        Err(e) => {
            let mut resp = e.error_response();
            policy.apply(resp.headers_mut());
            if close() {
                resp.head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
            Err(InternalError::from_response(e, resp).into())
        }
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
