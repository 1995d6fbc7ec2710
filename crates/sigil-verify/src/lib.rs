//! Verify Sigil-issued JWTs offline: strict, fast, hard to misuse.
//!
//! ```no_run
//! # fn main() -> Result<(), sigil_verify::Error> {
//! use sigil_verify::Verifier;
//! let verifier = Verifier::builder("https://id.example.com", "https://api.example.com")
//!     .jwks_file("keys/jwks.json")
//!     .build()?;
//! # let token = "";
//! let claims = verifier.verify(token)?;
//! if !claims.has_scope("orders:read") { /* 403 insufficient_scope */ }
//! # Ok(()) }
//! ```
//!
//! # Checking what a token allows
//!
//! [`Claims::has_permission`], [`Claims::has_scope`] and [`Claims::has_role`] answer yes or no;
//! [`Claims::require_permission`] and its siblings return an [`Error`] that knows its RFC 6750
//! answer. Permissions follow the rule in [`authz`]: exact, plus a held `job:*` granting
//! `job:create` and `job:run:now`.
//!
//! With actix-web (feature `actix`), one line per handler:
//!
//! ```ignore
//! sigil_verify::permission!(OrdersRead = "orders:read");
//! async fn orders(auth: sigil_verify::actix::RequirePermission<OrdersRead>) -> String {
//!     auth.sub.clone() // only reached with a valid token that grants orders:read
//! }
//! ```
//!
//! Without it (axum, hyper, ...), the same checks and answers:
//!
//! ```
//! # fn f(verifier: &sigil_verify::Verifier, authorization: Option<&str>) {
//! match verifier
//!     .verify_bearer(authorization) // the Authorization header's value
//!     .and_then(|claims| claims.require_permission("orders:read").map(|()| claims))
//! {
//!     Ok(claims) => { /* serve claims.sub */ }
//!     Err(e) => {
//!         let (_status, _www_authenticate, _body) =
//!             (e.http_status(), e.www_authenticate(), e.rfc6750_body());
//!     }
//! }
//! # }
//! ```
//!
//! `examples/resource_server.rs` is a complete resource server, its routes guarded each way
//! (`cargo run -p sigil-verify --features actix --example resource_server -- --help`).
//!
//! The issuer **and** the audience are required by [`Verifier::builder`]; the other
//! settings start at safe defaults (see [`Validation`]): algorithms RS256, PS256, ES256 and
//! EdDSA only, 60 s leeway, `typ` must be `at+jwt`, tokens over 8 KiB refused unread.
//!
//! What is never accepted: `alg: none` in any case, `HS*`, a header `alg` that disagrees with
//! the key chosen by `kid`, keys carried by the token (`jwk`, `jku`, `x5u`, `x5c`), `crit`,
//! `b64`, duplicate JSON member names, non-canonical base64url, anything but three segments,
//! wrong-length or out-of-range signatures, missing `exp`.
//!
//! Features: `actix` (an extractor and permission/scope/role guards for actix-web), `remote` (discovery
//! and a cached, background-refreshed remote JWKS), `ring` (default) or `aws-lc-rs` (the
//! crypto backend, chosen at compile time). The default build depends on ring, serde,
//! serde_json, base64-simd and memchr only.
//!
//! A cache hit on a known `kid` takes no lock: static key sets are immutable, and the remote
//! source swaps whole key sets behind an `ArcSwap`.
#![deny(missing_docs)]

mod algorithm;
pub mod authz;
mod b64;
mod backend;
mod claims;
mod clock;
pub mod dangerous;
mod error;
mod json;
mod jwk;
mod key;
mod pem;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "remote")]
pub mod remote;

pub use algorithm::Algorithm;
pub use authz::{
    PermissionName, RoleName, ScopeName, is_permission, is_role_name, is_scope_token,
    permission_covers,
};
pub use b64::base64url;
pub use backend::BACKEND;
pub use claims::{Audience, Claims, IdTokenClaims, RefreshClaims, UserClaims};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, ErrorKind};
pub use jwk::{Jwk, JwkSet};
pub use key::{RSA_MAX_BITS, RSA_MIN_BITS, VerifyingKey};
pub use verifier::{
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_SIZE, DEFAULT_TYP, Stats, Validation, Verifier,
    VerifierBuilder,
};
