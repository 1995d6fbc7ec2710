//! What a request's log lines carry, and where handlers record `client_id`, `grant` and
//! `outcome` for its "request completed" line.
//!
//! `TracingLogger` (with [`SigilRootSpan`](super::SigilRootSpan)) gives every request an id, a
//! root span and the completion line. Under the plain log format (a log file or collector, the
//! production case) a request is served without a registry span: [`RequestLog`], wrapped just
//! outside `TracingLogger`, gives it a [`LogContext`] that is current while its future is
//! polled, `SigilRootSpan` fills in method, path and request id and answers a disabled span,
//! and every line logged meanwhile (the completion line, a handler's warning,
//! `tracing-actix-web`'s error event) carries the context where the span would be: the same
//! text, without the span's per-poll cost. Under JSON or terminal output, and on the routes
//! whose handlers take `tracing_actix_web::RootSpan` ([`needs_root_span`]), the span stays.
//!
//! Handlers record through [`LogFields`] (an extractor) or [`record_current`], which write to
//! whichever of the two the request has.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use pin_project_lite::pin_project;
use tracing::Span;
use tracing_actix_web::RootSpan;

use crate::telemetry::context::{self, LogContext};

/// The paths whose handlers record into `tracing_actix_web::RootSpan` (`authorize.rs`,
/// `logout.rs`), which needs the real span; every other handler records through [`LogFields`].
pub fn needs_root_span(path: &str) -> bool {
    matches!(path, "/authorize" | "/login" | "/consent" | "/logout")
}

/// The middleware (see the module docs). `enabled` when the installed subscriber renders
/// log contexts ([`context::rendered`], decided once when the app is built); otherwise it
/// passes every request through.
#[derive(Debug, Clone, Copy)]
pub struct RequestLog {
    /// Give requests a context.
    pub enabled: bool,
}

impl RequestLog {
    /// Enabled when the current subscriber renders log contexts.
    pub fn for_current_subscriber() -> RequestLog {
        RequestLog {
            enabled: context::rendered(),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestLogService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestLogService {
            service,
            enabled: self.enabled,
        }))
    }
}

/// The service [`RequestLog`] wraps around `TracingLogger`.
#[derive(Debug)]
pub struct RequestLogService<S> {
    service: S,
    enabled: bool,
}

impl<S, B> Service<ServiceRequest> for RequestLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = InContext<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if !self.enabled || needs_root_span(req.path()) {
            return InContext {
                inner: self.service.call(req),
                context: None,
            };
        }
        // Found through the thread's current context by `SigilRootSpan` (which fills in the
        // request's fields in `TracingLogger`'s call), by `LogFields` and by
        // `record_current`: it is current exactly while this request's future is polled.
        let ctx = LogContext::new("request");
        let inner = {
            let _entered = ctx.enter();
            self.service.call(req)
        };
        InContext {
            inner,
            context: Some(ctx),
        }
    }
}

pin_project! {
    /// The inner service's future, polled with the request's context current.
    pub struct InContext<F> {
        #[pin]
        inner: F,
        context: Option<Rc<LogContext>>,
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.context.as_ref().map(LogContext::enter);
        this.inner.poll(cx)
    }
}

/// Where a handler records fields of its request's log line: the request's [`LogContext`], or
/// its root span.
#[derive(Debug, Clone)]
pub enum LogFields {
    /// The request has a context (the plain format).
    Context(Rc<LogContext>),
    /// The request has a root span (or none at all: no subscriber, so nothing to record).
    Span(Span),
}

impl LogFields {
    /// Record `field` (`client_id`, `grant` or `outcome`) as `value`.
    pub fn record(&self, field: &'static str, value: &str) {
        match self {
            LogFields::Context(ctx) => ctx.record_str(field, value),
            LogFields::Span(span) => {
                span.record(field, value);
            }
        }
    }

    fn of(req: &HttpRequest) -> LogFields {
        if let Some(ctx) = context::current() {
            return LogFields::Context(ctx);
        }
        match req.extensions().get::<RootSpan>() {
            Some(root) => LogFields::Span(Span::clone(root)),
            None => LogFields::Span(Span::none()),
        }
    }
}

impl FromRequest for LogFields {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<LogFields, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(LogFields::of(req)))
    }
}

/// Record `field` as `value` for the request being served on this thread, from code that has
/// no request at hand (an error's response): into its context, else into the current span.
pub fn record_current(field: &'static str, value: &str) {
    if !context::with_current(|ctx| ctx.record_str(field, value)) {
        Span::current().record(field, value);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, HttpResponse, web};
    use tracing_actix_web::TracingLogger;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::http::SigilRootSpan;
    use crate::http::error::ApiError;
    use crate::telemetry::plain::{PlainFields, PlainFormat};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// 200 when the fields went to a context, 202 when to a span.
    async fn lean(log: LogFields) -> HttpResponse {
        log.record("client_id", "billing");
        tracing::warn!("inside");
        log.record("outcome", "issued");
        match log {
            LogFields::Context(_) => HttpResponse::Ok().finish(),
            LogFields::Span(_) => HttpResponse::Accepted().finish(),
        }
    }

    async fn with_span(root: RootSpan) -> HttpResponse {
        root.record("client_id", "billing");
        tracing::warn!("inside");
        root.record("outcome", "issued");
        HttpResponse::Ok().finish()
    }

    async fn failing() -> Result<HttpResponse, ApiError> {
        Err(ApiError::NotFound)
    }

    /// The log lines of one request to `path` under the plain format, with the timestamp cut
    /// off and the request id and path made the same for every request.
    fn lines(path: &'static str, plain: bool) -> Vec<String> {
        let out = Capture::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone());
        let run = || {
            actix_web::rt::System::new().block_on(async {
                let app = init_service(
                    App::new()
                        .wrap(TracingLogger::<SigilRootSpan>::new())
                        .wrap(RequestLog::for_current_subscriber())
                        .route("/token", web::get().to(lean))
                        .route("/login", web::get().to(with_span))
                        .default_service(web::to(failing)),
                )
                .await;
                let _ = call_service(&app, TestRequest::get().uri(path).to_request()).await;
            });
        };
        if plain {
            tracing::subscriber::with_default(
                builder
                    .event_format(PlainFormat)
                    .fmt_fields(PlainFields)
                    .finish(),
                run,
            );
        } else {
            tracing::subscriber::with_default(builder.finish(), run);
        }
        let bytes = out.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| {
                let l = l.get(28..).unwrap_or_default().replace(path, "/PATH");
                // `request_id=` and 36 characters of UUID.
                match l.find("request_id=") {
                    Some(i) => format!("{}<id>{}", &l[..i + 11], l.get(i + 47..).unwrap_or("")),
                    None => l,
                }
            })
            .collect()
    }

    #[test]
    fn a_request_without_a_span_logs_the_same_lines_as_one_with_its_span() {
        let expected = [
            r#" WARN request{method=GET path=/PATH request_id=<id> client_id="billing"}: sigil::http::request_log::tests: inside"#,
            r#" INFO request{method=GET path=/PATH request_id=<id> client_id="billing" outcome="issued"}: sigil::http: request completed status=200"#,
        ];
        // `/token` records into a context, `/login` into the root span.
        assert_eq!(lines("/token", true), expected);
        assert_eq!(lines("/login", true), expected);
        // Under another format the span carries the fields, for every route.
        let (token, login) = (lines("/token", false), lines("/login", false));
        assert_eq!(token.len(), 2);
        assert_eq!(token[0], login[0]);
        assert_eq!(token[1], login[1].replace("status=200", "status=202"));
    }

    #[test]
    fn an_error_outcome_and_the_error_event_carry_the_context() {
        let got = lines("/nope", true);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with(
                r#" INFO request{method=GET path=/PATH request_id=<id> outcome="not_found"}: sigil::http: request completed status=404"#
            ),
            "{got:#?}"
        );
        assert!(
            got[1].starts_with(
                r#" WARN request{method=GET path=/PATH request_id=<id> outcome="not_found"}: tracing_actix_web::middleware: "#
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn only_the_pages_that_record_into_the_root_span_keep_it() {
        for path in ["/authorize", "/login", "/consent", "/logout"] {
            assert!(needs_root_span(path), "{path}");
        }
        for path in [
            "/token",
            "/jwks.json",
            "/userinfo",
            "/revoke",
            "/introspect",
            "/.well-known/openid-configuration",
            "/healthz",
            "/metrics",
            "/logout/",
            "/nope",
        ] {
            assert!(!needs_root_span(path), "{path}");
        }
    }
}
