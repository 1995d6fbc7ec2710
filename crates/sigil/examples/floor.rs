//! The load-test floor: the least an actix token endpoint can do — HTTP Basic, form parsing,
//! one signature, JSON — plus a static JWKS handler. `tests/bench/run.sh` drives it beside
//! `sigil serve` in the same run, and reports Sigil as a ratio of this floor.
//!
//! `FLOOR_ALG=ES256|RS256|EdDSA FLOOR_PORT=9000 cargo run --release --example floor`

use std::collections::HashMap;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use sigil::keys::material::{Signer, b64, compact_jws, generate};
use sigil_verify::Algorithm;

struct Floor {
    signer: Signer,
    header_b64: String,
    rng: SystemRandom,
    jwks: web::Bytes,
}

async fn token(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    floor: web::Data<Floor>,
) -> HttpResponse {
    let Some(auth) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return HttpResponse::Unauthorized().finish();
    };
    let Some(creds) = auth
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b).ok())
    else {
        return HttpResponse::Unauthorized().finish();
    };
    let Some(colon) = creds.iter().position(|b| *b == b':') else {
        return HttpResponse::Unauthorized().finish();
    };
    let client_id = String::from_utf8_lossy(&creds[..colon]).into_owned();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return HttpResponse::BadRequest().finish();
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1", "sub": client_id, "aud": "http://127.0.0.1",
        "exp": 1_800_000_600, "iat": 1_800_000_000, "jti": "floor", "client_id": client_id,
        "scope": scope, "roles": [],
    });
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
    match compact_jws(&floor.header_b64, &payload, &floor.signer, &floor.rng) {
        Ok(t) => HttpResponse::Ok().json(serde_json::json!({
            "access_token": t, "token_type": "Bearer", "expires_in": 600, "scope": scope,
        })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn static_jwks(floor: web::Data<Floor>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=900"))
        .content_type("application/json")
        .body(floor.jwks.clone())
}

fn main() -> std::io::Result<()> {
    let alg: Algorithm = std::env::var("FLOOR_ALG")
        .unwrap_or_else(|_| "ES256".into())
        .parse()
        .map_err(|_| std::io::Error::other("FLOOR_ALG must be ES256, RS256, PS256 or EdDSA"))?;
    let port: u16 = std::env::var("FLOOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9000);
    let workers: usize = std::env::var("FLOOR_WORKERS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let generated = generate(alg, 2048).map_err(std::io::Error::other)?;
    let signer = Signer::from_pkcs8(alg, &generated.pkcs8).map_err(std::io::Error::other)?;
    let kid = generated.jwk.kid.clone().unwrap_or_default();
    let jwks = serde_json::to_vec(&sigil_verify::JwkSet {
        keys: vec![generated.jwk.clone(), generated.jwk],
    })
    .map_err(std::io::Error::other)?;
    let floor = web::Data::new(Floor {
        header_b64: b64(
            serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid})
                .to_string()
                .as_bytes(),
        ),
        signer,
        rng: SystemRandom::new(),
        jwks: jwks.into(),
    });
    actix_web::rt::System::new().block_on(
        HttpServer::new(move || {
            App::new()
                .app_data(floor.clone())
                .route("/token", web::post().to(token))
                .route("/jwks.json", web::get().to(static_jwks))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run(),
    )
}
