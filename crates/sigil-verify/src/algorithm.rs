//! The signature algorithms a [`Verifier`](crate::Verifier) can accept.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind};

/// A JWS signature algorithm that Sigil signs with.
///
/// There is deliberately no `none`, no `HS*` (a verifier holding only public keys must never
/// accept a MAC) and nothing weaker than the four algorithms Sigil issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, RSA keys of 2048 to 8192 bits.
    RS256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, RSA keys of 2048 to 8192 bits.
    PS256,
    /// ECDSA on P-256 with SHA-256; the signature is `r || s`, 64 bytes (RFC 7518 §3.4).
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in the order of the default allowlist.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];

    /// The JOSE name: `"RS256"`, `"PS256"`, `"ES256"` or `"EdDSA"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses an exact, case-sensitive JOSE name without allocating.
    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::RS256),
            "PS256" => Some(Algorithm::PS256),
            "ES256" => Some(Algorithm::ES256),
            "EdDSA" => Some(Algorithm::EdDSA),
            _ => None,
        }
    }

    /// Bit used in an [`AlgSet`].
    pub(crate) fn bit(self) -> u8 {
        match self {
            Algorithm::RS256 => 1,
            Algorithm::PS256 => 2,
            Algorithm::ES256 => 4,
            Algorithm::EdDSA => 8,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Exact, case-sensitive: `"rs256"`, `"none"` or `"HS256"` are errors
    /// ([`ErrorKind::AlgorithmNotAllowed`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| Error::new(ErrorKind::AlgorithmNotAllowed))
    }
}

/// A small set of algorithms (the allowlist), checked with one bit test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AlgSet(u8);

impl AlgSet {
    pub(crate) fn from_slice(algs: &[Algorithm]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |acc, a| acc | a.bit()))
    }

    pub(crate) fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn to_vec(self) -> Vec<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .collect()
    }
}
