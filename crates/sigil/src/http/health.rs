//! `GET /healthz` (the process answers) and `GET /readyz` (database and cache answer).

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// Liveness.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness.
pub async fn readyz(ctx: web::Data<AppState>) -> HttpResponse {
    let limit = ctx.settings.database.connect_timeout + Duration::from_secs(1);
    let db = matches!(
        tokio::time::timeout(limit, ctx.store.ping()).await,
        Ok(Ok(()))
    );
    let cache = matches!(
        tokio::time::timeout(limit, ctx.cache.ping()).await,
        Ok(Ok(()))
    );
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
