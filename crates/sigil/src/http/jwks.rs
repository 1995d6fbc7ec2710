//! `GET /jwks.json`: served from memory, with `ETag` and a `max-age` derived from the rotation
//! schedule (a new key is published `max-age + clock skew` before it signs).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::oauth::Context;

/// The JWKS.
pub async fn jwks(req: HttpRequest, ctx: web::Data<Context>) -> HttpResponse {
    let snap = ctx.ring.load();
    let doc = &snap.jwks;
    let cache_control = format!(
        "public, max-age={}",
        ctx.settings.keys.jwks_max_age.as_secs()
    );
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == doc.etag || t.trim() == "*")
        });
    let mut resp = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, doc.etag.clone()));
    if not_modified {
        return resp.finish();
    }
    resp.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ))
    .body(doc.body.clone())
}
