//! The single place that turns errors into HTTP, one type per surface: [`ApiError`] for the
//! OAuth and JSON endpoints (the RFC 6749 shape), [`PageError`] for the browser endpoints
//! (Sigil's error page, never a redirect). Internal causes are logged here, once, and never
//! shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::cache::RateDecision;
use crate::oauth::OAuthError;

/// An error response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An OAuth error.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Body over the limit.
    #[error("request body too large")]
    PayloadTooLarge(usize),
    /// No such route.
    #[error("not found")]
    NotFound,
    /// Over a rate limit: 429 `slow_down` with `Retry-After` (the `X-RateLimit-*` headers are
    /// `rate_limit`'s).
    #[error("rate limited")]
    RateLimited(RateDecision),
}

/// `error_description` of a 429 (fixed text).
const SLOW_DOWN: &str = "too many requests; retry after the number of seconds in Retry-After";

/// `Retry-After` of a refused decision, in whole seconds (at least 1).
fn retry_after(d: &RateDecision) -> HeaderValue {
    HeaderValue::from(d.retry_after_secs().max(1))
}

/// Log what a client is never shown: why Sigil could not answer.
fn log_cause(e: &OAuthError) {
    match e {
        OAuthError::Unavailable(cause) => tracing::warn!(cause = %cause, "service unavailable"),
        OAuthError::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
        _ => {}
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::OAuth(e) => match e {
                OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
                OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description) = match self {
            ApiError::OAuth(e) => {
                log_cause(e);
                (e.code(), e.description())
            }
            ApiError::PayloadTooLarge(max) => (
                "invalid_request",
                format!("the request body is larger than {max} bytes"),
            ),
            ApiError::NotFound => ("not_found", "no such endpoint".to_owned()),
            ApiError::RateLimited(_) => ("slow_down", SLOW_DOWN.to_owned()),
        };
        let outcome = match self {
            ApiError::RateLimited(_) => "rate_limited",
            _ => code,
        };
        super::request_log::record_current("outcome", outcome);
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        match self {
            ApiError::OAuth(OAuthError::InvalidClient(_)) => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sigil\", charset=\"UTF-8\""),
                ));
            }
            ApiError::OAuth(OAuthError::Unavailable(_)) => {
                resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            ApiError::RateLimited(d) => {
                resp.insert_header((header::RETRY_AFTER, retry_after(d)));
            }
            _ => {}
        }
        resp.json(serde_json::json!({ "error": code, "error_description": description }))
    }
}

/// An error on a browser endpoint (`/authorize`, `/login`, `/consent`, `/logout`), shown on
/// Sigil's own error page with a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A request Sigil will not act on (400 unless said otherwise).
    #[error("{code}: {message}")]
    Refused {
        /// Status of the page.
        status: StatusCode,
        /// OAuth-style code shown on the page.
        code: &'static str,
        /// Fixed text (never request input).
        message: &'static str,
    },
    /// Sigil could not answer: `temporarily_unavailable` (503, `Retry-After`) when a
    /// dependency is unreachable, `server_error` (500) for a bug.
    #[error(transparent)]
    Failed(#[from] OAuthError),
    /// Over a rate limit: 429 `slow_down` with `Retry-After`.
    #[error("rate limited")]
    RateLimited(RateDecision),
}

impl PageError {
    /// A 400 page.
    pub fn bad_request(code: &'static str, message: &'static str) -> PageError {
        PageError::Refused {
            status: StatusCode::BAD_REQUEST,
            code,
            message,
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Failed(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Refused { status, .. } => *status,
            PageError::Failed(OAuthError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Refused {
                status,
                code,
                message,
            } => super::pages::error_page(*status, code, message),
            PageError::RateLimited(d) => {
                let mut resp = super::pages::error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    "Too many attempts from your network. Wait a moment and try again.",
                );
                super::request_log::record_current("outcome", "rate_limited");
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after(d));
                resp
            }
            PageError::Failed(e) => {
                log_cause(e);
                let (code, message) = match e {
                    OAuthError::Unavailable(_) => (
                        "temporarily_unavailable",
                        "Sigil cannot complete this right now. Please try again in a moment.",
                    ),
                    _ => (
                        "server_error",
                        "Something went wrong at Sigil. Please try again later.",
                    ),
                };
                let mut resp = super::pages::error_page(self.status_code(), code, message);
                if matches!(e, OAuthError::Unavailable(_)) {
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                }
                resp
            }
        }
    }
}
