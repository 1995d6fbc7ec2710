//! Parse + verify: any input must give `Err` (the keys are fresh, so no input can carry a valid
//! signature) and never panic. The input is tried as a raw token and, to reach deeper code, as
//! header and payload JSON assembled into a token with a random signature.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use sigil_verify::{FixedClock, Jwk, JwkSet, Verifier, base64url};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let ec = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .and_then(|p| {
                signature::EcdsaKeyPair::from_pkcs8(alg, p.as_ref(), &rng)
                    .map_err(|_| ring::error::Unspecified)
            })
            .ok();
        let ed = signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .ok()
            .and_then(|p| signature::Ed25519KeyPair::from_pkcs8(p.as_ref()).ok());
        let mut keys = Vec::new();
        if let Some(ec) = ec {
            let p = ec.public_key().as_ref();
            let mut k = Jwk::ec_p256(&p[1..33], &p[33..65]);
            k.kid = Some("ec".into());
            keys.push(k);
        }
        if let Some(ed) = ed {
            let mut k = Jwk::ed25519(ed.public_key().as_ref());
            k.kid = Some("ed".into());
            keys.push(k);
        }
        match Verifier::builder("https://id.example.com", "https://api.example.com")
            .clock(Arc::new(FixedClock::at_unix(1_700_000_000)))
            .jwks(JwkSet { keys })
            .build()
        {
            Ok(v) => v,
            Err(e) => panic!("fuzz setup: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let v = verifier();
    if let Ok(s) = std::str::from_utf8(data) {
        assert!(v.verify(s).is_err());
        assert!(v.verify_signature(s).is_err());
    }
    // Split the input into header / payload / signature bytes and encode them canonically.
    let (a, rest) = data.split_at(data.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let token = format!(
        "{}.{}.{}",
        base64url::encode(a),
        base64url::encode(b),
        base64url::encode(c)
    );
    assert!(v.verify(&token).is_err());
});
