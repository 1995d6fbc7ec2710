//! `Application::build(Settings)`: migrate, load keys, bind the listener and report its port, so
//! tests start the real application on port 0.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use ring::rand::SystemRandom;
use sigil_verify::Algorithm;
use tracing_actix_web::TracingLogger;

use crate::cache::Cache;
use crate::clock::{SharedClock, SystemClock, secs, unix_now};
use crate::config::Settings;
use crate::http::jwks::JwksCacheControl;
use crate::http::{self, SigilRootSpan, discovery};
use crate::jobs::{self, JobTimings};
use crate::keys::lifecycle::Schedule;
use crate::keys::{KeyRing, KeyService, load_snapshot, master};
use crate::oauth::clients::ClientCache;
use crate::state::AppState;
use crate::store::{Store, keys as key_store};

/// A built, bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    ctx: web::Data<AppState>,
    keys: KeyService,
    timings: JobTimings,
}

/// How long a graceful stop (SIGTERM) lets in-flight requests finish before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Algorithms that must always have a signing key: access tokens' and RS256 (OIDC's default for
/// ID tokens).
pub fn required_algorithms(settings: &Settings) -> Vec<Algorithm> {
    let mut v = vec![settings.tokens.access_token_alg, Algorithm::RS256];
    v.dedup();
    v
}

/// The lifecycle schedule the settings imply.
pub fn schedule(settings: &Settings) -> Schedule {
    Schedule {
        activation_delay: secs(settings.activation_delay()),
        unpublish_after: secs(settings.max_published_token_lifetime() + settings.keys.clock_skew),
        retire_after: secs(settings.max_token_lifetime() + settings.keys.clock_skew),
        rotate_every: (!settings.keys.rotate_every.is_zero())
            .then(|| secs(settings.keys.rotate_every)),
        retention: secs(settings.keys.retention),
    }
}

/// Log a warning for each of the data dir, the master key file and the SQLite files that group
/// or others can read (they hold password hashes, emails, secret HMACs and the key that opens
/// every private key). Called at start-up by `serve` and `migrate`.
pub fn warn_if_exposed(settings: &Settings) {
    let mut paths = vec![settings.data_dir.clone()];
    if settings.master_key.is_none() {
        paths.push(master::key_file(&settings.data_dir));
    }
    let url = settings.database_url();
    if let Some(db) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            paths.push(std::path::PathBuf::from(format!("{db}{suffix}")));
        }
    }
    for (path, mode) in crate::store::exposed(&paths) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "{} is readable by group or others; it should be {}",
            path.display(),
            if path.is_dir() { "0700" } else { "0600" }
        );
    }
}

/// What `serve` does first: create the database if missing, migrate it, and resolve (creating
/// for a database without keys) the master key.
pub async fn open_keys(settings: &Settings) -> anyhow::Result<KeyService> {
    let s = settings.clone();
    tokio::task::spawn_blocking(move || prepare(&s).map(|(keys, _)| keys))
        .await
        .context("start-up task failed")?
}

/// `serve` and `migrate`: the only paths that create or migrate a database or create a master
/// key. Returns the key service and the names of the migrations applied.
pub fn prepare(settings: &Settings) -> anyhow::Result<(KeyService, Vec<String>)> {
    let store = Store::create(
        &settings.database_url(),
        settings.database.pool_size,
        settings.database.connect_timeout,
        settings.database.statement_timeout,
    )?;
    let applied = store.migrate().context("cannot migrate the database")?;
    Ok((key_service(settings, store, true)?, applied))
}

/// The admin CLI's way in: an existing, up-to-date database and an existing master key, or an
/// error naming what is missing. Creates and migrates nothing.
pub fn open_keys_blocking(settings: &Settings) -> anyhow::Result<KeyService> {
    let store = Store::open_existing(
        &settings.database_url(),
        settings.database.pool_size,
        settings.database.connect_timeout,
        settings.database.statement_timeout,
    )?;
    key_service(settings, store, false)
}

fn key_service(settings: &Settings, store: Store, may_create: bool) -> anyhow::Result<KeyService> {
    let has_keys = store.run_blocking(key_store::any)?;
    let master = master::resolve(
        settings.master_key.as_ref(),
        &settings.data_dir,
        has_keys,
        may_create,
    )?;
    let service = KeyService {
        store,
        master: Arc::new(master),
        schedule: schedule(settings),
        rsa_bits: settings.keys.rsa_bits,
    };
    service.check_master_key()?;
    Ok(service)
}

impl Application {
    /// Build with the system clock and production job timings.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Self::build_with(settings, Arc::new(SystemClock), JobTimings::default()).await
    }

    /// Build with an injected clock and job timings (tests).
    pub async fn build_with(
        settings: Settings,
        clock: SharedClock,
        timings: JobTimings,
    ) -> anyhow::Result<Application> {
        let keys = open_keys(&settings).await?;
        warn_if_exposed(&settings);
        let now = unix_now(clock.as_ref());
        let created = {
            let k = keys.clone();
            let required = required_algorithms(&settings);
            tokio::task::spawn_blocking(move || k.ensure(&required, now)).await??
        };
        for a in &created {
            tracing::info!(
                alg = a.plan.alg,
                kid = a.new_kid.as_deref().unwrap_or(""),
                "created signing key"
            );
        }
        let snapshot = {
            let k = keys.clone();
            tokio::task::spawn_blocking(move || {
                k.store.run_blocking(|c| load_snapshot(c, &k.master, now))
            })
            .await??
        };
        let issuer = settings.issuer();
        let token_endpoint = format!("{issuer}/token");
        let default_audience = settings
            .tokens
            .default_audience
            .clone()
            .unwrap_or_else(|| issuer.clone());
        let metrics = crate::metrics::Metrics::new()?;
        let cache = Cache::for_settings(&settings, &keys.store)
            .context("cannot set up the shared state (redis.url)")?;
        tracing::info!(
            backend = %cache.choice(),
            "shared state: {}",
            cache.choice().describe()
        );
        if let Err(e) = cache.ping().await {
            // Served anyway: what needs the state answers 503 and /readyz fails until it is back.
            tracing::warn!(error = %e, "shared state unreachable at start-up");
        }
        let cache = Arc::new(cache);
        let limits =
            crate::ratelimit::RateLimits::new(&settings.rate_limits, cache.clone(), &metrics);
        let ctx = web::Data::new(AppState {
            clients: Arc::new(ClientCache::new(
                settings.clients.cache_size,
                issuer.clone(),
                token_endpoint.clone(),
                metrics.client_cache_misses.clone(),
            )),
            cache,
            limits,
            store: keys.store.clone(),
            ring: Arc::new(KeyRing::new(snapshot)),
            master: keys.master.clone(),
            access_token_alg: settings.tokens.access_token_alg,
            settings: Arc::new(settings.clone()),
            issuer: issuer.clone(),
            token_endpoint,
            default_audience,
            clock,
            rng: SystemRandom::new(),
            hasher: settings.password_hasher()?,
            own_tokens: Default::default(),
            metrics,
            write_probe: Default::default(),
            draining: Default::default(),
        });
        // Preflight requests are answered from this set; the sync job keeps it current.
        ctx.clients.reload_origins(&ctx.store).await?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let discovery = web::Data::new(discovery::render(&issuer));
        let jwks_cache_control = web::Data::new(JwksCacheControl::new(settings.keys.jwks_max_age));
        let data = ctx.clone();
        let security_headers = http::headers::SecurityHeaders::for_issuer(&issuer);
        let security = http::headers::Security {
            policy: security_headers,
            draining: ctx.draining.clone(),
        };
        // Decided once, under the subscriber `serve` installed before building the app.
        let request_log = http::request_log::RequestLog::for_current_subscriber();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(http::cors::Cors)
                .wrap(TracingLogger::<SigilRootSpan>::new())
                .wrap(request_log)
                // Outermost, so every response (errors and 404s included) carries the headers.
                .wrap(security.clone())
                .app_data(data.clone())
                .app_data(discovery.clone())
                .app_data(jwks_cache_control.clone())
                .configure(http::routes)
        })
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        // Sigil handles SIGTERM/SIGINT itself (`run_until_signal`), with a bound on every stage.
        .disable_signals()
        .keep_alive(Duration::from_secs(75));
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Application {
            port,
            server,
            ctx,
            keys,
            timings,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (and with it its workers, their state and the database
    /// pool) from outside, e.g. when a test ends.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Start the background jobs and serve until stopped (SIGINT/SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = jobs::spawn(self.ctx.clone().into_inner(), self.keys, self.timings);
        let result = self.server.await;
        jobs.abort();
        result
    }

    /// Serve until SIGTERM (graceful) or SIGINT (immediate), then return.
    ///
    /// SIGTERM drains first: for `http.drain_delay` Sigil keeps serving while `/readyz` answers
    /// 503 `draining` and every response carries `Connection: close`, so a load balancer stops
    /// sending and keep-alive clients reconnect elsewhere; then the listener closes and requests
    /// already read get up to [`SHUTDOWN_GRACE`] to finish. Every stage is bounded: a second
    /// signal ends the wait, and a watchdog ends the process if the stop (including the
    /// runtime's shutdown after this returns) has not finished `drain_delay` +
    /// [`SHUTDOWN_GRACE`] + 5 s after the first signal. For the binary; tests use
    /// [`Self::run_until_stopped`].
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let drain = self.ctx.settings.http.drain_delay;
        let draining = self.ctx.draining.clone();
        let jobs = jobs::spawn(self.ctx.clone().into_inner(), self.keys, self.timings);
        let handle = self.server.handle();
        let mut server = std::pin::pin!(self.server);
        let graceful = tokio::select! {
            r = &mut server => {
                jobs.abort();
                return r;
            }
            _ = term.recv() => true,
            _ = int.recv() => false,
        };
        tracing::info!(
            graceful,
            drain_ms = drain.as_millis() as u64,
            "stop signal received"
        );
        std::thread::spawn(move || {
            std::thread::sleep(drain + SHUTDOWN_GRACE + Duration::from_secs(5));
            crate::telemetry::flush();
            eprintln!("sigil: shutdown did not finish in time; exiting");
            std::process::exit(1);
        });
        if graceful && !drain.is_zero() {
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
            tokio::select! {
                r = &mut server => {
                    jobs.abort();
                    return r;
                }
                _ = tokio::time::sleep(drain) => {}
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        jobs.abort();
        // The stop command is sent when `stop` is called; the server future carries it out.
        drop(handle.stop(graceful));
        tokio::select! {
            r = &mut server => {
                tracing::info!("stopped");
                r
            }
            _ = term.recv() => Err(std::io::Error::other("second stop signal")),
            _ = int.recv() => Err(std::io::Error::other("second stop signal")),
        }
    }
}
