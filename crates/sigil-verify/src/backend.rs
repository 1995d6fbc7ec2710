//! The crypto backend, chosen at compile time: ring (feature `ring`, the default) or
//! aws-lc-rs (feature `aws-lc-rs`, which wins when both are enabled). Without either the crate
//! does not build. Nothing here implements a primitive: it only adapts the two libraries'
//! signature-verification, SHA-256 and point-validation calls to one shape.

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
compile_error!(
    "sigil-verify needs a crypto backend: enable feature `ring` (the default) or `aws-lc-rs`"
);

/// Name of the backend in use: `"ring"` or `"aws-lc-rs"`.
#[cfg(feature = "aws-lc-rs")]
pub const BACKEND: &str = "aws-lc-rs";
/// Name of the backend in use: `"ring"` or `"aws-lc-rs"`.
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
pub const BACKEND: &str = "ring";

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
pub(crate) use self::ring_impl::*;

#[cfg(feature = "aws-lc-rs")]
pub(crate) use self::aws_impl::*;

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
mod ring_impl {
    use ring::rand::SystemRandom;
    use ring::{agreement, digest, signature};

    use crate::algorithm::Algorithm;

    pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// An RSA public key: ring takes the components at each verification.
    #[derive(Clone, Debug)]
    pub(crate) struct RsaKey {
        n: Box<[u8]>,
        e: Box<[u8]>,
    }

    impl RsaKey {
        pub(crate) fn new(n: &[u8], e: &[u8]) -> Result<RsaKey, ()> {
            Ok(RsaKey {
                n: n.into(),
                e: e.into(),
            })
        }

        pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            let params = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                _ => return Err(()),
            };
            signature::RsaPublicKeyComponents {
                n: &*self.n,
                e: &*self.e,
            }
            .verify(params, msg, sig)
            .map_err(|_| ())
        }
    }

    /// A P-256 public key (`04 || x || y`), checked to be on the curve.
    #[derive(Clone, Debug)]
    pub(crate) struct P256Key(Box<[u8]>);

    impl P256Key {
        pub(crate) fn new(point: &[u8]) -> Result<P256Key, ()> {
            // ring checks the point when it is used in an ECDH agreement; one with a throwaway
            // key refuses an off-curve key at load time instead of at first use.
            let rng = SystemRandom::new();
            let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
                .map_err(|_| ())?;
            let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
            agreement::agree_ephemeral(ephemeral, &peer, |_| ()).map_err(|_| ())?;
            Ok(P256Key(point.into()))
        }

        pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &*self.0)
                .verify(msg, sig)
                .map_err(|_| ())
        }
    }

    /// An Ed25519 public key.
    #[derive(Clone, Debug)]
    pub(crate) struct Ed25519Key([u8; 32]);

    impl Ed25519Key {
        pub(crate) fn new(x: [u8; 32]) -> Result<Ed25519Key, ()> {
            Ok(Ed25519Key(x))
        }

        pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            signature::UnparsedPublicKey::new(&signature::ED25519, &self.0[..])
                .verify(msg, sig)
                .map_err(|_| ())
        }
    }
}

#[cfg(feature = "aws-lc-rs")]
mod aws_impl {
    use std::fmt;

    use aws_lc_rs::digest;
    use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};

    use crate::algorithm::Algorithm;

    pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// An RSA public key parsed once for each padding.
    #[derive(Clone)]
    pub(crate) struct RsaKey {
        pkcs1: ParsedPublicKey,
        pss: ParsedPublicKey,
    }

    impl fmt::Debug for RsaKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("RsaKey(aws-lc-rs)")
        }
    }

    impl RsaKey {
        pub(crate) fn new(n: &[u8], e: &[u8]) -> Result<RsaKey, ()> {
            let c = RsaPublicKeyComponents { n, e };
            Ok(RsaKey {
                pkcs1: c
                    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                    .map_err(|_| ())?,
                pss: c
                    .to_parsed_public_key(&signature::RSA_PSS_2048_8192_SHA256)
                    .map_err(|_| ())?,
            })
        }

        pub(crate) fn verify(&self, alg: Algorithm, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            let key = match alg {
                Algorithm::RS256 => &self.pkcs1,
                Algorithm::PS256 => &self.pss,
                _ => return Err(()),
            };
            key.verify_sig(msg, sig).map_err(|_| ())
        }
    }

    /// A P-256 public key, parsed (and so checked to be on the curve) once.
    #[derive(Clone)]
    pub(crate) struct P256Key(ParsedPublicKey);

    impl fmt::Debug for P256Key {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("P256Key(aws-lc-rs)")
        }
    }

    impl P256Key {
        pub(crate) fn new(point: &[u8]) -> Result<P256Key, ()> {
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .map(P256Key)
                .map_err(|_| ())
        }

        pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            self.0.verify_sig(msg, sig).map_err(|_| ())
        }
    }

    /// An Ed25519 public key, parsed once.
    #[derive(Clone)]
    pub(crate) struct Ed25519Key(ParsedPublicKey);

    impl fmt::Debug for Ed25519Key {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Ed25519Key(aws-lc-rs)")
        }
    }

    impl Ed25519Key {
        pub(crate) fn new(x: [u8; 32]) -> Result<Ed25519Key, ()> {
            ParsedPublicKey::new(&signature::ED25519, x)
                .map(Ed25519Key)
                .map_err(|_| ())
        }

        pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), ()> {
            self.0.verify_sig(msg, sig).map_err(|_| ())
        }
    }
}
