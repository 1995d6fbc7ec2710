//! Why a token, a key or a configuration was refused.

use std::fmt;

/// Why verification (or building a verifier, or loading keys) failed.
///
/// Boxed so that `Result<Claims, Error>` stays small; match on [`Error::kind`].
/// Every kind maps to an RFC 6750 answer without any web framework: [`Error::http_status`],
/// [`Error::www_authenticate`] and [`Error::rfc6750_body`] (what the `actix` feature sends), and
/// the bare error code with [`Error::rfc6750_code`].
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
    /// No bearer token was presented: no `Authorization` header, another scheme, or an empty
    /// token (see [`Verifier::verify_bearer`](crate::Verifier::verify_bearer)).
    MissingToken,
    /// The token is valid but its `scope` lacks the scope named here.
    InsufficientScope(String),
    /// The token is valid but its `roles` lack the role named here.
    InsufficientRole(String),
    /// The token is valid but none of its `permissions` grants the permission named here.
    InsufficientPermission(String),
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
    /// `insufficient_scope` for a valid token that lacks a scope, role or permission
    /// ([`ErrorKind::InsufficientScope`], [`ErrorKind::InsufficientRole`],
    /// [`ErrorKind::InsufficientPermission`]), `invalid_request` for a missing token or a
    /// verifier misconfiguration, `invalid_token` for everything else (everything about the
    /// token itself, and an unavailable key source).
    pub fn rfc6750_code(&self) -> &'static str {
        match self.kind() {
            ErrorKind::InsufficientScope(_)
            | ErrorKind::InsufficientRole(_)
            | ErrorKind::InsufficientPermission(_) => "insufficient_scope",
            ErrorKind::MissingToken | ErrorKind::Config(_) => "invalid_request",
            _ => "invalid_token",
        }
    }

    /// The HTTP status a resource server answers with (RFC 6750 §3.1): `403` when a valid token
    /// lacks a scope, role or permission; `500` for a verifier misconfiguration; `503` when no
    /// usable key set is held ([`ErrorKind::KeySource`]); `401` for everything else (no token,
    /// or a token that is not valid).
    ///
    /// ```
    /// use sigil_verify::{Error, ErrorKind};
    /// assert_eq!(Error::from(ErrorKind::MissingToken).http_status(), 401);
    /// assert_eq!(Error::from(ErrorKind::Expired).http_status(), 401);
    /// assert_eq!(Error::from(ErrorKind::InsufficientRole("admin".into())).http_status(), 403);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self.kind() {
            ErrorKind::InsufficientScope(_)
            | ErrorKind::InsufficientRole(_)
            | ErrorKind::InsufficientPermission(_) => 403,
            ErrorKind::Config(_) => 500,
            ErrorKind::KeySource(_) => 503,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` header value to answer with (RFC 6750 §3), or `None` for a
    /// verifier misconfiguration (a `500` challenges nobody):
    ///
    /// * no token ([`ErrorKind::MissingToken`]): `Bearer`, without an error code (§3.1);
    /// * otherwise `Bearer error="<code>", error_description="<why>"`, with the code of
    ///   [`Error::rfc6750_code`], followed by `, scope="<scope>"` when a required scope is
    ///   missing ([`ErrorKind::InsufficientScope`]).
    ///
    /// Quoted text never carries `"` or `\` (each becomes `'`) nor anything but printable ASCII
    /// (`?`); the description of an unavailable key source does not say where the keys come from.
    ///
    /// ```
    /// use sigil_verify::{Error, ErrorKind};
    /// let www = |k: ErrorKind| Error::from(k).www_authenticate();
    /// assert_eq!(www(ErrorKind::MissingToken).as_deref(), Some("Bearer"));
    /// assert_eq!(
    ///     www(ErrorKind::Expired).as_deref(),
    ///     Some(r#"Bearer error="invalid_token", error_description="token expired""#),
    /// );
    /// assert_eq!(
    ///     www(ErrorKind::InsufficientScope("orders:read".into())).as_deref(),
    ///     Some(concat!(
    ///         r#"Bearer error="insufficient_scope", "#,
    ///         r#"error_description="insufficient scope: orders:read required", "#,
    ///         r#"scope="orders:read""#,
    ///     )),
    /// );
    /// assert_eq!(www(ErrorKind::Config("no key source")), None);
    /// ```
    pub fn www_authenticate(&self) -> Option<String> {
        match self.kind() {
            ErrorKind::MissingToken => Some("Bearer".to_owned()),
            ErrorKind::Config(_) => None,
            kind => {
                let mut c = format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    self.rfc6750_code(),
                    quoted(&self.description())
                );
                if let ErrorKind::InsufficientScope(scope) = kind {
                    c.push_str(&format!(", scope=\"{}\"", quoted(scope)));
                }
                Some(c)
            }
        }
    }

    /// The JSON body to answer with, `{"error":"<code>","error_description":"<why>"}`, or `None`
    /// (an empty body) when no token was sent or the verifier is misconfigured.
    ///
    /// ```
    /// use sigil_verify::{Error, ErrorKind};
    /// assert_eq!(
    ///     Error::from(ErrorKind::WrongAudience).rfc6750_body().as_deref(),
    ///     Some(r#"{"error":"invalid_token","error_description":"wrong audience"}"#),
    /// );
    /// assert_eq!(Error::from(ErrorKind::MissingToken).rfc6750_body(), None);
    /// ```
    pub fn rfc6750_body(&self) -> Option<String> {
        match self.kind() {
            ErrorKind::MissingToken | ErrorKind::Config(_) => None,
            _ => Some(
                serde_json::json!({
                    "error": self.rfc6750_code(),
                    "error_description": self.description(),
                })
                .to_string(),
            ),
        }
    }

    /// What a client is told: the `Display` text, except that an unavailable key source or a
    /// refused key does not say which file, address or key.
    fn description(&self) -> String {
        match self.kind() {
            ErrorKind::KeySource(_) => "key source unavailable".to_owned(),
            ErrorKind::InvalidKey(_) => "invalid key".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// Makes text safe inside a quoted-string of `WWW-Authenticate`.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
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
            ErrorKind::InsufficientScope(s) => write!(f, "insufficient scope: {s} required"),
            ErrorKind::InsufficientRole(r) => write!(f, "role {r} required"),
            ErrorKind::InsufficientPermission(p) => write!(f, "permission {p} required"),
        }
    }
}

impl std::error::Error for Error {}
