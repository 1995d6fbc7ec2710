//! HTML pages: compile-time-checked templates (askama) and the page-specific security headers
//! (CSP, framing, referrer, no caching); `nosniff`, HSTS and COOP come from `headers.rs` for
//! every response. No inline script anywhere; the only stylesheet is `/assets/sigil.css`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

use crate::domain::RedirectUri;

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// Product name (`ui.product_name`).
    pub product: &'a str,
    /// Application name.
    pub client_name: &'a str,
    /// Pending-login id.
    pub authz: &'a str,
    /// Anti-CSRF token.
    pub csrf: &'a str,
    /// Prefilled username.
    pub username: &'a str,
    /// The one generic error message, if any.
    pub error: Option<&'a str>,
}

/// The second step of a sign-in: the one-time code (field `totp`).
#[derive(Template)]
#[template(path = "login_otp.html")]
pub struct OtpPage<'a> {
    /// Product name (`ui.product_name`).
    pub product: &'a str,
    /// Application name.
    pub client_name: &'a str,
    /// The sealed second step.
    pub authz: &'a str,
    /// Anti-CSRF token.
    pub csrf: &'a str,
    /// The one generic error message, if any.
    pub error: Option<&'a str>,
}

/// An error shown instead of redirecting.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// OAuth-style code.
    pub code: &'a str,
    /// Fixed text (never request input).
    pub message: &'a str,
}

/// Security headers for HTML (on top of those `headers.rs` gives every response).
pub fn secure(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    builder
}

/// The login page's CSP: like every page's, but the form may also lead (by Sigil's redirect after
/// a successful login) to the client's registered redirect URI. Browsers apply `form-action` to
/// the redirects that follow a form submission, so without this the way back would be blocked.
/// The source comes from the same parser that checked the URI at registration.
pub fn login_csp(redirect_uri: &str) -> HeaderValue {
    let extra = RedirectUri::parse(redirect_uri)
        .ok()
        .and_then(|u| u.csp_source())
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {extra}; frame-ancestors 'none'; base-uri 'none'"
    ))
    .unwrap_or(HeaderValue::from_static(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ))
}

/// Render `page` with `status` and the security headers.
pub fn html(
    status: StatusCode,
    page: &impl Template,
    extra: impl FnOnce(&mut HttpResponseBuilder),
) -> HttpResponse {
    match page.render() {
        Ok(body) => {
            let mut b = secure(HttpResponse::build(status));
            b.content_type("text/html; charset=utf-8");
            extra(&mut b);
            b.body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            secure(HttpResponse::InternalServerError())
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// The error page.
pub fn error_page(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    super::request_log::record_current("outcome", code);
    html(status, &ErrorPage { code, message }, |_| {})
}

/// `GET /assets/sigil.css`
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        ))
        .body(include_str!("../../assets/sigil.css"))
}

/// After logout without a (valid) return address.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    /// Product name (`ui.product_name`).
    pub product: &'a str,
}

/// "Sign out of Sigil?": RP-initiated logout that did not prove which client or user asked.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    /// Product name (`ui.product_name`).
    pub product: &'a str,
    /// Anti-CSRF token bound to the session.
    pub csrf: &'a str,
    /// Carried to the POST: the client whose return address may be used.
    pub client_id: &'a str,
    /// Carried to the POST.
    pub post_logout_redirect_uri: &'a str,
    /// Carried to the POST.
    pub state: &'a str,
}

/// The consent screen.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    /// Product name (`ui.product_name`).
    pub product: &'a str,
    /// Application name.
    pub client_name: &'a str,
    /// What each requested scope lets the application do.
    pub scopes: Vec<String>,
    /// Pending-consent id.
    pub authz: &'a str,
    /// Anti-CSRF token.
    pub csrf: &'a str,
}

/// A person-readable line for a scope.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".to_owned(),
        "profile" => "Your username".to_owned(),
        "email" => "Your email address".to_owned(),
        "offline_access" => "Keep access while you are not using it".to_owned(),
        other => format!("Access “{other}”"),
    }
}
