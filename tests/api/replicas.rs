//! Several servers on one database (and Redis): each step of a flow sent to a different
//! replica, and the same request raced at two replicas at once. Run on PostgreSQL alone and on
//! PostgreSQL + Redis (`replica_test!`); SQLite is one server.

use crate::flow::{
    PASSWORD, authorize_url, browser, code_tokens, create_user, exchange_code, hidden, location,
    pkce, query_param, refresh, web_client,
};
use crate::helpers::*;
use crate::replica_test;
use crate::token::private_key_jwt::{assertion, client_with_key};
use serde_json::Value;

fn refresh_client(app: &TestApp) -> TestClient {
    web_client(app, &["--grant", "refresh_token"])
}

/// A code for `user` from the browser `b` (which signs in on `at` the first time, then answers
/// from its session).
async fn code(at: &TestApp, c: &TestClient, user: &str, b: &reqwest::Client) -> (String, String) {
    let p = pkce();
    let url = authorize_url(at, &c.id, &p.challenge, "");
    let resp = b.get(&url).send().await.unwrap();
    let resp = if resp.status() == 303 {
        resp
    } else {
        let html = resp.text().await.unwrap();
        b.post(format!("{}/login", at.address))
            .form(&[
                ("authz", hidden(&html, "authz")),
                ("csrf", hidden(&html, "csrf")),
                ("username", user.to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(resp.status(), 303);
    (query_param(&location(&resp), "code").unwrap(), p.verifier)
}

replica_test!(each_step_on_another_replica, |app| {
    create_user(&app, "nia");
    let c = refresh_client(&app);
    let b_server = spawn_replica(&app).await;
    // A code issued by one server is redeemed at the other (single redemption across
    // replicas is the race test below; a replay would revoke what the code issued).
    let b = browser();
    let (code1, verifier) = code(&app, &c, "nia", &b).await;
    let resp = exchange_code(&b_server, &c, &code1, &verifier).await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    // Rotation on one, reuse detected on the other.
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (s, next) = refresh(&app, &c, &rt0, None).await;
    assert_eq!(s, 200, "{next}");
    let rt1 = next["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&b_server, &c, &rt1, None).await.0, 200);
    assert_eq!(refresh(&b_server, &c, &rt0, None).await.0, 400, "reuse");
    assert_eq!(
        refresh(&app, &c, &rt1, None).await.0,
        400,
        "the family is revoked"
    );

    // A lockout earned on one server holds on the other.
    create_user(&app, "oto");
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let guesser = browser();
    for i in 0..5 {
        let on = if i % 2 == 0 { &app } else { &b_server };
        let html = guesser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let status = guesser
            .post(format!("{}/login", on.address))
            .form(&[
                ("authz", hidden(&html, "authz")),
                ("csrf", hidden(&html, "csrf")),
                ("username", "oto".to_owned()),
                ("password", "not the password!".to_owned()),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let html = guesser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let locked = guesser
        .post(format!("{}/login", b_server.address))
        .form(&[
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", "oto".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 401, "locked on every replica");

    // A client assertion accepted by one server is a replay at the other.
    let (pc, key) = client_with_key(&app);
    let a = assertion(
        &key,
        &pc.id,
        &format!("{}/token", app.address),
        "jti-r1",
        60,
    );
    let form = |a: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion".to_owned(), a.to_owned()),
        ]
    };
    let first = app
        .client
        .post(format!("{}/token", app.address))
        .form(&form(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "{}", first.text().await.unwrap());
    let replay = b_server
        .client
        .post(format!("{}/token", b_server.address))
        .form(&form(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a replay at another replica");
});

/// The races send 2000 token requests in well under a minute; the per-client limit
/// (`rate_limits.token_per_client`, 500/1m by default) would answer 429 to both, which is not
/// what the races test.
/// The replica gets the same setting as the first server (`env:` below).
fn race_limits() -> Vec<(String, String)> {
    vec![(
        "SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT".to_owned(),
        "100000/1m".to_owned(),
    )]
}

replica_test!(
    a_refresh_token_raced_at_two_replicas_has_one_successor,
    env: [("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "100000/1m")],
    |app| {
        create_user(&app, "pax");
        let c = refresh_client(&app);
        let other = spawn_replica_with(&app, race_limits()).await;
        let tokens = code_tokens(&app, &c, "pax", "openid", &browser()).await;
        let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
        let trials = 1000;
        for trial in 0..trials {
            let (a, b) = tokio::join!(refresh(&app, &c, &rt, None), refresh(&other, &c, &rt, None));
            let successors: Vec<&str> = [&a, &b]
                .iter()
                .filter(|(s, _)| *s == 200)
                .map(|(_, body)| body["refresh_token"].as_str().unwrap())
                .collect();
            // The same successor (its id); the two JWTs differ in their signatures.
            let ids: Vec<Value> = successors
                .iter()
                .map(|t| jwt_payload(t)["jti"].clone())
                .collect();
            assert!(!successors.is_empty(), "trial {trial}: {a:?} {b:?}");
            assert!(
                ids.windows(2).all(|w| w[0] == w[1]),
                "trial {trial}: two different successors: {ids:?}"
            );
            rt = successors[0].to_owned();
        }
    }
);

replica_test!(
    a_code_raced_at_two_replicas_is_redeemed_once,
    env: [("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "100000/1m")],
    |app| {
    create_user(&app, "quin");
    let c = web_client(&app, &[]);
    let other = spawn_replica_with(&app, race_limits()).await;
    let b = browser();
    let trials = 1000;
    for trial in 0..trials {
        let (code, verifier) = code(&app, &c, "quin", &b).await;
        let (x, y) = tokio::join!(
            exchange_code(&app, &c, &code, &verifier),
            exchange_code(&other, &c, &code, &verifier)
        );
        let ok = [x.status(), y.status()]
            .iter()
            .filter(|s| **s == 200)
            .count();
        assert_eq!(ok, 1, "trial {trial}: {} and {}", x.status(), y.status());
    }
});
