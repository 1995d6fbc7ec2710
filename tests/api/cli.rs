//! The binary as an operator meets it: settings from the environment (Kubernetes included), what
//! `config check` may print, which commands may create a database, the data dir's modes, key
//! rotation plans, every command's help, `clients update`, and the audit trail's retention.

use std::process::{Command, Output, Stdio};

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
