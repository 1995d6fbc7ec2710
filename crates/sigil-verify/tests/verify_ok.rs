//! Tokens that must verify, and what comes back.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sigil_verify::{Algorithm, Audience, ErrorKind, FixedClock, Verifier};

#[test]
fn each_algorithm_verifies() {
    for s in Signer::all() {
        let v = verifier(&[&s]);
        let claims = v.verify(&s.token()).unwrap();
        assert_eq!(claims.iss, ISS);
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.aud, Audience::One(AUD.into()));
        assert!(claims.has_scope("read") && claims.has_scope("write") && !claims.has_scope("rea"));
        assert!(claims.has_role("admin") && !claims.has_role("user"));
        assert!(claims.has_permission("orders:read") && !claims.has_permission("orders:write"));
        assert_eq!(claims.client_id.as_deref(), Some("client-1"));
        assert_eq!(v.stats().verified, 1);
    }
}

#[test]
fn mixed_key_families_in_one_set() {
    let signers = Signer::all();
    let refs: Vec<&Signer> = signers.iter().collect();
    let v = verifier(&refs);
    for s in &signers {
        v.verify(&s.token()).unwrap();
    }
    assert_eq!(v.stats().keys, 4);
}

#[test]
fn no_kid_uses_the_only_fitting_key() {
    let ec = Signer::es256();
    let ed = Signer::ed25519();
    let v = verifier(&[&ec, &ed]);
    let t = ec.token_with(&json!({"alg":"ES256","typ":"at+jwt"}), &claims());
    v.verify(&t).unwrap();
    // Two keys fit ES256: refuse without a kid.
    let ec2 = Signer::es256();
    let v = verifier(&[&ec, &ec2]);
    assert_eq!(v.verify(&t).unwrap_err().kind(), &ErrorKind::UnknownKey);
}

#[test]
fn audience_array_and_extra_audience() {
    let s = Signer::es256();
    let mut c = claims();
    c["aud"] = json!(["other", AUD]);
    let v = verifier(&[&s]);
    let got = v.verify(&s.token_with(&s.header(), &c)).unwrap();
    assert!(got.aud.contains(AUD));
    assert_eq!(got.aud.iter().count(), 2);

    c["aud"] = json!("https://id.example.com/token");
    let t = s.token_with(&s.header(), &c);
    assert_eq!(v.verify(&t).unwrap_err().kind(), &ErrorKind::WrongAudience);
    let v2 = builder(&[&s])
        .audience("https://id.example.com/token")
        .build()
        .unwrap();
    v2.verify(&t).unwrap();
}

#[test]
fn typ_variants_accepted() {
    let s = Signer::ed25519();
    let v = verifier(&[&s]);
    for typ in [
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        let t = s.token_with(&json!({"alg":"EdDSA","kid":s.kid(),"typ":typ}), &claims());
        v.verify(&t).unwrap();
    }
}

#[test]
fn client_assertion_rfc7523() {
    // The server verifies private_key_jwt assertions: iss = client_id, aud = token endpoint
    // or issuer, no typ, iat possibly absent.
    let client = Signer::es256();
    let token_endpoint = "https://id.example.com/token";
    let v = Verifier::builder("client-1", token_endpoint)
        .audience(ISS)
        .typ(None)
        .require_iat(false)
        .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
        .jwks(set(&[&client]))
        .build()
        .unwrap();
    let c = json!({"iss":"client-1","sub":"client-1","aud":ISS,"exp":NOW+60,"jti":"a-1"});
    let got = v
        .verify(&client.token_with(&json!({"alg":"ES256","kid":client.kid()}), &c))
        .unwrap();
    assert_eq!(got.iat, 0);
    assert_eq!(got.jti.as_deref(), Some("a-1"));
    let c =
        json!({"iss":"client-1","sub":"client-1","aud":[token_endpoint],"exp":NOW+60,"iat":NOW});
    v.verify(&client.token_with(&json!({"alg":"ES256"}), &c))
        .unwrap();
}

#[test]
fn leeway_is_honoured() {
    let s = Signer::es256();
    let mut c = claims();
    c["exp"] = json!(NOW - 30);
    let t = s.token_with(&s.header(), &c);
    verifier(&[&s]).verify(&t).unwrap();
    let strict = builder(&[&s])
        .leeway(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(strict.verify(&t).unwrap_err().kind(), &ErrorKind::Expired);
}

#[test]
fn claims_serialize_in_contract_order() {
    let c: sigil_verify::Claims = serde_json::from_value(json!({
        "iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1,"zzz":true
    }))
    .unwrap();
    assert!(c.roles.is_empty());
    assert!(c.permissions.is_empty());
    let s = serde_json::to_string(&c).unwrap();
    assert_eq!(
        s,
        r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":2,"iat":1,"roles":[],"permissions":[],"zzz":true}"#
    );
    let mut c2 = c.clone();
    c2.aud = Audience::One("a".into());
    c2.nbf = Some(1);
    c2.jti = Some("j".into());
    c2.client_id = Some("c".into());
    c2.scope = Some("x".into());
    c2.roles = vec!["r".into()];
    c2.permissions = vec!["p:x".into()];
    c2.tenant = Some("t".into());
    c2.extra.clear();
    assert_eq!(
        serde_json::to_string(&c2).unwrap(),
        r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1,"nbf":1,"jti":"j","client_id":"c","scope":"x","roles":["r"],"permissions":["p:x"],"tenant":"t"}"#
    );
}

/// The verifier's own JSON reader (fast path and general path) builds the same `Claims` that
/// serde does from the same payload, `permissions` included.
#[test]
fn permissions_read_by_the_verifier_as_serde_reads_them() {
    let s = Signer::ed25519();
    let v = verifier(&[&s]);
    for permissions in [
        Some(json!(["orders:read", "job:*"])),
        Some(json!([])),
        // An escape sends the payload down the general path.
        Some(json!(["orders:read", "a\"b:c", "tab\there"])),
        Some(json!(["job:run:now"])),
        None,
    ] {
        let mut c = claims();
        match &permissions {
            Some(p) => c["permissions"] = p.clone(),
            None => {
                c.as_object_mut().unwrap().remove("permissions");
            }
        }
        let verified = v.verify(&s.token_with(&s.header(), &c)).unwrap();
        let serde: sigil_verify::Claims = serde_json::from_value(c).unwrap();
        assert_eq!(verified, serde, "{permissions:?}");
        assert!(verified.extra.get("permissions").is_none());
    }
    let verified = v.verify(&s.token()).unwrap();
    assert_eq!(verified.permissions, ["orders:read"]);
}

#[test]
fn algorithm_names() {
    for a in Algorithm::ALL {
        assert_eq!(a.as_str().parse::<Algorithm>().unwrap(), a);
    }
    assert!("es256".parse::<Algorithm>().is_err());
    assert!("none".parse::<Algorithm>().is_err());
}

#[test]
fn verifier_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Verifier>();
}

#[test]
fn builder_refuses_bad_configuration() {
    let s = Signer::es256();
    let e = Verifier::builder("", AUD)
        .jwks(set(&[&s]))
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
    let e = Verifier::builder(ISS, "")
        .jwks(set(&[&s]))
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
    let e = Verifier::builder(ISS, AUD).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
    let e = builder(&[&s]).algorithms(&[]).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
    let e = Verifier::builder(ISS, AUD)
        .jwks(sigil_verify::JwkSet::default())
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config(_)));
}

#[test]
fn pem_sources() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keys");
    let rs = Signer::rsa(RSA2048, Algorithm::RS256);
    let ps = Signer::rsa(RSA3072, Algorithm::PS256);
    let v = Verifier::builder(ISS, AUD)
        .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
        .pem_dir(&dir)
        .build()
        .unwrap();
    v.verify(&rs.token()).unwrap();
    v.verify(&ps.token()).unwrap();
    // A PEM RSA key has no alg, so it verifies RS256 and PS256 alike.
    let h = json!({"alg":"PS256","typ":"at+jwt","kid":rs.kid()});
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&h).unwrap()),
        b64(&serde_json::to_vec(&claims()).unwrap())
    );
    let sig = rs.sign_as(Algorithm::PS256, input.as_bytes());
    v.verify(&format!("{input}.{}", b64(&sig))).unwrap();

    let v = Verifier::builder(ISS, AUD)
        .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
        .pem_files([dir.join("rsa2048.pub.pem")])
        .build()
        .unwrap();
    v.verify(&rs.token()).unwrap();
    assert_eq!(
        v.verify(&ps.token()).unwrap_err().kind(),
        &ErrorKind::UnknownKey
    );
    assert_eq!(v.jwks().keys[0].kid.as_deref(), Some(rs.kid()));
}

#[test]
fn pem_parsing_ec_and_ed25519() {
    // P-256 and Ed25519 SPKI from the Wycheproof files.
    let ec = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKSexBRK64+3c/kZ4KBKLrSkDJpkZ\n9whgacjE32xzKDjHeHlk6qwA5ZIfsUmKYPRgZ2az2WhQAVWNGpdOc0FRPg==\n-----END PUBLIC KEY-----\n";
    let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAfU0Of2FTpptiQrUiq77mhf2kQg+INLEIw72uNp71Sfo=\n-----END PUBLIC KEY-----\n";
    let set = sigil_verify::JwkSet::from_pem(&format!("{ec}{ed}")).unwrap();
    assert_eq!(
        set.keys[0].x.as_deref(),
        Some("KSexBRK64-3c_kZ4KBKLrSkDJpkZ9whgacjE32xzKDg")
    );
    assert_eq!(set.keys[0].alg.as_deref(), Some("ES256"));
    assert_eq!(
        set.keys[1].x.as_deref(),
        Some("fU0Of2FTpptiQrUiq77mhf2kQg-INLEIw72uNp71Sfo")
    );
    let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(sigil_verify::JwkSet::from_pem(private).is_err());
    assert!(sigil_verify::JwkSet::from_pem("garbage").is_err());
}

#[test]
fn rfc7638_thumbprint_example() {
    // RFC 7638 §3.1.
    let jwk = sigil_verify::Jwk {
        kty: "RSA".into(),
        kid: None,
        use_: None,
        alg: None,
        crv: None,
        x: None,
        y: None,
        n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
        e: Some("AQAB".into()),
    };
    assert_eq!(
        jwk.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    let ser = serde_json::to_string(&jwk).unwrap();
    assert!(!ser.contains("null") && !ser.contains("kid"));
}

#[test]
fn stats_count_verifications_by_outcome() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    v.verify(&s.token()).unwrap();
    let mut c = claims();
    c["exp"] = json!(NOW - 3600);
    let _ = v.verify(&s.token_with(&s.header(), &c));
    let mut c = claims();
    c["aud"] = json!("other");
    let _ = v.verify(&s.token_with(&s.header(), &c));
    let mut h = s.header();
    h["kid"] = json!("nope");
    let _ = v.verify(&s.token_with(&h, &claims()));
    h["alg"] = json!("HS256");
    let _ = v.verify(&s.token_with(&h, &claims()));
    let t = s.token();
    let (input, _) = t.rsplit_once('.').unwrap();
    let _ = v.verify(&format!("{input}.{}", b64(&[1u8; 64])));
    let _ = v.verify("garbage");
    let st = v.stats();
    assert_eq!(
        (
            st.verified,
            st.expired,
            st.bad_claims,
            st.unknown_key,
            st.bad_algorithm,
            st.invalid_signature,
            st.malformed
        ),
        (1, 1, 1, 1, 1, 1, 1)
    );
    assert_eq!(st.keys, 1);
    assert!(st.key_set_age.is_some());
    assert_eq!(st.jwks_fetches, 0);
}

#[test]
fn backend_is_named() {
    assert!(["ring", "aws-lc-rs"].contains(&sigil_verify::BACKEND));
}

#[test]
fn refresh_and_id_tokens_read_back_as_written() {
    use sigil_verify::{IdTokenClaims, RefreshClaims, UserClaims};
    let id = IdTokenClaims {
        iss: ISS.into(),
        sub: "user-1".into(),
        aud: "client-1".into(),
        exp: NOW + 600,
        iat: NOW - 10,
        auth_time: NOW - 20,
        nonce: Some("n-1".into()),
        at_hash: "77QmUPtjPfzWtF2AnpK9RQ".into(),
        azp: "client-1".into(),
        amr: vec!["pwd".into()],
        user: UserClaims {
            preferred_username: Some("ann".into()),
            updated_at: Some(NOW - 99),
            email: Some("ann@example.com".into()),
            email_verified: Some(true),
        },
    };
    let rt = RefreshClaims {
        iss: ISS.into(),
        sub: "user-1".into(),
        aud: "urn:sigil:refresh:https://id.example.com".into(),
        exp: NOW + 600,
        iat: NOW - 10,
        jti: "j-1".into(),
        client_id: "client-1".into(),
        scope: "openid".into(),
    };
    for s in Signer::all() {
        let header = |typ: &str| json!({"alg": s.alg.as_str(), "typ": typ, "kid": s.kid()});
        let token = s.token_with(&header("JWT"), &serde_json::to_value(&id).unwrap());
        let v = Verifier::builder(ISS, "client-1")
            .typ(Some("JWT"))
            .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
            .jwks(set(&[&s]))
            .build()
            .unwrap();
        assert_eq!(
            IdTokenClaims::try_from(v.verify(&token).unwrap()),
            Ok(id.clone())
        );

        let token = s.token_with(&header("refresh+jwt"), &serde_json::to_value(&rt).unwrap());
        let v = Verifier::builder(ISS, rt.aud.as_str())
            .typ(Some("refresh+jwt"))
            .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
            .jwks(set(&[&s]))
            .build()
            .unwrap();
        assert_eq!(
            RefreshClaims::try_from(v.verify(&token).unwrap()),
            Ok(rt.clone())
        );
        // An access token's claims are no ID token's.
        let access = verifier(&[&s]).verify(&s.token()).unwrap();
        assert_eq!(
            IdTokenClaims::try_from(access).map_err(|e| e.into_kind()),
            Err(ErrorKind::MissingClaim("auth_time"))
        );
    }
}
