//! `ApiError`: the single place that turns errors into HTTP. OAuth endpoints answer in the RFC 6749
//! JSON shape; internal causes are logged here and never shown.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::OAuth(e) => match e {
                OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
                OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description) = match self {
            ApiError::OAuth(e) => {
                match e {
                    OAuthError::Unavailable(cause) => {
                        tracing::warn!(cause = %cause, "service unavailable")
                    }
                    OAuthError::Internal(cause) => {
                        tracing::error!(cause = %cause, "internal error")
                    }
                    _ => {}
                }
                (e.code(), e.description())
            }
            ApiError::PayloadTooLarge(max) => (
                "invalid_request",
                format!("the request body is larger than {max} bytes"),
            ),
            ApiError::NotFound => ("not_found", "no such endpoint".to_owned()),
        };
        super::request_log::record_current("outcome", code);
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        match self {
            ApiError::OAuth(OAuthError::InvalidClient { .. }) => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sigil\", charset=\"UTF-8\""),
                ));
            }
            ApiError::OAuth(OAuthError::Unavailable(_)) => {
                resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            _ => {}
        }
        resp.json(serde_json::json!({ "error": code, "error_description": description }))
    }
}
