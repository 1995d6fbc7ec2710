//! Access-token minting per algorithm: Sigil's path (parsed ring key pair kept, claims serialized
//! once, compact JWS) against `jsonwebtoken::encode`, which parses its key on every call.
//!
//! `cargo bench -p sigil --bench mint`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use sigil::keys::material::{Signer, b64, compact_jws, generate};
use sigil_verify::{Algorithm, Audience, Claims};

fn claims() -> Claims {
    Claims {
        iss: "https://id.example.com".into(),
        sub: "sgl_jx452C9UYq9gk_7GoiT-mA".into(),
        aud: Audience::One("https://api.example.com".into()),
        exp: 1_800_000_600,
        iat: 1_800_000_000,
        nbf: None,
        jti: Some("N4-ookaCWbb-Mxhh2ulABA".into()),
        client_id: Some("sgl_jx452C9UYq9gk_7GoiT-mA".into()),
        scope: Some("invoices:read invoices:write".into()),
        roles: vec![],
        permissions: vec![],
        tenant: None,
        extra: serde_json::Map::new(),
    }
}

fn mint(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let claims = claims();
    for alg in [
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ] {
        let generated = generate(alg, 2048).expect("generate");
        let signer = Signer::from_pkcs8(alg, &generated.pkcs8).expect("load");
        let kid = generated.jwk.kid.clone().unwrap_or_default();
        let header = serde_json::json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid});
        let header_b64 = b64(header.to_string().as_bytes());
        let mut group = c.benchmark_group(format!("mint/{}", alg.as_str()));
        group.bench_function("sigil", |b| {
            b.iter(|| {
                let payload = serde_json::to_vec(black_box(&claims)).expect("json");
                compact_jws(&header_b64, &payload, &signer, &rng).expect("sign")
            })
        });
        let jwt_alg = match alg {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        };
        let pem = pem(&generated.pkcs8);
        let key = match alg {
            Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
            Algorithm::RS256 | Algorithm::PS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
            Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
        }
        .expect("jsonwebtoken reads the key");
        let mut jheader = jsonwebtoken::Header::new(jwt_alg);
        jheader.typ = Some("at+jwt".into());
        jheader.kid = Some(kid.clone());
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::encode(black_box(&jheader), black_box(&claims), &key).expect("sign")
            })
        });
        group.bench_function("raw_ring_sign", |b| {
            let msg = format!(
                "{header_b64}.{}",
                b64(&serde_json::to_vec(&claims).expect("json"))
            );
            b.iter(|| signer.sign(black_box(msg.as_bytes()), &rng).expect("sign"))
        });
        group.finish();
    }
}

/// PKCS#8 DER as PEM, which jsonwebtoken's `from_*_pem` constructors read for every family.
fn pem(der: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out.into_bytes()
}

criterion_group!(benches, mint);
criterion_main!(benches);
