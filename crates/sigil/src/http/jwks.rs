//! `GET /jwks.json`: served from memory, with `ETag` and a `max-age` derived from the rotation
//! schedule (a new key is published `max-age + clock skew` before it signs). The body and ETag are
//! rendered once per key change; this handler only picks them up.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

/// The `Cache-Control` value, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct JwksCacheControl(pub HeaderValue);

impl JwksCacheControl {
    /// `public, max-age=<keys.jwks_max_age>`.
    pub fn new(max_age: std::time::Duration) -> JwksCacheControl {
        let value = format!("public, max-age={}", max_age.as_secs());
        JwksCacheControl(
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("no-cache")),
        )
    }
}

/// The JWKS.
pub async fn jwks(
    req: HttpRequest,
    ctx: web::Data<AppState>,
    cache_control: web::Data<JwksCacheControl>,
) -> HttpResponse {
    let snap = ctx.ring.load();
    let doc = &snap.jwks;
    let etag = HeaderValue::from_maybe_shared(doc.etag.clone())
        .unwrap_or(HeaderValue::from_static("\"0\""));
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().as_bytes() == doc.etag.as_ref() || t.trim() == "*")
        });
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CACHE_CONTROL, cache_control.0.clone()))
        .insert_header((header::ETAG, etag));
    if not_modified {
        return resp.finish();
    }
    resp.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ))
    .body(doc.body.clone())
}
