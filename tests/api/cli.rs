//! The binary as an operator meets it: settings from the environment (Kubernetes included), what
//! `config check` may print, which commands may create a database, the data dir's modes, key
//! rotation plans, every command's help, `clients update`, and the audit trail's retention.

use std::process::{Command, Output, Stdio};

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
