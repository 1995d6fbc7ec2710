//! The binary as an operator meets it: settings from the environment (Kubernetes included), what
//! `config check` may print, which commands may create a database, the data dir's modes, key
//! rotation plans, every command's help, `clients update`, and the audit trail's retention.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::backend_test;
use crate::helpers::*;
use serde_json::Value;

/// The real binary with a clean environment pointed at `dir` (default SQLite database there).
fn sigil(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sigil"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_DATA_DIR", dir)
        .env("SIGIL_LOG_LEVEL", "warn")
        .stdin(Stdio::null());
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run sigil")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `config check --json` with these environment variables.
fn config_check(env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sigil(dir.path());
    c.args(["config", "check", "--json"]);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c)
}

#[test]
fn access_token_ttl_is_allowed_from_one_second_to_fifteen_minutes() {
    for ok in ["1s", "30s", "4m", "15m"] {
        let out = config_check(&[("SIGIL_ACCESS_TOKEN_TTL", ok)]);
        assert!(out.status.success(), "{ok}: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["tokens"]["access_token_ttl"], ok);
    }
    for bad in ["0s", "16m", "1h"] {
        let out = config_check(&[("SIGIL_ACCESS_TOKEN_TTL", bad)]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(
            err.contains("tokens.access_token_ttl")
                && err.contains("SIGIL_ACCESS_TOKEN_TTL")
                && err.contains("1s")
                && err.contains("15m"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn config_check_says_where_shared_state_is_kept() {
    let pg = ("SIGIL_DATABASE_URL", "postgres://sigil@db.internal/sigil");
    let redis = ("SIGIL_REDIS_URL", "redis://cache.internal:6379/0");
    for (env, expected, described) in [
        (
            vec![],
            "in-process",
            "in-process (SQLite): correct for one server only",
        ),
        (
            vec![pg],
            "postgres",
            "PostgreSQL (the database's shared_state tables)",
        ),
        (vec![pg, redis], "redis", "Redis (redis.url)"),
    ] {
        let out = config_check(&env);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["shared_state"], expected);
        let dir = tempfile::tempdir().unwrap();
        let mut c = sigil(dir.path());
        c.args(["config", "check"]);
        for (k, v) in &env {
            c.env(k, v);
        }
        let text = stdout(&run(&mut c));
        assert!(
            text.contains(&format!("shared state: {described}")),
            "{text}"
        );
    }
    for bad in ["", "two words:", "a\u{7}:"] {
        let out = config_check(&[("SIGIL_REDIS_KEY_PREFIX", bad)]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(
            stderr(&out).contains("redis.key_prefix"),
            "{}",
            stderr(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_access_token_lives_one_second() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![("SIGIL_ACCESS_TOKEN_TTL".into(), "1s".into())],
            ..AppOptions::default()
        },
    )
    .await;
    let c = app.service_client();
    let body: Value = app.token_for(&c, None).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    let claims =
        verify_with_jsonwebtoken(&app, body["access_token"].as_str().unwrap(), &app.address).await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        1
    );
}
/// RFC 3339 instants like `2026-12-01T10:00:00Z`, and no bare Unix seconds.
fn has_rfc3339(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .any(|w| w.len() >= 20 && w.as_bytes()[4] == b'-' && w.as_bytes()[10] == b'T')
}

fn has_unix_seconds(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|w| w.len() == 10 && w.starts_with('1'))
}

backend_test!(
    rotate_plan_while_a_rotation_waits_shows_the_pending_change,
    |app| {
        let applied = app.cli_json(&["keys", "rotate", "--alg", "ES256"]);
        let waiting = applied[0]["new_key"].as_str().unwrap().to_owned();

        let plan = app.cli_json(&["keys", "rotate", "--alg", "ES256", "--plan"]);
        let entry = &plan[0];
        assert_eq!(entry["alg"], "ES256", "{plan}");
        assert_eq!(entry["pending"], true, "{plan}");
        assert_eq!(entry["applied"], false, "{plan}");
        assert_eq!(
            entry["new_key"],
            Value::Null,
            "no new key is planned: {plan}"
        );
        let changes = entry["changes"].as_array().unwrap();
        let w = changes
            .iter()
            .find(|c| c["kid"] == waiting.as_str())
            .unwrap();
        assert!(has_rfc3339(w["signs_from"].as_str().unwrap()), "{plan}");
        assert!(
            changes.iter().any(|c| c["stops_signing_at"].is_string()),
            "the current key's end of signing is shown: {plan}"
        );

        let out = app.cli(&["keys", "rotate", "--alg", "ES256", "--plan"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains(&waiting) && has_rfc3339(&text), "{text}");
        assert!(!has_unix_seconds(&text), "{text}");

        // Nothing changed: still one waiting key.
        let list = app.cli_json(&["keys", "list"]);
        let next: Vec<&Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "next")
            .collect();
        assert_eq!(next.len(), 1, "{list}");

        // The interlock (a second rotation without --plan or --now) names its times in RFC 3339.
        let out = app.cli(&["keys", "rotate", "--alg", "ES256"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains("--now") && has_rfc3339(&err), "{err}");
        assert!(!has_unix_seconds(&err), "{err}");
    }
);

/// What Kubernetes injects for a Service named `sigil`.
const KUBERNETES_ENV: &[(&str, &str)] = &[
    ("SIGIL_SERVICE_HOST", "10.96.0.12"),
    ("SIGIL_SERVICE_PORT", "8080"),
    ("SIGIL_SERVICE_PORT_HTTP", "8080"),
    ("SIGIL_PORT", "tcp://10.96.0.12:8080"),
    ("SIGIL_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
    ("SIGIL_PORT_8080_TCP_PROTO", "tcp"),
    ("SIGIL_PORT_8080_TCP_PORT", "8080"),
    ("SIGIL_PORT_8080_TCP_ADDR", "10.96.0.12"),
];

#[test]
fn kubernetes_service_variables_are_ignored() {
    let out = config_check(KUBERNETES_ENV);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["listen"], "127.0.0.1:8080", "{v}");

    // `sigil serve` starts with them too.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = sigil(dir.path());
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in KUBERNETES_ENV {
        c.env(k, v);
    }
    let mut server = c.spawn().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("sigil serve exited: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "sigil serve listened");

    // Other unknown SIGIL_* variables are still errors that name themselves.
    for bogus in ["SIGIL_SERVICES", "SIGIL_PORTS", "SIGIL_TOKENS_NOPE"] {
        let out = config_check(&[(bogus, "1")]);
        assert_eq!(out.status.code(), Some(1), "{bogus}");
        assert!(stderr(&out).contains(bogus), "{bogus}: {}", stderr(&out));
    }
}

#[test]
fn environment_values_are_read_by_the_settings_type() {
    // A numeric-looking value for a string setting is a string.
    let out = config_check(&[("SIGIL_PASSWORDS_PEPPER", "123456789012345678")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("123456789012345678"));
    let out = config_check(&[("SIGIL_TOKENS_DEFAULT_AUDIENCE", "12345")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tokens"]["default_audience"], "12345");
    // Numbers are numbers.
    let out = config_check(&[("SIGIL_DATABASE_POOL_SIZE", "7")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["database"]["pool_size"], 7);

    // A bad value names the variable and the key.
    for (var, value, key) in [
        ("SIGIL_DATABASE_POOL_SIZE", "many", "database.pool_size"),
        ("SIGIL_KEYS_CLOCK_SKEW", "soon", "keys.clock_skew"),
        ("SIGIL_LOG_FORMAT", "xml", "log.format"),
        (
            "SIGIL_TOKENS_ACCESS_TOKEN_ALG",
            "HS256",
            "tokens.access_token_alg",
        ),
        ("SIGIL_ISSUER", "id.example", "issuer"),
    ] {
        let out = config_check(&[(var, value)]);
        assert_eq!(out.status.code(), Some(1), "{var}");
        let err = stderr(&out);
        assert!(err.contains(var) && err.contains(key), "{var}: {err}");
    }
}

#[test]
fn config_check_never_prints_a_credential() {
    let secrets = [
        "hunter2",
        "qwerty77",
        "sslpw99",
        "tokensecret5",
        "redispw1",
        "redispw2",
        "pepperpepper",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ];
    let env = [
        (
            "SIGIL_DATABASE_URL",
            "postgres://sigil:hunter2@db.internal:5432/sigil?sslmode=require&password=qwerty77&sslpassword=sslpw99&Auth_Token=tokensecret5&application_name=idp",
        ),
        (
            "SIGIL_REDIS_URL",
            "rediss://cache:redispw1@redis.internal:6380/0?password=redispw2",
        ),
        ("SIGIL_PASSWORDS_PEPPER", "pepperpepper"),
        (
            "SIGIL_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ];
    for json in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sigil(dir.path());
        c.args(["config", "check"]);
        if json {
            c.arg("--json");
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = run(&mut c);
        assert!(out.status.success(), "{}", stderr(&out));
        let (o, e) = (stdout(&out), stderr(&out));
        for s in secrets {
            assert!(!o.contains(s) && !e.contains(s), "{s} shown:\n{o}{e}");
        }
        // What is not secret stays readable.
        for shown in [
            "db.internal:5432",
            "sslmode=require",
            "application_name=idp",
            "redis.internal",
        ] {
            assert!(o.contains(shown), "{shown} in {o}");
        }
    }
}

/// A running `sigil serve` on `dir`, stopped when dropped; its stderr goes to `dir/../serve-<port>.log`.
struct Server {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(mut cmd: Command, log_dir: &std::path::Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = log_dir.join(format!("serve-{port}.log"));
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server { child, port, log };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        use std::io::{Read, Write};
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sigil serve exited ({status}): {}", self.log_text());
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ =
                    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sigil serve did not become ready: {}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The data dir is 0700 and every file in it 0600; returns the file names.
#[cfg(unix)]
fn assert_private(dir: &std::path::Path) -> Vec<String> {
    assert_eq!(mode(dir), 0o700, "{} is {:o}", dir.display(), mode(dir));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(
            mode(&entry.path()),
            0o600,
            "{name} is {:o}",
            mode(&entry.path())
        );
        names.push(name);
    }
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn a_fresh_data_dir_is_private_and_every_file_in_it_0600() {
    let root = tempfile::tempdir().unwrap();
    // `sigil migrate` on a data dir that does not exist yet.
    let data = root.path().join("migrated").join("data");
    let out = run(sigil(&data).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    let names = assert_private(&data);
    assert!(names.contains(&"sigil.db".to_owned()), "{names:?}");
    assert!(names.contains(&"master.key".to_owned()), "{names:?}");

    // `sigil serve` on another: checked while it runs, so the WAL files exist.
    let data = root.path().join("served");
    let server = Server::start(sigil(&data), root.path());
    let names = assert_private(&data);
    for name in ["sigil.db", "sigil.db-wal", "sigil.db-shm", "master.key"] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    assert!(
        !server.log_text().contains("readable by"),
        "{}",
        server.log_text()
    );
    drop(server);

    // Opened up by hand: serve warns about each at start-up, and still starts.
    use std::os::unix::fs::PermissionsExt;
    for (name, m) in [("master.key", 0o644), ("sigil.db", 0o640)] {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(m)).unwrap();
    }
    let server = Server::start(sigil(&data), root.path());
    let log = server.log_text();
    for name in ["master.key", "sigil.db"] {
        assert!(
            log.lines().any(|l| l.contains("WARN")
                && l.contains(name)
                && l.contains("readable by group or others")),
            "a warning names {name}: {log}"
        );
    }
}

/// Commands other than `serve` and `migrate` that need the database.
const READERS: &[&[&str]] = &[
    &["clients", "list"],
    &["keys", "list"],
    &["keys", "generate", "--alg", "ES256"],
    &["users", "list"],
    &["audit", "verify"],
];

#[test]
fn only_serve_and_migrate_create_a_database_or_a_master_key_on_sqlite() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    for args in READERS {
        let out = run(sigil(&data).args(*args));
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("no database")
                && err.contains("sigil.db")
                && err.contains("sigil migrate"),
            "{args:?}: {err}"
        );
    }
    assert!(!data.exists(), "nothing was created");

    let out = run(sigil(&data).args(["migrate", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        data.join("master.key").exists(),
        "migrate creates the master key"
    );
    assert_private(&data);
    let out = run(sigil(&data).args(["clients", "list", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));

    // Without the master key (the database holds no signing keys yet): named, and not made.
    std::fs::remove_file(data.join("master.key")).unwrap();
    let out = run(sigil(&data).args(["clients", "list"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no master key") && err.contains("master.key"),
        "{err}"
    );
    assert!(!data.join("master.key").exists());
    let out = run(sigil(&data).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(data.join("master.key").exists());

    // A schema older than the binary: the CLI says so and leaves it alone.
    let db = data.join("sigil.db");
    let newest = newest_migration();
    let mut conn =
        <diesel::SqliteConnection as diesel::Connection>::establish(db.to_str().unwrap()).unwrap();
    let n = diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{newest}'"
        )),
        &mut conn,
    )
    .unwrap();
    assert_eq!(n, 1);
    let out = run(sigil(&data).args(["clients", "list"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("older than this sigil") && err.contains("sigil migrate"),
        "{err}"
    );
    let count: i64 = {
        #[derive(diesel::QueryableByName)]
        struct C {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<C> = diesel::RunQueryDsl::load(
            diesel::sql_query(format!(
                "SELECT COUNT(*) AS n FROM __diesel_schema_migrations WHERE version = '{newest}'"
            )),
            &mut conn,
        )
        .unwrap();
        rows[0].n
    };
    assert_eq!(count, 0, "the CLI did not migrate");
}

/// The version diesel records for the newest migration (its name's digits before `_`).
fn newest_migration() -> String {
    let mut names: Vec<String> = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    ))
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
    names.sort();
    let newest = names.last().unwrap();
    newest
        .split('_')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

#[test]
fn only_serve_and_migrate_create_a_schema_on_postgres() {
    let root = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, root.path());
    let data = root.path().join("data");
    for args in READERS {
        let out = run(sigil(&data).env("SIGIL_DATABASE_URL", &db.url).args(*args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("sigil migrate") && err.contains("schema"),
            "{args:?}: {err}"
        );
    }
    assert!(!data.exists(), "no master key was made");
    let out = run(sigil(&data)
        .env("SIGIL_DATABASE_URL", &db.url)
        .args(["migrate", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/postgres"
    ))
    .unwrap()
    .count();
    assert_eq!(
        v["applied"].as_array().unwrap().len(),
        migrations,
        "the CLI had created nothing before: {v}"
    );
    let out = run(sigil(&data)
        .env("SIGIL_DATABASE_URL", &db.url)
        .args(["keys", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A flood of random client ids through `/token` neither evicts a real client from the cache
/// nor gets anything but `invalid_client`. (From one address the flood would soon be refused
/// with 429 before any lookup; the limit is off here, as for a flood from many addresses.)
async fn random_client_ids_do_not_evict_real_clients(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            env: vec![
                ("SIGIL_CLIENTS_CACHE_SIZE".into(), "50".into()),
                (
                    "SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP".into(),
                    "off".into(),
                ),
            ],
            ..AppOptions::default()
        },
    )
    .await;
    let misses = r#"sigil_client_cache_misses_total"#;
    let real = app.service_client();
    // Let the server see the creation (its sync job drops the cache when clients change).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.token_for(&real, None).await.status(), 200);
    let before = metric(&app, misses).await;
    for batch in 0..15 {
        let requests = (0..20).map(|i| {
            let id = format!("sgl_flood{batch}x{i}");
            let app = &app;
            async move {
                let resp = app
                    .post_token(
                        &[("grant_type", "client_credentials")],
                        Some((&id, "sigil_secret_x")),
                    )
                    .await;
                assert_eq!(resp.status(), 401);
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"], "invalid_client");
            }
        });
        futures_util::future::join_all(requests).await;
    }
    let after_flood = metric(&app, misses).await;
    assert_eq!(
        after_flood - before,
        300.0,
        "each unknown id was looked up once"
    );
    // The real client is still served from memory.
    assert_eq!(app.token_for(&real, None).await.status(), 200);
    assert_eq!(
        metric(&app, misses).await,
        after_flood,
        "the real client was not evicted"
    );
    // An unknown id asked again is answered from the small cache of misses, still invalid_client.
    let again = app
        .post_token(
            &[("grant_type", "client_credentials")],
            Some(("sgl_flood14x19", "x")),
        )
        .await;
    assert_eq!(again.status(), 401);
    assert_eq!(metric(&app, misses).await, after_flood);
    // A client created after its id was a miss is found (creation bumps the clients counter).
    let late = app.service_client();
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.token_for(&late, None).await.status() == 200
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_client_ids_do_not_evict_real_clients_sqlite() {
    random_client_ids_do_not_evict_real_clients(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_client_ids_do_not_evict_real_clients_postgres() {
    random_client_ids_do_not_evict_real_clients(Backend::Postgres).await;
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn authorize_status(app: &TestApp, client_id: &str, redirect_uri: &str) -> u16 {
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        app.address,
        enc(redirect_uri)
    );
    app.client.get(url).send().await.unwrap().status().as_u16()
}

backend_test!(
    clients_update_keeps_the_id_and_secret_and_reaches_running_servers,
    |app| {
        let (a, b) = ("https://app.example/cb", "https://app.example/new-cb");
        let c = app.create_client(&[
            "--grant",
            "authorization_code",
            "--grant",
            "client_credentials",
            "--redirect-uri",
            a,
            "--scope",
            "openid",
            "--scope",
            "invoices:read",
        ]);
        assert_eq!(app.token_for(&c, Some("invoices:read")).await.status(), 200);
        assert_eq!(authorize_status(&app, &c.id, a).await, 200);
        assert_eq!(authorize_status(&app, &c.id, b).await, 400);

        app.cli_json(&["roles", "create", "billing"]);
        let updated = app.cli_json(&[
            "clients",
            "update",
            &c.id,
            "--name",
            "renamed",
            "--add-redirect-uri",
            b,
            "--remove-redirect-uri",
            a,
            "--add-scope",
            "invoices:write",
            "--remove-scope",
            "invoices:read",
            "--add-audience",
            "https://api.example",
            "--role",
            "billing",
        ]);
        assert_eq!(updated["client_id"], c.id.as_str(), "{updated}");
        assert!(
            updated.get("client_secret").is_none(),
            "no new secret: {updated}"
        );
        let shown = app.cli_json(&["clients", "show", &c.id]);
        assert_eq!(shown["name"], "renamed", "{shown}");
        assert_eq!(shown["redirect_uris"], serde_json::json!([b]), "{shown}");
        assert!(
            shown.to_string().contains("invoices:write")
                && !shown.to_string().contains("invoices:read"),
            "{shown}"
        );
        assert!(
            shown.to_string().contains("https://api.example")
                && shown.to_string().contains("billing"),
            "{shown}"
        );

        // A running server sees it within 10 s; the same secret keeps working.
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                authorize_status(&app, &c.id, b).await == 200
            })
            .await
        );
        assert_eq!(authorize_status(&app, &c.id, a).await, 400);
        assert_eq!(
            app.token_for(&c, Some("invoices:write")).await.status(),
            200
        );
        assert_eq!(app.token_for(&c, Some("invoices:read")).await.status(), 400);

        // In the audit trail.
        let events = app.cli_json(&["audit", "tail", "-n", "1"]);
        assert_eq!(events[0]["kind"], "client.update", "{events}");
        assert_eq!(events[0]["subject"], c.id.as_str());

        // Refused: the last redirect URI of an authorization_code client, a URI not registered, an
        // unknown client.
        for args in [
            vec!["clients", "update", &c.id, "--remove-redirect-uri", b],
            vec![
                "clients",
                "update",
                &c.id,
                "--remove-redirect-uri",
                "https://app.example/none",
            ],
            vec!["clients", "update", "sgl_nope", "--name", "x"],
        ] {
            let out = app.cli(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            assert!(!stderr(&out).is_empty());
        }
        // A malformed client id is a usage error, by the rule the token endpoint applies too.
        let long = "c".repeat(129);
        for args in [
            vec!["clients", "show", "a b"],
            vec!["clients", "delete", long.as_str()],
            vec!["clients", "rotate-secret", "\u{e9}"],
            vec!["clients", "update", "a\tb", "--name", "x"],
        ] {
            let out = app.cli(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(
                stderr(&out).contains("client_id must be 1 to 128 visible ASCII characters"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
        assert_eq!(
            app.cli_json(&["clients", "show", &c.id])["redirect_uris"],
            serde_json::json!([b])
        );
    }
);

/// Every subcommand, by walking `--help` (the "Commands:" lists).
fn subcommands(path: &[String]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = path.to_vec();
    args.push("--help".into());
    let out = run(sigil(dir.path()).args(&args));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let text = stdout(&out);
    let mut found = vec![path.to_vec()];
    let Some(list) = text.split("Commands:\n").nth(1) else {
        return found;
    };
    for line in list.lines() {
        if !line.starts_with("  ") || line.starts_with("   ") {
            break;
        }
        let name = line.split_whitespace().next().unwrap().to_owned();
        if name == "help" {
            continue;
        }
        let mut sub = path.to_vec();
        sub.push(name);
        found.extend(subcommands(&sub));
    }
    found
}

#[test]
fn every_command_help_has_examples() {
    let all = subcommands(&[]);
    assert!(all.len() > 25, "{all:?}");
    let dir = tempfile::tempdir().unwrap();
    for path in all {
        for flag in ["--help", "-h"] {
            let mut args = path.clone();
            args.push(flag.into());
            let out = run(sigil(dir.path()).args(&args));
            let text = stdout(&out);
            let examples = text.split("Examples:\n").nth(1);
            assert!(
                examples.is_some_and(|e| e.lines().next().is_some_and(|l| l.contains("sigil "))),
                "sigil {args:?} has no Examples block:\n{text}"
            );
        }
    }
}

#[test]
fn a_missing_config_file_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        run(sigil(dir.path()).args(["config", "check", "--config", "/nonexistent/sigil.toml"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/sigil.toml"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

async fn unknown_name_failures_are_aggregated_and_prune_keeps_the_chain_verifiable(
    backend: Backend,
) {
    use crate::flow::{authorize_url, browser, create_user, login, pkce, web_client};
    let app = spawn_app_with(
        backend,
        AppOptions {
            env: vec![("SIGIL_RATE_LIMITS_LOGIN_PER_IP".into(), "1000/1m".into())],
            ..AppOptions::default()
        },
    )
    .await;
    let c = web_client(&app, &[]);
    let before = app
        .cli_json(&["audit", "tail", "-n", "1000"])
        .as_array()
        .unwrap()
        .len();
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let b = browser();
    const N: usize = 25;
    for i in 0..N {
        let resp = login(&app, &b, &url, &format!("nobody{i}"), "wrong password").await;
        assert_eq!(resp.status(), 401);
    }
    let events = app.cli_json(&["audit", "tail", "-n", "1000"]);
    let added: Vec<&Value> = events.as_array().unwrap()[before..].iter().collect();
    assert!(
        !added.is_empty() && added.len() <= 3,
        "{N} unknown-name failures added {} rows: {added:?}",
        added.len()
    );
    assert_eq!(added[0]["kind"], "login.failure");
    assert!(
        added
            .iter()
            .any(|e| e["kind"] == "login.failure.summary" && e["details"]["count"] == 10),
        "a summary counts them: {added:?}"
    );
    assert_eq!(
        metric(&app, r#"sigil_logins_total{outcome="failure"}"#).await,
        N as f64
    );

    // Retention: prune everything older than a second; verify still passes from the anchor.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let pruned = app.cli_json(&["audit", "prune", "--before", "1s"]);
    assert!(pruned["deleted"].as_i64().unwrap() >= 3, "{pruned}");
    let anchor = pruned["anchor_seq"].as_i64().unwrap();
    let verdict = app.cli_json(&["audit", "verify"]);
    assert_eq!(verdict["status"], "intact", "{verdict}");
    assert_eq!(verdict["events"], 1, "only the anchor is left: {verdict}");
    let tail = app.cli_json(&["audit", "tail", "-n", "10"]);
    assert_eq!(tail[0]["kind"], "audit.anchor", "{tail}");
    create_user(&app, "after");
    assert_eq!(app.cli_json(&["audit", "verify"])["status"], "intact");

    // Tampering after a prune is still caught: an edit...
    raw_sql(
        &app,
        &format!(
            "UPDATE audit_events SET details = '{{}}' WHERE seq = {}",
            anchor + 1
        ),
    );
    let out = app.cli(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    // ...and removing the start of what is left (the anchor), so nothing accounts for the gap.
    raw_sql(
        &app,
        &format!("DELETE FROM audit_events WHERE seq > {anchor}"),
    );
    assert_eq!(app.cli_json(&["audit", "verify"])["status"], "intact");
    create_user(&app, "later");
    assert_eq!(app.cli_json(&["audit", "verify"])["status"], "intact");
    raw_sql(
        &app,
        &format!("DELETE FROM audit_events WHERE seq = {anchor}"),
    );
    let out = app.cli(&["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "broken", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_name_failures_are_aggregated_and_prune_keeps_the_chain_verifiable_sqlite() {
    unknown_name_failures_are_aggregated_and_prune_keeps_the_chain_verifiable(Backend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_name_failures_are_aggregated_and_prune_keeps_the_chain_verifiable_postgres() {
    unknown_name_failures_are_aggregated_and_prune_keeps_the_chain_verifiable(Backend::Postgres)
        .await;
}

/// `--password-stdin` on a terminal prompts and does not echo (the terminal comes from
/// `script(1)`; skipped where it is not installed).
#[test]
fn password_stdin_from_a_terminal_prompts_without_echo() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(sigil(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    let bin = env!("CARGO_BIN_EXE_sigil");
    let mut c = Command::new("script");
    c.env("SIGIL_DATA_DIR", dir.path())
        .args([
            "-qec",
            &format!("{bin} users create --username tty --password-stdin"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    use std::io::Write;
    stdin.write_all(b"correct horse battery staple\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("Password:"), "a prompt: {text}");
    assert!(!text.contains("correct horse"), "no echo: {text}");
    let out = run(sigil(dir.path()).args(["users", "show", "tty", "--json"]));
    assert!(out.status.success(), "{}", stderr(&out));
}
