//! Interleaved timing of `Verifier::verify` against the raw ring signature check on the same
//! token, for each algorithm. Criterion runs its benchmarks seconds apart, so on a shared
//! machine the load changes between them; alternating short batches and keeping the best
//! batch of each measures sigil-verify's own overhead (parsing, claim checks, key lookup)
//! much more reliably.
//!
//! `cargo run --release -p sigil-verify --example overhead`
#![expect(clippy::unwrap_used, reason = "example")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{AUD, ISS, Signer};
use ring::signature as r;
use serde_json::json;
use sigil_verify::{Algorithm, Verifier, base64url};

fn main() {
    println!("backend: {}", sigil_verify::BACKEND);
    for s in [
        Signer::rsa(common::RSA2048, Algorithm::RS256),
        Signer::rsa(common::RSA2048, Algorithm::PS256),
        Signer::es256(),
        Signer::ed25519(),
    ] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = json!({
            "iss": ISS, "sub": "user-1", "aud": AUD, "exp": now + 86_400, "iat": now,
            "jti": "0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10", "client_id": "client-1",
            "scope": "openid orders:read orders:write", "roles": ["admin"]
        });
        let token = s.token_with(&s.header(), &claims);
        let v = Verifier::builder(ISS, AUD)
            .jwks(common::set(&[&s]))
            .build()
            .unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = base64url::decode(sig).unwrap();
        let dec = |x: &Option<String>| base64url::decode(x.as_deref().unwrap()).unwrap();
        let j = &s.jwk;
        let raw: Box<dyn Fn() -> bool> = match s.alg {
            Algorithm::RS256 | Algorithm::PS256 => {
                let (n, e) = (dec(&j.n), dec(&j.e));
                let p = if s.alg == Algorithm::RS256 {
                    &r::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &r::RSA_PSS_2048_8192_SHA256
                };
                Box::new(move || {
                    r::RsaPublicKeyComponents { n: &n, e: &e }
                        .verify(p, input.as_bytes(), &sig)
                        .is_ok()
                })
            }
            Algorithm::ES256 => {
                let point = [vec![4], dec(&j.x), dec(&j.y)].concat();
                Box::new(move || {
                    r::UnparsedPublicKey::new(&r::ECDSA_P256_SHA256_FIXED, &point)
                        .verify(input.as_bytes(), &sig)
                        .is_ok()
                })
            }
            Algorithm::EdDSA => {
                let x = dec(&j.x);
                Box::new(move || {
                    r::UnparsedPublicKey::new(&r::ED25519, &x)
                        .verify(input.as_bytes(), &sig)
                        .is_ok()
                })
            }
        };
        let (mut best_v, mut best_r) = (f64::MAX, f64::MAX);
        let batch = 200;
        for _ in 0..60 {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(v.verify(black_box(&token)).unwrap());
            }
            best_v = best_v.min(t.elapsed().as_secs_f64() / f64::from(batch));
            let t = Instant::now();
            for _ in 0..batch {
                assert!(black_box(raw()));
            }
            best_r = best_r.min(t.elapsed().as_secs_f64() / f64::from(batch));
        }
        println!(
            "{}: sigil-verify {:.2} us ({:.0}/s), raw ring {:.2} us ({:.0}/s), difference {:+.2} us ({:+.1} %)",
            s.alg,
            best_v * 1e6,
            1.0 / best_v,
            best_r * 1e6,
            1.0 / best_r,
            (best_v - best_r) * 1e6,
            (best_v / best_r - 1.0) * 100.0
        );
    }
}
