//! Remote key source (feature `remote`): OIDC discovery → `jwks_uri`, fetched with a blocking
//! HTTP client on a background thread, so no async runtime is needed.
//!
//! * The key set is cached for the response's `Cache-Control: max-age`, clamped to
//!   [`RemoteOptions::min_ttl`]..[`RemoteOptions::max_ttl`] (no header:
//!   [`RemoteOptions::default_ttl`]); `ETag` is sent back as `If-None-Match`, and a `304`
//!   only renews the lifetime.
//! * A background thread refreshes the set when 80 % of its lifetime has passed, and retries
//!   failures every [`RemoteOptions::retry_interval`].
//! * A token with an unknown `kid` triggers at most one refetch per
//!   [`RemoteOptions::unknown_kid_cooldown`] (default 30 s). Concurrent misses wait for the
//!   same fetch; a kid still unknown after a fetch is remembered (negative cache, cleared when
//!   a new set arrives), so a flood of made-up kids causes no extra fetches.
//! * When the issuer is down, the last good set keeps serving for
//!   [`RemoteOptions::stale_window`] past its lifetime; after that verification fails closed
//!   with [`ErrorKind::KeySource`].
//! * The read path takes no lock on a cache hit: the set sits behind an
//!   [`arc_swap::ArcSwap`] that the fetcher replaces whole.
//! * Lifetimes, the stale window and the cooldown are measured with the verifier's
//!   [`Clock`] (see [`VerifierBuilder::clock`](crate::VerifierBuilder::clock)), the only source
//!   of "now" in this crate; only the refresh thread's sleeps take real time.
//!
//! ```no_run
//! # fn main() -> Result<(), sigil_verify::Error> {
//! use sigil_verify::{Verifier, remote::RemoteOptions};
//! let verifier = Verifier::builder("https://id.example.com", "https://api.example.com")
//!     .remote(RemoteOptions::new())
//!     .build()?; // fetches discovery and the JWKS once, then refreshes in the background
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use serde_json::Value;

use crate::algorithm::Algorithm;
use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::json;
use crate::jwk::JwkSet;
use crate::key::{KeyStore, KnownHeader, VerifyingKey};
use crate::verifier::Stats;

/// Largest discovery document or JWKS accepted, in bytes.
const MAX_BODY: u64 = 1 << 20;
/// Most kids remembered as unknown between two key sets.
const MAX_NEGATIVE: usize = 4096;

/// Settings of the remote key source. Start from [`RemoteOptions::new`] (the defaults) and
/// change what you need with the `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// Discovery document URL. Default: `{issuer}/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// JWKS URL; when set, discovery is skipped.
    pub jwks_uri: Option<String>,
    /// Lower clamp for the cache lifetime. Default 60 s.
    pub min_ttl: Duration,
    /// Upper clamp for the cache lifetime. Default 24 h.
    pub max_ttl: Duration,
    /// Lifetime when the response has no `max-age`. Default 5 min.
    pub default_ttl: Duration,
    /// Minimum time between two refetches caused by unknown kids. Default 30 s.
    pub unknown_kid_cooldown: Duration,
    /// How long past its lifetime the last good set is still used while fetches fail.
    /// Default 1 h. After that, verification fails closed.
    pub stale_window: Duration,
    /// Delay between retries after a failed fetch. Default 10 s.
    pub retry_interval: Duration,
    /// Timeout of one HTTP request (connect to last byte). Default 5 s.
    pub timeout: Duration,
    /// Allow `http://` URLs (tests, loopback). Default `false`: `https://` only.
    pub allow_http: bool,
    /// Honour `HTTP(S)_PROXY` / `ALL_PROXY` from the environment. Default `true`.
    pub env_proxy: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            discovery_url: None,
            jwks_uri: None,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(300),
            unknown_kid_cooldown: Duration::from_secs(30),
            stale_window: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            allow_http: false,
            env_proxy: true,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        $(#[$doc] pub fn $name(mut self, v: $ty) -> Self { self.$field = v; self })*
    };
}

impl RemoteOptions {
    /// The defaults.
    pub fn new() -> RemoteOptions {
        RemoteOptions::default()
    }

    /// Uses this discovery document URL.
    pub fn with_discovery_url(mut self, url: impl Into<String>) -> Self {
        self.discovery_url = Some(url.into());
        self
    }

    /// Fetches the JWKS from this URL and skips discovery.
    pub fn with_jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    setter! {
        /// Sets [`RemoteOptions::min_ttl`].
        with_min_ttl: min_ttl: Duration,
        /// Sets [`RemoteOptions::max_ttl`].
        with_max_ttl: max_ttl: Duration,
        /// Sets [`RemoteOptions::default_ttl`].
        with_default_ttl: default_ttl: Duration,
        /// Sets [`RemoteOptions::unknown_kid_cooldown`].
        with_unknown_kid_cooldown: unknown_kid_cooldown: Duration,
        /// Sets [`RemoteOptions::stale_window`].
        with_stale_window: stale_window: Duration,
        /// Sets [`RemoteOptions::retry_interval`].
        with_retry_interval: retry_interval: Duration,
        /// Sets [`RemoteOptions::timeout`].
        with_timeout: timeout: Duration,
        /// Sets [`RemoteOptions::allow_http`].
        with_allow_http: allow_http: bool,
        /// Sets [`RemoteOptions::env_proxy`].
        with_env_proxy: env_proxy: bool,
    }
}

/// One key set as fetched, replaced whole.
#[derive(Debug)]
struct Snapshot {
    store: Arc<KeyStore>,
    /// Last successful fetch or revalidation, by the verifier's clock.
    fetched_at: SystemTime,
    ttl: Duration,
    etag: Option<String>,
}

#[derive(Debug, Default)]
struct FetchState {
    in_flight: bool,
    last_unknown_kid_fetch: Option<SystemTime>,
    /// Kids found missing from the current set (cleared when a new set arrives).
    negative: HashSet<String>,
    /// Result of the most recent attempt (for the scheduler's retry logic).
    last_failed: bool,
    discovered_jwks_uri: Option<String>,
}

#[derive(Debug)]
struct Shared {
    issuer: String,
    opts: RemoteOptions,
    clock: Arc<dyn Clock>,
    agent: ureq::Agent,
    current: ArcSwapOption<Snapshot>,
    state: Mutex<FetchState>,
    done: Condvar,
    fetches: AtomicU64,
    failures: AtomicU64,
    unknown_kid_refetches: AtomicU64,
    shutdown: AtomicBool,
}

/// The remote key source held by a verifier; stops its thread when dropped.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    shared: Arc<Shared>,
    thread: Option<thread::Thread>,
}

fn source_err(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::KeySource(what.into()))
}

/// Time from `earlier` to `now`; zero if the clock went back.
fn since(now: SystemTime, earlier: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or(Duration::ZERO)
}

/// `max-age` from a Cache-Control header; `Some(0)` for `no-store` / `no-cache`.
fn max_age(cache_control: &str) -> Option<u64> {
    let mut out = None;
    for directive in cache_control.split(',') {
        let d = directive.trim();
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            out = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    out
}

/// The cache lifetime for a response: its `max-age` (or the default), clamped.
fn cache_lifetime(cache_control: Option<&str>, o: &RemoteOptions) -> Duration {
    let ttl = cache_control
        .and_then(max_age)
        .map_or(o.default_ttl, Duration::from_secs);
    ttl.clamp(o.min_ttl, o.max_ttl.max(o.min_ttl))
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FetchState> {
        // A poisoned lock only means a fetch panicked; the state itself stays usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_url(&self, url: &str) -> Result<(), Error> {
        if url.starts_with("https://") || (self.opts.allow_http && url.starts_with("http://")) {
            Ok(())
        } else {
            Err(source_err(format!("refusing non-https URL {url}")))
        }
    }

    fn ttl_from(&self, headers: &ureq::http::HeaderMap) -> Duration {
        cache_lifetime(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            &self.opts,
        )
    }

    fn jwks_uri(&self) -> Result<String, Error> {
        if let Some(uri) = &self.opts.jwks_uri {
            return Ok(uri.clone());
        }
        if let Some(uri) = self.lock().discovered_jwks_uri.clone() {
            return Ok(uri);
        }
        let url = self.opts.discovery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            )
        });
        self.check_url(&url)?;
        let mut res = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| source_err(format!("discovery: {e}")))?;
        if res.status() != 200 {
            return Err(source_err(format!("discovery: HTTP {}", res.status())));
        }
        let body = res
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| source_err(format!("discovery: {e}")))?;
        let doc = json::parse_object(&body, "discovery document is not a JSON object")?;
        // OpenID Connect Discovery §4.3: the issuer in the document must be ours, exactly.
        if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(source_err("discovery document names another issuer"));
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| source_err("discovery document has no jwks_uri"))?
            .to_owned();
        self.check_url(&uri)?;
        self.lock().discovered_jwks_uri = Some(uri.clone());
        Ok(uri)
    }

    /// One fetch of the JWKS (with `If-None-Match`); installs the new set on success.
    fn fetch(&self) -> Result<(), Error> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch_inner();
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn fetch_inner(&self) -> Result<(), Error> {
        let uri = self.jwks_uri()?;
        let old = self.current.load_full();
        let mut req = self.agent.get(&uri);
        if let Some(etag) = old.as_ref().and_then(|s| s.etag.as_deref()) {
            req = req.header("If-None-Match", etag);
        }
        let mut res = req.call().map_err(|e| source_err(format!("JWKS: {e}")))?;
        let ttl = self.ttl_from(res.headers());
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = res.status();
        if status == 304 {
            if let Some(old) = old {
                self.current.store(Some(Arc::new(Snapshot {
                    store: Arc::clone(&old.store),
                    fetched_at: self.clock.now(),
                    ttl,
                    etag: etag.or_else(|| old.etag.clone()),
                })));
                return Ok(());
            }
            return Err(source_err("JWKS: 304 without a cached set"));
        }
        if status != 200 {
            return Err(source_err(format!("JWKS: HTTP {status}")));
        }
        let body = res
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| source_err(format!("JWKS: {e}")))?;
        let store = Arc::new(KeyStore::new(JwkSet::from_json(&body)?)?);
        self.current.store(Some(Arc::new(Snapshot {
            store,
            fetched_at: self.clock.now(),
            ttl,
            etag,
        })));
        self.lock().negative.clear();
        Ok(())
    }

    /// Runs a fetch unless one is under way, in which case waits for it. Returns after a fetch
    /// has completed.
    fn fetch_shared(&self, mut st: MutexGuard<'_, FetchState>) -> Result<(), Error> {
        if st.in_flight {
            while st.in_flight {
                st = self
                    .done
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            return Ok(());
        }
        st.in_flight = true;
        drop(st);
        let result = self.fetch();
        let mut st = self.lock();
        st.in_flight = false;
        st.last_failed = result.is_err();
        self.done.notify_all();
        result
    }

    /// Called on a miss for `kid`: refetches if allowed. `true` if a fetch finished (the
    /// caller should look again).
    fn refetch_for(&self, kid: &str) -> bool {
        let mut st = self.lock();
        if st.negative.contains(kid) {
            return false;
        }
        if !st.in_flight {
            let now = self.clock.now();
            let cooling = st
                .last_unknown_kid_fetch
                .is_some_and(|t| since(now, t) < self.opts.unknown_kid_cooldown);
            if cooling {
                return false;
            }
            st.last_unknown_kid_fetch = Some(now);
            self.unknown_kid_refetches.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.fetch_shared(st);
        let missing = self
            .current
            .load()
            .as_ref()
            .is_none_or(|s| !s.store.contains_kid(kid));
        if missing {
            let mut st = self.lock();
            if st.negative.len() < MAX_NEGATIVE {
                st.negative.insert(kid.to_owned());
            }
        }
        true
    }

    /// How long, by the verifier's clock, until the background thread should next fetch.
    fn until_next_refresh(&self) -> Duration {
        let now = self.clock.now();
        let failed = self.lock().last_failed;
        match self.current.load().as_ref() {
            Some(s) => {
                let planned = s.ttl.mul_f64(0.8).saturating_sub(since(now, s.fetched_at));
                if failed {
                    planned.min(self.opts.retry_interval)
                } else {
                    planned
                }
            }
            None => self.opts.retry_interval,
        }
    }
}

fn background(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let wait = shared.until_next_refresh();
        if wait.is_zero() {
            let st = shared.lock();
            let _ = shared.fetch_shared(st);
            // After a failure, wait at least the retry interval before the next attempt.
            if shared.lock().last_failed {
                let retry = shared.opts.retry_interval;
                drop(shared);
                thread::park_timeout(retry);
            }
        } else {
            drop(shared);
            thread::park_timeout(wait);
        }
    }
}

impl RemoteKeys {
    /// Fetches once (failing the build if that fails) and starts the refresh thread. `clock`
    /// is the verifier's.
    pub(crate) fn start(
        issuer: &str,
        opts: RemoteOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<RemoteKeys, Error> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("sigil-verify/", env!("CARGO_PKG_VERSION")));
        if !opts.env_proxy {
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config.build().into();
        let shared = Arc::new(Shared {
            issuer: issuer.to_owned(),
            opts,
            clock,
            agent,
            current: ArcSwapOption::empty(),
            state: Mutex::new(FetchState::default()),
            done: Condvar::new(),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            unknown_kid_refetches: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
        });
        shared.fetch()?;
        let weak = Arc::downgrade(&shared);
        let handle = thread::Builder::new()
            .name("sigil-verify-jwks".into())
            .spawn(move || background(weak))
            .map_err(|e| source_err(format!("cannot start refresh thread: {e}")))?;
        Ok(RemoteKeys {
            shared,
            thread: Some(handle.thread().clone()),
        })
    }

    /// Runs `f` with what the header segment says if the current key set knows it (see
    /// [`KeyStore::known_header`](crate::key::KeyStore::known_header)). Staleness is checked
    /// later, by [`RemoteKeys::with_key`], as for any header.
    pub(crate) fn with_known_header<R>(
        &self,
        segment: &[u8],
        f: impl FnOnce(Option<KnownHeader<'_>>) -> R,
    ) -> R {
        let guard = self.shared.current.load();
        f(guard.as_ref().and_then(|s| s.store.known_header(segment)))
    }

    pub(crate) fn with_key<R>(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        f: impl FnOnce(&VerifyingKey) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let shared = &*self.shared;
        {
            let guard = shared.current.load();
            let snap = guard
                .as_ref()
                .ok_or_else(|| source_err("no key set fetched yet"))?;
            let age = since(shared.clock.now(), snap.fetched_at);
            if age > snap.ttl.saturating_add(shared.opts.stale_window) {
                return Err(source_err("key set too old and the issuer unreachable"));
            }
            if let Some(key) = snap.store.select(kid, alg) {
                return f(key);
            }
        }
        let Some(kid) = kid else {
            return Err(Error::new(ErrorKind::UnknownKey));
        };
        if !shared.refetch_for(kid) {
            return Err(Error::new(ErrorKind::UnknownKey));
        }
        let guard = shared.current.load();
        match guard.as_ref().and_then(|s| s.store.select(Some(kid), alg)) {
            Some(key) => f(key),
            None => Err(Error::new(ErrorKind::UnknownKey)),
        }
    }

    pub(crate) fn jwks(&self) -> JwkSet {
        self.shared
            .current
            .load()
            .as_ref()
            .map(|s| s.store.jwks().clone())
            .unwrap_or_default()
    }

    pub(crate) fn fill_stats(&self, s: &mut Stats) {
        let sh = &self.shared;
        s.jwks_fetches = sh.fetches.load(Ordering::Relaxed);
        s.jwks_fetch_failures = sh.failures.load(Ordering::Relaxed);
        s.unknown_kid_refetches = sh.unknown_kid_refetches.load(Ordering::Relaxed);
        if let Some(snap) = sh.current.load().as_ref() {
            s.key_set_age = Some(since(sh.clock.now(), snap.fetched_at));
            s.keys = snap.store.len();
        }
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RemoteOptions, cache_lifetime, max_age};

    #[test]
    fn cache_lifetime_is_clamped() {
        let o = RemoteOptions::new(); // min 60 s, max 24 h, default 5 min
        let secs = |cc: Option<&str>| cache_lifetime(cc, &o).as_secs();
        assert_eq!(secs(Some("max-age=600")), 600);
        assert_eq!(secs(Some("max-age=5")), 60);
        assert_eq!(secs(Some("max-age=99999999")), 24 * 3600);
        assert_eq!(secs(Some("no-store")), 60);
        assert_eq!(secs(None), 300);
        assert_eq!(secs(Some("public")), 300);
        let odd = RemoteOptions::new()
            .with_min_ttl(Duration::from_secs(100))
            .with_max_ttl(Duration::from_secs(10));
        assert_eq!(cache_lifetime(Some("max-age=50"), &odd).as_secs(), 100);
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(max_age("max-age=300"), Some(300));
        assert_eq!(max_age("public, max-age=60, must-revalidate"), Some(60));
        assert_eq!(max_age("Max-Age=\"7\""), Some(7));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public, no-cache"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
