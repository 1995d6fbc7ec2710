//! The audit trail (`sigil audit verify | tail`) and `/metrics`.

use crate::backend_test;
use crate::flow::{PASSWORD, authorize_url, browser, create_user, login, pkce, web_client};
use crate::helpers::*;
use serde_json::Value;

fn kinds(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

backend_test!(changes_and_logins_form_a_verifiable_chain, |app| {
    create_user(&app, "abe");
    let c = web_client(&app, &[]);
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let b = browser();
    assert_eq!(
        login(&app, &b, &url, "abe", "not the password")
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&app, &b, &url, "nobody", PASSWORD).await.status(),
        401
    );
    assert_eq!(login(&app, &b, &url, "abe", PASSWORD).await.status(), 303);
    assert_eq!(app.cli(&["users", "disable", "abe"]).status.code(), Some(0));

    let events = app.cli_json(&["audit", "tail", "-n", "100"]);
    assert_eq!(
        kinds(&events),
        [
            "role.create",
            "user.create",
            "client.create",
            "login.failure",
            "login.failure",
            "login.success",
            "user.disable"
        ],
        "{events}"
    );
    let e = events.as_array().unwrap();
    let abe = e[1]["subject"].as_str().unwrap();
    assert_eq!(e[3]["subject"], abe);
    assert_eq!(e[3]["details"]["reason"], "wrong_password");
    assert_eq!(e[3]["client_id"], c.id.as_str());
    assert_eq!(
        e[4]["subject"],
        Value::Null,
        "an unknown user has no subject"
    );
    assert_eq!(e[4]["details"]["reason"], "unknown_user");
    assert_eq!(e[5]["actor"], format!("user:{abe}"));
    assert!(e[6]["actor"].as_str().unwrap().starts_with("cli:"));
    // Never a password, in any event.
    assert!(!events.to_string().contains("not the password"));
    assert!(!events.to_string().contains(PASSWORD));
    // Each event links to the one before.
    for pair in e.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_i64(),
            pair[0]["seq"].as_i64().map(|s| s + 1)
        );
    }
    let tail2 = app.cli_json(&["audit", "tail", "-n", "2"]);
    assert_eq!(kinds(&tail2), ["login.success", "user.disable"]);

    let verdict = app.cli_json(&["audit", "verify"]);
    assert_eq!(verdict["status"], "intact", "{verdict}");
    assert_eq!(verdict["events"], 7);
    assert_eq!(verdict["head_hash"], e[6]["hash"]);

    assert_eq!(
        metric(&app, r#"sigil_logins_total{outcome="failure"}"#).await,
        2.0
    );
    assert_eq!(
        metric(&app, r#"sigil_logins_total{outcome="success"}"#).await,
        1.0
    );
    assert_eq!(metric(&app, "sigil_audit_write_failures_total").await, 0.0);
});

backend_test!(edited_or_removed_events_break_the_chain, |app| {
    for name in ["bea", "cal", "dee"] {
        create_user(&app, name);
    }
    assert_eq!(app.cli_json(&["audit", "verify"])["status"], "intact");

    // An attacker with database access rewrites what event 2 says...
    let n = raw_sql(
        &app,
        "UPDATE audit_events SET details = '{\"username\":\"someone-else\"}' WHERE seq = 2",
    );
    assert_eq!(n, 1);
    let out = app.cli(&["audit", "verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a broken chain fails the command"
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["status"], "broken");
    assert_eq!(verdict["seq"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not verify"), "{stderr}");

    // ...or, on a fresh trail, deletes it.
    raw_sql(&app, "DELETE FROM audit_events");
    for name in ["eve", "fay", "gus"] {
        create_user(&app, name);
    }
    assert_eq!(app.cli_json(&["audit", "verify"])["status"], "intact");
    raw_sql(&app, "DELETE FROM audit_events WHERE seq = 2");
    let verdict: Value =
        serde_json::from_slice(&app.cli(&["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(
        (verdict["status"].as_str(), verdict["seq"].as_i64()),
        (Some("broken"), Some(2))
    );

    // Recomputing a plain hash does not help without the master key: rewriting event 3 to
    // link to event 1 still fails.
    raw_sql(
        &app,
        "UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE seq = 1), seq = 2 WHERE seq = 3",
    );
    let verdict: Value =
        serde_json::from_slice(&app.cli(&["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(verdict["status"], "broken", "{verdict}");
});

backend_test!(metrics_are_prometheus_text, |app| {
    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    for name in [
        "sigil_refresh_token_reuse_total",
        "sigil_authorization_code_replay_total",
        "sigil_account_lockouts_total",
        "sigil_audit_write_failures_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter")),
            "{name} in {text}"
        );
    }
    let svc = app.service_client();
    assert_eq!(app.token_for(&svc, None).await.status(), 200);
    assert_eq!(
        metric(
            &app,
            r#"sigil_tokens_issued_total{grant="client_credentials"}"#
        )
        .await,
        1.0
    );
});
