//! The verifier: configuration, key selection and the checks, in order.

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::algorithm::{AlgSet, Algorithm};
use crate::b64;
use crate::claims::{Audience, Claims};
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::error::{Error, ErrorKind};
use crate::json::{self, Field};
use crate::jwk::JwkSet;
use crate::key::{KeyStore, KnownHeader, VerifyingKey};

/// Default maximum token length: 8 KiB.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 8 * 1024;
/// Default clock-skew leeway: 60 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default expected `typ`: `at+jwt` (RFC 9068), so an ID token or a refresh token is never
/// taken for an access token.
pub const DEFAULT_TYP: &str = "at+jwt";

/// What a [`Verifier`] checks. Every field starts at its safe default; read it back with
/// [`Verifier::validation`], change it through [`VerifierBuilder`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// The exact `iss` (byte-for-byte, no normalisation). Required, non-empty.
    pub issuer: String,
    /// Accepted audiences: `aud` must contain at least one. Required, none empty.
    pub audiences: Vec<String>,
    /// The algorithm allowlist, checked before any signature work. Default: RS256, PS256,
    /// ES256, EdDSA. `none` and `HS*` can never be allowed.
    pub algorithms: Vec<Algorithm>,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`. Default 60 s.
    pub leeway: Duration,
    /// Expected header `typ`, compared case-insensitively, also accepting the
    /// `application/` prefix. Default `Some("at+jwt")`; `None` skips the check (client
    /// assertions, RFC 7523).
    pub typ: Option<String>,
    /// Tokens longer than this are refused before any parsing. Default 8 KiB.
    pub max_token_size: usize,
    /// Whether `iat` must be present. Default `true`. When `false` and `iat` is absent,
    /// [`Claims::iat`] is `0`.
    pub require_iat: bool,
}

/// Counters a service can export. Read with [`Verifier::stats`]; all start at zero and only grow,
/// except `key_set_age` and `keys`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tokens accepted.
    pub verified: u64,
    /// Refused: expired.
    pub expired: u64,
    /// Refused: bad signature.
    pub invalid_signature: u64,
    /// Refused: no key for the `kid`.
    pub unknown_key: u64,
    /// Refused: algorithm not allowed or not matching the key.
    pub bad_algorithm: u64,
    /// Refused: wrong `iss`, `aud`, `typ`, `nbf`/`iat` in the future, missing or ill-typed
    /// claims.
    pub bad_claims: u64,
    /// Refused: malformed, oversized or carrying a refused header member.
    pub malformed: u64,
    /// Refused: no usable key set (remote source down beyond its stale window).
    pub unavailable: u64,
    /// JWKS fetches attempted (remote source only).
    pub jwks_fetches: u64,
    /// JWKS fetches that failed (remote source only).
    pub jwks_fetch_failures: u64,
    /// Fetches caused by an unknown `kid` (remote source only).
    pub unknown_kid_refetches: u64,
    /// Time since the key set in use was fetched or loaded.
    pub key_set_age: Option<Duration>,
    /// Number of keys in the set in use.
    pub keys: usize,
}

#[derive(Debug, Default)]
struct Counters {
    verified: AtomicU64,
    expired: AtomicU64,
    invalid_signature: AtomicU64,
    unknown_key: AtomicU64,
    bad_algorithm: AtomicU64,
    bad_claims: AtomicU64,
    malformed: AtomicU64,
    unavailable: AtomicU64,
}

impl Counters {
    fn record(&self, r: &Result<Claims, Error>) {
        let c = match r {
            Ok(_) => &self.verified,
            Err(e) => match e.kind() {
                ErrorKind::Expired => &self.expired,
                ErrorKind::InvalidSignature => &self.invalid_signature,
                ErrorKind::UnknownKey => &self.unknown_key,
                ErrorKind::AlgorithmNotAllowed | ErrorKind::AlgorithmMismatch => {
                    &self.bad_algorithm
                }
                ErrorKind::KeySource(_) => &self.unavailable,
                ErrorKind::TokenTooLarge
                | ErrorKind::Malformed(_)
                | ErrorKind::UnsupportedHeader(_) => &self.malformed,
                _ => &self.bad_claims,
            },
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
enum Keys {
    Static {
        store: KeyStore,
        /// When the set was loaded, by the verifier's clock.
        loaded: std::time::SystemTime,
    },
    #[cfg(feature = "remote")]
    Remote(crate::remote::RemoteKeys),
}

impl Keys {
    /// Runs `f` with what the header segment says if the key set in use knows it (see
    /// [`KeyStore::known_header`]), else with `None`. No lock is taken.
    fn with_known_header<R>(
        &self,
        segment: &[u8],
        f: impl FnOnce(Option<KnownHeader<'_>>) -> R,
    ) -> R {
        match self {
            Keys::Static { store, .. } => f(store.known_header(segment)),
            #[cfg(feature = "remote")]
            Keys::Remote(remote) => remote.with_known_header(segment, f),
        }
    }

    /// Runs `f` with the key selected for (`kid`, `alg`). No lock is taken on a hit.
    fn with_key<R>(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        f: impl FnOnce(&VerifyingKey) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match self {
            Keys::Static { store, .. } => match store.select(kid, alg) {
                Some(key) => f(key),
                None => Err(Error::new(ErrorKind::UnknownKey)),
            },
            #[cfg(feature = "remote")]
            Keys::Remote(remote) => remote.with_key(kid, alg, f),
        }
    }
}

#[derive(Debug)]
struct Inner {
    validation: Validation,
    allow: AlgSet,
    leeway: i64,
    clock: Arc<dyn Clock>,
    keys: Keys,
    counters: Counters,
}

/// Verifies Sigil access tokens (or, configured so, client assertions) offline.
///
/// Cheap to clone and to share between threads. Build one with [`Verifier::builder`], which
/// takes the issuer and the audience up front so that neither can be forgotten.
///
/// ```
/// # fn main() -> Result<(), sigil_verify::Error> {
/// use sigil_verify::{JwkSet, Verifier};
/// let jwks = JwkSet::from_json(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig",
///     "alg":"EdDSA","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)?;
/// let verifier = Verifier::builder("https://id.example.com", "https://api.example.com")
///     .jwks(jwks)
///     .build()?;
/// let err = verifier.verify("not.a.token").unwrap_err();
/// assert_eq!(err.rfc6750_code(), "invalid_token");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<Inner>,
}

/// Configures a [`Verifier`]; see [`Validation`] for what each setting means and its default.
#[derive(Debug)]
#[must_use = "call .build() to get a Verifier"]
pub struct VerifierBuilder {
    validation: Validation,
    clock: Arc<dyn Clock>,
    sets: Vec<JwkSet>,
    jwks_files: Vec<PathBuf>,
    pem_files: Vec<PathBuf>,
    pem_dirs: Vec<PathBuf>,
    #[cfg(feature = "remote")]
    remote: Option<crate::remote::RemoteOptions>,
}

fn typ_matches(typ: &str, expected: &str) -> bool {
    if typ.eq_ignore_ascii_case(expected) {
        return true;
    }
    match (typ.get(..12), typ.get(12..)) {
        (Some(prefix), Some(rest)) => {
            prefix.eq_ignore_ascii_case("application/") && rest.eq_ignore_ascii_case(expected)
        }
        _ => false,
    }
}

/// Length of the canonical base64url encoding of `n` bytes.
fn encoded_len(n: usize) -> usize {
    n / 3 * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

const HEADER_STACK: usize = 512;
const SIG_STACK: usize = 1024;
const PAYLOAD_STACK: usize = 1024;

impl Verifier {
    /// Starts a verifier for tokens issued by `issuer` to `audience`. Both are required and
    /// compared byte for byte; add more accepted audiences with [`VerifierBuilder::audience`].
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            validation: Validation {
                issuer: issuer.into(),
                audiences: vec![audience.into()],
                algorithms: Algorithm::ALL.to_vec(),
                leeway: DEFAULT_LEEWAY,
                typ: Some(DEFAULT_TYP.to_owned()),
                max_token_size: DEFAULT_MAX_TOKEN_SIZE,
                require_iat: true,
            },
            clock: Arc::new(SystemClock),
            sets: Vec::new(),
            jwks_files: Vec::new(),
            pem_files: Vec::new(),
            pem_dirs: Vec::new(),
            #[cfg(feature = "remote")]
            remote: None,
        }
    }

    /// What this verifier checks.
    pub fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// The public keys currently in use, as a JWKS.
    pub fn jwks(&self) -> JwkSet {
        match &self.inner.keys {
            Keys::Static { store, .. } => store.jwks().clone(),
            #[cfg(feature = "remote")]
            Keys::Remote(remote) => remote.jwks(),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = Stats {
            verified: get(&c.verified),
            expired: get(&c.expired),
            invalid_signature: get(&c.invalid_signature),
            unknown_key: get(&c.unknown_key),
            bad_algorithm: get(&c.bad_algorithm),
            bad_claims: get(&c.bad_claims),
            malformed: get(&c.malformed),
            unavailable: get(&c.unavailable),
            ..Stats::default()
        };
        match &self.inner.keys {
            Keys::Static { store, loaded } => {
                s.key_set_age = Some(
                    self.inner
                        .clock
                        .now()
                        .duration_since(*loaded)
                        .unwrap_or_default(),
                );
                s.keys = store.len();
            }
            #[cfg(feature = "remote")]
            Keys::Remote(remote) => remote.fill_stats(&mut s),
        }
        s
    }

    /// Verifies a compact JWS access token and returns its claims.
    ///
    /// In order: size; exactly three canonical base64url segments; a strict JSON header
    /// without refused members; `alg` in the allowlist; `typ`; the key chosen by `kid`, whose
    /// type and algorithm must agree with `alg`; the signature; then the claims: `exp`
    /// (required), `nbf` and `iat` (not in the future beyond the leeway), `iss`, `aud` and
    /// `sub`. Never panics on any input.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let result = self.with_verified_payload(token, |payload| self.check_claims(payload));
        self.inner.counters.record(&result);
        result
    }

    /// Verifies the bearer token of an HTTP `Authorization` header value, for servers on any
    /// framework (RFC 6750 §2.1: `Bearer <token>`, the scheme case-insensitive).
    ///
    /// `None` (no header), another scheme (`Basic ...`) or an empty token is
    /// [`ErrorKind::MissingToken`]; otherwise this is [`Verifier::verify`] on the token. Answer a
    /// failure with [`Error::http_status`], [`Error::www_authenticate`] and
    /// [`Error::rfc6750_body`], and check what the claims hold with
    /// [`Claims::require_permission`], [`Claims::require_scope`] or [`Claims::require_role`],
    /// whose errors answer the same way (403 `insufficient_scope`).
    ///
    /// ```
    /// # fn main() -> Result<(), sigil_verify::Error> {
    /// # use sigil_verify::{JwkSet, Verifier};
    /// # let jwks = JwkSet::from_json(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig",
    /// #     "alg":"EdDSA","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#)?;
    /// # let verifier = Verifier::builder("https://id.example.com", "https://api.example.com")
    /// #     .jwks(jwks)
    /// #     .build()?;
    /// /// (status, WWW-Authenticate, body) for a request with this `Authorization` header.
    /// fn answer(verifier: &Verifier, authorization: Option<&str>) -> (u16, Option<String>, String) {
    ///     let checked = verifier
    ///         .verify_bearer(authorization)
    ///         .and_then(|claims| claims.require_permission("orders:read").map(|()| claims));
    ///     match checked {
    ///         Ok(claims) => (200, None, format!("orders of {}", claims.sub)),
    ///         Err(e) => (e.http_status(), e.www_authenticate(), e.rfc6750_body().unwrap_or_default()),
    ///     }
    /// }
    /// assert_eq!(answer(&verifier, None), (401, Some("Bearer".into()), String::new()));
    /// let (status, www, _) = answer(&verifier, Some("Bearer not.a.token"));
    /// assert_eq!(status, 401);
    /// assert!(www.is_some_and(|w| w.starts_with(r#"Bearer error="invalid_token""#)));
    /// # Ok(()) }
    /// ```
    pub fn verify_bearer(&self, authorization: Option<&str>) -> Result<Claims, Error> {
        self.verify(bearer_token(authorization)?)
    }

    /// Checks everything about the token except its claims, and returns the payload bytes.
    ///
    /// **This does not check `exp`, `iss` or `aud`.** It exists for JWS test suites and for
    /// callers with their own payload format; to accept a token, use [`Verifier::verify`].
    pub fn verify_signature(&self, token: &str) -> Result<Vec<u8>, Error> {
        self.with_verified_payload(token, |payload| Ok(payload.to_vec()))
    }

    /// Everything but the claims; runs `f` on the decoded payload once the signature holds.
    fn with_verified_payload<R>(
        &self,
        token: &str,
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        if token.len() > inner.validation.max_token_size {
            return Err(Error::new(ErrorKind::TokenTooLarge));
        }
        let bytes = token.as_bytes();
        let mut dots = memchr::memchr_iter(b'.', bytes);
        let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
            return Err(Error::malformed(
                "not three segments (JWE and JSON serialization are not accepted)",
            ));
        };
        let (h64, p64, s64) = (&bytes[..d1], &bytes[d1 + 1..d2], &bytes[d2 + 1..]);
        inner.keys.with_known_header(h64, |known| {
            // The header: decoded on the stack when small, into memory that need not be zeroed
            // first, and parsed; or, when it is byte for byte one the key set knows, taken from
            // there (the same three members a parse would give).
            let mut hstack = [const { MaybeUninit::<u8>::uninit() }; HEADER_STACK];
            let mut hheap = Vec::new();
            let parsed;
            let (alg_name, typ, kid) = match known {
                Some(k) => (Some(k.alg.as_str()), Some(k.typ), Some(k.kid)),
                None => {
                    let hlen = b64::decoded_len(h64.len())
                        .ok_or_else(|| Error::malformed("header base64url"))?;
                    let hbuf: &[u8] = if hlen <= HEADER_STACK {
                        b64::decode_uninit(h64, &mut hstack[..hlen], "header base64url")?
                    } else {
                        hheap.resize(hlen, 0);
                        b64::decode_into(h64, &mut hheap, "header base64url")?;
                        &hheap
                    };
                    parsed = json::parse_header(hbuf)?;
                    if let Some(member) = parsed.refused {
                        return Err(Error::new(ErrorKind::UnsupportedHeader(member)));
                    }
                    (
                        parsed.alg.as_deref(),
                        parsed.typ.as_deref(),
                        parsed.kid.as_deref(),
                    )
                }
            };
            let alg_name = alg_name.ok_or_else(|| Error::malformed("header has no alg"))?;
            let alg = Algorithm::from_name(alg_name)
                .filter(|a| inner.allow.contains(*a))
                .ok_or_else(|| Error::new(ErrorKind::AlgorithmNotAllowed))?;
            if let Some(expected) = inner.validation.typ.as_deref() {
                match typ {
                    Some(typ) if typ_matches(typ, expected) => {}
                    _ => return Err(Error::new(ErrorKind::WrongType)),
                }
            }
            // The signing input: the token up to the second dot.
            self.verify_rest(alg, kid, &bytes[..d2], p64, s64, f)
        })
    }

    /// [`Self::with_verified_payload`] once the header is read: the payload, the key, the
    /// signature, then `f`.
    fn verify_rest<R>(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
        signing_input: &[u8],
        p64: &[u8],
        s64: &[u8],
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        // Payload: decoded (and so checked to be canonical) before the signature work, on the
        // stack when small.
        let plen =
            b64::decoded_len(p64.len()).ok_or_else(|| Error::malformed("payload base64url"))?;
        let mut pstack = [const { MaybeUninit::<u8>::uninit() }; PAYLOAD_STACK];
        let mut pheap = Vec::new();
        let payload: &[u8] = if plen <= PAYLOAD_STACK {
            b64::decode_uninit(p64, &mut pstack[..plen], "payload base64url")?
        } else {
            pheap.resize(plen, 0);
            b64::decode_into(p64, &mut pheap, "payload base64url")?;
            &pheap
        };

        inner.keys.with_key(kid, alg, |key| {
            if !key.accepts(alg) {
                return Err(Error::new(ErrorKind::AlgorithmMismatch));
            }
            let sig_len = key.signature_len();
            if s64.len() != encoded_len(sig_len) || sig_len > SIG_STACK {
                return Err(Error::new(ErrorKind::InvalidSignature));
            }
            let mut sig = [const { MaybeUninit::<u8>::uninit() }; SIG_STACK];
            let sig = b64::decode_uninit(s64, &mut sig[..sig_len], "signature base64url")?;
            key.verify(alg, signing_input, sig)
        })?;
        f(payload)
    }

    fn check_claims(&self, payload: &[u8]) -> Result<Claims, Error> {
        let inner = &*self.inner;
        let v = &inner.validation;
        let raw = json::parse_claims(payload)?;
        let now = unix_seconds(inner.clock.now());
        let leeway = inner.leeway;

        let exp = time("exp", raw.exp.as_ref())?
            .ok_or_else(|| Error::new(ErrorKind::MissingClaim("exp")))?;
        if now >= exp.saturating_add(leeway) {
            return Err(Error::new(ErrorKind::Expired));
        }
        let nbf = time("nbf", raw.nbf.as_ref())?;
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(Error::new(ErrorKind::ImmatureSignature));
        }
        let iat = match time("iat", raw.iat.as_ref())? {
            Some(iat) if iat > now.saturating_add(leeway) => {
                return Err(Error::new(ErrorKind::ImmatureSignature));
            }
            Some(iat) => iat,
            None if v.require_iat => return Err(Error::new(ErrorKind::MissingClaim("iat"))),
            None => 0,
        };
        let iss = match raw.iss {
            None => return Err(Error::new(ErrorKind::MissingClaim("iss"))),
            Some(Field::Str(iss)) if iss == v.issuer => iss,
            Some(Field::Str(_)) => return Err(Error::new(ErrorKind::WrongIssuer)),
            Some(_) => return Err(Error::new(ErrorKind::InvalidClaim("iss"))),
        };
        let aud = match raw.aud {
            None => return Err(Error::new(ErrorKind::MissingClaim("aud"))),
            Some(Field::Str(a)) => Audience::One(a),
            Some(Field::StrList(list)) => Audience::Many(list),
            Some(_) => return Err(Error::new(ErrorKind::InvalidClaim("aud"))),
        };
        if !aud.iter().any(|a| v.audiences.iter().any(|x| x == a)) {
            return Err(Error::new(ErrorKind::WrongAudience));
        }
        let sub = match raw.sub {
            None => return Err(Error::new(ErrorKind::MissingClaim("sub"))),
            Some(Field::Str(sub)) => sub,
            Some(_) => return Err(Error::new(ErrorKind::InvalidClaim("sub"))),
        };
        let roles = str_list("roles", raw.roles)?;
        let permissions = str_list("permissions", raw.permissions)?;
        Ok(Claims {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            jti: opt_string("jti", raw.jti)?,
            client_id: opt_string("client_id", raw.client_id)?,
            scope: opt_string("scope", raw.scope)?,
            roles,
            permissions,
            tenant: opt_string("tenant", raw.tenant)?,
            extra: raw.extra,
        })
    }
}

/// The token of an `Authorization` header value `Bearer <token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive, and spaces may run before the token). No header, another scheme or an empty
/// token is [`ErrorKind::MissingToken`].
pub(crate) fn bearer_token(authorization: Option<&str>) -> Result<&str, Error> {
    let missing = || Error::new(ErrorKind::MissingToken);
    match authorization.ok_or_else(missing)?.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim_start_matches(' ');
            if token.is_empty() {
                Err(missing())
            } else {
                Ok(token)
            }
        }
        _ => Err(missing()),
    }
}

/// A NumericDate claim: absent, or a JSON integer that fits in `i64`.
fn time(name: &'static str, val: Option<&Field>) -> Result<Option<i64>, Error> {
    match val {
        None => Ok(None),
        Some(Field::Int(t)) => Ok(Some(*t)),
        Some(_) => Err(Error::new(ErrorKind::InvalidClaim(name))),
    }
}

/// An optional array-of-strings claim; absent reads as empty.
fn str_list(name: &'static str, val: Option<Field>) -> Result<Vec<String>, Error> {
    match val {
        None => Ok(Vec::new()),
        Some(Field::StrList(list)) => Ok(list),
        Some(_) => Err(Error::new(ErrorKind::InvalidClaim(name))),
    }
}

/// An optional string claim; `null` reads as absent.
fn opt_string(name: &'static str, val: Option<Field>) -> Result<Option<String>, Error> {
    match val {
        None | Some(Field::Other(Value::Null)) => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Error::new(ErrorKind::InvalidClaim(name))),
    }
}

impl VerifierBuilder {
    /// Accepts one more audience (e.g. the issuer URL besides the token endpoint, for client
    /// assertions).
    pub fn audience(mut self, also_accept: impl Into<String>) -> Self {
        self.validation.audiences.push(also_accept.into());
        self
    }

    /// Replaces the algorithm allowlist (default: all four). An empty list fails `build`.
    pub fn algorithms(mut self, allow: &[Algorithm]) -> Self {
        self.validation.algorithms = AlgSet::from_slice(allow).to_vec();
        self
    }

    /// Clock-skew leeway for `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, d: Duration) -> Self {
        self.validation.leeway = d;
        self
    }

    /// Expected header `typ` (default `Some("at+jwt")`); `None` skips the check.
    pub fn typ(mut self, expected: Option<&str>) -> Self {
        self.validation.typ = expected.map(str::to_owned);
        self
    }

    /// Maximum token length in bytes (default 8 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.validation.max_token_size = bytes;
        self
    }

    /// Whether `iat` is required (default `true`). Client assertions (RFC 7523) may omit it;
    /// with `false`, a missing `iat` reads as `0` in [`Claims::iat`].
    pub fn require_iat(mut self, required: bool) -> Self {
        self.validation.require_iat = required;
        self
    }

    /// The source of "now" (default [`SystemClock`]).
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = c;
        self
    }

    /// Adds a static key set. Keys are validated again by `build` (see
    /// [`JwkSet::from_json`]).
    pub fn jwks(mut self, set: JwkSet) -> Self {
        self.sets.push(set);
        self
    }

    /// Adds the keys of a JWKS file, read and strictly parsed by `build`.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwks_files.push(path.into());
        self
    }

    /// Adds the public keys of PEM files (see [`JwkSet::from_pem`]), read by `build`.
    pub fn pem_files<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.pem_files.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Adds every `*.pem` file of a directory (not recursive), e.g. Sigil's `keys/` export,
    /// read by `build`.
    pub fn pem_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pem_dirs.push(dir.into());
        self
    }

    /// Fetches keys from the issuer: discovery, then `jwks_uri`, cached and refreshed in the
    /// background (feature `remote`). Cannot be combined with static keys.
    #[cfg(feature = "remote")]
    pub fn remote(mut self, options: crate::remote::RemoteOptions) -> Self {
        self.remote = Some(options);
        self
    }

    fn static_keys(&self) -> Result<Option<JwkSet>, Error> {
        let io = |p: &PathBuf, e: std::io::Error| {
            Error::new(ErrorKind::KeySource(format!("{}: {e}", p.display())))
        };
        let mut keys = Vec::new();
        let mut any = false;
        for set in &self.sets {
            any = true;
            keys.extend(set.keys.iter().cloned());
        }
        for path in &self.jwks_files {
            any = true;
            let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
            keys.extend(JwkSet::from_json(&bytes)?.keys);
        }
        let mut pem_files = self.pem_files.clone();
        for dir in &self.pem_dirs {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| io(dir, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pem") && p.is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::new(ErrorKind::KeySource(format!(
                    "{}: no .pem file",
                    dir.display()
                ))));
            }
            pem_files.extend(found);
        }
        for path in &pem_files {
            any = true;
            let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
            keys.extend(JwkSet::from_pem(&text)?.keys);
        }
        Ok(any.then_some(JwkSet { keys }))
    }

    /// Checks the configuration, loads static keys, and returns the verifier.
    ///
    /// Fails on an empty issuer or audience, an empty allowlist, no key source (or one with
    /// no key), an invalid key, or duplicate `kid`s across sources.
    pub fn build(self) -> Result<Verifier, Error> {
        let v = &self.validation;
        if v.issuer.is_empty() {
            return Err(Error::new(ErrorKind::Config("issuer is empty")));
        }
        if v.audiences.iter().any(String::is_empty) {
            return Err(Error::new(ErrorKind::Config("an audience is empty")));
        }
        let allow = AlgSet::from_slice(&v.algorithms);
        if allow.is_empty() {
            return Err(Error::new(ErrorKind::Config("empty algorithm allowlist")));
        }
        if v.max_token_size == 0 {
            return Err(Error::new(ErrorKind::Config("max_token_size is zero")));
        }
        let static_set = self.static_keys()?;
        let keys = match static_set {
            Some(set) => {
                #[cfg(feature = "remote")]
                if self.remote.is_some() {
                    return Err(Error::new(ErrorKind::Config(
                        "static keys and a remote source cannot be combined",
                    )));
                }
                if set.keys.is_empty() {
                    return Err(Error::new(ErrorKind::Config("the key source holds no key")));
                }
                Keys::Static {
                    store: KeyStore::new(set)?,
                    loaded: self.clock.now(),
                }
            }
            #[cfg(feature = "remote")]
            None if self.remote.is_some() => match self.remote {
                Some(opts) => Keys::Remote(crate::remote::RemoteKeys::start(
                    &self.validation.issuer,
                    opts,
                    Arc::clone(&self.clock),
                )?),
                None => return Err(Error::new(ErrorKind::Config("no key source"))),
            },
            None => return Err(Error::new(ErrorKind::Config("no key source"))),
        };
        let leeway = i64::try_from(self.validation.leeway.as_secs()).unwrap_or(i64::MAX);
        Ok(Verifier {
            inner: Arc::new(Inner {
                validation: self.validation,
                allow,
                leeway,
                clock: self.clock,
                keys,
                counters: Counters::default(),
            }),
        })
    }
}
