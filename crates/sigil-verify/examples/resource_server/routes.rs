//! The example resource server's routes, each guarded one of the ways `sigil_verify::actix`
//! offers. Kept apart from `main` so that `tests/resource_server.rs` runs the very same routes
//! with tokens signed by test keys.
//!
//! | route | guard | lets through a token with |
//! |---|---|---|
//! | `GET /healthz` | none | (no token needed) |
//! | `GET /orders` | `RequirePermission<OrdersRead>` (extractor) | permission `orders:read` (or `orders:*`) |
//! | `POST /orders` | `RequirePermission<OrdersWrite>` (extractor) | permission `orders:write` (or `orders:*`) |
//! | `POST /jobs/{name}/run` | `RequirePermission::new("job:run")` (middleware on `/jobs`) | permission `job:run` (or `job:*`) |
//! | `GET /reports` | `RequireScope<ReportsRead>` (extractor) | scope `reports:read` |
//! | `GET /admin` | `RequireRole<Admin>` (extractor) | role `admin` |
//!
//! No token: 401 with `WWW-Authenticate: Bearer`; a bad one: 401 `error="invalid_token"`; a
//! valid one without what the route needs: 403 `error="insufficient_scope"`.

use actix_web::{HttpResponse, web};
use serde_json::json;
use sigil_verify::actix::{Authenticated, RequirePermission, RequireRole, RequireScope};

sigil_verify::permission! {
    /// Read the caller's orders.
    pub OrdersRead = "orders:read";
    /// Place an order.
    pub OrdersWrite = "orders:write";
}
sigil_verify::scope!(pub ReportsRead = "reports:read");
sigil_verify::role!(pub Admin = "admin");

/// Mounts the routes; the app must hold a `sigil_verify::Verifier` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/orders", web::get().to(list_orders))
        .route("/orders", web::post().to(place_order))
        .route("/reports", web::get().to(reports))
        .route("/admin", web::get().to(admin))
        .service(
            // Middleware: every route under /jobs needs `job:run`, which `job:*` grants too.
            web::scope("/jobs")
                .wrap(RequirePermission::new("job:run"))
                .route("/{name}/run", web::post().to(run_job)),
        );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn list_orders(auth: RequirePermission<OrdersRead>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "owner": auth.sub, "orders": [] }))
}

async fn place_order(auth: RequirePermission<OrdersWrite>) -> HttpResponse {
    HttpResponse::Created().json(json!({ "owner": auth.sub, "placed": true }))
}

async fn run_job(auth: Authenticated, name: web::Path<String>) -> HttpResponse {
    HttpResponse::Accepted().json(json!({ "job": name.into_inner(), "by": auth.sub }))
}

async fn reports(auth: RequireScope<ReportsRead>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "for": auth.sub, "reports": [] }))
}

async fn admin(auth: RequireRole<Admin>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "admin": auth.sub, "roles": auth.roles }))
}
