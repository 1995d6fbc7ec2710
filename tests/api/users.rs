//! `sigil users …` through the binary.

use crate::backend_test;
use crate::helpers::*;
use serde_json::Value;

const GOOD: &str = "correct horse battery staple";

backend_test!(user_lifecycle_through_the_cli, |app| {
    let out = app.cli_stdin(
        &[
            "users",
            "create",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--role",
            "admin",
            "--password-stdin",
            "--json",
        ],
        &format!("{GOOD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["username"], "alice");
    assert!(created["id"].as_str().unwrap().starts_with("usr_"));
    assert!(created.get("password_hash").is_none());

    let shown = app.cli_json(&["users", "show", "alice"]);
    assert_eq!(shown["email"], "alice@example.com");
    assert_eq!(shown["roles"], serde_json::json!(["admin"]));
    assert!(
        !shown.to_string().contains("$2"),
        "no bcrypt hash is printed"
    );

    app.cli_json(&["users", "set-roles", "alice", "billing", "auditor"]);
    assert_eq!(
        app.cli_json(&["users", "show", "alice"])["roles"],
        serde_json::json!(["auditor", "billing"])
    );
    app.cli_json(&["users", "disable", "alice"]);
    assert_eq!(app.cli_json(&["users", "show", "alice"])["disabled"], true);
    app.cli_json(&["users", "enable", "alice"]);
    assert_eq!(
        app.cli_json(&["users", "list"]).as_array().unwrap().len(),
        1
    );
    assert_eq!(
        app.cli_json(&["users", "export", "alice"])["username"],
        "alice"
    );

    let out = app.cli_stdin(
        &["users", "reset-password", "alice", "--password-stdin"],
        "another fine passphrase 42\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    app.cli_json(&["users", "delete", "alice"]);
    assert_eq!(app.cli(&["users", "show", "alice"]).status.code(), Some(1));
});

backend_test!(bad_user_input_is_refused_clearly, |app| {
    let create = |user: &str, pw: &str| {
        app.cli_stdin(
            &["users", "create", "--username", user, "--password-stdin"],
            pw,
        )
    };
    for (user, pw, expect) in [
        ("bob", "short\n", "8 to 100"),
        ("bob", "password123\n", "too easy"),
        ("bob", "bobbobbob123\n", "too easy"),
        ("bob smith", &format!("{GOOD}\n"), "username"),
        ("bob", &format!("{}\n", "x".repeat(101)), "8 to 100"),
    ] {
        let out = create(user, pw);
        assert_eq!(out.status.code(), Some(1), "{user} / {pw}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
        assert!(!err.contains(pw.trim()), "the password is never echoed");
    }
    assert!(create("bob", &format!("{GOOD}\n")).status.success());
    let out = create("bob", &format!("{GOOD}\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
    // --password-stdin is required: no password on the command line.
    assert_eq!(
        app.cli(&["users", "create", "--username", "carol"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        app.cli(&["users", "disable", "nobody"]).status.code(),
        Some(1)
    );
});
