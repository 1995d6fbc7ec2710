//! Grant logic on plain types: client authentication, the grants, and token issuance.
//!
//! **Invariant:** nothing in `oauth` sees an `HttpRequest`; `http` parses requests into the types
//! here and maps [`OAuthError`] back to HTTP.

pub mod authorization_code;
pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod client_credentials;
pub mod clients;
pub mod error;
pub mod issue;
pub mod logout;
pub mod refresh;
pub mod revocation;

use std::sync::Arc;

use ring::rand::SystemRandom;
use sigil_verify::Algorithm;

use crate::cache::Cache;
use crate::clock::{SharedClock, unix_now};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::keys::KeyRing;
use crate::store::Store;
pub use error::OAuthError;

/// Everything a request handler needs, shared by all workers.
pub struct Context {
    /// Settings as loaded.
    pub settings: Arc<Settings>,
    /// Exact issuer string.
    pub issuer: String,
    /// `<issuer>/token`, an accepted client-assertion audience.
    pub token_endpoint: String,
    /// `aud` for clients with no registered audience.
    pub default_audience: String,
    /// Database.
    pub store: Store,
    /// In-memory key ring.
    pub ring: Arc<KeyRing>,
    /// In-memory client registry.
    pub clients: Arc<clients::ClientCache>,
    /// Short-lived shared state.
    pub cache: Arc<Cache>,
    /// Master key (secret hashing).
    pub master: Arc<MasterKey>,
    /// The only source of now.
    pub clock: SharedClock,
    /// Random source for ECDSA/RSA-PSS signing and token ids.
    pub rng: SystemRandom,
    /// Algorithm of access tokens.
    pub access_token_alg: Algorithm,
    /// Password hashing (bounded bcrypt).
    pub hasher: crate::passwords::Hasher,
    /// Verifier of Sigil's own access tokens.
    pub own_tokens: bearer::OwnTokens,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        unix_now(self.clock.as_ref())
    }
}
