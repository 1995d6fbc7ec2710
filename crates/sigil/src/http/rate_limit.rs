//! Rate limits at the HTTP edge, for the endpoints the contract names (`/token`, `/introspect`,
//! `/revoke`, `/userinfo`, the login form) and `/authorize`'s failures: one [`Limits`] per
//! request asks [`crate::ratelimit::RateLimits`] as the handler goes, and
//! [`Limits::finish_api`] / [`Limits::finish_page`] settle the response:
//! * a failure the handler did not count itself is counted: `invalid_client` against the
//!   client-authentication failures of the address, any other 4xx against the address's
//!   failures while nobody (client, token subject, sign-in attempt) was identified yet; over
//!   the limit, the answer becomes the 429;
//! * the response gets `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//!   (Unix seconds) of the tightest limit the request met; a 429 also has `Retry-After`
//!   (`http::error`).
//!
//! The address is the client's bucket (`client_ip::bucket`: an IPv4 address or IPv6 /64,
//! behind `http.trusted_proxies` the forwarded client), worked out once and only when needed.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use super::error::{ApiError, PageError};
use crate::cache::{CacheError, RateDecision};
use crate::oauth::OAuthError;
use crate::ratelimit::Class;
use crate::state::AppState;

/// `X-RateLimit-Limit`: requests the period allows.
pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: requests that would pass right after this one.
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: Unix seconds when the whole limit is available again.
pub const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Why a request stops at a limit.
#[derive(Debug)]
pub enum Stop {
    /// Over the limit (429).
    Over(RateDecision),
    /// The counts cannot be reached (503) or refused what Sigil sent (500): fail closed.
    Cache(CacheError),
}

impl From<Stop> for ApiError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Over(d) => ApiError::RateLimited(d),
            Stop::Cache(e) => ApiError::OAuth(e.into()),
        }
    }
}

impl From<Stop> for PageError {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Over(d) => PageError::RateLimited(d),
            Stop::Cache(e) => PageError::Failed(e.into()),
        }
    }
}

/// Whether `new` is a tighter limit than `old`: a refusal, or fewer requests left.
fn tighter(new: &RateDecision, old: Option<&RateDecision>) -> bool {
    old.is_none_or(|o| (new.allowed, new.remaining) < (o.allowed, o.remaining))
}

/// The limits one request meets.
pub struct Limits<'a> {
    req: &'a HttpRequest,
    ctx: &'a AppState,
    endpoint: &'static str,
    bucket: Option<String>,
    shown: Option<RateDecision>,
    identified: bool,
}

impl<'a> Limits<'a> {
    /// The limits of a request to `endpoint` (the global class's key: `token`, `login`, ...).
    pub fn new(req: &'a HttpRequest, ctx: &'a AppState, endpoint: &'static str) -> Limits<'a> {
        Limits {
            req,
            ctx,
            endpoint,
            bucket: None,
            shown: None,
            identified: false,
        }
    }

    /// The client's address bucket.
    fn bucket(&mut self) -> &str {
        let (req, ctx) = (self.req, self.ctx);
        self.bucket.get_or_insert_with(|| {
            super::client_ip::of(
                req,
                &ctx.settings.http.trusted_proxies,
                ctx.settings.http.forwarded_header,
            )
            .map_or_else(|| "unknown".to_owned(), super::client_ip::bucket)
        })
    }

    /// Keep `d` for the headers if it is the tightest so far; a refusal stops the request.
    fn show(&mut self, d: Option<RateDecision>) -> Result<(), Stop> {
        let Some(d) = d else { return Ok(()) };
        if tighter(&d, self.shown.as_ref()) {
            self.shown = Some(d);
        }
        if d.allowed {
            Ok(())
        } else {
            Err(Stop::Over(d))
        }
    }

    /// The global count of this endpoint (when `rate_limits.global` is on).
    pub async fn global(&mut self) -> Result<(), Stop> {
        let d = self
            .ctx
            .limits
            .admit(Class::Global, self.endpoint, self.ctx.clock.now())
            .await
            .map_err(Stop::Cache)?;
        self.show(d)
    }

    /// Count this request against `class` for `principal` (a client id, a token subject): from
    /// here on the request is identified, and its failures are that principal's business.
    pub async fn principal(&mut self, class: Class, principal: &str) -> Result<(), Stop> {
        self.identified = true;
        let d = self
            .ctx
            .limits
            .admit(class, principal, self.ctx.clock.now())
            .await
            .map_err(Stop::Cache)?;
        self.show(d)
    }

    /// Count this request against `class` for the client's address (the login form: every
    /// attempt counts, so its failures are not counted again).
    pub async fn address(&mut self, class: Class) -> Result<(), Stop> {
        self.identified = true;
        let now = self.ctx.clock.now();
        let key = self.bucket().to_owned();
        let d = self
            .ctx
            .limits
            .admit(class, &key, now)
            .await
            .map_err(Stop::Cache)?;
        self.show(d)
    }

    /// Refuse at once when this process saw the failure limit `class` refuse the client's
    /// address and it still would (no shared-state round trip, nothing checked).
    pub async fn not_refused(&mut self, class: Class) -> Result<(), Stop> {
        let now = self.ctx.clock.now();
        let limits = &self.ctx.limits;
        if limits.quota(class).is_none() {
            return Ok(());
        }
        let key = self.bucket().to_owned();
        let d = limits
            .refused_here(class, &key, now)
            .await
            .map_err(Stop::Cache)?;
        self.show(d)
    }

    /// Count a failure of the client's address against `class`.
    async fn failed(&mut self, class: Class) -> Result<(), Stop> {
        let now = self.ctx.clock.now();
        let key = self.bucket().to_owned();
        let d = self
            .ctx
            .limits
            .failure(class, &key, now)
            .await
            .map_err(Stop::Cache)?;
        self.show(d)
    }

    /// Which failure class a response of `status` counts against, if any.
    fn failure_class(&self, status: StatusCode, invalid_client: bool) -> Option<Class> {
        if !status.is_client_error() || status == StatusCode::TOO_MANY_REQUESTS {
            None
        } else if invalid_client {
            Some(Class::ClientAuthFailuresPerIp)
        } else if !self.identified {
            Some(Class::FailuresPerIp)
        } else {
            None
        }
    }

    /// Settle an OAuth or JSON endpoint's answer: count its failure, turn it into the 429 when
    /// that is over the limit, and add the headers.
    pub async fn finish_api(mut self, result: Result<HttpResponse, ApiError>) -> HttpResponse {
        let (status, invalid_client) = match &result {
            Ok(r) => (r.status(), false),
            Err(e) => (
                actix_web::ResponseError::status_code(e),
                matches!(e, ApiError::OAuth(OAuthError::InvalidClient(_))),
            ),
        };
        let result = match self.failure_class(status, invalid_client) {
            Some(class) => match self.failed(class).await {
                Ok(()) => result,
                Err(stop) => Err(stop.into()),
            },
            None => result,
        };
        let mut resp = result.unwrap_or_else(HttpResponse::from_error);
        self.write(&mut resp);
        resp
    }

    /// [`Limits::finish_api`] for an endpoint that answers with Sigil's pages.
    pub async fn finish_page(mut self, result: Result<HttpResponse, PageError>) -> HttpResponse {
        let status = match &result {
            Ok(r) => r.status(),
            Err(e) => actix_web::ResponseError::status_code(e),
        };
        let result = match self.failure_class(status, false) {
            Some(class) => match self.failed(class).await {
                Ok(()) => result,
                Err(stop) => Err(stop.into()),
            },
            None => result,
        };
        let mut resp = result.unwrap_or_else(HttpResponse::from_error);
        self.write(&mut resp);
        resp
    }

    /// The `X-RateLimit-*` headers of the tightest limit met (none when no limit applied).
    fn write(&self, resp: &mut HttpResponse) {
        let Some(d) = self.shown else { return };
        let h = resp.headers_mut();
        h.insert(LIMIT, HeaderValue::from(d.limit));
        h.insert(REMAINING, HeaderValue::from(d.remaining));
        h.insert(RESET, HeaderValue::from(d.reset_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use std::time::Duration;

    fn decision(allowed: bool, remaining: u32) -> RateDecision {
        RateDecision {
            allowed,
            limit: 10,
            remaining,
            reset_at: 1_000,
            retry_after: if allowed {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            },
        }
    }

    #[test]
    fn the_headers_show_the_tightest_limit() {
        let (roomy, tight, refused) = (decision(true, 7), decision(true, 2), decision(false, 0));
        assert!(tighter(&roomy, None));
        assert!(tighter(&tight, Some(&roomy)));
        assert!(!tighter(&roomy, Some(&tight)));
        assert!(tighter(&refused, Some(&tight)));
        assert!(!tighter(&tight, Some(&refused)));
    }

    #[test]
    fn a_refusal_is_a_429_with_retry_after_on_both_surfaces() {
        let retry = |r: &HttpResponse| {
            r.headers()
                .get("retry-after")
                .map(|v| v.as_bytes().to_vec())
        };
        let api = ApiError::from(Stop::Over(decision(false, 0))).error_response();
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry(&api), Some(b"3".to_vec()));
        let page = PageError::from(Stop::Over(decision(false, 0))).error_response();
        assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry(&page), Some(b"3".to_vec()));
        let down = ApiError::from(Stop::Cache(CacheError::Unavailable("down".into())));
        assert_eq!(
            down.status_code(),
            StatusCode::SERVICE_UNAVAILABLE,
            "fail closed"
        );
    }
}
