//! `Application::build(Settings)`: migrate, load keys, bind the listener and report its port, so
//! tests start the real application on port 0. `Application::run_until_signal`: serve until
//! SIGTERM, then drain, hold new connections back while the queued ones are taken, and stop.

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
    /// The listening socket (a duplicate of the server's descriptor), so a graceful stop can
    /// hold new connections back before the listener closes ([`hold_new_connections`]).
    listener: TcpListener,
    ctx: web::Data<AppState>,
    keys: KeyService,
    timings: JobTimings,
}

/// How long a graceful stop (SIGTERM) lets in-flight requests finish before closing connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long a graceful stop, after the drain, keeps accepting the connections the kernel
/// already completed while it holds new ones back ([`hold_new_connections`]), before the
/// listener closes. Closing it with connections in its queue would reset them after their
/// clients had sent a request.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Make the kernel stop completing new connections to `listener` while those it already
/// completed, and the handshakes under way, still reach Sigil: a socket filter that drops a
/// bare SYN (the first packet of a new connection) and passes everything else. A client whose
/// SYN is dropped sends it again about a second later, by when the listener has closed: it is
/// refused, before sending anything, and a load balancer tries another replica.
#[cfg(target_os = "linux")]
pub fn hold_new_connections(listener: &TcpListener) -> std::io::Result<()> {
    use socket2::{SockFilter, SockRef};
    // Classic BPF; a TCP socket's filter sees the packet from its TCP header on.
    const LD_B_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let program = [
        SockFilter::new(LD_B_ABS, 0, 0, 13),    // the flags byte
        SockFilter::new(AND_K, 0, 0, 0x12),     // SYN | ACK
        SockFilter::new(JEQ_K, 0, 1, 0x02),     // SYN without ACK: next, else skip one
        SockFilter::new(RET_K, 0, 0, 0),        // drop
        SockFilter::new(RET_K, 0, 0, u32::MAX), // pass, whole
    ];
    SockRef::from(listener).attach_filter(&program)
}

/// Elsewhere the listener closes with whatever its queue holds.
#[cfg(not(target_os = "linux"))]
pub fn hold_new_connections(_listener: &TcpListener) -> std::io::Result<()> {
    Err(std::io::Error::other("not on this platform"))
}

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
            authz: crate::authz::Authz::new(&issuer),
            metrics,
            write_probe: Default::default(),
            draining: Default::default(),
        });
        // Preflight requests are answered from this set; the sync job keeps it current.
        ctx.clients.reload_origins(&ctx.store).await?;
        // Tokens carry permissions from the first request on; the authz sync keeps them current.
        ctx.authz.reload(&ctx.store).await?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let held = listener.try_clone()?;
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
            listener: held,
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
        // The server's own descriptor is the only one left, so stopping closes the listener.
        drop(self.listener);
        let jobs = jobs::spawn(self.ctx.clone().into_inner(), self.keys, self.timings);
        let result = self.server.await;
        jobs.abort();
        result
    }

    /// Serve until SIGTERM (graceful) or SIGINT (immediate), then return.
    ///
    /// SIGTERM drains first: for `http.drain_delay` Sigil keeps serving while `/readyz` answers
    /// 503 `draining` and every response carries `Connection: close`, so a load balancer stops
    /// sending and keep-alive clients reconnect elsewhere. Then, for [`SETTLE`], the kernel
    /// completes no new connection ([`hold_new_connections`]) while Sigil still accepts those
    /// it had queued, so none is reset when the listener closes; then the listener closes
    /// (new connections are refused) and requests already read get up to [`SHUTDOWN_GRACE`]
    /// to finish. Every stage is bounded: a second signal ends the wait, and a watchdog ends
    /// the process if the stop (including the runtime's shutdown after this returns) has not
    /// finished `drain_delay` + [`SHUTDOWN_GRACE`] + 5 s after the first signal. For the
    /// binary; tests use [`Self::run_until_stopped`].
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
        if graceful {
            // Take what the kernel already queued, hold new connections back, then close.
            match hold_new_connections(&self.listener) {
                Ok(()) => tokio::select! {
                    r = &mut server => {
                        return r;
                    }
                    _ = tokio::time::sleep(SETTLE) => {}
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                },
                Err(e) => tracing::debug!(error = %e, "new connections are not held back"),
            }
        }
        // The stop command is sent when `stop` is called; the server future carries it out.
        drop(handle.stop(graceful));
        // With the server's descriptor, this closes the listener: from now on a new connection
        // is refused.
        drop(self.listener);
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Held back: a new connection is not completed, while one the kernel completed before
    /// is still accepted and carries data both ways; once the listener is gone, a new
    /// connection is refused.
    #[test]
    fn held_listener_completes_no_new_connection_and_keeps_queued_ones() -> std::io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut queued = TcpStream::connect(addr)?;
        hold_new_connections(&listener)?;
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(late.is_err(), "a new connection was completed: {late:?}");
        let (mut accepted, _) = listener.accept()?;
        let mut buf = [0u8; 4];
        queued.write_all(b"ping")?;
        accepted.read_exact(&mut buf)?;
        assert_eq!(&buf, b"ping");
        accepted.write_all(b"pong")?;
        queued.read_exact(&mut buf)?;
        assert_eq!(&buf, b"pong");
        drop(listener);
        let refused = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{refused:?}"
        );
        Ok(())
    }
}
