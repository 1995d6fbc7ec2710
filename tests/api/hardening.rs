//! HTTP hardening: bounded request parsing, the security headers every response carries, the
//! redirect URIs a client may register, and CORS.

use std::time::{Duration, Instant};

use crate::helpers::*;
use serde_json::Value;

// --- Bounded parsing -------------------------------------------------------------------------

/// `n` distinct parameters: `p0=x&p1=x&...`.
fn many_params(n: usize) -> String {
    (0..n)
        .map(|i| format!("p{i}=x"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_kb_authorize_query_is_refused_quickly_with_sigils_error_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let c = crate::login::web_client(&app, &[]);
    let mut query = format!(
        "response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&",
        c.id
    );
    // 60 KB (the most an `http::Uri` holds is 64 KiB).
    let mut i = 0;
    while query.len() < 60_000 {
        query.push_str(&format!("p{i}=x&"));
        i += 1;
    }
    let started = Instant::now();
    let resp = app.get(&format!("/authorize?{query}")).await;
    let took = started.elapsed();
    assert_eq!(
        resp.status(),
        414,
        "an over-long /authorize query is refused"
    );
    assert!(
        resp.headers().get("location").is_none(),
        "no redirect: the client is not trusted yet"
    );
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "Sigil's own error page"
    );
    assert!(took < Duration::from_millis(500), "refused in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorize_query_of_many_small_parameters_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let c = crate::login::web_client(&app, &[]);
    let p = crate::login::pkce();
    // Under the length cap, over the parameter cap.
    let url = crate::login::authorize_url(&app, &c.id, &p.challenge, "&")
        + &(0..300)
            .map(|i| format!("{i}="))
            .collect::<Vec<_>>()
            .join("&");
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_form_with_too_many_parameters_is_an_rfc6749_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let c = app.service_client();
    let body = format!("grant_type=client_credentials&{}", many_params(1_000));
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "invalid_request", "{json}");
    assert!(json["error_description"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_form_with_an_over_long_parameter_name_is_an_rfc6749_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let c = app.service_client();
    let body = format!("grant_type=client_credentials&{}=1", "k".repeat(1_000));
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json["error"], "invalid_request", "{json}");
}

// --- Security headers on every response ------------------------------------------------------

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// GET each kind of response: JSON, an HTML page, an HTML error page, a 404, /metrics and an
/// OAuth JSON error.
async fn every_kind_of_response(app: &TestApp) -> Vec<(&'static str, bool, reqwest::Response)> {
    let c = crate::login::web_client(app, &[]);
    let p = crate::login::pkce();
    let login_page = app
        .client
        .get(crate::login::authorize_url(app, &c.id, &p.challenge, ""))
        .send()
        .await
        .unwrap();
    let token_error = app.post_token(&[("grant_type", "password")], None).await;
    vec![
        (
            "discovery",
            false,
            app.get("/.well-known/openid-configuration").await,
        ),
        ("jwks", false, app.get("/jwks.json").await),
        ("login page", true, login_page),
        (
            "error page",
            true,
            app.get("/authorize?client_id=nobody").await,
        ),
        ("404", false, app.get("/no/such/path").await),
        ("metrics", false, app.get("/metrics").await),
        ("token error", false, token_error),
        ("healthz", false, app.get("/healthz").await),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_is_nosniff_and_pages_are_cross_origin_isolated_without_hsts_on_http() {
    let app = spawn_app(Backend::Sqlite).await;
    for (what, html, resp) in every_kind_of_response(&app).await {
        assert_eq!(
            header(&resp, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            header(&resp, "strict-transport-security"),
            None,
            "{what}: http issuer"
        );
        if html {
            assert_eq!(
                header(&resp, "cross-origin-opener-policy"),
                Some("same-origin"),
                "{what}"
            );
        } else {
            assert_eq!(header(&resp, "cross-origin-opener-policy"), None, "{what}");
        }
        assert_eq!(
            resp.headers()
                .get_all("x-content-type-options")
                .iter()
                .count(),
            1,
            "{what}: one header, not one per layer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_https_issuer_every_response_carries_hsts() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![("SIGIL_ISSUER".into(), "https://id.example".into())],
            ..Default::default()
        },
    )
    .await;
    for (what, html, resp) in every_kind_of_response(&app).await {
        assert_eq!(
            header(&resp, "x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            header(&resp, "strict-transport-security"),
            Some("max-age=31536000"),
            "{what}"
        );
        if html {
            assert_eq!(
                header(&resp, "cross-origin-opener-policy"),
                Some("same-origin"),
                "{what}"
            );
        }
    }
}

// --- Redirect URIs at registration -----------------------------------------------------------

use crate::backend_test;

fn register(app: &TestApp, uri: &str) -> std::process::Output {
    app.cli(&[
        "clients",
        "create",
        "--name",
        "app",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        uri,
    ])
}

backend_test!(
    redirect_uris_that_only_look_like_loopback_or_https_are_refused,
    |app| {
        for uri in [
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.nip.io/cb",
            "http://localhost@evil.example/cb",
            "https://user:pw@app.example/cb",
            "https://app.example@evil.example/cb",
            "http://[::1].evil.example/cb",
            "http://127.0.0.2/cb",
            "http://app.example/cb",
            "file:///etc/passwd",
            "vbscript:x",
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "blob:https://app.example/uuid",
            "ftp://app.example/cb",
            "ws://app.example/cb",
            "myapp:/cb",
            "https://app.example/cb#frag",
            "https://app.example/cb#",
            "/relative/cb",
            "https:///cb",
            "https://app example/cb",
        ] {
            let out = register(&app, uri);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{uri} must be refused");
            assert!(
                stderr.contains("--redirect-uri") && stderr.contains("redirect URI"),
                "{uri}: the message names the flag and says why: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{uri}: {stderr}");
        }
        let listed = app.cli_json(&["clients", "list"]);
        assert_eq!(
            listed.as_array().map(Vec::len),
            Some(0),
            "nothing registered"
        );
    }
);

backend_test!(
    https_loopback_and_private_use_redirect_uris_keep_working,
    |app| {
        for uri in [
            "https://app.example/cb",
            "https://app.example:8443/cb?tenant=a",
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:5173/callback",
            "com.example.app:/cb",
            "com.example.app:/oauth2redirect/example-provider",
        ] {
            let out = register(&app, uri);
            assert!(
                out.status.success(),
                "{uri} must be accepted: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json = app.cli_json(&["clients", "list"]);
            let registered: Vec<String> = json
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["redirect_uris"].as_array().cloned().unwrap_or_default())
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect();
            assert!(
                registered.iter().any(|r| r == uri),
                "{uri} is stored exactly as given: {registered:?}"
            );
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_logout_redirect_uri_follows_the_same_rules() {
    let app = spawn_app(Backend::Sqlite).await;
    let out = app.cli(&[
        "clients",
        "create",
        "--name",
        "app",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
        "--post-logout-redirect-uri",
        "http://localhost.evil.example/bye",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--post-logout-redirect-uri"));
}

#[test]
fn an_issuer_with_userinfo_query_or_fragment_is_refused() {
    for issuer in [
        "https://user@id.example",
        "https://user:pw@id.example",
        "ftp://id.example",
        "https://id.example/#x",
        "https://id.example?x=1",
        "javascript:alert(1)",
    ] {
        let env = vec![
            ("SIGIL_DATA_DIR".to_owned(), "/nonexistent".to_owned()),
            ("SIGIL_ISSUER".to_owned(), issuer.to_owned()),
        ];
        let result = sigil::config::Settings::load(None, env, &sigil::config::Overrides::default());
        assert!(result.is_err(), "issuer {issuer} must be refused");
    }
    for issuer in [
        "https://id.example",
        "https://id.example/t/acme",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://sigil:8080",
    ] {
        let env = vec![
            ("SIGIL_DATA_DIR".to_owned(), "/nonexistent".to_owned()),
            ("SIGIL_ISSUER".to_owned(), issuer.to_owned()),
        ];
        let result = sigil::config::Settings::load(None, env, &sigil::config::Overrides::default());
        assert!(
            result.is_ok(),
            "issuer {issuer} must be accepted: {:?}",
            result.err()
        );
    }
}
