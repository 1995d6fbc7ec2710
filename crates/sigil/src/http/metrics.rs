//! `GET /metrics`: the process's Prometheus counters in the text format.
//!
//! Unauthenticated, like most exporters: the counters hold no secret and no personal data,
//! but operators who do not want them public restrict the path at the proxy
//! (see `docs/operations.md`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Render the counters.
pub async fn metrics(ctx: web::Data<AppState>) -> HttpResponse {
    match ctx.metrics.render() {
        Ok(body) => HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "could not render metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
