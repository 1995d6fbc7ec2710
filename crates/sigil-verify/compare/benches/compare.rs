//! The same ES256, RS256, PS256 and EdDSA access tokens verified by sigil-verify (backend per
//! this project's `aws-lc-rs` feature), jsonwebtoken 9 (ring), jsonwebtoken 10 (aws-lc-rs),
//! jwt-simple (pure Rust), and the raw signature checks alone.
#![expect(clippy::unwrap_used, reason = "benchmark fixtures")]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::hint::black_box;

use common::{AUD, ISS, Signer};
use criterion::{Criterion, criterion_group};
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike, PS256PublicKey,
    RS256PublicKey, RSAPublicKeyLike, VerificationOptions,
};
use serde_json::{Map, Value, json};
use sigil_verify::{Algorithm, Verifier, base64url};

fn token(s: &Signer) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": now + 86_400, "iat": now,
        "jti": "0f8c2a3e-5b0c-4d2e-9f61-3b1d7c2a9e10", "client_id": "client-1",
        "scope": "openid orders:read orders:write", "roles": ["admin"]
    });
    s.token_with(&s.header(), &claims)
}

fn dec(v: &Option<String>) -> Vec<u8> {
    base64url::decode(v.as_deref().unwrap()).unwrap()
}

type Check = Box<dyn Fn(&str) -> bool>;

fn jsonwebtoken9(s: &Signer) -> Check {
    use jsonwebtoken9::{Algorithm as A, DecodingKey, Validation, decode};
    let j = &s.jwk;
    let (key, alg) = match s.alg {
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
    };
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    Box::new(move |t| decode::<Map<String, Value>>(t, &key, &v).is_ok())
}

fn jsonwebtoken10(s: &Signer) -> Check {
    use jsonwebtoken10::{Algorithm as A, DecodingKey, Validation, decode};
    let j = &s.jwk;
    let (key, alg) = match s.alg {
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
    };
    let mut v = Validation::new(alg);
    v.set_issuer(&[ISS]);
    v.set_audience(&[AUD]);
    Box::new(move |t| decode::<Map<String, Value>>(t, &key, &v).is_ok())
}

fn jwt_simple(s: &Signer) -> Check {
    let opts = VerificationOptions {
        allowed_issuers: Some(HashSet::from([ISS.to_owned()])),
        allowed_audiences: Some(HashSet::from([AUD.to_owned()])),
        ..VerificationOptions::default()
    };
    let j = s.jwk.clone();
    match s.alg {
        Algorithm::RS256 => {
            let k = RS256PublicKey::from_components(&dec(&j.n), &dec(&j.e)).unwrap();
            Box::new(move |t| {
                k.verify_token::<Map<String, Value>>(t, Some(opts.clone()))
                    .is_ok()
            })
        }
        Algorithm::PS256 => {
            let k = PS256PublicKey::from_components(&dec(&j.n), &dec(&j.e)).unwrap();
            Box::new(move |t| {
                k.verify_token::<Map<String, Value>>(t, Some(opts.clone()))
                    .is_ok()
            })
        }
        Algorithm::ES256 => {
            let point = [vec![4], dec(&j.x), dec(&j.y)].concat();
            let k = ES256PublicKey::from_bytes(&point).unwrap();
            Box::new(move |t| {
                k.verify_token::<Map<String, Value>>(t, Some(opts.clone()))
                    .is_ok()
            })
        }
        Algorithm::EdDSA => {
            let k = Ed25519PublicKey::from_bytes(&dec(&j.x)).unwrap();
            Box::new(move |t| {
                k.verify_token::<Map<String, Value>>(t, Some(opts.clone()))
                    .is_ok()
            })
        }
    }
}

/// Message and signature already decoded, key bytes ready: the signature check alone.
fn raw(s: &Signer, t: &str, aws: bool, parsed: bool) -> Box<dyn Fn() -> bool> {
    let (input, sig) = t.rsplit_once('.').unwrap();
    let input = input.as_bytes().to_vec();
    let sig = base64url::decode(sig).unwrap();
    let j = s.jwk.clone();
    let alg = s.alg;
    if aws {
        use aws_lc_rs::signature as a;
        let params: &'static dyn a::VerificationAlgorithm = match alg {
            Algorithm::RS256 => &a::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::PS256 => &a::RSA_PSS_2048_8192_SHA256,
            Algorithm::ES256 => &a::ECDSA_P256_SHA256_FIXED,
            Algorithm::EdDSA => &a::ED25519,
        };
        let (n, e) = (
            dec(&j.n.clone().or(Some(String::new()))),
            dec(&j.e.clone().or(Some(String::new()))),
        );
        if matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
            let rsa_params = match alg {
                Algorithm::RS256 => &a::RSA_PKCS1_2048_8192_SHA256,
                _ => &a::RSA_PSS_2048_8192_SHA256,
            };
            if parsed {
                let k = a::RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .to_parsed_public_key(rsa_params)
                .unwrap();
                return Box::new(move || k.verify_sig(&input, &sig).is_ok());
            }
            return Box::new(move || {
                a::RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .verify(rsa_params, &input, &sig)
                .is_ok()
            });
        }
        let point = match alg {
            Algorithm::ES256 => [vec![4], dec(&j.x), dec(&j.y)].concat(),
            _ => dec(&j.x),
        };
        if parsed {
            let k = a::ParsedPublicKey::new(params, &point).unwrap();
            return Box::new(move || k.verify_sig(&input, &sig).is_ok());
        }
        return Box::new(move || {
            a::UnparsedPublicKey::new(params, &point)
                .verify(&input, &sig)
                .is_ok()
        });
    }
    use ring::signature as r;
    match alg {
        Algorithm::RS256 | Algorithm::PS256 => {
            let (n, e) = (dec(&j.n), dec(&j.e));
            let params = if alg == Algorithm::RS256 {
                &r::RSA_PKCS1_2048_8192_SHA256
            } else {
                &r::RSA_PSS_2048_8192_SHA256
            };
            Box::new(move || {
                r::RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(params, &input, &sig)
                    .is_ok()
            })
        }
        Algorithm::ES256 => {
            let point = [vec![4], dec(&j.x), dec(&j.y)].concat();
            Box::new(move || {
                r::UnparsedPublicKey::new(&r::ECDSA_P256_SHA256_FIXED, &point)
                    .verify(&input, &sig)
                    .is_ok()
            })
        }
        Algorithm::EdDSA => {
            let x = dec(&j.x);
            Box::new(move || {
                r::UnparsedPublicKey::new(&r::ED25519, &x)
                    .verify(&input, &sig)
                    .is_ok()
            })
        }
    }
}

struct Case {
    alg: Algorithm,
    token: String,
    checks: Vec<(String, Check)>,
    raws: Vec<(String, Box<dyn Fn() -> bool>)>,
}

fn cases() -> Vec<Case> {
    let signers = [
        Signer::rsa(common::RSA2048, Algorithm::RS256),
        Signer::rsa(common::RSA2048, Algorithm::PS256),
        Signer::es256(),
        Signer::ed25519(),
    ];
    let mut set = common::set(&signers.iter().collect::<Vec<_>>());
    set.keys.dedup_by(|a, b| a.kid == b.kid);
    set.keys[0].alg = None; // the RSA key serves RS256 and PS256
    let verifier = Verifier::builder(ISS, AUD).jwks(set).build().unwrap();
    let sigil_name = format!("sigil-verify ({})", sigil_verify::BACKEND);
    signers
        .iter()
        .map(|s| {
            let t = token(s);
            let checks: Vec<(String, Check)> = vec![
                (sigil_name.clone(), {
                    let v = verifier.clone();
                    Box::new(move |t| v.verify(t).is_ok())
                }),
                ("jsonwebtoken 9 (ring)".into(), jsonwebtoken9(s)),
                ("jsonwebtoken 10 (aws-lc-rs)".into(), jsonwebtoken10(s)),
                ("jwt-simple (pure-rust)".into(), jwt_simple(s)),
            ];
            let raws = vec![
                ("raw ring".to_owned(), raw(s, &t, false, false)),
                ("raw aws-lc-rs".to_owned(), raw(s, &t, true, false)),
                (
                    "raw aws-lc-rs (parsed key)".to_owned(),
                    raw(s, &t, true, true),
                ),
            ];
            for (name, check) in &checks {
                assert!(check(&t), "{name} refused a valid {} token", s.alg);
            }
            for (name, check) in &raws {
                assert!(check(), "{name}");
            }
            Case {
                alg: s.alg,
                token: t,
                checks,
                raws,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let t = &case.token;
        let mut g = c.benchmark_group(case.alg.as_str());
        for (name, check) in &case.checks {
            g.bench_function(name.as_str(), |b| b.iter(|| assert!(check(black_box(t)))));
        }
        for (name, check) in &case.raws {
            g.bench_function(name.as_str(), |b| b.iter(|| assert!(black_box(check()))));
        }
        g.finish();
    }
}

/// `INTERLEAVED=1 cargo bench --bench compare`: alternate short batches of every verifier
/// and keep each one's best batch, so that load changes on a shared machine hit all alike.
fn interleaved() {
    for case in cases() {
        let mut best: Vec<f64> = vec![f64::MAX; case.checks.len() + case.raws.len()];
        let batch = 100;
        for _ in 0..40 {
            for (i, (_, check)) in case.checks.iter().enumerate() {
                let t0 = std::time::Instant::now();
                for _ in 0..batch {
                    assert!(check(black_box(&case.token)));
                }
                best[i] = best[i].min(t0.elapsed().as_secs_f64() / f64::from(batch));
            }
            for (j, (_, check)) in case.raws.iter().enumerate() {
                let t0 = std::time::Instant::now();
                for _ in 0..batch {
                    assert!(black_box(check()));
                }
                let i = case.checks.len() + j;
                best[i] = best[i].min(t0.elapsed().as_secs_f64() / f64::from(batch));
            }
        }
        let names: Vec<&str> = case
            .checks
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(case.raws.iter().map(|(n, _)| n.as_str()))
            .collect();
        let raw_ring = best[case.checks.len()];
        println!("\n{}", case.alg);
        for (name, t) in names.iter().zip(&best) {
            println!(
                "| {name} | {:.1} | {:.0} | {:.3} |",
                t * 1e6,
                1.0 / t,
                t / raw_ring
            );
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    if std::env::var_os("INTERLEAVED").is_some() {
        interleaved();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
