//! One named test per "Never accepted" item of issue 3. Each asserts the exact error kind and
//! that the library returned instead of panicking.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::*;
use ring::hmac;
use serde_json::{Value, json};
use sigil_verify::{ErrorKind, Verifier};

fn kind(v: &Verifier, token: &str) -> ErrorKind {
    v.verify(token).unwrap_err().into_kind()
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A token with the given header and payload bytes and an arbitrary signature.
fn forged(header: &[u8], payload: &[u8], sig: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(sig))
}

#[test]
fn alg_none_in_any_case() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": s.kid()});
        let p = json_bytes(&claims());
        for sig in [&b""[..], &[0u8; 64][..]] {
            let t = forged(&json_bytes(&h), &p, sig);
            assert_eq!(kind(&v, &t), ErrorKind::AlgorithmNotAllowed, "alg {alg}");
        }
        // The unsecured form "header.payload." too.
        let t = format!("{}.{}.", b64(&json_bytes(&h)), b64(&p));
        assert_eq!(kind(&v, &t), ErrorKind::AlgorithmNotAllowed);
    }
}

#[test]
fn hs_algorithms_of_any_kind() {
    let s = Signer::rs256();
    let v = verifier(&[&s]);
    let p = json_bytes(&claims());
    for (alg, h_alg) in [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": s.kid()});
        let input = format!("{}.{}", b64(&json_bytes(&h)), b64(&p));
        let key = hmac::Key::new(h_alg, b"secret");
        let tag = hmac::sign(&key, input.as_bytes());
        let t = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(kind(&v, &t), ErrorKind::AlgorithmNotAllowed);
    }
}

#[test]
fn hmac_keyed_with_the_public_key() {
    // The classic confusion: HS256 with the RSA public key (as JWK JSON, as n, as PEM) as
    // the MAC key.
    let s = Signer::rs256();
    let v = verifier(&[&s]);
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/rsa2048.pub.pem"
    ))
    .unwrap();
    let jwk_json = serde_json::to_vec(&s.jwk).unwrap();
    let n = s.jwk.n.clone().unwrap().into_bytes();
    for key_bytes in [pem, jwk_json, n] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": s.kid()});
        let input = format!("{}.{}", b64(&json_bytes(&h)), b64(&json_bytes(&claims())));
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            input.as_bytes(),
        );
        let t = format!("{input}.{}", b64(tag.as_ref()));
        assert_eq!(kind(&v, &t), ErrorKind::AlgorithmNotAllowed);
    }
}

#[test]
fn header_alg_not_matching_key_kty_alg_crv() {
    let rs = Signer::rs256(); // RSA key with alg RS256
    let ec = Signer::es256();
    let ed = Signer::ed25519();
    let v = verifier(&[&rs, &ec, &ed]);
    let p = claims();
    // A correctly made PS256 signature with the RS256 key: the key's alg decides.
    let h = json!({"alg":"PS256","typ":"at+jwt","kid":rs.kid()});
    let input = format!("{}.{}", b64(&json_bytes(&h)), b64(&json_bytes(&p)));
    let sig = rs.sign_as(sigil_verify::Algorithm::PS256, input.as_bytes());
    assert_eq!(
        kind(&v, &format!("{input}.{}", b64(&sig))),
        ErrorKind::AlgorithmMismatch
    );
    // ES256 header on the Ed25519 key, EdDSA on the P-256 key, RS256 on the EC key.
    for (alg, key) in [("ES256", &ed), ("EdDSA", &ec), ("RS256", &ec)] {
        let h = json!({"alg":alg,"typ":"at+jwt","kid":key.kid()});
        let t = key.token_with(&h, &p);
        assert_eq!(kind(&v, &t), ErrorKind::AlgorithmMismatch, "{alg}");
    }
    // The allowlist can narrow further: EdDSA not allowed.
    let v = builder(&[&ed])
        .algorithms(&[sigil_verify::Algorithm::ES256])
        .build()
        .unwrap();
    assert_eq!(kind(&v, &ed.token()), ErrorKind::AlgorithmNotAllowed);
}

#[test]
fn keys_from_token_headers_never_used() {
    // The attacker signs with their own key and ships it in the header.
    let attacker = Signer::es256();
    let ours = Signer::es256();
    let v = verifier(&[&ours]);
    let jwk = serde_json::to_value(&attacker.jwk).unwrap();
    for (member, value) in [
        ("jwk", jwk),
        ("jku", json!("http://127.0.0.1:1/jwks.json")),
        ("x5u", json!("http://127.0.0.1:1/cert.pem")),
        ("x5c", json!(["MIIBkTCB+wIJAL"])),
    ] {
        let mut h = attacker.header();
        h[member] = value;
        let t = attacker.token_with(&h, &claims());
        assert_eq!(
            kind(&v, &t),
            ErrorKind::UnsupportedHeader(member),
            "{member}"
        );
        // Even pointing at our own kid.
        h["kid"] = json!(ours.kid());
        let t = attacker.token_with(&h, &claims());
        assert_eq!(kind(&v, &t), ErrorKind::UnsupportedHeader(member));
    }
}

#[test]
fn unknown_or_hostile_kid_is_a_map_miss() {
    let s = Signer::es256();
    let v = builder(&[&s]).max_token_size(64 * 1024).build().unwrap();
    let long = "A".repeat(8 * 1024);
    for kid in [
        "unknown",
        "../../../../etc/passwd",
        "/dev/zero",
        "' OR '1'='1'; DROP TABLE keys; --",
        "kid\u{0}with-nul",
        "\u{0}",
        "",
        long.as_str(),
        "http://127.0.0.1:1/",
    ] {
        let h = json!({"alg":"ES256","typ":"at+jwt","kid":kid});
        let t = s.token_with(&h, &claims());
        assert_eq!(kind(&v, &t), ErrorKind::UnknownKey, "kid {:.20}", kid);
    }
    // With default limits the 8 KB kid does not even get parsed.
    let h = json!({"alg":"ES256","typ":"at+jwt","kid":long});
    assert_eq!(
        kind(&verifier(&[&s]), &s.token_with(&h, &claims())),
        ErrorKind::TokenTooLarge
    );
    // A non-string kid is malformed.
    let h = json!({"alg":"ES256","typ":"at+jwt","kid":{"$ne":null}});
    assert!(matches!(
        kind(&v, &s.token_with(&h, &claims())),
        ErrorKind::Malformed(_)
    ));
}

#[test]
fn crit_with_anything() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    for crit in [
        json!(["exp"]),
        json!([]),
        json!(["b64"]),
        json!("x"),
        json!(null),
    ] {
        let mut h = s.header();
        h["crit"] = crit;
        assert_eq!(
            kind(&v, &s.token_with(&h, &claims())),
            ErrorKind::UnsupportedHeader("crit")
        );
    }
}

#[test]
fn b64_false_and_b64_at_all() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    for b in [json!(false), json!(true)] {
        let mut h = s.header();
        h["b64"] = b;
        assert_eq!(
            kind(&v, &s.token_with(&h, &claims())),
            ErrorKind::UnsupportedHeader("b64")
        );
    }
}

#[test]
fn jwe_members_in_header() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    for (m, val) in [("enc", json!("A256GCM")), ("zip", json!("DEF"))] {
        let mut h = s.header();
        h[m] = val;
        assert_eq!(
            kind(&v, &s.token_with(&h, &claims())),
            ErrorKind::UnsupportedHeader(m)
        );
    }
}

/// P-256 group order n.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[test]
fn ecdsa_r_s_zero_and_out_of_range_cve_2022_21449() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let input = format!(
        "{}.{}",
        b64(&json_bytes(&s.header())),
        b64(&json_bytes(&claims()))
    );
    let zero = [0u8; 32];
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut n_minus_1 = P256_N;
    n_minus_1[31] -= 1;
    let ff = [0xffu8; 32];
    let values: [&[u8; 32]; 5] = [&zero, &one, &P256_N, &n_minus_1, &ff];
    for r in values {
        for s_ in values {
            let mut sig = r.to_vec();
            sig.extend_from_slice(s_);
            let t = format!("{input}.{}", b64(&sig));
            assert_eq!(kind(&v, &t), ErrorKind::InvalidSignature);
        }
    }
    // r = s = 0 against every algorithm's key.
    for k in Signer::all() {
        let v = verifier(&[&k]);
        let input = format!(
            "{}.{}",
            b64(&json_bytes(&k.header())),
            b64(&json_bytes(&claims()))
        );
        let sig = vec![0u8; k.sign(b"x").len()];
        assert_eq!(
            kind(&v, &format!("{input}.{}", b64(&sig))),
            ErrorKind::InvalidSignature
        );
    }
}

#[test]
fn wrong_length_signatures() {
    for k in Signer::all() {
        let v = verifier(&[&k]);
        let input = format!(
            "{}.{}",
            b64(&json_bytes(&k.header())),
            b64(&json_bytes(&claims()))
        );
        let good = k.sign(input.as_bytes());
        let mut longer = good.clone();
        longer.push(0);
        let mut der_like = vec![0x30, 0x44, 0x02, 0x20];
        der_like.extend_from_slice(&good);
        for sig in [
            &good[..good.len() - 1],
            &longer[..],
            &[][..],
            &der_like[..],
            &good[..good.len() / 2],
        ] {
            let t = format!("{input}.{}", b64(sig));
            assert_eq!(
                kind(&v, &t),
                ErrorKind::InvalidSignature,
                "{} len {}",
                k.alg,
                sig.len()
            );
        }
        // Sanity: the good one passes.
        v.verify(&format!("{input}.{}", b64(&good))).unwrap();
    }
}

fn with_claims(c: &Value) -> ErrorKind {
    let s = Signer::ed25519();
    kind(&verifier(&[&s]), &s.token_with(&s.header(), c))
}

#[test]
fn expired() {
    let mut c = claims();
    c["exp"] = json!(NOW - 61);
    assert_eq!(with_claims(&c), ErrorKind::Expired);
    c["exp"] = json!(NOW - 60);
    assert_eq!(with_claims(&c), ErrorKind::Expired);
    c["exp"] = json!(i64::MIN);
    assert_eq!(with_claims(&c), ErrorKind::Expired);
}

#[test]
fn missing_exp() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(with_claims(&c), ErrorKind::MissingClaim("exp"));
}

#[test]
fn future_nbf_beyond_leeway() {
    let mut c = claims();
    c["nbf"] = json!(NOW + 61);
    assert_eq!(with_claims(&c), ErrorKind::ImmatureSignature);
    c["nbf"] = json!(NOW + 60);
    let s = Signer::ed25519();
    verifier(&[&s])
        .verify(&s.token_with(&s.header(), &c))
        .unwrap();
    c["nbf"] = json!(i64::MAX);
    assert_eq!(with_claims(&c), ErrorKind::ImmatureSignature);
}

#[test]
fn future_iat_beyond_leeway() {
    let mut c = claims();
    c["iat"] = json!(NOW + 61);
    assert_eq!(with_claims(&c), ErrorKind::ImmatureSignature);
    c["iat"] = json!("now");
    assert_eq!(with_claims(&c), ErrorKind::InvalidClaim("iat"));
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(with_claims(&c), ErrorKind::MissingClaim("iat"));
}

#[test]
fn exp_not_a_number() {
    for exp in [
        json!("1700000600"),
        json!(1_700_000_600.5),
        json!(null),
        json!(true),
        json!([NOW + 600]),
        json!({"v": NOW + 600}),
        json!(u64::MAX),
    ] {
        let mut c = claims();
        c["exp"] = exp.clone();
        assert_eq!(with_claims(&c), ErrorKind::InvalidClaim("exp"), "exp {exp}");
    }
}

#[test]
fn roles_and_permissions_not_arrays_of_strings() {
    for name in ["roles", "permissions"] {
        for bad in [
            json!("orders:read"),
            json!(1),
            json!(null),
            json!(true),
            json!([1]),
            json!(["orders:read", 1]),
            json!([["orders:read"]]),
            json!({"orders:read": true}),
        ] {
            let mut c = claims();
            c[name] = bad.clone();
            assert_eq!(
                with_claims(&c),
                ErrorKind::InvalidClaim(name),
                "{name}: {bad}"
            );
            // serde refuses the same claims set.
            assert!(
                serde_json::from_value::<sigil_verify::Claims>(c).is_err(),
                "{name}: {bad}"
            );
        }
    }
}

#[test]
fn iss_not_byte_equal() {
    for iss in [
        json!("https://id.example.com/"),
        json!("HTTPS://id.example.com"),
        json!("https://id.example.com "),
        json!("https://id.example.co"),
        json!("https://іd.example.com"), // Cyrillic i
        json!(""),
    ] {
        let mut c = claims();
        c["iss"] = iss;
        assert_eq!(with_claims(&c), ErrorKind::WrongIssuer);
    }
    let mut c = claims();
    c["iss"] = json!([ISS]);
    assert_eq!(with_claims(&c), ErrorKind::InvalidClaim("iss"));
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(with_claims(&c), ErrorKind::MissingClaim("iss"));
}

#[test]
fn aud_missing_or_not_ours() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(with_claims(&c), ErrorKind::MissingClaim("aud"));
    for aud in [
        json!("https://other.example.com"),
        json!([]),
        json!(["x", "y"]),
        json!(AUD.to_uppercase()),
    ] {
        c["aud"] = aud;
        assert_eq!(with_claims(&c), ErrorKind::WrongAudience);
    }
    for aud in [json!(null), json!(1), json!([AUD, 1])] {
        c["aud"] = aud;
        assert_eq!(with_claims(&c), ErrorKind::InvalidClaim("aud"));
    }
}

#[test]
fn wrong_typ() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    for typ in [
        json!("JWT"),
        json!("refresh+jwt"),
        json!("application/jwt"),
        json!("at+jwtx"),
        json!(""),
        json!("xapplication/at+jwt"),
    ] {
        let mut h = s.header();
        h["typ"] = typ;
        assert_eq!(kind(&v, &s.token_with(&h, &claims())), ErrorKind::WrongType);
    }
    let mut h = s.header();
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(kind(&v, &s.token_with(&h, &claims())), ErrorKind::WrongType);
}

#[test]
fn duplicate_json_member_names() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let kid = s.kid();
    let headers = [
        format!(r#"{{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","kid":"other"}}"#),
        format!(r#"{{"alg":"ES256","typ":"at+jwt","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","x":1,"x":2}}"#),
        format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","x":{{"a":1,"a":2}}}}"#),
        format!(r#"{{"alg":"ES256","\u0061lg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
    ];
    let p = json_bytes(&claims());
    for h in &headers {
        let t = s.token_raw(h.as_bytes(), &p);
        assert!(matches!(kind(&v, &t), ErrorKind::Malformed(_)), "{h}");
    }
    let h = json_bytes(&s.header());
    for payload in [
        format!(
            r#"{{"iss":"{ISS}","sub":"a","sub":"admin","aud":"{AUD}","exp":{},"iat":{NOW}}}"#,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","sub":"a","aud":"{AUD}","exp":{},"exp":{},"iat":{NOW}}}"#,
            NOW - 600,
            NOW + 600
        ),
        format!(
            r#"{{"iss":"{ISS}","sub":"a","aud":"{AUD}","exp":{},"iat":{NOW},"x":{{"y":[{{"z":1,"z":2}}]}}}}"#,
            NOW + 600
        ),
    ] {
        let t = s.token_raw(&h, payload.as_bytes());
        assert!(matches!(kind(&v, &t), ErrorKind::Malformed(_)), "{payload}");
    }
}

#[test]
fn invalid_utf8() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let kid = s.kid();
    let mut h = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","x":"?"}}"#).into_bytes();
    let q = h.iter().rposition(|b| *b == b'?').unwrap();
    h[q] = 0xff;
    let p = json_bytes(&claims());
    assert!(matches!(
        kind(&v, &s.token_raw(&h, &p)),
        ErrorKind::Malformed(_)
    ));
    let mut p2 = format!(
        r#"{{"iss":"{ISS}","sub":"?","aud":"{AUD}","exp":{},"iat":{NOW}}}"#,
        NOW + 600
    )
    .into_bytes();
    let q = p2.iter().position(|b| *b == b'?').unwrap();
    p2[q] = 0xc0; // overlong lead byte
    assert!(matches!(
        kind(&v, &s.token_raw(&json_bytes(&s.header()), &p2)),
        ErrorKind::Malformed(_)
    ));
}

#[test]
fn byte_order_mark() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let mut h = vec![0xef, 0xbb, 0xbf];
    h.extend(json_bytes(&s.header()));
    assert!(matches!(
        kind(&v, &s.token_raw(&h, &json_bytes(&claims()))),
        ErrorKind::Malformed(_)
    ));
    let mut p = vec![0xef, 0xbb, 0xbf];
    p.extend(json_bytes(&claims()));
    assert!(matches!(
        kind(&v, &s.token_raw(&json_bytes(&s.header()), &p)),
        ErrorKind::Malformed(_)
    ));
}

#[test]
fn non_object_json() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let good_h = json_bytes(&s.header());
    let good_p = json_bytes(&claims());
    for bad in [&b"[]"[..], b"\"ES256\"", b"1", b"null", b"true", b"", b" "] {
        assert!(matches!(
            kind(&v, &s.token_raw(bad, &good_p)),
            ErrorKind::Malformed(_)
        ));
        assert!(matches!(
            kind(&v, &s.token_raw(&good_h, bad)),
            ErrorKind::Malformed(_)
        ));
    }
}

#[test]
fn trailing_garbage() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let good_h = json_bytes(&s.header());
    let good_p = json_bytes(&claims());
    for tail in [&b"x"[..], b"{}", b"\0", b",", b"}"] {
        let mut h = good_h.clone();
        h.extend_from_slice(tail);
        assert!(matches!(
            kind(&v, &s.token_raw(&h, &good_p)),
            ErrorKind::Malformed(_)
        ));
        let mut p = good_p.clone();
        p.extend_from_slice(tail);
        assert!(matches!(
            kind(&v, &s.token_raw(&good_h, &p)),
            ErrorKind::Malformed(_)
        ));
    }
}

#[test]
fn non_canonical_base64url() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let t = s.token();
    v.verify(&t).unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let mut variants = Vec::new();
    for i in 0..3 {
        let seg = parts[i];
        let mut alts = vec![
            format!("{seg}="),
            format!("{seg}=="),
            format!(" {seg}"),
            format!("{seg}\n"),
            format!("{}\t{}", &seg[..4], &seg[4..]),
            seg.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1),
            seg.replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1),
            format!("{seg}A"),
        ];
        // Non-zero trailing bits: flip the lowest bit of the last character, which is
        // always an unused bit when len % 4 is 2 or 3; the bytes decoded would be the same.
        if seg.len() % 4 != 0 {
            let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let last = seg.chars().last().unwrap();
            let idx = alphabet.find(last).unwrap();
            let sibling = alphabet.as_bytes()[idx ^ 1] as char;
            alts.push(format!("{}{sibling}", &seg[..seg.len() - 1]));
        }
        for a in alts {
            let mut p: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
            p[i] = a;
            variants.push(p.join("."));
        }
    }
    for t in variants {
        let e = kind(&v, &t);
        assert!(
            matches!(e, ErrorKind::Malformed(_) | ErrorKind::InvalidSignature),
            "{e:?} for {t}"
        );
    }
}

#[test]
fn wrong_segment_count_jwe_and_json_serialization() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let t = s.token();
    let parts: Vec<&str> = t.split('.').collect();
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
    let json_ser = format!(
        r#"{{"payload":"{}","protected":"{}","signature":"{}"}}"#,
        parts[1], parts[0], parts[2]
    );
    for bad in [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        parts[0].to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{t}."),
        format!("{t}.{}", parts[2]),
        format!(".{t}"),
        jwe.to_string(),
        json_ser,
    ] {
        assert!(matches!(kind(&v, &bad), ErrorKind::Malformed(_)), "{bad}");
    }
}

#[test]
fn oversized_tokens_rejected_before_parsing() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    // Garbage that would be malformed if it were parsed.
    let big = "\u{0}".repeat(8 * 1024 + 1);
    assert_eq!(kind(&v, &big), ErrorKind::TokenTooLarge);
    let mut c = claims();
    c["pad"] = json!("x".repeat(9000));
    assert_eq!(
        kind(&v, &s.token_with(&s.header(), &c)),
        ErrorKind::TokenTooLarge
    );
    let v = builder(&[&s]).max_token_size(16 * 1024).build().unwrap();
    v.verify(&s.token_with(&s.header(), &c)).unwrap();
    let v = builder(&[&s]).max_token_size(10).build().unwrap();
    assert_eq!(kind(&v, &s.token()), ErrorKind::TokenTooLarge);
}

#[test]
fn modified_payload_or_header_after_signing() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let t = s.token();
    let parts: Vec<&str> = t.split('.').collect();
    let mut c = claims();
    c["roles"] = json!(["superuser"]);
    let forged_t = format!("{}.{}.{}", parts[0], b64(&json_bytes(&c)), parts[2]);
    assert_eq!(kind(&v, &forged_t), ErrorKind::InvalidSignature);
}

#[test]
fn errors_map_to_rfc6750() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let e = v.verify("x").unwrap_err();
    assert_eq!(e.rfc6750_code(), "invalid_token");
    let e = v.verify(&"a".repeat(9000)).unwrap_err();
    assert_eq!(e.rfc6750_code(), "invalid_token");
    assert!(!e.to_string().is_empty());
    assert_eq!(v.stats().malformed, 2);
}

#[test]
fn non_zero_trailing_bits_in_every_segment() {
    // Header, payload and signature all have lengths that leave unused bits.
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut tried = 0;
    for pad in 0..3 {
        let mut c = claims();
        c["p"] = json!("x".repeat(pad));
        let t = s.token_with(&s.header(), &c);
        v.verify(&t).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        for i in 0..3 {
            let seg = parts[i];
            if seg.len() % 4 == 0 {
                continue;
            }
            let idx = alphabet.find(seg.chars().last().unwrap()).unwrap();
            let sib = alphabet.as_bytes()[idx ^ 1] as char;
            let mut p: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
            p[i] = format!("{}{sib}", &seg[..seg.len() - 1]);
            let e = kind(&v, &p.join("."));
            assert!(matches!(e, ErrorKind::Malformed(_)), "segment {i}: {e:?}");
            tried += 1;
        }
    }
    assert!(tried >= 3);
}
