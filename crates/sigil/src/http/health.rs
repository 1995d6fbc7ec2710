//! `GET /healthz` (the process answers) and `GET /readyz` (the database answers and commits
//! writes, and the shared state answers).
//!
//! `/readyz` asks the database (`SELECT 1`), the database's write probe
//! (`store::heartbeat::WriteProbe`: one row rewritten at most once a second per process, its
//! outcome reused in between) and the shared-state backend at once, each within
//! `database.connect_timeout` + 1 s and never more than [`READY_LIMIT`], so it answers (503
//! when one fails) within 5 s. The database check is `down` when it does not answer and
//! `not_writable` when it answers but does not commit (a full disk, a read-only volume). It
//! asks afresh (the write probe within a second), so it is 200 again as soon as all answer,
//! without a restart.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::clock::unix_now_ms;
use crate::state::AppState;
use crate::store::heartbeat::Writable;

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
    let (db, writes, cache) = tokio::join!(
        tokio::time::timeout(limit, ctx.store.ping()),
        ctx.write_probe
            .writable(&ctx.store, limit, unix_now_ms(ctx.clock.as_ref())),
        tokio::time::timeout(limit, ctx.cache.ping()),
    );
    if let Writable::Probed(ok) = writes {
        ctx.metrics
            .database_write_probes
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
    }
    let answers = matches!(db, Ok(Ok(())));
    let db = answers && writes.ok();
    let cache = matches!(cache, Ok(Ok(())));
    let keys = ctx.ring.signer(ctx.access_token_alg, ctx.now()).is_some();
    let body = serde_json::json!({
        "status": if db && cache && keys { "ready" } else { "unavailable" },
        "checks": {
            "database": match (answers, db) {
                (false, _) => "down",
                (true, false) => "not_writable",
                (true, true) => "up",
            },
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
