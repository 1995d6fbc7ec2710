//! HTTP: the only module that knows actix, HTTP and JSON shapes. One file per endpoint.

pub mod admin;
pub mod authorize;
pub mod client_ip;
pub mod consent;
pub mod cookies;
pub mod cors;
pub mod discovery;
pub mod error;
pub mod form;
pub mod headers;
pub mod health;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod pages;
pub mod rate_limit;
pub mod request_log;
pub mod revocation;
pub mod token;
pub mod userinfo;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{HttpMessage, HttpResponse, guard, web};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// A route for GET and HEAD: HEAD works wherever GET does (RFC 9110 §9.3.2); actix sends the
/// headers of the GET response without its body.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Register every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        get().to(discovery::discovery),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        get().to(discovery::discovery),
    )
    .route("/jwks.json", get().to(jwks::jwks))
    .route("/token", web::post().to(token::token))
    .route("/authorize", get().to(authorize::authorize_get))
    .route("/authorize", web::post().to(authorize::authorize_post))
    .route("/login", web::post().to(login::login))
    .route("/login/otp", web::post().to(login::login_otp))
    .route("/logout", web::get().to(logout::logout_get))
    .route("/logout", web::post().to(logout::logout_post))
    .route("/consent", get().to(consent::consent_page))
    .route("/consent", web::post().to(consent::consent_decision))
    .route("/revoke", web::post().to(revocation::revoke))
    .route("/introspect", web::post().to(revocation::introspect))
    .route("/userinfo", get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/assets/sigil.css", get().to(pages::stylesheet))
    .route("/healthz", get().to(health::healthz))
    .route("/readyz", get().to(health::readyz))
    .route("/metrics", get().to(metrics::metrics))
    .configure(admin::routes)
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, error::ApiError> {
    Err(error::ApiError::NotFound)
}

/// Request spans with the request id, path (never the query string, which may carry codes),
/// client_id, grant and outcome; one completion event per request. Under the plain log format
/// most requests carry these fields in a log context instead of a span (`request_log`).
#[derive(Debug)]
pub struct SigilRootSpan;

impl RootSpanBuilder for SigilRootSpan {
    /// A request with a log context (`request_log`: the thread's current context while
    /// `TracingLogger` calls this) gets its fields there and no span.
    fn on_request_start(request: &ServiceRequest) -> Span {
        // `RequestId` is `Copy` and formats itself into the span: no String per request.
        let request_id = request.extensions().get::<RequestId>().copied();
        if let Some(ctx) = crate::telemetry::context::current() {
            ctx.record_raw("method", request.method().as_str());
            ctx.record_raw("path", request.path());
            ctx.record_display("request_id", &OptionalId(request_id));
            return Span::none();
        }
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = tracing::field::display(OptionalId(request_id)),
            client_id = tracing::field::Empty,
            grant = tracing::field::Empty,
            outcome = tracing::field::Empty,
        )
    }

    /// `TracingLogger` calls this with the request span entered, so the event is the span's
    /// child and its line carries the span's fields; the status is the event's own field.
    fn on_request_end<B: MessageBody>(
        _span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        tracing::info!(status, "request completed");
    }
}

/// The request id as the span shows it (empty if the middleware set none).
struct OptionalId(Option<RequestId>);

impl std::fmt::Display for OptionalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => std::fmt::Display::fmt(&*id, f),
            None => Ok(()),
        }
    }
}
