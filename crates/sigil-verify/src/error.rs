//! Why a token, a key or a configuration was refused.

use std::fmt;

/// Why verification (or building a verifier, or loading keys) failed.
///
/// Boxed so that `Result<Claims, Error>` stays small; match on [`Error::kind`].
/// Every kind maps to an RFC 6750 error code with [`Error::rfc6750_code`].
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<ErrorKind>);

/// The reason behind an [`Error`]. New kinds may be added in minor releases.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The token is longer than the configured maximum; nothing else was looked at.
    TokenTooLarge,
    /// The token is not a well-formed JWS compact serialization: wrong segment count (JWE,
    /// JSON serialization), non-canonical base64url, invalid or duplicate-member JSON, a header
    /// or claims set that is not a JSON object. The text says which part.
    Malformed(&'static str),
    /// The header carries a member this verifier refuses on principle: an embedded or remote key
    /// (`jwk`, `jku`, `x5u`, `x5c`), `crit`, `b64`, or a JWE member (`enc`, `zip`).
    UnsupportedHeader(&'static str),
    /// The header's `alg` is not in the allowlist (this includes `none` in any case, every `HS*`
    /// and every algorithm this crate does not implement).
    AlgorithmNotAllowed,
    /// The header's `alg` does not agree with the key chosen by `kid` (its `kty`, `alg` or `crv`).
    AlgorithmMismatch,
    /// No key matches the token's `kid` (or, without `kid`, not exactly one key fits the `alg`).
    UnknownKey,
    /// The signature does not verify, or has the wrong length for the key.
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    ImmatureSignature,
    /// `iss` is not byte-for-byte the expected issuer.
    WrongIssuer,
    /// `aud` does not contain any accepted audience.
    WrongAudience,
    /// The header's `typ` is missing or not the expected one (e.g. an ID token used as an
    /// access token).
    WrongType,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type (e.g. `exp` as a string) or an out-of-range value.
    InvalidClaim(&'static str),
    /// A key (from a JWKS, a PEM file or a constructor) was refused; the text says why.
    InvalidKey(String),
    /// The key source could not be read or fetched, and no usable key set is held.
    KeySource(String),
    /// The verifier was configured wrongly (empty issuer, no key source, ...).
    Config(&'static str),
    /// No bearer token was presented (used by the `actix` extractor).
    MissingToken,
    /// The token is valid but lacks the scope, role or permission named here.
    InsufficientScope(String),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error(Box::new(kind))
    }

    pub(crate) fn malformed(what: &'static str) -> Error {
        Error::new(ErrorKind::Malformed(what))
    }

    pub(crate) fn invalid_key(why: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidKey(why.into()))
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }

    /// Consumes the error, returning its kind.
    pub fn into_kind(self) -> ErrorKind {
        *self.0
    }

    /// The RFC 6750 §3.1 error code to put in `WWW-Authenticate: Bearer error="..."`:
    /// `insufficient_scope` for [`ErrorKind::InsufficientScope`], `invalid_request` for a
    /// missing token or a verifier/key-source problem, `invalid_token` for everything about the
    /// token itself.
    pub fn rfc6750_code(&self) -> &'static str {
        match self.kind() {
            ErrorKind::InsufficientScope(_) => "insufficient_scope",
            ErrorKind::MissingToken | ErrorKind::Config(_) => "invalid_request",
            _ => "invalid_token",
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Error").field(&self.0).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            ErrorKind::TokenTooLarge => f.write_str("token too large"),
            ErrorKind::Malformed(what) => write!(f, "malformed token: {what}"),
            ErrorKind::UnsupportedHeader(h) => write!(f, "header member `{h}` is not accepted"),
            ErrorKind::AlgorithmNotAllowed => f.write_str("algorithm not allowed"),
            ErrorKind::AlgorithmMismatch => {
                f.write_str("header alg does not match the key's type or algorithm")
            }
            ErrorKind::UnknownKey => f.write_str("no key matches the token's kid"),
            ErrorKind::InvalidSignature => f.write_str("invalid signature"),
            ErrorKind::Expired => f.write_str("token expired"),
            ErrorKind::ImmatureSignature => {
                f.write_str("token not yet valid (nbf or iat in the future)")
            }
            ErrorKind::WrongIssuer => f.write_str("wrong issuer"),
            ErrorKind::WrongAudience => f.write_str("wrong audience"),
            ErrorKind::WrongType => f.write_str("wrong token type (typ)"),
            ErrorKind::MissingClaim(c) => write!(f, "missing claim `{c}`"),
            ErrorKind::InvalidClaim(c) => write!(f, "invalid claim `{c}`"),
            ErrorKind::InvalidKey(why) => write!(f, "invalid key: {why}"),
            ErrorKind::KeySource(why) => write!(f, "key source unavailable: {why}"),
            ErrorKind::Config(why) => write!(f, "invalid verifier configuration: {why}"),
            ErrorKind::MissingToken => f.write_str("no bearer token"),
            ErrorKind::InsufficientScope(what) => write!(f, "insufficient scope: {what} required"),
        }
    }
}

impl std::error::Error for Error {}
