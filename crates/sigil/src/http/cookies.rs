//! The browser side of sign-in: Sigil's cookies (the session, the binding of a sign-in or
//! consent page to the browser that opened it, and the device cookie of the last account that
//! signed in here) and the `303 See Other` that moves between
//! pages. `__Host-` names and `Secure` under an https issuer.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use super::error::PageError;
use super::pages;
use crate::crypto::{ct_eq, hash_id};
use crate::state::AppState;

fn secure_cookies(ctx: &AppState) -> bool {
    ctx.issuer.starts_with("https://")
}

/// Session cookie name (`__Host-` under https).
pub fn session_name(ctx: &AppState) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sigil_session"
    } else {
        "sigil_session"
    }
}

/// Binding cookie name (`__Host-` under https).
pub fn binding_name(ctx: &AppState) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sigil_login"
    } else {
        "sigil_login"
    }
}

/// Device cookie name (`__Host-` under https): marks a browser that signed in to an account
/// before (`oauth::login`).
pub fn device_name(ctx: &AppState) -> &'static str {
    if secure_cookies(ctx) {
        "__Host-sigil_device"
    } else {
        "sigil_device"
    }
}

/// The browser's session cookie value, if it sent one.
pub fn session_value(req: &HttpRequest, ctx: &AppState) -> Option<String> {
    req.cookie(session_name(ctx)).map(|c| c.value().to_owned())
}

/// Whether the browser's cookie `name` hashes to `expected_hash` (constant time).
pub fn matches(req: &HttpRequest, name: &str, expected_hash: &str) -> bool {
    req.cookie(name)
        .is_some_and(|c| ct_eq(hash_id(c.value()).as_bytes(), expected_hash.as_bytes()))
}

/// SameSite=Lax: the browser sends the session cookie on the top-level GET navigation from the
/// application to `/authorize` (so an existing session and `prompt=none` work), but not on
/// cross-site subrequests or POSTs. Strict would drop it on that navigation.
pub fn cookie<'a>(ctx: &AppState, name: &'a str, value: String, max_age: i64) -> Cookie<'a> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_secure(secure_cookies(ctx));
    c.set_same_site(SameSite::Lax);
    c.set_max_age(CookieDuration::seconds(max_age));
    c
}

/// A cookie that removes `name`.
pub fn removal<'a>(ctx: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(ctx, name, String::new(), 0);
    c.make_removal();
    c
}

/// `303 See Other` to `location`, with the page headers.
pub fn see_other(location: &str) -> Result<HttpResponse, PageError> {
    let value = HeaderValue::from_str(location).map_err(|_| {
        PageError::bad_request("invalid_request", "The redirect target is not valid.")
    })?;
    Ok(pages::secure(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, value))
        .finish())
}
