//! `GET /healthz` (the process answers) and `GET /readyz` (database and shared state answer).
//!
//! `/readyz` asks the database and the shared-state backend at once, each within
//! `database.connect_timeout` + 1 s and never more than [`READY_LIMIT`], so it answers (503
//! when either is down) within 5 s; it asks afresh every time, so it is 200 again as soon as
//! both answer, without a restart.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Liveness.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The longest `/readyz` waits for any one check.
pub const READY_LIMIT: Duration = Duration::from_secs(4);

/// Readiness.
pub async fn readyz(ctx: web::Data<AppState>) -> HttpResponse {
    // Stopping: say so at once, without asking anything, so the load balancer moves on.
    if ctx.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")))
            .json(serde_json::json!({"status": "draining"}));
    }
    let limit = (ctx.settings.database.connect_timeout + Duration::from_secs(1)).min(READY_LIMIT);
    let (db, cache) = tokio::join!(
        tokio::time::timeout(limit, ctx.store.ping()),
        tokio::time::timeout(limit, ctx.cache.ping()),
    );
    let db = matches!(db, Ok(Ok(())));
    let cache = matches!(cache, Ok(Ok(())));
    let keys = ctx.ring.signer(ctx.access_token_alg, ctx.now()).is_some();
    let body = serde_json::json!({
        "status": if db && cache && keys { "ready" } else { "unavailable" },
        "checks": {
            "database": if db { "up" } else { "down" },
            "cache": if cache { "up" } else { "down" },
            "signing_key": if keys { "up" } else { "missing" },
        }
    });
    if db && cache && keys {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")))
            .json(body)
    }
}
