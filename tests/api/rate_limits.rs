//! Rate limits (`[rate_limits]`): the `X-RateLimit-*` headers on every limited endpoint, 429 with
//! `Retry-After` and `slow_down` over a limit, failed client authentication refused before its
//! secret is checked, limits lowered through settings and recovering with time, per-address
//! classes per client behind a trusted proxy, and the counts every replica shares.

use std::time::{Duration, Instant};

use crate::backend_test;
use crate::flow::{
    PASSWORD, authorize_url, browser, code_tokens, create_user, login, pkce, web_client,
};
use crate::helpers::*;
use serde_json::Value;

/// `X-RateLimit-Limit`, `-Remaining` and `-Reset` of a response (each must be there).
fn limits_of(resp: &reqwest::Response) -> (u64, u64, i64) {
    let header = |name: &str| -> String {
        resp.headers()
            .get(name)
            .unwrap_or_else(|| panic!("{name} on {} {:?}", resp.url(), resp.status()))
            .to_str()
            .unwrap()
            .to_owned()
    };
    (
        header("x-ratelimit-limit").parse().unwrap(),
        header("x-ratelimit-remaining").parse().unwrap(),
        header("x-ratelimit-reset").parse().unwrap(),
    )
}

/// `X-RateLimit-Limit` and `-Remaining`.
fn left(resp: &reqwest::Response) -> (u64, u64) {
    let (limit, remaining, _) = limits_of(resp);
    (limit, remaining)
}

/// Check a 429 in the RFC 6749 shape: `slow_down`, `Retry-After` of 1 to `max` seconds, nothing
/// left.
async fn assert_slow_down(resp: reqwest::Response, max: u64) {
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&retry), "Retry-After {retry}");
    assert_eq!(limits_of(&resp).1, 0);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "slow_down", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

fn wrong(c: &TestClient) -> TestClient {
    TestClient {
        id: c.id.clone(),
        secret: Some("sigil_secret_not_the_right_one".to_owned()),
    }
}

async fn post_form(
    app: &TestApp,
    path: &str,
    c: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn userinfo(
    app: &TestApp,
    token: Option<&str>,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.get(format!("{}/userinfo", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

backend_test!(every_limited_endpoint_carries_the_headers, |app| {
    let now = unix_now_real();
    let in_period = |reset: i64, period: i64| {
        assert!(
            (now..=now + period + 2).contains(&reset),
            "reset {reset}, now {now}"
        );
    };
    // Before anything else from this address failed: the failures of an unidentified client.
    let resp = userinfo(&app, None, None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(left(&resp), (100, 99), "rate_limits.failures_per_ip");
    in_period(limits_of(&resp).2, 900);

    let c = app.service_client();
    let resp = app.token_for(&c, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(left(&resp), (500, 499), "rate_limits.token_per_client");
    in_period(limits_of(&resp).2, 60);
    let token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let resp = app.token_for(&wrong(&c), None).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        left(&resp),
        (20, 19),
        "rate_limits.client_auth_failures_per_ip"
    );
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let resp = post_form(&app, "/introspect", &c, &[("token", &token)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        left(&resp),
        (3000, 2999),
        "rate_limits.introspect_per_client"
    );
    let resp = post_form(&app, "/introspect", &wrong(&c), &[("token", &token)]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(left(&resp), (20, 18), "the address's second failure");
    let resp = post_form(&app, "/revoke", &c, &[("token", &token)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(left(&resp), (1000, 999), "rate_limits.revoke_per_client");
    // A malformed request before anyone is identified is the address's failure.
    let resp = app.post_token(&[("grant_type", "password")], None).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(left(&resp), (100, 98));

    create_user(&app, "lena");
    let web = web_client(&app, &[]);
    let tokens = code_tokens(&app, &web, "lena", "openid", &browser()).await;
    let resp = userinfo(&app, tokens["access_token"].as_str(), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(left(&resp), (120, 119), "rate_limits.userinfo_per_subject");

    // The login form: every post counts (the sign-in above was the first).
    let p = pkce();
    let url = authorize_url(&app, &web.id, &p.challenge, "");
    let resp = login(&app, &browser(), &url, "lena", "not the password").await;
    assert_eq!(resp.status(), 401);
    assert_eq!(left(&resp), (30, 28), "rate_limits.login_per_ip");
    in_period(limits_of(&resp).2, 60);
    let resp = login(&app, &browser(), &url, "lena", PASSWORD).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(left(&resp), (30, 27));
});

backend_test!(
    the_21st_wrong_secret_is_refused_and_then_the_right_one_too,
    |app| {
        let c = app.service_client();
        let unknown = || TestClient {
            id: "sgl_no_such_client".to_owned(),
            secret: Some("sigil_secret_whatever".to_owned()),
        };
        let started = Instant::now();
        let mut statuses = Vec::new();
        for i in 0..41 {
            // Unknown clients and wrong secrets count alike.
            let who = if i % 2 == 0 { wrong(&c) } else { unknown() };
            let resp = app.token_for(&who, None).await;
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 && !statuses[..i].contains(&429) {
                assert_slow_down(resp, 3).await;
                // Refused before the secret is checked: the right one fares no better now.
                assert_slow_down(app.token_for(&c, None).await, 3).await;
            }
        }
        // A slot frees every 3 s: a slow run may let one more through per 3 s, never the 40
        // that used to be answered 401.
        let slack = started.elapsed().as_secs() / 3;
        let first = statuses.iter().position(|s| *s == 429);
        assert!(
            first.is_some_and(|f| (20..=20 + slack as usize).contains(&f)),
            "{statuses:?}"
        );
        assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
        let answered = statuses.iter().filter(|s| **s == 401).count() as u64;
        assert!(answered <= 20 + slack, "{statuses:?}");
        let refused = metric(
            &app,
            r#"sigil_rate_limited_total{class="client_auth_failures_per_ip"}"#,
        )
        .await;
        assert!(refused >= 2.0, "{refused}");
        // Once the limit frees, the right secret gets its token.
        app.clock.advance(Duration::from_secs(61));
        assert_eq!(app.token_for(&c, None).await.status(), 200);
    }
);

backend_test!(
    a_lowered_token_limit_refuses_the_fourth_and_recovers_after_the_period,
    env: [("SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT", "3/1m")],
    |app| {
        let c = app.service_client();
        let other = app.service_client();
        for remaining in [2, 1, 0] {
            let resp = app.token_for(&c, None).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(left(&resp), (3, remaining));
        }
        // One slot every 20 s.
        assert_slow_down(app.token_for(&c, None).await, 20).await;
        assert_eq!(
            metric(&app, r#"sigil_rate_limited_total{class="token_per_client"}"#).await,
            1.0
        );
        assert_eq!(
            app.token_for(&other, None).await.status(),
            200,
            "each client its own count"
        );
        app.clock.advance(Duration::from_secs(60));
        let resp = app.token_for(&c, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(left(&resp), (3, 2), "the whole limit again");
    }
);

backend_test!(
    per_address_classes_count_clients_behind_a_trusted_proxy,
    env: [
        ("SIGIL_HTTP_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP", "2/1m"),
        ("SIGIL_RATE_LIMITS_FAILURES_PER_IP", "2/15m"),
    ],
    |app| {
        let c = app.service_client();
        let token_as = async |who: &TestClient, forwarded: &str| {
            app.client
                .post(format!("{}/token", app.address))
                .basic_auth(&who.id, who.secret.as_deref())
                .header("x-forwarded-for", forwarded)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        };
        let (a, b) = ("203.0.113.5", "198.51.100.7");
        for _ in 0..2 {
            assert_eq!(token_as(&wrong(&c), a).await.status(), 401);
        }
        assert_slow_down(token_as(&wrong(&c), a).await, 30).await;
        // What the client wrote left of our proxy's hop proves nothing.
        assert_slow_down(token_as(&c, &format!("10.9.9.9, {a}")).await, 30).await;
        assert_eq!(token_as(&wrong(&c), b).await.status(), 401, "another client");
        assert_eq!(token_as(&c, b).await.status(), 200);
        // One IPv6 host holds a /64.
        assert_eq!(token_as(&wrong(&c), "2001:db8:5::1").await.status(), 401);
        assert_eq!(token_as(&wrong(&c), "2001:db8:5::2").await.status(), 401);
        assert_eq!(token_as(&wrong(&c), "2001:db8:5::3").await.status(), 429);
        assert_eq!(token_as(&wrong(&c), "2001:db8:6::1").await.status(), 401);

        // The failures of unidentified clients, per address too.
        for _ in 0..2 {
            assert_eq!(userinfo(&app, None, Some(a)).await.status(), 401);
        }
        assert_slow_down(userinfo(&app, Some("not.a.token"), Some(a)).await, 450).await;
        assert_eq!(userinfo(&app, None, Some(b)).await.status(), 401);
    }
);

backend_test!(
    authorize_requests_refused_on_sigils_page_count_as_failures,
    env: [("SIGIL_RATE_LIMITS_FAILURES_PER_IP", "2/15m")],
    |app| {
        let web = web_client(&app, &[]);
        let p = pkce();
        let bad = authorize_url(&app, "sgl_nobody", &p.challenge, "");
        for _ in 0..2 {
            let resp = app.client.get(&bad).send().await.unwrap();
            assert_eq!(resp.status(), 400);
        }
        let resp = app.client.get(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 429);
        assert!(resp.headers().contains_key("retry-after"));
        assert_eq!(limits_of(&resp).1, 0);
        let html = resp.text().await.unwrap();
        assert!(html.contains("slow_down") && html.contains("<html"), "{html}");
        // Failures only: a good request still gets its sign-in page.
        let good = authorize_url(&app, &web.id, &p.challenge, "");
        assert_eq!(app.client.get(&good).send().await.unwrap().status(), 200);
    }
);

backend_test!(
    a_global_limit_counts_every_request_of_an_endpoint,
    env: [("SIGIL_RATE_LIMITS_GLOBAL", "3/1m")],
    |app| {
        let (c, d) = (app.service_client(), app.service_client());
        assert_eq!(app.token_for(&c, None).await.status(), 200);
        assert_eq!(app.token_for(&d, None).await.status(), 200);
        let resp = app.token_for(&wrong(&c), None).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(left(&resp), (3, 0), "the tightest limit is shown");
        assert_slow_down(app.token_for(&d, None).await, 20).await;
        // Each endpoint has its own count.
        assert_eq!(userinfo(&app, None, None).await.status(), 401);
    }
);

/// Two servers on one database (and Redis): failure limits and the login form's count are
/// shared; per-client limits are each process's unless `share_principal_limits` is set.
async fn replicas_share_the_counts(backend: Backend) {
    let env = vec![
        (
            "SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP".to_owned(),
            "4/1m".to_owned(),
        ),
        (
            "SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT".to_owned(),
            "2/1m".to_owned(),
        ),
        (
            "SIGIL_RATE_LIMITS_LOGIN_PER_IP".to_owned(),
            "2/1m".to_owned(),
        ),
    ];
    let app = spawn_app_with(
        backend,
        AppOptions {
            env: env.clone(),
            ..AppOptions::default()
        },
    )
    .await;
    let replica = spawn_replica_with(&app, env.clone()).await;
    // Per process by default: each server allows the client its 2.
    let d = app.service_client();
    for server in [&app, &app, &replica, &replica] {
        assert_eq!(server.token_for(&d, None).await.status(), 200);
    }
    assert_slow_down(app.token_for(&d, None).await, 30).await;

    // The login form's count is shared.
    create_user(&app, "mira");
    let web = web_client(&app, &[]);
    let p = pkce();
    for server in [&app, &replica] {
        let url = authorize_url(server, &web.id, &p.challenge, "");
        let resp = login(server, &browser(), &url, "mira", "nope").await;
        assert_eq!(resp.status(), 401);
    }
    let url = authorize_url(&replica, &web.id, &p.challenge, "");
    let resp = login(&replica, &browser(), &url, "mira", PASSWORD).await;
    assert_eq!(resp.status(), 429);

    // Failed client authentication is shared (last: the address is refused from then on).
    let c = app.service_client();
    for server in [&app, &replica, &app, &replica] {
        assert_eq!(server.token_for(&wrong(&c), None).await.status(), 401);
    }
    assert_slow_down(app.token_for(&wrong(&c), None).await, 15).await;
    assert_slow_down(replica.token_for(&wrong(&c), None).await, 15).await;

    // Shared per-client limits: 2 between the two servers.
    let mut shared = env;
    shared.push((
        "SIGIL_RATE_LIMITS_SHARE_PRINCIPAL_LIMITS".to_owned(),
        "true".to_owned(),
    ));
    let app = spawn_app_with(
        backend,
        AppOptions {
            env: shared.clone(),
            ..AppOptions::default()
        },
    )
    .await;
    let replica = spawn_replica_with(&app, shared).await;
    let e = app.service_client();
    assert_eq!(app.token_for(&e, None).await.status(), 200);
    assert_eq!(replica.token_for(&e, None).await.status(), 200);
    assert_slow_down(app.token_for(&e, None).await, 30).await;
    assert_slow_down(replica.token_for(&e, None).await, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_counts_on_postgres() {
    replicas_share_the_counts(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_counts_on_postgres_with_redis() {
    replicas_share_the_counts(Backend::PostgresRedis).await;
}
