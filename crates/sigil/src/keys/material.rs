//! Key material: generation (josekit), loading into ring signers, and the public JWK.
//!
//! josekit (OpenSSL) only *generates* keys; every signature is made by ring from the PKCS#8
//! document, parsed once when the key ring is loaded and kept for the key's lifetime.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use josekit::jwk::KeyPair as _;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _};
use sigil_verify::{Algorithm, Jwk};

/// Why key material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// Key generation failed inside josekit/OpenSSL.
    #[error("key generation failed: {0}")]
    Generate(String),
    /// A stored PKCS#8 document was rejected by ring.
    #[error("private key for {alg} rejected: {reason}")]
    Rejected {
        /// Algorithm the key was meant for.
        alg: &'static str,
        /// ring's reason.
        reason: String,
    },
}

/// A freshly generated key: PKCS#8 private document (to be encrypted before storage) and its
/// public forms.
pub struct Generated {
    /// PKCS#8 DER of the private key. Never stored unencrypted.
    pub pkcs8: Vec<u8>,
    /// The public JWK (kid = RFC 7638 thumbprint).
    pub jwk: Jwk,
    /// SubjectPublicKeyInfo PEM, for `keys export --format pem`.
    pub public_pem: String,
}

/// Generate a key for `alg` with josekit.
pub fn generate(alg: Algorithm, rsa_bits: u32) -> Result<Generated, MaterialError> {
    let gen_err = |e: josekit::JoseError| MaterialError::Generate(e.to_string());
    let (pem_private, pem_public) = match alg {
        Algorithm::ES256 => {
            let kp = josekit::jws::ES256.generate_key_pair().map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_pem_public_key())
        }
        // PS256 uses a plain rsaEncryption key (RSASSA-PSS is chosen at signing time), which is
        // what every JWT library expects in a JWK.
        Algorithm::RS256 | Algorithm::PS256 => {
            let kp = josekit::jws::RS256
                .generate_key_pair(rsa_bits)
                .map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_pem_public_key())
        }
        Algorithm::EdDSA => {
            let kp = josekit::jws::EdDSA
                .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                .map_err(gen_err)?;
            (kp.to_pem_private_key(), kp.to_pem_public_key())
        }
    };
    let pkcs8 = pem_to_der(&pem_private)
        .ok_or_else(|| MaterialError::Generate("bad PEM from generator".into()))?;
    let signer = Signer::from_pkcs8(alg, &pkcs8)?;
    let public_pem = String::from_utf8(pem_public)
        .map_err(|_| MaterialError::Generate("non-UTF-8 PEM".into()))?;
    Ok(Generated {
        jwk: signer.public_jwk(),
        pkcs8,
        public_pem,
    })
}

/// Decode the body of a single-block PEM document.
fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).ok()
}

/// A parsed private key that signs with one algorithm.
pub enum Signer {
    /// ECDSA P-256 SHA-256, fixed-length (JWS) signatures.
    Es256(signature::EcdsaKeyPair),
    /// RSA PKCS#1 v1.5 SHA-256.
    Rs256(signature::RsaKeyPair),
    /// RSA-PSS SHA-256.
    Ps256(signature::RsaKeyPair),
    /// Ed25519.
    EdDsa(signature::Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.alg().as_str())
    }
}

impl Signer {
    /// Parse a PKCS#8 document for `alg`.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<Signer, MaterialError> {
        let rejected = |e: ring::error::KeyRejected| MaterialError::Rejected {
            alg: alg.as_str(),
            reason: e.to_string(),
        };
        Ok(match alg {
            Algorithm::ES256 => Signer::Es256(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                    &SystemRandom::new(),
                )
                .map_err(rejected)?,
            ),
            Algorithm::RS256 => {
                Signer::Rs256(signature::RsaKeyPair::from_pkcs8(der).map_err(rejected)?)
            }
            Algorithm::PS256 => {
                Signer::Ps256(signature::RsaKeyPair::from_pkcs8(der).map_err(rejected)?)
            }
            // OpenSSL writes PKCS#8 v1 (no embedded public key) for Ed25519.
            Algorithm::EdDSA => Signer::EdDsa(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
            ),
        })
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        match self {
            Signer::Es256(_) => Algorithm::ES256,
            Signer::Rs256(_) => Algorithm::RS256,
            Signer::Ps256(_) => Algorithm::PS256,
            Signer::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    /// The public JWK, `kid` = RFC 7638 thumbprint.
    pub fn public_jwk(&self) -> Jwk {
        match self {
            Signer::Es256(k) => {
                let point = k.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
                let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
                Jwk::ec_p256(x, y)
            }
            Signer::Rs256(k) | Signer::Ps256(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                Jwk::rsa(&c.n, &c.e, self.alg())
            }
            Signer::EdDsa(k) => Jwk::ed25519(k.public_key().as_ref()),
        }
    }

    /// Sign `message` and return the JWS signature bytes.
    pub fn sign(
        &self,
        message: &[u8],
        rng: &SystemRandom,
    ) -> Result<Vec<u8>, ring::error::Unspecified> {
        match self {
            Signer::Es256(k) => Ok(k.sign(rng, message)?.as_ref().to_vec()),
            Signer::Rs256(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig)?;
                Ok(sig)
            }
            Signer::Ps256(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&signature::RSA_PSS_SHA256, rng, message, &mut sig)?;
                Ok(sig)
            }
            Signer::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// A JWS compact serialization: `header_b64 . b64(payload) . b64(signature)`.
pub fn compact_jws(
    header_b64: &str,
    payload: &[u8],
    signer: &Signer,
    rng: &SystemRandom,
) -> Result<String, ring::error::Unspecified> {
    let mut token =
        String::with_capacity(header_b64.len() + 2 + (payload.len() * 4).div_ceil(3) + 700);
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let sig = signer.sign(token.as_bytes(), rng)?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&sig, &mut token);
    Ok(token)
}

/// Base64url without padding, as JWS uses.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_loads_and_signs() -> Result<(), Box<dyn std::error::Error>> {
        let rng = SystemRandom::new();
        for alg in [
            Algorithm::ES256,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            let g = generate(alg, 2048)?;
            let signer = Signer::from_pkcs8(alg, &g.pkcs8)?;
            assert_eq!(signer.public_jwk(), g.jwk, "{alg:?}");
            assert_eq!(g.jwk.kid.as_deref(), Some(g.jwk.thumbprint().as_str()));
            assert!(g.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
            let sig = signer.sign(b"message", &rng)?;
            assert!(!sig.is_empty());
        }
        Ok(())
    }

    #[test]
    fn a_key_for_one_family_does_not_load_as_another() -> Result<(), Box<dyn std::error::Error>> {
        let g = generate(Algorithm::ES256, 2048)?;
        assert!(Signer::from_pkcs8(Algorithm::RS256, &g.pkcs8).is_err());
        assert!(Signer::from_pkcs8(Algorithm::EdDSA, &g.pkcs8).is_err());
        Ok(())
    }
}
