//! The binary as an operator uses it: config check, master-key safety, migrations, serve, logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;
use serde_json::Value;

fn sigil(dir: &std::path::Path, db_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sigil"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIGIL_DATA_DIR", dir)
        .env("SIGIL_DATABASE_URL", db_url)
        .env("SIGIL_LOG_LEVEL", "info");
    c
}

#[test]
fn config_check_names_unknown_keys_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sigil.toml");
    std::fs::write(&file, "[tokens]\naccess_token_tll = \"10m\"\n").unwrap();
    let out = sigil(dir.path(), "sqlite://x.db")
        .args(["config", "check", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_tll"));

    std::fs::write(
        &file,
        "[database]\nurl = \"postgres://sigil:hunter2@db/sigil\"\n",
    )
    .unwrap();
    let out = sigil(dir.path(), "sqlite://x.db")
        .env_remove("SIGIL_DATABASE_URL")
        .env(
            "SIGIL_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .args([
            "config",
            "check",
            "--json",
            "--config",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        !shown.contains("hunter2") && !shown.contains("AAECAwQF"),
        "{shown}"
    );
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["tokens"]["access_token_ttl"], "10m");

    // The example config documents every key and passes the check.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/sigil.example.toml"
    );
    let out = sigil(dir.path(), "sqlite://x.db")
        .args(["config", "check", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_or_wrong_master_key_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sigil.db").display());
    let out = sigil(dir.path(), &db).args(["migrate"]).output().unwrap();
    assert!(out.status.success());
    let out = sigil(dir.path(), &db)
        .args(["keys", "generate", "--alg", "ES256", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_file = dir.path().join("master.key");
    let saved = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();

    let out = sigil(dir.path(), &db)
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master key"));
    assert!(
        !key_file.exists(),
        "no new master key over an existing key set"
    );

    let out = sigil(dir.path(), &db)
        .env(
            "SIGIL_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong master key"));

    std::fs::write(&key_file, saved).unwrap();
    assert!(
        sigil(dir.path(), &db)
            .args(["keys", "list"])
            .output()
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn private_keys_are_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("sigil.db");
    let db = format!("sqlite://{}", db_path.display());
    let out = sigil(dir.path(), &db).args(["migrate"]).output().unwrap();
    assert!(out.status.success());
    for alg in ["ES256", "EdDSA", "RS256"] {
        let out = sigil(dir.path(), &db)
            .args(["keys", "generate", "--alg", alg])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let out = sigil(dir.path(), &db).args(["migrate"]).output().unwrap();
    assert!(out.status.success());
    let mut conn =
        <diesel::SqliteConnection as diesel::Connection>::establish(db_path.to_str().unwrap())
            .unwrap();
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        private_key: Vec<u8>,
    }
    let rows: Vec<Row> = diesel::sql_query("SELECT private_key FROM signing_keys")
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        // A plaintext PKCS#8 document carries its algorithm OID; a sealed one does not.
        let ec_oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert!(!r.private_key.windows(ec_oid.len()).any(|w| w == ec_oid));
        assert!(!r.private_key.windows(rsa_oid.len()).any(|w| w == rsa_oid));
    }
}

fn concurrent_migrations(url: &str, dir: &std::path::Path) {
    let children: Vec<_> = (0..3)
        .map(|_| {
            sigil(dir, url)
                .args(["migrate", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        applied += v["applied"].as_array().unwrap().len();
    }
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../migrations/sqlite"
    ))
    .unwrap()
    .count();
    assert_eq!(
        applied, migrations,
        "each migration applied by exactly one process"
    );
}

#[test]
fn concurrent_migrations_are_safe_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_migrations(
        &format!("sqlite://{}", dir.path().join("sigil.db").display()),
        dir.path(),
    );
}

#[test]
fn concurrent_migrations_are_safe_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_db(Backend::Postgres, dir.path());
    concurrent_migrations(&db.url, dir.path());
}

/// The real `sigil serve`: starts on an empty data dir, serves, picks up CLI changes, and never
/// writes a secret or a token to its log.
#[test]
fn serve_binary_end_to_end_without_secrets_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sigil.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = sigil(dir.path(), &db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(std::mem::replace(
        &mut server,
        Command::new("true").spawn().unwrap(),
    ));
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut up = false;
        for _ in 0..100 {
            if http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            up,
            "sigil serve became ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );

        let out = sigil(dir.path(), &db)
            .args([
                "clients",
                "create",
                "--name",
                "billing",
                "--grant",
                "client_credentials",
                "--scope",
                "invoices:read",
                "--json",
            ])
            .output()
            .unwrap();
        let c: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (id, secret) = (
            c["client_id"].as_str().unwrap(),
            c["client_secret"].as_str().unwrap(),
        );
        let resp = http
            .post(format!("{base}/token"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "invoices:read"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let wrong = http
            .post(format!("{base}/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", "sigil_secret_guess"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);

        // A rotation made by the CLI reaches the running server within 10 seconds (CONTRACT).
        let out = sigil(dir.path(), &db)
            .args(["keys", "rotate", "--alg", "ES256", "--json"])
            .output()
            .unwrap();
        let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
        let new_kid = applied[0]["new_key"].as_str().unwrap().to_owned();
        let mut seen = false;
        for _ in 0..100 {
            let jwks = http
                .get(format!("{base}/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if jwks.contains(&new_kid) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "server published the CLI's new key within 10 s");

        tokio::time::sleep(Duration::from_millis(200)).await;
        let logs = std::fs::read_to_string(&log_path).unwrap();
        assert!(logs.contains("request completed"), "requests are logged");
        assert!(logs.contains(id), "client_id is logged");
        for secret_text in [
            secret,
            "sigil_secret_guess",
            token.as_str(),
            token.split('.').nth(1).unwrap(),
        ] {
            assert!(
                !logs.contains(secret_text),
                "a secret or token leaked into the log"
            );
        }
        let reader = BufReader::new(std::fs::File::open(&log_path).unwrap());
        assert!(
            reader
                .lines()
                .map_while(Result::ok)
                .all(|l| !l.contains("panicked"))
        );
    });
}

mod token_verify {
    use crate::backend_test;
    use crate::helpers::*;
    use serde_json::Value;

    backend_test!(
        sigil_token_verify_checks_tokens_like_a_resource_server,
        |app| {
            let c = app.service_client();
            let body: Value = app
                .token_for(&c, Some("invoices:read"))
                .await
                .json()
                .await
                .unwrap();
            let token = body["access_token"].as_str().unwrap().to_owned();
            let export = app.dir.path().join("export");
            app.cli_json(&[
                "keys",
                "export",
                "--format",
                "jwks",
                "--out",
                export.to_str().unwrap(),
            ]);
            let jwks = export.join("jwks.json");
            let (issuer, jwks) = (app.address.clone(), jwks.to_str().unwrap().to_owned());

            // From a JWKS file.
            let out = app.cli(&[
                "token",
                "verify",
                "--issuer",
                &issuer,
                "--audience",
                &issuer,
                "--jwks",
                &jwks,
                &token,
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(claims["client_id"], c.id.as_str());

            // From the issuer's discovery document and JWKS (the CLI is a separate process, so the
            // blocking fetch does not stall this test's runtime).
            let (i2, t2) = (issuer.clone(), token.clone());
            let out = tokio::task::spawn_blocking({
                let args: Vec<String> =
                    ["token", "verify", "--issuer", &i2, "--audience", &i2, &t2]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                let bin = env!("CARGO_BIN_EXE_sigil");
                move || {
                    std::process::Command::new(bin)
                        .args(&args)
                        .output()
                        .unwrap()
                }
            })
            .await
            .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );

            // Wrong audience, tampered token: exit 1 with the reason.
            let out = app.cli(&[
                "token",
                "verify",
                "--issuer",
                &issuer,
                "--audience",
                "other",
                "--jwks",
                &jwks,
                &token,
            ]);
            assert_eq!(out.status.code(), Some(1));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("audience"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = app.cli(&[
                "token",
                "verify",
                "--issuer",
                &issuer,
                "--audience",
                &issuer,
                "--jwks",
                &jwks,
                &format!("{token}x"),
            ]);
            assert_eq!(out.status.code(), Some(1));
            assert!(out.stdout.is_empty());
        }
    );
}

#[test]
fn both_migration_trees_have_the_same_names() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let names = |backend: &str| {
        let mut v: Vec<String> = std::fs::read_dir(format!("{root}/{backend}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(!names("sqlite").is_empty());
    assert_eq!(names("sqlite"), names("postgres"));
    for name in names("sqlite") {
        for file in ["up.sql", "down.sql"] {
            assert!(
                std::path::Path::new(&format!("{root}/postgres/{name}/{file}")).exists(),
                "{name}/{file}"
            );
        }
    }
}

/// `sigil serve` stops promptly on SIGTERM even with an idle keep-alive connection and a
/// half-sent request open (a graceful stop would otherwise wait for them), and at once on
/// SIGINT; both exit 0.
#[test]
fn serve_stops_promptly_on_sigterm_and_sigint() {
    use std::io::{Read, Write};
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("sigil.db").display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = sigil(dir.path(), &db)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // The stop itself is what is measured here; draining has its own test.
            .env("SIGIL_HTTP_DRAIN_DELAY", "0s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut body = String::new();
                let _ = s.read_to_string(&mut body);
                if body.starts_with("HTTP/1.1 200") {
                    ready = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(ready, "sigil serve became ready");
        // An idle keep-alive connection after one answered request...
        let mut idle = std::net::TcpStream::connect(&addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        assert!(idle.read(&mut buf).unwrap() > 0);
        // ...and a request that never finishes arriving.
        let mut half = std::net::TcpStream::connect(&addr).unwrap();
        half.write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ngrant")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));

        let started = std::time::Instant::now();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &server.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let limit = sigil::startup::SHUTDOWN_GRACE + Duration::from_secs(2);
        let status = loop {
            if let Some(status) = server.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = server.kill();
                let _ = server.wait();
                panic!("SIG{signal}: sigil serve still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "SIG{signal}: exit status {status}");
        drop((idle, half));
    }
}

/// SIGTERM drains before it stops: `/readyz` fails at once, requests keep being answered (each
/// closing its connection, so keep-alive clients reconnect elsewhere) for `http.drain_delay`,
/// and only then does the listener close. Counted: requests that failed before the listener
/// closed (must be 0); after it, a refused connection is what a client retries elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_before_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sigil.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = sigil(dir.path(), &db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SIGIL_HTTP_DRAIN_DELAY", "2s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "sigil serve became ready");

    // Four keep-alive clients, each sending requests one after another.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop) = (client.clone(), format!("{base}/jwks.json"), stop.clone());
        load.push(tokio::spawn(async move {
            let mut log: Vec<(std::time::Instant, Result<bool, String>)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(&url).send().await;
                let at = std::time::Instant::now();
                log.push((
                    at,
                    match r {
                        Ok(r) if r.status() == 200 => {
                            Ok(r.headers().get("connection").is_some_and(|v| v == "close"))
                        }
                        Ok(r) => Err(format!("status {}", r.status())),
                        Err(e) => Err(e.to_string()),
                    },
                ));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            log
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503, "readiness fails first");
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "draining");

    // Wait for the exit, then look at what the clients saw.
    let limit = Duration::from_secs(2) + sigil::startup::SHUTDOWN_GRACE + Duration::from_secs(2);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if term.elapsed() > limit {
            let _ = server.kill();
            let _ = server.wait();
            panic!("sigil serve still running {limit:?} after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    let exited = term.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut during = (0, 0);
    let mut failed_while_listening = Vec::new();
    let drain_end = term + Duration::from_millis(1900);
    for h in load {
        for (at, r) in h.await.unwrap() {
            if at < term || at > drain_end {
                continue;
            }
            match r {
                Ok(closes) => {
                    during.0 += 1;
                    if closes {
                        during.1 += 1;
                    }
                }
                Err(e) => failed_while_listening.push(e),
            }
        }
    }
    assert!(
        failed_while_listening.is_empty(),
        "requests failed while Sigil still listened: {failed_while_listening:?}"
    );
    assert!(
        during.0 > 20,
        "requests were answered while draining: {during:?}"
    );
    assert!(
        during.1 * 10 >= during.0 * 9,
        "draining responses close their connection: {during:?}"
    );
    assert!(
        exited >= Duration::from_secs(2),
        "the drain lasted: {exited:?}"
    );
}
