//! Test signer: keys made with ring (RSA from committed PKCS#8 test keys) and tokens built by
//! hand, so tests can produce any malformed variant.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![expect(clippy::unwrap_used, reason = "test fixtures")]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};
use sigil_verify::{Algorithm, FixedClock, Jwk, JwkSet, Verifier, VerifierBuilder};

pub const ISS: &str = "https://id.example.com";
pub const AUD: &str = "https://api.example.com";
pub const NOW: i64 = 1_700_000_000;

pub const RSA2048: &[u8] = include_bytes!("../data/keys/rsa2048.pk8.der");
pub const RSA3072: &[u8] = include_bytes!("../data/keys/rsa3072.pk8.der");

pub enum Kind {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

pub struct Signer {
    pub alg: Algorithm,
    pub kind: Kind,
    pub jwk: Jwk,
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    pub fn rsa(der: &[u8], alg: Algorithm) -> Signer {
        let kp = RsaKeyPair::from_pkcs8(der).unwrap();
        let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public());
        let jwk = Jwk::rsa(&c.n, &c.e, alg);
        Signer {
            alg,
            kind: Kind::Rsa(kp),
            jwk,
        }
    }

    pub fn rs256() -> Signer {
        Signer::rsa(RSA2048, Algorithm::RS256)
    }

    pub fn ps256() -> Signer {
        Signer::rsa(RSA3072, Algorithm::PS256)
    }

    pub fn es256() -> Signer {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = kp.public_key().as_ref();
        let jwk = Jwk::ec_p256(&point[1..33], &point[33..65]);
        Signer {
            alg: Algorithm::ES256,
            kind: Kind::Ec(kp),
            jwk,
        }
    }

    pub fn ed25519() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk::ed25519(kp.public_key().as_ref());
        Signer {
            alg: Algorithm::EdDSA,
            kind: Kind::Ed(kp),
            jwk,
        }
    }

    pub fn all() -> Vec<Signer> {
        vec![
            Signer::rs256(),
            Signer::ps256(),
            Signer::es256(),
            Signer::ed25519(),
        ]
    }

    pub fn kid(&self) -> &str {
        self.jwk.kid.as_deref().unwrap()
    }

    /// Signs with this key's own algorithm.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.sign_as(self.alg, msg)
    }

    /// Signs with `alg` (RSA keys can do RS256 and PS256).
    pub fn sign_as(&self, alg: Algorithm, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.kind {
            Kind::Rsa(kp) => {
                let mut sig = vec![0; kp.public().modulus_len()];
                let pad: &dyn signature::RsaEncoding = match alg {
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                kp.sign(pad, &rng, msg, &mut sig).unwrap();
                sig
            }
            Kind::Ec(kp) => kp.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Kind::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    pub fn header(&self) -> Value {
        json!({"alg": self.alg.as_str(), "typ": "at+jwt", "kid": self.kid()})
    }

    /// header.payload.signature from raw JSON bytes.
    pub fn token_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    pub fn token_with(&self, header: &Value, claims: &Value) -> String {
        self.token_raw(
            serde_json::to_vec(header).unwrap().as_slice(),
            serde_json::to_vec(claims).unwrap().as_slice(),
        )
    }

    pub fn token(&self) -> String {
        self.token_with(&self.header(), &claims())
    }
}

pub fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": NOW + 600, "iat": NOW - 10,
        "jti": "j-1", "client_id": "client-1", "scope": "read write", "roles": ["admin"],
        "permissions": ["orders:read"]
    })
}

pub fn set(signers: &[&Signer]) -> JwkSet {
    JwkSet {
        keys: signers.iter().map(|s| s.jwk.clone()).collect(),
    }
}

pub fn builder(signers: &[&Signer]) -> VerifierBuilder {
    Verifier::builder(ISS, AUD)
        .clock(Arc::new(FixedClock::at_unix(NOW as u64)))
        .jwks(set(signers))
}

pub fn verifier(signers: &[&Signer]) -> Verifier {
    builder(signers).build().unwrap()
}
