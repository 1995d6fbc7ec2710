//! Project Wycheproof vectors (tests/data/wycheproof, Apache-2.0, see its README and LICENSE).
//!
//! Signature files go through `VerifyingKey::verify`, the path the verifier uses; JWS and JWK
//! files go through `JwkSet::from_json` and `Verifier::verify_signature`. Every `invalid`
//! case must be rejected, every `valid` case accepted, except `valid` cases whose algorithm is
//! outside the allowlist (HS*, RS384, PS384, ES512, ...), which must be refused as
//! `AlgorithmNotAllowed`.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use serde_json::{Value, json};
use sigil_verify::{Algorithm, ErrorKind, Jwk, JwkSet, Verifier, VerifyingKey};

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    key_refused: usize,
}

fn run_signature_file(name: &str, alg: Algorithm) -> Tally {
    let file = load(name);
    let mut t = Tally::default();
    for group in file["testGroups"].as_array().unwrap() {
        // A few ECDSA groups have no JWK form: build one from the affine coordinates.
        let jwk_value = match group.get("publicKeyJwk").or_else(|| group.get("keyJwk")) {
            Some(v) => v.clone(),
            None => {
                let coord = |name: &str| {
                    let mut b = hex(group["publicKey"][name].as_str().unwrap());
                    while b.len() > 32 && b[0] == 0 {
                        b.remove(0);
                    }
                    while b.len() < 32 {
                        b.insert(0, 0);
                    }
                    b
                };
                serde_json::to_value(Jwk::ec_p256(&coord("wx"), &coord("wy"))).unwrap()
            }
        };
        let set_json = serde_json::to_vec(&json!({"keys": [jwk_value]})).unwrap();
        let key = JwkSet::from_json(&set_json).map(|s| VerifyingKey::from_jwk(&s.keys[0]));
        for case in group["tests"].as_array().unwrap() {
            let id = case["tcId"].as_u64().unwrap();
            let msg = hex(case["msg"].as_str().unwrap());
            let sig = hex(case["sig"].as_str().unwrap());
            let result = case["result"].as_str().unwrap();
            let outcome = match &key {
                Ok(Ok(k)) => k.verify(alg, &msg, &sig),
                Ok(Err(e)) | Err(e) => {
                    t.key_refused += 1;
                    Err(e.clone())
                }
            };
            match result {
                "valid" => {
                    assert!(outcome.is_ok(), "{name} tc {id} valid but {outcome:?}");
                    t.valid += 1;
                }
                "invalid" => {
                    assert!(outcome.is_err(), "{name} tc {id} invalid but accepted");
                    t.invalid += 1;
                }
                _ => {
                    if outcome.is_ok() {
                        t.acceptable_accepted += 1;
                    } else {
                        t.acceptable_rejected += 1;
                    }
                }
            }
        }
    }
    t
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    let t = run_signature_file("ecdsa_secp256r1_sha256_p1363_test.json", Algorithm::ES256);
    assert_eq!((t.valid, t.invalid), (173, 89), "{t:?}");
}

#[test]
fn ed25519() {
    let t = run_signature_file("ed25519_test.json", Algorithm::EdDSA);
    assert_eq!((t.valid, t.invalid), (88, 63), "{t:?}");
}

#[test]
fn rsa_pss_2048_sha256_mgf1_32() {
    let t = run_signature_file("rsa_pss_2048_sha256_mgf1_32_test.json", Algorithm::PS256);
    assert_eq!((t.valid, t.invalid), (63, 45), "{t:?}");
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    let t = run_signature_file("rsa_signature_2048_sha256_test.json", Algorithm::RS256);
    assert_eq!((t.valid, t.invalid), (9, 249), "{t:?}");
    // The one `acceptable` case is rejected (ring is strict about PKCS#1 v1.5 encoding).
    assert_eq!(
        (t.acceptable_accepted, t.acceptable_rejected),
        (0, 1),
        "{t:?}"
    );
}

#[test]
fn same_vectors_refused_under_the_wrong_algorithm() {
    // A valid ES256 vector checked as if the key were another algorithm's: AlgorithmMismatch.
    let file = load("ecdsa_secp256r1_sha256_p1363_test.json");
    let group = &file["testGroups"][0];
    let jwk: Jwk = serde_json::from_value(group["publicKeyJwk"].clone()).unwrap();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let case = &group["tests"][0];
    let (msg, sig) = (
        hex(case["msg"].as_str().unwrap()),
        hex(case["sig"].as_str().unwrap()),
    );
    key.verify(Algorithm::ES256, &msg, &sig).unwrap();
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA] {
        assert_eq!(
            key.verify(alg, &msg, &sig).unwrap_err().kind(),
            &ErrorKind::AlgorithmMismatch
        );
    }
}

fn header_alg(jws: &str) -> Option<String> {
    let h = jws.split('.').next()?;
    let bytes = sigil_verify::base64url::decode(h).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_owned)
}

fn dummy_verifier() -> Verifier {
    let s = common::Signer::ed25519();
    Verifier::builder("iss", "aud")
        .typ(None)
        .jwks(common::set(&[&s]))
        .build()
        .unwrap()
}

#[derive(Default, Debug)]
struct JwsTally {
    accepted: usize,
    not_allowed: usize,
    /// `valid` with a not-allowed algorithm, but refused earlier for non-canonical base64url.
    malformed_first: Vec<u64>,
    rejected: usize,
    set_refused: usize,
}

fn run_jws_file(name: &str) -> JwsTally {
    let file = load(name);
    let mut t = JwsTally::default();
    for group in file["testGroups"].as_array().unwrap() {
        let set = group.get("public").map(|p| {
            let keys = if p.get("keys").is_some() {
                p.clone()
            } else {
                json!({"keys": [p]})
            };
            JwkSet::from_json(&serde_json::to_vec(&keys).unwrap())
        });
        let verifier = match &set {
            Some(Ok(set)) => Verifier::builder("iss", "aud")
                .typ(None)
                .jwks(set.clone())
                .build()
                .expect("a set that parsed builds"),
            _ => {
                t.set_refused += 1;
                dummy_verifier()
            }
        };
        for case in group["tests"].as_array().unwrap() {
            let id = case["tcId"].as_u64().unwrap();
            let jws = case["jws"].as_str().expect("compact JWS");
            let result = case["result"].as_str().unwrap();
            let outcome = verifier.verify_signature(jws);
            // The full check must refuse or accept without panicking too.
            let _ = verifier.verify(jws);
            let allowed = header_alg(jws).is_some_and(|a| a.parse::<Algorithm>().is_ok());
            match result {
                "valid" if allowed => {
                    assert!(
                        outcome.is_ok(),
                        "{name} tc {id} valid but {outcome:?} (set {set:?})"
                    );
                    t.accepted += 1;
                }
                "valid" => match outcome.unwrap_err().into_kind() {
                    ErrorKind::AlgorithmNotAllowed => t.not_allowed += 1,
                    ErrorKind::Malformed(_) if header_alg(jws).is_none() => {
                        t.malformed_first.push(id);
                    }
                    other => panic!("{name} tc {id}: {other:?}"),
                },
                _ => {
                    assert!(outcome.is_err(), "{name} tc {id} ({result}) accepted");
                    t.rejected += 1;
                }
            }
        }
    }
    t
}

#[test]
fn json_web_signature() {
    let t = run_jws_file("json_web_signature_test.json");
    assert_eq!(
        t.accepted + t.not_allowed + t.malformed_first.len() + t.rejected,
        401,
        "{t:?}"
    );
    assert!(t.accepted >= 10, "{t:?}");
    // tc 372 (HS256, a `?` inserted into the header) is `valid` for lenient decoders; the
    // header is not canonical base64url, so it is refused before its alg is even read.
    assert_eq!(t.malformed_first, [372], "{t:?}");
}

#[test]
fn json_web_key() {
    let t = run_jws_file("json_web_key_test.json");
    assert_eq!(
        t.accepted + t.not_allowed + t.malformed_first.len() + t.rejected,
        26,
        "{t:?}"
    );
    assert_eq!(t.accepted, 1, "{t:?}");
}

#[test]
fn json_web_key_sets_refused_for_the_right_reason() {
    // Each Wycheproof key set that must not be used is refused when loaded.
    let file = load("json_web_key_test.json");
    let mut refused = 0;
    for group in file["testGroups"].as_array().unwrap() {
        let comment = group["comment"].as_str().unwrap();
        // Private sets (with `d`, `k`, ...) must always be refused as a public JWKS.
        if let Some(private) = group.get("private") {
            assert!(
                JwkSet::from_json(&serde_json::to_vec(private).unwrap()).is_err(),
                "{comment}: private set accepted"
            );
        }
        if let Some(public) = group.get("public") {
            let r = JwkSet::from_json(&serde_json::to_vec(public).unwrap());
            match comment {
                "rs256" if public["keys"][0]["use"] == "sig" => assert!(r.is_ok()),
                _ => {
                    assert!(r.is_err(), "{comment}: {r:?}");
                    refused += 1;
                }
            }
        }
    }
    assert!(refused >= 8, "{refused}");
}
