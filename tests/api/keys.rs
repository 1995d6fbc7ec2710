//! Key lifecycle through the binary: staged rotation, --now, retire, export, the running server
//! picking up changes, and the scheduled rotation.

use std::time::Duration;

use crate::backend_test;
use crate::helpers::*;
use serde_json::Value;

async fn token_kid(app: &TestApp, c: &TestClient) -> String {
    let body: Value = app.token_for(c, None).await.json().await.unwrap();
    jwt_header(body["access_token"].as_str().unwrap())["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn states(list: &Value) -> Vec<(String, String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["alg"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

backend_test!(staged_rotation_publishes_first_and_signs_later, |app| {
    let c = app.service_client();
    let old_kid = token_kid(&app, &c).await;
    let applied = app.cli_json(&["keys", "rotate", "--alg", "ES256"]);
    let new_kid = applied[0]["new_key"].as_str().unwrap().to_owned();

    let list = app.cli_json(&["keys", "list"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == new_kid.as_str())
        .unwrap();
    assert_eq!(entry["state"], "next");
    for field in [
        "kid",
        "alg",
        "state",
        "created_at",
        "activates_at",
        "retires_at",
    ] {
        assert!(entry.get(field).is_some(), "keys list --json has {field}");
    }

    // The running server publishes the new key within seconds, but keeps signing with the old one.
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.jwks_kids().await.contains(&new_kid)
        })
        .await
    );
    assert_eq!(token_kid(&app, &c).await, old_kid);

    // A second staged rotation while one is waiting is refused.
    let out = app.cli(&["keys", "rotate", "--alg", "ES256"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--now"));

    // After the JWKS max-age plus clock skew, the new key signs and the old one is still published.
    app.clock.advance(Duration::from_secs(15 * 60 + 60 + 30));
    assert_eq!(token_kid(&app, &c).await, new_kid);
    assert!(app.jwks_kids().await.contains(&old_kid));
    // It stays while tokens it signed may be valid: refresh tokens live 30 days (+ skew).
    app.clock.advance(Duration::from_secs(29 * 86_400));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.jwks_kids().await.contains(&old_kid));
    // Then it leaves the JWKS.
    app.clock.advance(Duration::from_secs(86_400 + 120));
    assert!(
        app.eventually(Duration::from_secs(5), || async {
            !app.jwks_kids().await.contains(&old_kid)
        })
        .await
    );
});

backend_test!(plan_changes_nothing, |app| {
    let before = app.cli_json(&["keys", "list"]);
    let plan = app.cli_json(&["keys", "rotate", "--plan"]);
    assert_eq!(plan.as_array().unwrap().len(), 2, "both algorithms in use");
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .all(|p| p["applied"] == false && p["new_key_signs_at"].is_string())
    );
    let after = app.cli_json(&["keys", "list"]);
    assert_eq!(states(&before), states(&after));
    // Human output too.
    let out = app.cli(&["keys", "rotate", "--plan"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("plan") && text.contains("leaves the JWKS"),
        "{text}"
    );
});

backend_test!(rotate_now_signs_at_once_and_keeps_old_tokens_valid, |app| {
    let c = app.service_client();
    let old_body: Value = app.token_for(&c, None).await.json().await.unwrap();
    let old_token = old_body["access_token"].as_str().unwrap().to_owned();
    let old_kid = jwt_header(&old_token)["kid"].as_str().unwrap().to_owned();
    let applied = app.cli_json(&["keys", "rotate", "--alg", "ES256", "--now"]);
    let new_kid = applied[0]["new_key"].as_str().unwrap().to_owned();
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            token_kid(&app, &c).await == new_kid
        })
        .await
    );
    // The old token still verifies against the served JWKS.
    verify_with_jsonwebtoken(&app, &old_token, &app.address).await;
    assert!(app.jwks_kids().await.contains(&old_kid));
});

backend_test!(
    retire_refuses_live_keys_without_now_and_removes_at_once_with_it,
    |app| {
        let c = app.service_client();
        let kid = token_kid(&app, &c).await;
        let out = app.cli(&["keys", "retire", &kid]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("still valid") && err.contains("--now"),
            "{err}"
        );

        let done = app.cli_json(&["keys", "retire", &kid, "--now"]);
        assert_eq!(done["retired"], kid.as_str());
        assert!(
            done["replacement"].is_string(),
            "an active key is replaced at once"
        );
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                !app.jwks_kids().await.contains(&kid)
            })
            .await
        );
        let new_kid = token_kid(&app, &c).await;
        assert_ne!(new_kid, kid);
        assert_eq!(Some(new_kid.as_str()), done["replacement"].as_str());

        // Unknown and already retired keys are clear errors.
        assert_eq!(app.cli(&["keys", "retire", "nope"]).status.code(), Some(1));
        // Thumbprints may start with '-'; the CLI must take them as the KID, not as a flag.
        let out = app.cli(&["keys", "retire", "-starts-with-dash"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no key with kid"));
        assert_eq!(
            app.cli(&["keys", "retire", &kid, "--now"]).status.code(),
            Some(1)
        );
    }
);

backend_test!(export_writes_public_keys_only, |app| {
    let out_dir = app.dir.path().join("export");
    let out = out_dir.to_str().unwrap();
    app.cli_json(&["keys", "export", "--format", "jwks", "--out", out]);
    let jwks = std::fs::read_to_string(out_dir.join("jwks.json")).unwrap();
    let set = sigil_verify::JwkSet::from_json(jwks.as_bytes())
        .expect("exported JWKS passes the strict parser");
    assert_eq!(set.keys.len(), 2);
    assert!(!jwks.contains("\"d\""));
    let written = app.cli_json(&["keys", "export", "--format", "pem", "--out", out]);
    let files = written["written"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let pem = std::fs::read_to_string(f.as_str().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(!pem.contains("PRIVATE"));
    }
});

backend_test!(generate_adds_an_algorithm, |app| {
    let applied = app.cli_json(&["keys", "generate", "--alg", "EdDSA"]);
    let kid = applied[0]["new_key"].as_str().unwrap().to_owned();
    let list = app.cli_json(&["keys", "list"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    assert_eq!(
        (entry["alg"].as_str(), entry["state"].as_str()),
        (Some("EdDSA"), Some("active"))
    );
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.jwks_kids().await.contains(&kid)
        })
        .await
    );
});

backend_test!(scheduled_rotation_runs_when_the_period_is_up, |app| {
    let c = app.service_client();
    let kid = token_kid(&app, &c).await;
    let count = |list: &Value| list.as_array().unwrap().len();
    assert_eq!(count(&app.cli_json(&["keys", "list"])), 2);
    // 90 days minus the activation delay: the job publishes the next keys.
    app.clock.advance(Duration::from_secs(90 * 86_400 - 900));
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            count(&app.cli_json(&["keys", "list"])) == 4
        })
        .await,
        "the rotation job created the next ES256 and RS256 keys"
    );
    assert_eq!(
        token_kid(&app, &c).await,
        kid,
        "the next key does not sign before its time"
    );
    app.clock.advance(Duration::from_secs(1000));
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            token_kid(&app, &c).await != kid
        })
        .await
    );
    // No third key appears: the rotation happened once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(count(&app.cli_json(&["keys", "list"])), 4);
});

/// Two servers on one database: the scheduled rotation happens once, not once per server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_runs_once_across_replicas() {
    let first = spawn_app(Backend::Postgres).await;
    let second = spawn_app_with(
        Backend::Postgres,
        AppOptions {
            server_database_url: Some(first.db.url.clone()),
            // Replicas share the master key (here: the one the first server generated).
            env: vec![(
                "SIGIL_MASTER_KEY".to_owned(),
                std::fs::read_to_string(first.dir.path().join("master.key"))
                    .unwrap()
                    .trim()
                    .to_owned(),
            )],
            ..AppOptions::default()
        },
    )
    .await;
    let count = || first.cli_json(&["keys", "list"]).as_array().unwrap().len();
    assert_eq!(count(), 2, "the second server found the first one's keys");
    let ahead = Duration::from_secs(90 * 86_400 - 900);
    first.clock.advance(ahead);
    second.clock.advance(ahead);
    assert!(
        first
            .eventually(Duration::from_secs(10), || async { count() == 4 })
            .await
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(), 4, "exactly one new key per algorithm");
}

backend_test!(retired_keys_are_pruned_after_retention, |app| {
    let list = app.cli_json(&["keys", "list"]);
    let kid = list[0]["kid"].as_str().unwrap().to_owned();
    app.cli_json(&["keys", "retire", &kid, "--now"]);
    let has = |kid: &str| {
        app.cli_json(&["keys", "list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(has(&kid), "kept (unpublished) during retention");
    app.clock.advance(Duration::from_secs(7 * 86_400 + 10));
    assert!(
        app.eventually(Duration::from_secs(10), || async { !has(&kid) })
            .await,
        "row deleted after retention"
    );
});
