//! One door to the application under test: `spawn_app` starts the real server on port 0 against a
//! fresh database (a temp SQLite file, or a new PostgreSQL database dropped afterwards; with
//! `Backend::PostgresRedis` also Redis, under a key prefix of its own) and returns
//! a `TestApp` with typed helpers. Admin operations go through the real `sigil` binary. Also here:
//! `/metrics` series, raw SQL, JWT decoding and independent verification, and `backend_test!`.
//! The browser flow (users, web clients, login, code exchange, refresh) is in `flow.rs`.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, RunQueryDsl};
use serde_json::Value;
use sigil::clock::Clock;
use sigil::config::{Overrides, Settings};
use sigil::jobs::JobTimings;
use sigil::startup::Application;

/// Which configuration a test runs on: the database, and where shared state lives (in process
/// on SQLite, the database's tables on PostgreSQL alone, Redis with `PostgresRedis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL with `SIGIL_REDIS_URL` set, in a key namespace of the test's own.
    PostgresRedis,
}

pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
}

impl TestDb {
    /// The same database, for a second server (a replica); dropping it drops nothing.
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            pg_name: None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut c) = diesel::PgConnection::establish(&pg_admin_url())
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut c);
        }
    }
}

pub fn pg_base_url() -> String {
    std::env::var("SIGIL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("SIGIL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The settings that put a test's shared state in Redis, under a key prefix of its own (tests
/// run in parallel on one Redis). Fails the test when Redis is not there.
pub async fn redis_env(url: &str) -> Vec<(String, String)> {
    let check = sigil::cache::Cache::redis(&redis_url(), "sigil_test_ping:")
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = check.ping().await {
        panic!(
            "Redis is required for these tests and is not reachable at {} ({e}).\n\
             Start it with: redis-server --daemonize yes --port 6379 --save '' --appendonly no\n\
             or point SIGIL_TEST_REDIS_URL at a server (Redis 6.2 or later).",
            redis_url()
        );
    }
    let prefix = format!(
        "sigil_test_{}:",
        sigil::crypto::random_b64(9).replace(['-', '_'], "x")
    );
    vec![
        ("SIGIL_REDIS_URL".to_owned(), url.to_owned()),
        ("SIGIL_REDIS_KEY_PREFIX".to_owned(), prefix),
    ]
}

fn pg_admin_url() -> String {
    format!("{}/postgres", pg_base_url())
}

/// A new, empty database for one test.
pub fn fresh_db(backend: Backend, dir: &std::path::Path) -> TestDb {
    match backend {
        Backend::Sqlite => TestDb {
            url: format!("sqlite://{}", dir.join("sigil.db").display()),
            pg_name: None,
        },
        Backend::Postgres | Backend::PostgresRedis => {
            let mut admin = diesel::PgConnection::establish(&pg_admin_url()).unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests and is not reachable at {} ({e}).\n\
                     Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                     or point SIGIL_TEST_POSTGRES_URL at a server (trust auth, user allowed to CREATE DATABASE).",
                    pg_admin_url()
                )
            });
            let name = format!(
                "sigil_test_{}",
                sigil::crypto::random_b64(9)
                    .to_lowercase()
                    .replace(['-', '_'], "x")
            );
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut admin)
                .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
            TestDb {
                url: format!("{}/{name}", pg_base_url()),
                pg_name: Some(name),
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
    pub clock: Arc<OffsetClock>,
    /// Where this app keeps shared state besides its database (the Redis settings with
    /// `Backend::PostgresRedis`), so a replica uses the same.
    shared_state: Vec<(String, String)>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    /// Stop the server for real: aborting its task alone leaves actix's worker threads, and the
    /// database pool they hold, running after the test (a pool whose database was dropped keeps
    /// reconnecting, which starves the rest of the suite of CPU).
    fn drop(&mut self) {
        let stop = self.handle.stop(false);
        if let Ok(rt) = tokio::runtime::Handle::try_current()
            && rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(5), stop).await;
                })
            });
        }
        self.server.abort();
    }
}

/// Options for `spawn_app_with`.
#[derive(Default)]
pub struct AppOptions {
    /// Use this database instead of a fresh one.
    pub db: Option<TestDb>,
    /// The server connects with this URL instead (e.g. through a proxy); the CLI uses `db`.
    pub server_database_url: Option<String>,
    /// Extra `SIGIL_*` style settings as (env name, value).
    pub env: Vec<(String, String)>,
    /// Keep shared state where these settings say (a replica's: its first server's Redis).
    pub shared_state: Option<Vec<(String, String)>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, opts: AppOptions) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = match opts.db {
        Some(db) => db,
        None => fresh_db(backend, dir.path()),
    };
    let url = opts
        .server_database_url
        .clone()
        .unwrap_or_else(|| db.url.clone());
    let shared_state = match (backend, opts.shared_state) {
        (_, Some(env)) => env,
        (Backend::PostgresRedis, None) => redis_env(&redis_url()).await,
        (Backend::Sqlite | Backend::Postgres, None) => Vec::new(),
    };
    // Bind first to learn the port, so the issuer is exact. Another test (or a `sigil serve`
    // it started) can take the port between the probe and the real bind, so a clash picks
    // a new port.
    let mut attempt = 0;
    let (app, clock) = loop {
        attempt += 1;
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let mut env = vec![
            (
                "SIGIL_DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("SIGIL_DATABASE_URL".to_owned(), url.clone()),
            ("SIGIL_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
            ("SIGIL_DATABASE_CONNECT_TIMEOUT".to_owned(), "1s".to_owned()),
            ("SIGIL_HTTP_WORKERS".to_owned(), "1".to_owned()),
        ];
        env.extend(shared_state.iter().cloned());
        env.extend(opts.env.iter().cloned());
        let settings = Settings::load(None, env, &Overrides::default()).expect("settings");
        let clock = Arc::new(OffsetClock::default());
        let shared: Arc<dyn Clock> = clock.clone();
        match Application::build_with(
            settings,
            shared,
            JobTimings {
                sync: Duration::from_millis(200),
                // The default, so tests of "within a second on every replica" prove it.
                authz: JobTimings::default().authz,
                rotation: Duration::from_millis(300),
                prune: Duration::from_millis(500),
            },
        )
        .await
        {
            Ok(app) => break (app, clock),
            Err(e)
                if attempt < 5
                    && e.chain().any(|c| {
                        c.downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
                    }) => {}
            Err(e) => panic!("application builds: {e:?}"),
        }
    };
    let port = app.port();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        dir,
        db,
        clock,
        shared_state,
        server,
        handle,
    }
}

/// A second server on `of`'s database and shared state (its Redis, under its key prefix), with
/// its master key and its issuer: a replica, as behind a load balancer.
pub async fn spawn_replica(of: &TestApp) -> TestApp {
    spawn_replica_with(of, Vec::new()).await
}

/// [`spawn_replica`] with extra settings (the first server's own, to run alike).
pub async fn spawn_replica_with(of: &TestApp, env: Vec<(String, String)>) -> TestApp {
    let key = std::fs::read_to_string(of.dir.path().join("master.key")).expect("master key file");
    let mut all = vec![
        ("SIGIL_MASTER_KEY".to_owned(), key.trim().to_owned()),
        ("SIGIL_ISSUER".to_owned(), of.address.clone()),
    ];
    all.extend(env);
    spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            db: Some(of.db.shared()),
            server_database_url: None,
            env: all,
            shared_state: Some(of.shared_state.clone()),
        },
    )
    .await
}

/// Real time plus an offset the test can move forward, so the server (this clock) and the CLI
/// (real time) agree until a test travels in time.
#[derive(Debug, Default)]
pub struct OffsetClock(std::sync::atomic::AtomicU64);

impl OffsetClock {
    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(d.as_secs(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
            + Duration::from_secs(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

pub fn unix_now_real() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A registered client with its secret.
#[derive(Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestApp {
    /// Run the real `sigil` binary against this app's database and data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    /// Run the CLI with `input` on standard input.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        self.cli_env_stdin(&[], args, input)
    }

    /// Run the CLI with settings of its own on top (`SIGIL_*` variables).
    pub fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.cli_env_stdin(env, args, "")
    }

    fn cli_env_stdin(&self, env: &[(&str, &str)], args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIGIL_DATA_DIR", self.dir.path())
            .env("SIGIL_DATABASE_URL", &self.db.url)
            .env("SIGIL_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("SIGIL_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run sigil");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("sigil output")
    }

    /// Run the CLI with `--json`, expect success, parse stdout.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "sigil {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sigil {args:?} printed non-JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn create_client(&self, extra: &[&str]) -> TestClient {
        let mut args = vec!["clients", "create", "--name", "svc"];
        args.extend_from_slice(extra);
        let json = self.cli_json(&args);
        TestClient {
            id: json["client_id"].as_str().expect("client_id").to_owned(),
            secret: json["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// A client_credentials client with scopes `invoices:read invoices:write`.
    pub fn service_client(&self) -> TestClient {
        self.create_client(&[
            "--grant",
            "client_credentials",
            "--scope",
            "invoices:read",
            "--scope",
            "invoices:write",
        ])
    }

    /// Stop the in-process server and its background jobs (its database and data dir stay), for
    /// a test that goes on with other processes alone.
    pub async fn stop_server(&self) {
        self.handle.stop(false).await;
    }

    pub async fn post_token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/token", self.address))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.expect("POST /token")
    }

    pub async fn token_for(&self, c: &TestClient, scope: Option<&str>) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.post_token(&form, Some((&c.id, c.secret.as_deref().expect("secret"))))
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET")
    }

    pub async fn jwks(&self) -> Value {
        self.get("/jwks.json")
            .await
            .json()
            .await
            .expect("jwks json")
    }

    pub async fn jwks_kids(&self) -> Vec<String> {
        self.jwks().await["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Wait (up to `limit`) until `check` holds, polling.
    pub async fn eventually<F, Fut>(&self, limit: Duration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        check().await
    }
}

/// POST /introspect of `token` by `who` (HTTP Basic): expects 200, returns the body.
pub async fn introspect_ok(app: &TestApp, who: &TestClient, token: &str) -> Value {
    let resp = app
        .client
        .post(format!("{}/introspect", app.address))
        .basic_auth(&who.id, who.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The value of one series at `/metrics`, e.g. `sigil_logins_total{outcome="failure"}`.
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    let text = resp.text().await.unwrap();
    text.lines()
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// Run SQL straight against the app's database (to play an attacker with database access).
pub fn raw_sql(app: &TestApp, sql: &str) -> usize {
    use diesel::RunQueryDsl;
    let store = sigil::store::Store::open(
        &app.db.url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .unwrap();
    let sql = sql.to_owned();
    store
        .run_blocking(move |c| {
            diesel::sql_query(sql)
                .execute(c)
                .map_err(sigil::store::StoreError::from)
        })
        .unwrap()
}

/// Decode a JWT's header without verifying.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// Decode a JWT's payload without verifying (the tests that need verification do it with
/// `verify_with_jsonwebtoken` or `sigil_verify`).
pub fn jwt_payload(token: &str) -> Value {
    jwt_part(token, 1)
}

fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("b64"),
    )
    .expect("json")
}

/// Verify `token` against the served JWKS with the independent `jsonwebtoken` crate.
pub async fn verify_with_jsonwebtoken(app: &TestApp, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let kid = header.kid.clone().expect("kid");
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/jwks.json").await.json().await.expect("jwks");
    let jwk = jwks.find(&kid).expect("kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("token verifies with jsonwebtoken")
        .claims
}

/// A test of several servers on one database: PostgreSQL alone, and PostgreSQL + Redis (SQLite
/// is one server; its shared state is in-process); `env: [(NAME, VALUE), ...]` before the body
/// adds settings, which the body reads back as `options().env` (for its replicas).
#[macro_export]
macro_rules! replica_test {
    ($name:ident, env: [$(($k:expr, $v:expr)),* $(,)?], |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::helpers::*;

            async fn run($app: TestApp) $body

            fn options() -> AppOptions {
                AppOptions {
                    env: vec![$(($k.to_owned(), $v.to_owned())),*],
                    ..AppOptions::default()
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(spawn_app_with(Backend::Postgres, options()).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                run(spawn_app_with(Backend::PostgresRedis, options()).await).await;
            }
        }
    };
    ($name:ident, |$app:ident| $body:block) => {
        $crate::replica_test!($name, env: [], |$app| $body);
    };
}

/// Declare a test that runs once per configuration: SQLite, PostgreSQL alone, PostgreSQL with
/// Redis; `env: [(NAME, VALUE), ...]` before the body adds settings.
#[macro_export]
macro_rules! backend_test {
    ($name:ident, env: [$(($k:expr, $v:expr)),* $(,)?], |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::helpers::*;

            async fn run($app: TestApp) $body

            fn options() -> AppOptions {
                AppOptions {
                    env: vec![$(($k.to_owned(), $v.to_owned())),*],
                    ..AppOptions::default()
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(spawn_app_with(Backend::Sqlite, options()).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run(spawn_app_with(Backend::Postgres, options()).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                run(spawn_app_with(Backend::PostgresRedis, options()).await).await;
            }
        }
    };
    ($name:ident, |$app:ident| $body:block) => {
        $crate::backend_test!($name, env: [], |$app| $body);
    };
}
