//! Verify the same ES256, RS256, PS256 and EdDSA access tokens with sigil-verify,
//! jsonwebtoken (ring backend) and the raw ring signature check alone.
//!
//! Run: `cargo bench -p sigil-verify --bench verify -- --warm-up-time 1 --measurement-time 3`
#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{AUD, ISS, Signer, b64};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::signature;
use serde_json::json;
use sigil_verify::{Algorithm, Verifier};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn token(s: &Signer) -> String {
    let now = now();
    let claims = json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": now + 86_400, "iat": now,
        "jti": "0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10", "client_id": "client-1",
        "scope": "openid orders:read orders:write", "roles": ["admin"]
    });
    s.token_with(&s.header(), &claims)
}

fn jwt_key(s: &Signer) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm) {
    use jsonwebtoken::{Algorithm as A, DecodingKey};
    let j = &s.jwk;
    match s.alg {
        Algorithm::RS256 | Algorithm::PS256 => (
            DecodingKey::from_rsa_components(j.n.as_deref().unwrap(), j.e.as_deref().unwrap())
                .unwrap(),
            if s.alg == Algorithm::RS256 {
                A::RS256
            } else {
                A::PS256
            },
        ),
        Algorithm::ES256 => (
            DecodingKey::from_ec_components(j.x.as_deref().unwrap(), j.y.as_deref().unwrap())
                .unwrap(),
            A::ES256,
        ),
        Algorithm::EdDSA => (
            DecodingKey::from_ed_components(j.x.as_deref().unwrap()).unwrap(),
            A::EdDSA,
        ),
    }
}

/// The raw signature check: message and signature already decoded, key already parsed.
fn raw_ring(s: &Signer, t: &str) -> impl Fn() -> bool {
    let (input, sig) = t.rsplit_once('.').unwrap();
    let input = input.as_bytes().to_vec();
    let sig = sigil_verify::base64url::decode(sig).unwrap();
    let dec = |v: &Option<String>| sigil_verify::base64url::decode(v.as_deref().unwrap()).unwrap();
    let alg = s.alg;
    let j = s.jwk.clone();
    let (n, e) = match alg {
        Algorithm::RS256 | Algorithm::PS256 => (dec(&j.n), dec(&j.e)),
        _ => (Vec::new(), Vec::new()),
    };
    let point = match alg {
        Algorithm::ES256 => [vec![4], dec(&j.x), dec(&j.y)].concat(),
        Algorithm::EdDSA => dec(&j.x),
        _ => Vec::new(),
    };
    move || match alg {
        Algorithm::RS256 => signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, &input, &sig)
            .is_ok(),
        Algorithm::PS256 => signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&signature::RSA_PSS_2048_8192_SHA256, &input, &sig)
            .is_ok(),
        Algorithm::ES256 => {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .verify(&input, &sig)
                .is_ok()
        }
        Algorithm::EdDSA => signature::UnparsedPublicKey::new(&signature::ED25519, &point)
            .verify(&input, &sig)
            .is_ok(),
    }
}

fn bench(c: &mut Criterion) {
    let signers = [
        Signer::rsa(common::RSA2048, Algorithm::RS256),
        Signer::rsa(common::RSA2048, Algorithm::PS256),
        Signer::es256(),
        Signer::ed25519(),
    ];
    // One verifier holding all four keys, as during an algorithm migration.
    let all: Vec<&Signer> = signers.iter().collect();
    let mut set = common::set(&all);
    // Two RSA signers share a key: keep one entry per kid, without alg so it serves both.
    set.keys.dedup_by(|a, b| a.kid == b.kid);
    set.keys[0].alg = None;
    let verifier = Verifier::builder(ISS, AUD).jwks(set).build().unwrap();

    for s in &signers {
        let t = token(s);
        // Sanity: all three agree the token is good.
        verifier.verify(&t).unwrap();
        let (key, alg) = jwt_key(s);
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        jsonwebtoken::decode::<serde_json::Value>(&t, &key, &validation).unwrap();
        let raw = raw_ring(s, &t);
        assert!(raw());

        let mut g = c.benchmark_group(s.alg.as_str());
        g.bench_function("sigil-verify", |b| {
            b.iter(|| verifier.verify(black_box(&t)).unwrap())
        });
        g.bench_function("jsonwebtoken-ring", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &key, &validation).unwrap()
            })
        });
        g.bench_function("raw-ring", |b| b.iter(|| assert!(black_box(raw()))));
        g.finish();
    }
    let _ = b64(b"");
}

criterion_group!(benches, bench);
criterion_main!(benches);
