//! Interleaved timing of `Verifier::verify` against the raw ring check on the same token, to
//! see the parsing/claims overhead on a noisy machine (criterion runs them minutes apart).
//!
//! `cargo run --release -p sigil-verify --example overhead`
#![expect(clippy::unwrap_used, reason = "example")]

use std::hint::black_box;
use std::time::Instant;

use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use sigil_verify::{Jwk, JwkSet, Verifier, base64url};

fn main() {
    let rng = SystemRandom::new();
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = Jwk::ed25519(kp.public_key().as_ref());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#,
        jwk.kid.as_deref().unwrap()
    );
    let claims = format!(
        r#"{{"iss":"https://id.example.com","sub":"user-1","aud":"https://api.example.com","exp":{},"iat":{now},"jti":"0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10","client_id":"client-1","scope":"openid orders:read orders:write","roles":["admin"]}}"#,
        now + 86_400
    );
    let input = format!(
        "{}.{}",
        base64url::encode(header.as_bytes()),
        base64url::encode(claims.as_bytes())
    );
    let sig = kp.sign(input.as_bytes());
    let token = format!("{input}.{}", base64url::encode(sig.as_ref()));
    let v = Verifier::builder("https://id.example.com", "https://api.example.com")
        .jwks(JwkSet { keys: vec![jwk] })
        .build()
        .unwrap();
    let pk = kp.public_key().as_ref().to_vec();
    let raw = || {
        signature::UnparsedPublicKey::new(&signature::ED25519, &pk)
            .verify(input.as_bytes(), sig.as_ref())
            .is_ok()
    };
    let (mut best_v, mut best_r) = (f64::MAX, f64::MAX);
    for _ in 0..30 {
        let t = Instant::now();
        for _ in 0..500 {
            black_box(v.verify(black_box(&token)).unwrap());
        }
        best_v = best_v.min(t.elapsed().as_secs_f64() / 500.0);
        let t = Instant::now();
        for _ in 0..500 {
            assert!(black_box(raw()));
        }
        best_r = best_r.min(t.elapsed().as_secs_f64() / 500.0);
    }
    report("EdDSA", best_v, best_r);
    rsa();
}

fn report(name: &str, best_v: f64, best_r: f64) {
    println!(
        "{name}: sigil-verify {:.2} us, raw ring {:.2} us, overhead {:.2} us ({:+.1} %)",
        best_v * 1e6,
        best_r * 1e6,
        (best_v - best_r) * 1e6,
        (best_v / best_r - 1.0) * 100.0
    );
}

fn rsa() {
    let der = include_bytes!("../tests/data/keys/rsa2048.pk8.der");
    let kp = signature::RsaKeyPair::from_pkcs8(der).unwrap();
    let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public());
    let jwk = Jwk::rsa(&c.n, &c.e, sigil_verify::Algorithm::RS256);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = format!(
        r#"{{"alg":"RS256","typ":"at+jwt","kid":"{}"}}"#,
        jwk.kid.as_deref().unwrap()
    );
    let claims = format!(
        r#"{{"iss":"https://id.example.com","sub":"user-1","aud":"https://api.example.com","exp":{},"iat":{now},"jti":"0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10","client_id":"client-1","scope":"openid orders:read orders:write","roles":["admin"]}}"#,
        now + 86_400
    );
    let input = format!(
        "{}.{}",
        base64url::encode(header.as_bytes()),
        base64url::encode(claims.as_bytes())
    );
    let mut sig = vec![0; kp.public().modulus_len()];
    kp.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let token = format!("{input}.{}", base64url::encode(&sig));
    let v = Verifier::builder("https://id.example.com", "https://api.example.com")
        .jwks(JwkSet { keys: vec![jwk] })
        .build()
        .unwrap();
    let raw = || {
        c.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &sig,
        )
        .is_ok()
    };
    let (mut best_v, mut best_r) = (f64::MAX, f64::MAX);
    for _ in 0..30 {
        let t = Instant::now();
        for _ in 0..500 {
            black_box(v.verify(black_box(&token)).unwrap());
        }
        best_v = best_v.min(t.elapsed().as_secs_f64() / 500.0);
        let t = Instant::now();
        for _ in 0..500 {
            assert!(black_box(raw()));
        }
        best_r = best_r.min(t.elapsed().as_secs_f64() / 500.0);
    }
    report("RS256", best_v, best_r);
}
