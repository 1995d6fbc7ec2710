//! The in-memory client registry. Clients are read on every token request and change rarely, so
//! each server keeps parsed clients (with a ready verifier for their registered assertion keys) and
//! drops them all when the database's `clients_version` moves (polled by the jobs). It also holds
//! the set of every client's web origins, reloaded on the same signal, so a CORS preflight (which
//! names no client) is answered from memory.
//!
//! Found clients live in a bounded `quick_cache` (sharded, so lookups on the `/token` path take no
//! global lock; when full, its scan-resistant eviction drops the least useful entries, so clients
//! in use stay). Unknown ids are remembered apart, in a small cache of their own: a flood of random
//! `client_id`s churns only that one and never evicts a real client.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use quick_cache::sync::Cache;
use sigil_verify::Verifier;

use crate::domain::client::Client;
use crate::domain::{ClientId, WebOrigin};
use crate::store::{Store, StoreError, clients as client_store};

/// How many unknown ids are remembered (so a client retrying with a wrong id does not query the
/// database each time).
const MISS_CAPACITY: usize = 1024;

/// A client plus what is derived from it once.
#[derive(Debug)]
pub struct RegisteredClient {
    /// The registration.
    pub client: Client,
    /// Verifier for `private_key_jwt` assertions (iss = client_id; aud = token endpoint or issuer).
    pub assertion_verifier: Option<Verifier>,
    /// The origins whose CORS requests are answered for this client (`Client::cors_origins`).
    pub cors_origins: BTreeSet<WebOrigin>,
}

impl RegisteredClient {
    /// Whether a request from the browser origin `origin` may read this client's responses.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o.as_str() == origin)
    }
}

/// Cached lookups: found clients, and apart from them, recent misses.
pub struct ClientCache {
    found: Cache<String, Arc<RegisteredClient>>,
    missing: Cache<String, ()>,
    generation: AtomicU64,
    misses: prometheus::IntCounter,
    issuer: String,
    token_endpoint: String,
    origins: ArcSwap<HashSet<String>>,
}

impl std::fmt::Debug for ClientCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCache")
            .field("found", &self.found.len())
            .field("missing", &self.missing.len())
            .finish()
    }
}

impl ClientCache {
    /// An empty cache holding up to `capacity` clients; `misses` counts database look-ups.
    pub fn new(
        capacity: usize,
        issuer: String,
        token_endpoint: String,
        misses: prometheus::IntCounter,
    ) -> ClientCache {
        ClientCache {
            found: Cache::new(capacity.max(1)),
            missing: Cache::new(MISS_CAPACITY),
            generation: AtomicU64::new(0),
            misses,
            issuer,
            token_endpoint,
            origins: ArcSwap::from_pointee(HashSet::new()),
        }
    }

    /// Whether any client registered the web origin `origin` (CORS preflight).
    pub fn any_client_allows_origin(&self, origin: &str) -> bool {
        self.origins.load().contains(origin)
    }

    /// Reload the set of every client's web origins from the database (at start-up and whenever
    /// `clients_version` moves).
    pub async fn reload_origins(&self, store: &Store) -> Result<(), StoreError> {
        let all = store.run(client_store::all_cors_origins).await?;
        let set: HashSet<String> = all.iter().map(|o| o.as_str().to_owned()).collect();
        self.origins.store(Arc::new(set));
        Ok(())
    }

    /// Find a client, from memory or the database. An id [`ClientId::parse`] refuses names no
    /// client: it is not looked up, nor remembered as a miss.
    pub async fn get(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Arc<RegisteredClient>>, StoreError> {
        let Ok(parsed) = ClientId::parse(id) else {
            return Ok(None);
        };
        if let Some(hit) = self.found.get(id) {
            return Ok(Some(hit));
        }
        if self.missing.get(id).is_some() {
            return Ok(None);
        }
        self.misses.inc();
        let generation = self.generation.load(Ordering::Acquire);
        let found = store.run(move |c| client_store::find(c, &parsed)).await?;
        let entry = found.map(|client| Arc::new(self.prepare(client)));
        // A change seen while we were loading makes what we loaded stale: do not keep it.
        if self.generation.load(Ordering::Acquire) == generation {
            match &entry {
                Some(reg) => self.found.insert(id.to_owned(), reg.clone()),
                None => self.missing.insert(id.to_owned(), ()),
            }
        }
        Ok(entry)
    }

    fn prepare(&self, client: Client) -> RegisteredClient {
        let assertion_verifier = client.jwks.as_ref().and_then(|set| {
            Verifier::builder(client.id.as_str(), self.token_endpoint.as_str())
                .audience(self.issuer.as_str())
                .typ(None)
                .jwks(set.clone())
                .build()
                .map_err(
                    |e| tracing::warn!(client_id = %client.id, error = %e, "client JWKS unusable"),
                )
                .ok()
        });
        RegisteredClient {
            cors_origins: client.cors_origins(),
            client,
            assertion_verifier,
        }
    }

    /// Forget everything (called when `clients_version` changes).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.found.clear();
        self.missing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize) -> ClientCache {
        ClientCache::new(
            capacity,
            "https://id.example".into(),
            "https://id.example/token".into(),
            prometheus::IntCounter::new("m", "m").unwrap_or_else(|_| unreachable!()),
        )
    }

    fn registered(id: &str) -> Arc<RegisteredClient> {
        let client = Client {
            id: ClientId::parse(id).unwrap_or_else(|_| unreachable!()),
            name: "test".into(),
            public: false,
            secret_hash: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            grants: vec![],
            scopes: crate::domain::ScopeSet::default(),
            audiences: vec![],
            roles: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            pkce: crate::domain::client::PkceMode::Required,
            jwks: None,
            created_at: 0,
            updated_at: 0,
            first_party: false,
            id_token_alg: sigil_verify::Algorithm::RS256,
            web_origins: vec![],
            access_token_alg: None,
        };
        Arc::new(RegisteredClient {
            cors_origins: client.cors_origins(),
            client,
            assertion_verifier: None,
        })
    }

    #[test]
    fn misses_never_evict_found_clients() {
        let c = cache(100);
        c.found.insert("sgl_real".into(), registered("sgl_real"));
        for i in 0..10_000 {
            c.missing.insert(format!("sgl_random{i}"), ());
        }
        assert!(c.found.get("sgl_real").is_some());
        assert!(c.missing.len() <= MISS_CAPACITY);
    }

    #[test]
    fn a_full_cache_keeps_clients_in_use() {
        let c = cache(100);
        c.found.insert("sgl_hot".into(), registered("sgl_hot"));
        for i in 0..1_000 {
            // The hot client is used between every new one: it stays while others make room.
            assert!(c.found.get("sgl_hot").is_some(), "evicted after {i}");
            let id = format!("sgl_cold{i}");
            c.found.insert(id.clone(), registered(&id));
        }
        assert!(c.found.len() <= 110, "bounded: {}", c.found.len());
    }
}
