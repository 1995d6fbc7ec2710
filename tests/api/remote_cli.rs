//! `sigil --server URL …`: the CLI driving a running Sigil through its admin API, with neither
//! the database nor the master key, giving the local commands' output and exit codes.

use std::process::{Command, Output};

use crate::backend_test;
use crate::flow::create_user;
use crate::helpers::*;
use serde_json::Value;

/// The binary with nothing but PATH, the server and `env`: no database, no data dir, no key.
fn remote(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["--server", &app.address])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run sigil")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

backend_test!(the_cli_drives_a_remote_sigil_through_the_admin_api, |app| {
    create_user(&app, "alice");
    create_user(&app, "bob");
    let admin = app.create_client(&["--grant", "client_credentials", "--role", "sigil-admin"]);
    let secret = admin.secret.clone().unwrap();
    let creds = [
        ("SIGIL_ADMIN_CLIENT_ID", admin.id.as_str()),
        ("SIGIL_ADMIN_CLIENT_SECRET", secret.as_str()),
    ];
    // The same output as the local command.
    for args in [
        vec!["roles", "list", "--json"],
        vec!["users", "list", "--json"],
        vec!["users", "show", "alice", "--json"],
        vec!["audit", "verify", "--json"],
    ] {
        let local = app.cli_json(&args[..args.len() - 1]);
        assert_eq!(json_of(&remote(&app, &creds, &args)), local, "{args:?}");
    }
    let human_local = String::from_utf8(app.cli(&["users", "list"]).stdout).unwrap();
    let human_remote = String::from_utf8(remote(&app, &creds, &["users", "list"]).stdout).unwrap();
    assert_eq!(human_remote, human_local);

    // Changes made remotely are the local ones, and audited with the client as actor.
    let created = json_of(&remote(
        &app,
        &creds,
        &[
            "roles",
            "create",
            "editor",
            "--permission",
            "job:read",
            "--json",
        ],
    ));
    assert_eq!(created, app.cli_json(&["roles", "show", "editor"]));
    json_of(&remote(
        &app,
        &creds,
        &[
            "roles",
            "update",
            "editor",
            "--add-permission",
            "job:run",
            "--json",
        ],
    ));
    assert_eq!(
        app.cli_json(&["roles", "show", "editor"])["permissions"],
        serde_json::json!(["job:read", "job:run"])
    );
    let tail = json_of(&remote(
        &app,
        &creds,
        &["audit", "tail", "-n", "2", "--json"],
    ));
    assert_eq!(tail, app.cli_json(&["audit", "tail", "-n", "2"]));
    assert!(
        tail.as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == admin.id.as_str())
    );
    json_of(&remote(
        &app,
        &creds,
        &["roles", "delete", "editor", "--json"],
    ));

    // A token works as well as client credentials.
    let body: Value = app.token_for(&admin, None).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    json_of(&remote(
        &app,
        &[("SIGIL_ADMIN_TOKEN", token.as_str())],
        &["roles", "show", "sigil-admin", "--json"],
    ));

    // Exit codes and messages: refused, not found, not covered, no credentials, no permission.
    let out = remote(&app, &creds, &["roles", "show", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no role named ghost"));
    let out = remote(&app, &creds, &["clients", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not available with --server"));
    let out = remote(&app, &[], &["roles", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGIL_ADMIN_TOKEN"));
    let wrong = [
        ("SIGIL_ADMIN_CLIENT_ID", admin.id.as_str()),
        ("SIGIL_ADMIN_CLIENT_SECRET", "nope"),
    ];
    let out = remote(&app, &wrong, &["roles", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the client credentials"));
    let plain = app.create_client(&["--grant", "client_credentials"]);
    let plain_secret = plain.secret.clone().unwrap();
    let out = remote(
        &app,
        &[
            ("SIGIL_ADMIN_CLIENT_ID", plain.id.as_str()),
            ("SIGIL_ADMIN_CLIENT_SECRET", plain_secret.as_str()),
        ],
        &["roles", "list"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin:roles:read"));
});
