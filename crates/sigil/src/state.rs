//! The application state every request handler shares: settings, the store, the key ring,
//! the client registry, the short-lived cache, the rate limits, the master key, the clock and the
//! metrics.
//!
//! It is built once in `startup` and handed to `http` handlers as `web::Data<AppState>`; the
//! use cases in `oauth` take it by reference. It holds no per-request data.

use std::sync::Arc;

use ring::rand::SystemRandom;
use sigil_verify::Algorithm;

use crate::cache::Cache;
use crate::clock::{SharedClock, unix_now};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::keys::KeyRing;
use crate::oauth::{bearer, clients};
use crate::store::Store;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
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
    /// Rate limits per class, on `cache` and this process's memory.
    pub limits: crate::ratelimit::RateLimits,
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
    /// Roles and APIs: what tokens' `permissions` are made from.
    pub authz: crate::authz::Authz,
    /// Prometheus counters.
    pub metrics: crate::metrics::Metrics,
    /// Whether the database commits writes, probed at most once a second (`/readyz`).
    pub write_probe: crate::store::heartbeat::WriteProbe,
    /// Set when a graceful stop begins: `/readyz` fails and responses close their connection,
    /// so load balancers and keep-alive clients move on before the listener closes.
    pub draining: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        unix_now(self.clock.as_ref())
    }

    /// Append an event to the audit trail on its own. A failure is logged and counted
    /// (`sigil_audit_write_failures_total`) but does not fail the request that caused it;
    /// events that must commit together with a change are appended in that change's
    /// transaction instead (e.g. refresh-token reuse).
    pub async fn audit(&self, event: crate::store::audit::NewEvent) {
        let master = self.master.clone();
        let kind = event.kind;
        let result = self
            .store
            .run(move |c| crate::store::audit::append(c, &master, event))
            .await;
        if let Err(e) = result {
            self.metrics.audit_write_failures.inc();
            tracing::error!(error = %e, kind, "could not write an audit event");
        }
    }

    /// An audit event of `kind` at the current time, with no subject or details yet.
    pub fn event(&self, kind: &'static str, actor: String) -> crate::store::audit::NewEvent {
        crate::store::audit::NewEvent {
            at: self.now(),
            kind,
            actor,
            subject: None,
            client_id: None,
            details: serde_json::json!({}),
        }
    }
}
