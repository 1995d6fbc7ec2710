//! Strict JWKS parsing and key validation.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::*;
use serde_json::{Value, json};
use sigil_verify::{Algorithm, ErrorKind, Jwk, JwkSet, Verifier};

fn parse(v: &Value) -> Result<JwkSet, sigil_verify::Error> {
    JwkSet::from_json(&serde_json::to_vec(v).unwrap())
}

fn key_json(s: &Signer) -> Value {
    serde_json::to_value(&s.jwk).unwrap()
}

#[test]
fn a_published_set_round_trips() {
    let signers = Signer::all();
    let set = JwkSet {
        keys: signers.iter().map(|s| s.jwk.clone()).collect(),
    };
    let text = serde_json::to_vec(&set).unwrap();
    assert_eq!(JwkSet::from_json(&text).unwrap(), set);
    for s in &signers {
        assert_eq!(s.jwk.kid.as_deref(), Some(s.jwk.thumbprint().as_str()));
        assert_eq!(s.jwk.use_.as_deref(), Some("sig"));
    }
}

#[test]
fn private_members_refused() {
    let s = Signer::es256();
    for m in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
        let mut k = key_json(&s);
        k[m] = json!("AAAA");
        let e = parse(&json!({"keys":[k]})).unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::InvalidKey(w) if w.contains(m)),
            "{m}: {e}"
        );
    }
}

#[test]
fn duplicate_kids_refused() {
    let a = Signer::es256();
    let b = Signer::ed25519();
    let mut kb = key_json(&b);
    kb["kid"] = json!(a.kid());
    assert!(parse(&json!({"keys":[key_json(&a), kb]})).is_err());
    // Across builder sources too.
    let e = Verifier::builder(ISS, AUD)
        .jwks(set(&[&a]))
        .jwks(set(&[&a]))
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidKey(_)));
}

#[test]
fn duplicate_member_names_refused() {
    let s = Signer::ed25519();
    let x = s.jwk.x.clone().unwrap();
    let text = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","x":"{x}"}}]}}"#);
    assert!(matches!(
        JwkSet::from_json(text.as_bytes()).unwrap_err().kind(),
        ErrorKind::Malformed(_)
    ));
    let text = format!(r#"{{"keys":[],"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}]}}"#);
    assert!(JwkSet::from_json(text.as_bytes()).is_err());
}

#[test]
fn small_rsa_refused() {
    // Wycheproof's 1024-bit key.
    let k = json!({"kty":"RSA","use":"sig","alg":"RS256","kid":"RS256_1024","e":"AQAB",
        "n":"rJBIp6T1YK-RtPyvYqFFlcucqewSAA_IReSFchE8qyiQrbARqRlXWkB2DR8j_pJQnIpYELbQWZC5Cd0PTGAU8rMbar2AW6zpmBbi7aQf17lUBdt8XI9M9rq7FPVQ1dDdUXm1SVH_9qqWhvMPR422SbfHBEzCAtzK0ANDRo6qz78"});
    let e = parse(&json!({"keys":[k]})).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidKey(w) if w.contains("1024")),
        "{e}"
    );
    // Leading zero bytes do not count as bits.
    let s = Signer::rs256();
    let n = sigil_verify::base64url::decode(s.jwk.n.as_deref().unwrap()).unwrap();
    let mut padded = vec![0u8; 4];
    padded.extend_from_slice(&n[..128]);
    padded[4] |= 0x80;
    let weak = Jwk::rsa(&padded, &[1, 0, 1], Algorithm::RS256);
    assert!(JwkSet { keys: vec![weak] }.validate().is_err());
}

#[test]
fn bad_rsa_exponents_refused() {
    let s = Signer::rs256();
    for e in ["AQ", "Ag", "AA", "AQAA", "AQAAAAAAAQ"] {
        let mut k = key_json(&s);
        k["e"] = json!(e);
        assert!(parse(&json!({"keys":[k]})).is_err(), "e={e}");
    }
}

#[test]
fn roca_fingerprint_refused() {
    let k = json!({"alg":"RS256","use":"sig","kid":"kid-rsa-roca-sign","kty":"RSA","e":"AQAB",
        "n":"AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE"});
    let e = parse(&json!({"keys":[k]})).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidKey(w) if w.contains("ROCA")),
        "{e}"
    );
    // Our own test keys do not have the fingerprint.
    assert!(
        JwkSet {
            keys: vec![Signer::rs256().jwk, Signer::ps256().jwk]
        }
        .validate()
        .is_ok()
    );
}

#[test]
fn wrong_use_and_key_ops_refused() {
    let s = Signer::es256();
    let mut k = key_json(&s);
    k["use"] = json!("enc");
    assert!(parse(&json!({"keys":[k]})).is_err());
    let mut k = key_json(&s);
    k["key_ops"] = json!(["encrypt"]);
    assert!(parse(&json!({"keys":[k]})).is_err());
    let mut k = key_json(&s);
    k["key_ops"] = json!(["verify"]);
    assert!(parse(&json!({"keys":[k]})).is_ok());
    let mut k = key_json(&s);
    k.as_object_mut().unwrap().remove("use");
    assert!(parse(&json!({"keys":[k]})).is_ok());
}

#[test]
fn alg_kty_crv_mismatch_refused() {
    let ec = Signer::es256();
    let ed = Signer::ed25519();
    let rs = Signer::rs256();
    let cases = [
        (key_json(&ec), "alg", json!("EdDSA")),
        (key_json(&ec), "alg", json!("ES384")),
        (key_json(&ec), "alg", json!("ES512")),
        (key_json(&ec), "crv", json!("P-384")),
        (key_json(&ec), "crv", json!("secp256k1")),
        (key_json(&ec), "kty", json!("OKP")),
        (key_json(&ed), "alg", json!("ES256")),
        (key_json(&ed), "crv", json!("X25519")),
        (key_json(&ed), "crv", json!("Ed448")),
        (key_json(&rs), "alg", json!("ES256")),
        (key_json(&rs), "alg", json!("RS384")),
        (key_json(&rs), "alg", json!("HS256")),
        (key_json(&rs), "alg", json!("none")),
        (key_json(&rs), "kty", json!("oct")),
        (key_json(&rs), "crv", json!("P-256")),
    ];
    for (mut k, member, value) in cases {
        k[member] = value.clone();
        assert!(parse(&json!({"keys":[k]})).is_err(), "{member}={value}");
    }
}

#[test]
fn bad_points_and_lengths_refused() {
    let ec = Signer::es256();
    let ed = Signer::ed25519();
    // Off-curve point: flip a bit of y.
    let mut y = sigil_verify::base64url::decode(ec.jwk.y.as_deref().unwrap()).unwrap();
    y[31] ^= 1;
    let mut k = key_json(&ec);
    k["y"] = json!(sigil_verify::base64url::encode(&y));
    let e = parse(&json!({"keys":[k]})).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvalidKey(w) if w.contains("P-256")),
        "{e}"
    );
    // Short coordinate, non-canonical base64url, missing member.
    let mut k = key_json(&ec);
    k["x"] = json!("AAAA");
    assert!(parse(&json!({"keys":[k]})).is_err());
    let mut k = key_json(&ed);
    k["x"] = json!(format!("{}=", ed.jwk.x.as_deref().unwrap()));
    assert!(parse(&json!({"keys":[k]})).is_err());
    let mut k = key_json(&ed);
    k.as_object_mut().unwrap().remove("x");
    assert!(parse(&json!({"keys":[k]})).is_err());
    let mut k = key_json(&ed);
    k["x"] = json!(12);
    assert!(parse(&json!({"keys":[k]})).is_err());
}

#[test]
fn not_a_jwks() {
    for text in [
        &b""[..],
        b"[]",
        b"{}",
        b"{\"keys\":{}}",
        b"{\"keys\":[1]}",
        b"\xef\xbb\xbf{\"keys\":[]}",
        b"{\"keys\":[]} x",
    ] {
        assert!(
            JwkSet::from_json(text).is_err(),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
    assert_eq!(JwkSet::from_json(b"{\"keys\":[]}").unwrap().keys.len(), 0);
}
