//! The in-memory client registry. Clients are read on every token request and change rarely, so
//! each server keeps parsed clients (with a ready verifier for their registered assertion keys) and
//! drops them all when the database's `clients_version` moves (polled by the jobs). It also holds
//! the set of every client's web origins, reloaded on the same signal, so a CORS preflight (which
//! names no client) is answered from memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use sigil_verify::Verifier;

use crate::domain::WebOrigin;
use crate::domain::client::Client;
use crate::store::{Store, StoreError, clients as client_store};

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

/// Cached lookups, including misses (so unknown ids do not hit the database each time).
#[derive(Debug)]
pub struct ClientCache {
    map: RwLock<HashMap<String, Option<Arc<RegisteredClient>>>>,
    generation: AtomicU64,
    capacity: usize,
    issuer: String,
    token_endpoint: String,
    origins: ArcSwap<HashSet<String>>,
}

impl ClientCache {
    /// An empty cache holding up to `capacity` lookups.
    pub fn new(capacity: usize, issuer: String, token_endpoint: String) -> ClientCache {
        ClientCache {
            map: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            capacity,
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

    /// Find a client, from memory or the database.
    pub async fn get(
        &self,
        store: &Store,
        id: &str,
    ) -> Result<Option<Arc<RegisteredClient>>, StoreError> {
        if let Ok(map) = self.map.read()
            && let Some(hit) = map.get(id)
        {
            return Ok(hit.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let owned = id.to_owned();
        let found = store.run(move |c| client_store::find(c, &owned)).await?;
        let entry = found.map(|client| Arc::new(self.prepare(client)));
        if let Ok(mut map) = self.map.write()
            // A change seen while we were loading makes what we loaded stale: do not keep it.
            && self.generation.load(Ordering::Acquire) == generation
        {
            if map.len() >= self.capacity {
                map.clear();
            }
            map.insert(id.to_owned(), entry.clone());
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
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}
