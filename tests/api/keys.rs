//! Key lifecycle through the binary: staged rotation, --now, retire, export, the running server
//! picking up changes, and the scheduled rotation.

use std::time::Duration;

use crate::backend_test;
use crate::flow::{browser, code_tokens, create_user, refresh, web_client};
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
    // It stays published while access and ID tokens it signed may be valid (10 min + skew)...
    app.clock.advance(Duration::from_secs(10 * 60 - 60));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.jwks_kids().await.contains(&old_kid));
    // ...then it leaves the JWKS (it stays in the ring for Sigil's own refresh tokens).
    app.clock.advance(Duration::from_secs(2 * 60));
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

backend_test!(the_jwks_stays_bounded_under_repeated_rotation, |app| {
    // A refresh token signed before the rotations, by the ES256 key of the day.
    create_user(&app, "rhea");
    let web = web_client(
        &app,
        &["--grant", "refresh_token", "--grant", "authorization_code"],
    );
    let tokens = code_tokens(&app, &web, "rhea", "openid", &browser()).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rt_kid = jwt_header(&rt)["kid"].as_str().unwrap().to_owned();

    let c = app.service_client();
    let rotate = || {
        app.cli_json(&["keys", "rotate", "--alg", "ES256", "--now"])[0]["new_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut current = String::new();
    for _ in 0..19 {
        current = rotate();
    }
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            token_kid(&app, &c).await == current
        })
        .await
    );
    let body: Value = app.token_for(&c, None).await.json().await.unwrap();
    let superseded = body["access_token"].as_str().unwrap().to_owned();
    current = rotate();
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            token_kid(&app, &c).await == current
        })
        .await
    );
    // An access token signed by the key superseded a moment ago verifies against the JWKS.
    verify_with_jsonwebtoken(&app, &superseded, &app.address).await;

    // Once every access and ID token they signed has expired (10 min + 60 s of skew), the 20
    // superseded keys leave the JWKS: what remains is the current ES256 key and the RS256 key.
    app.clock.advance(Duration::from_secs(10 * 60 + 60 + 30));
    assert!(
        app.eventually(Duration::from_secs(5), || async {
            app.jwks_kids().await.len() == 2
        })
        .await,
        "the JWKS is bounded: {:?}",
        app.jwks_kids().await
    );
    let kids = app.jwks_kids().await;
    assert!(kids.contains(&current), "{kids:?}");
    assert!(!kids.contains(&rt_kid), "{kids:?}");

    // The refresh token issued before the rotations still refreshes: its key is kept for
    // Sigil's own refresh tokens, unpublished.
    let (s, body) = refresh(&app, &web, &rt, None).await;
    assert_eq!(s, 200, "{body}");
    let next = body["refresh_token"].as_str().unwrap();
    assert_eq!(jwt_header(next)["kid"], current.as_str());
});

backend_test!(
    a_key_retired_while_unpublished_stops_verifying_at_once,
    |app| {
        // Two refresh tokens (two sign-ins) signed by the ES256 key of the day.
        create_user(&app, "tove");
        let web = web_client(
            &app,
            &["--grant", "refresh_token", "--grant", "authorization_code"],
        );
        let mut rts = Vec::new();
        for _ in 0..2 {
            let tokens = code_tokens(&app, &web, "tove", "openid", &browser()).await;
            rts.push(tokens["refresh_token"].as_str().unwrap().to_owned());
        }
        let old = jwt_header(&rts[0])["kid"].as_str().unwrap().to_owned();
        let current = app.cli_json(&["keys", "rotate", "--alg", "ES256", "--now"])[0]["new_key"]
            .as_str()
            .unwrap()
            .to_owned();
        app.clock.advance(Duration::from_secs(10 * 60 + 60 + 30));
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                let kids = app.jwks_kids().await;
                kids.contains(&current) && !kids.contains(&old)
            })
            .await
        );
        // Unpublished, kept: a refresh token it signed refreshes.
        let (s, body) = refresh(&app, &web, &rts[0], None).await;
        assert_eq!(s, 200, "{body}");

        // Retired (compromised): the JWKS does not change, yet the other refresh token it signed
        // is refused as soon as the server has seen the change (introspection asks the same
        // verifier, without using the token up).
        let active = || async {
            let resp = app
                .client
                .post(format!("{}/introspect", app.address))
                .basic_auth(&web.id, web.secret.as_deref())
                .form(&[("token", rts[1].as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["active"] == true
        };
        assert!(active().await, "introspection knows the kept key");
        let jwks_before = app.jwks().await;
        app.cli_json(&["keys", "retire", &old, "--now"]);
        assert!(
            app.eventually(Duration::from_secs(10), || async { !active().await })
                .await,
            "a refresh token signed by a retired key is inactive"
        );
        let (s, body) = refresh(&app, &web, &rts[1], None).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
        assert_eq!(app.jwks().await, jwks_before);
    }
);

backend_test!(keys_list_shows_a_key_kept_but_no_longer_published, |app| {
    // Access and ID tokens that live 1 s, and no clock skew: a superseded key leaves the JWKS a
    // second after it stops signing, and stays in the ring for the 30 days of refresh tokens.
    let short = [
        ("SIGIL_TOKENS_ACCESS_TOKEN_TTL", "1s"),
        ("SIGIL_KEYS_CLOCK_SKEW", "0s"),
    ];
    let cli = |args: &[&str]| {
        let out = app.cli_env(&short, args);
        assert!(
            out.status.success(),
            "sigil {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = || serde_json::from_str::<Value>(&cli(&["keys", "list", "--json"])).unwrap();
    let old = states(&list())
        .into_iter()
        .find(|(_, alg, state)| alg == "ES256" && state == "active")
        .map(|(kid, _, _)| kid)
        .unwrap();
    let applied: Value = serde_json::from_str(&cli(&[
        "keys", "rotate", "--alg", "ES256", "--now", "--json",
    ]))
    .unwrap();
    let change = applied[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kid"] == old.as_str())
        .unwrap()
        .clone();
    let (unpublished, retires) = (
        change["unpublished_at"].as_str().unwrap().to_owned(),
        change["retires_at"].as_str().unwrap().to_owned(),
    );
    assert!(unpublished < retires, "{change}");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let listed = list();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old.as_str())
        .unwrap();
    assert_eq!(
        (
            entry["state"].as_str(),
            entry["published"].as_bool(),
            entry["unpublishes_at"].as_str(),
            entry["retires_at"].as_str()
        ),
        (
            Some("retiring"),
            Some(false),
            Some(unpublished.as_str()),
            Some(retires.as_str())
        ),
        "{entry}"
    );
    let text = cli(&["keys", "list"]);
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("JWKS") && header.contains("UNPUBLISHES"),
        "{text}"
    );
    let line = text.lines().find(|l| l.starts_with(&old)).unwrap();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[2..4], ["retiring", "no"], "{text}");
    // The server agrees: gone from the JWKS.
    assert!(
        app.eventually(Duration::from_secs(5), || async {
            !app.jwks_kids().await.contains(&old)
        })
        .await
    );
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
