//! `sigil users …` through the binary.

use crate::backend_test;
use crate::helpers::*;
use serde_json::Value;

const GOOD: &str = "correct horse battery staple";

backend_test!(user_lifecycle_through_the_cli, |app| {
    for role in ["admin", "billing", "auditor"] {
        app.cli_json(&["roles", "create", role]);
    }
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

backend_test!(
    email_verified_is_what_the_operator_set_in_id_tokens_and_userinfo,
    |app| {
        use crate::flow::{PASSWORD, browser, code_tokens, web_client};
        let out = app.cli_stdin(
            &[
                "users",
                "create",
                "--username",
                "vera",
                "--email",
                "vera@example.com",
                "--email-verified",
                "--password-stdin",
                "--json",
            ],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(created["email_verified"], true);

        let c = web_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "vera", "openid%20profile%20email", &browser()).await;
        let id = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["email"], "vera@example.com");
        assert_eq!(id["email_verified"], true);
        // The ID token and /userinfo carry the same claims for the same scopes.
        let info = |at: String| {
            let app = &app;
            async move {
                app.client
                    .get(format!("{}/userinfo", app.address))
                    .bearer_auth(at)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let at = tokens["access_token"].as_str().unwrap().to_owned();
        let body = info(at.clone()).await;
        for claim in [
            "sub",
            "preferred_username",
            "email",
            "email_verified",
            "updated_at",
        ] {
            assert_eq!(
                body[claim], id[claim],
                "{claim}: userinfo {body} vs ID token {id}"
            );
        }

        // A new address is unverified until the operator says otherwise.
        let updated = app.cli_json(&["users", "update", "vera", "--email", "v2@example.com"]);
        assert_eq!(updated["email"], "v2@example.com");
        assert_eq!(updated["email_verified"], false);
        let body = info(at.clone()).await;
        assert_eq!(body["email"], "v2@example.com");
        assert_eq!(body["email_verified"], false);
        let updated = app.cli_json(&["users", "update", "vera", "--email-verified", "true"]);
        assert_eq!(updated["email_verified"], true);
        assert_eq!(
            app.cli_json(&["users", "show", "vera"])["email_verified"],
            true
        );
        assert_eq!(info(at).await["email_verified"], true);

        // Unknown users and bad values are clear errors.
        let out = app.cli(&["users", "update", "nobody", "--email-verified", "true"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no user named nobody"));
        let out = app.cli(&["users", "update", "vera", "--email", "not-an-address"]);
        assert_eq!(out.status.code(), Some(1));
    }
);
