//! Property tests: base64url and JSON round trips, and no panic on any input.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use proptest::prelude::*;
use sigil_verify::{Audience, Claims, base64url};

fn claims_strategy() -> impl Strategy<Value = Claims> {
    (
        "[ -~]{0,40}",
        "\\PC{0,20}",
        prop_oneof![
            "[a-z:/.]{1,20}".prop_map(Audience::One),
            prop::collection::vec("[a-z:/.]{1,20}", 0..4).prop_map(Audience::Many)
        ],
        any::<i64>(),
        any::<i64>(),
        proptest::option::of(any::<i64>()),
        proptest::option::of("\\PC{0,10}"),
        proptest::option::of("[a-z ]{0,30}"),
        (
            prop::collection::vec("[a-z:]{1,10}", 0..4),
            prop::collection::vec("[a-z]{1,5}(:[a-z*]{1,5}){1,3}", 0..4),
        ),
        proptest::option::of("[a-z]{1,10}"),
        prop::collection::btree_map("x[a-z]{1,8}", any::<i32>(), 0..4),
    )
        .prop_map(
            |(iss, sub, aud, exp, iat, nbf, jti, scope, (roles, permissions), tenant, extra)| {
                Claims {
                    iss,
                    sub,
                    aud,
                    exp,
                    iat,
                    nbf,
                    jti,
                    client_id: None,
                    scope,
                    roles,
                    permissions,
                    tenant,
                    extra: extra
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::from(v)))
                        .collect(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn base64url_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let enc = base64url::encode(&bytes);
        prop_assert!(!enc.contains(['=', '+', '/']));
        prop_assert_eq!(base64url::decode(&enc).unwrap(), bytes);
    }

    #[test]
    fn base64url_accepts_only_canonical(s in "[A-Za-z0-9_=+/ -]{0,40}") {
        // Anything that decodes re-encodes to exactly the same text.
        if let Ok(bytes) = base64url::decode(&s) {
            prop_assert_eq!(base64url::encode(&bytes), s);
        }
    }

    #[test]
    fn claims_json_round_trip(c in claims_strategy()) {
        let text = serde_json::to_string(&c).unwrap();
        let back: Claims = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn jwk_json_round_trip(x in prop::array::uniform32(any::<u8>()), y in prop::array::uniform32(any::<u8>())) {
        for jwk in [sigil_verify::Jwk::ed25519(&x), sigil_verify::Jwk::ec_p256(&x, &y)] {
            let text = serde_json::to_string(&jwk).unwrap();
            let back: sigil_verify::Jwk = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back.thumbprint(), jwk.thumbprint());
            prop_assert_eq!(back, jwk);
        }
    }

    #[test]
    fn verify_never_panics_on_text(s in "\\PC{0,200}") {
        let signer = common::Signer::ed25519();
        let v = common::verifier(&[&signer]);
        prop_assert!(v.verify(&s).is_err());
    }

    #[test]
    fn verify_never_panics_on_mutated_tokens(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let signer = common::Signer::es256();
        let v = common::verifier(&[&signer]);
        let t = signer.token();
        let mut bytes = t.into_bytes();
        let i = pos.index(bytes.len());
        let original = bytes[i];
        bytes[i] = byte;
        if let Ok(s) = String::from_utf8(bytes) {
            let r = v.verify(&s);
            if byte != original {
                prop_assert!(r.is_err());
            }
        }
    }

    #[test]
    fn verify_never_panics_on_structured_garbage(
        h in prop::collection::vec(any::<u8>(), 0..200),
        p in prop::collection::vec(any::<u8>(), 0..200),
        sig in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let signer = common::Signer::ed25519();
        let v = common::verifier(&[&signer]);
        let t = format!("{}.{}.{}", base64url::encode(&h), base64url::encode(&p), base64url::encode(&sig));
        prop_assert!(v.verify(&t).is_err());
    }

    #[test]
    fn jwks_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = sigil_verify::JwkSet::from_json(&bytes);
        let _ = sigil_verify::JwkSet::from_pem(&String::from_utf8_lossy(&bytes));
    }
}
