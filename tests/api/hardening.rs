//! HTTP hardening: bounded request parsing, the security headers every response carries, the
//! redirect URIs a client may register, and CORS.

use std::time::{Duration, Instant};

use crate::flow::{
    CALLBACK, PASSWORD, authorize_url, browser, create_user, location, login, pkce, query_param,
    web_client,
};
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
    let c = web_client(&app, &[]);
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
    let c = web_client(&app, &[]);
    let p = pkce();
    // Under the length cap, over the parameter cap.
    let url = authorize_url(&app, &c.id, &p.challenge, "&")
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
    let c = web_client(app, &[]);
    let p = pkce();
    let login_page = app
        .client
        .get(authorize_url(app, &c.id, &p.challenge, ""))
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

// --- CORS --------------------------------------------------------------------------------------

const SPA: &str = "https://app.example"; // the origin of CALLBACK
const SPA_ALT: &str = "https://spa-alt.example";
const SVC: &str = "https://svc.example";
const EVIL: &str = "https://evil.example";

fn acao(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

/// A public browser app (redirect URI on https://app.example, plus a second web origin) and a
/// confidential service client with only an explicit web origin.
fn cors_clients(app: &TestApp) -> (TestClient, TestClient) {
    let spa = app.create_client(&[
        "--public",
        "--first-party",
        "--redirect-uri",
        CALLBACK,
        "--web-origin",
        SPA_ALT,
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--scope",
        "email",
    ]);
    let svc = app.create_client(&[
        "--grant",
        "client_credentials",
        "--scope",
        "invoices:read",
        "--web-origin",
        SVC,
    ]);
    (spa, svc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_answer_any_origin() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
    ] {
        let resp = app
            .client
            .get(format!("{}{path}", app.address))
            .header("origin", EVIL)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(acao(&resp).as_deref(), Some("*"), "{path}");
        assert!(
            resp.headers()
                .get("access-control-allow-credentials")
                .is_none(),
            "{path}: never with credentials"
        );
        let pre = preflight(&app, path, EVIL, "GET").await;
        assert!(
            pre.status().is_success(),
            "{path}: preflight {}",
            pre.status()
        );
        assert_eq!(acao(&pre).as_deref(), Some("*"), "{path}: preflight");
        let methods = pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(methods.contains("GET"), "{path}: {methods}");
    }
    let jwks = app
        .client
        .get(format!("{}/jwks.json", app.address))
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    let exposed = jwks.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag"),
        "a browser may revalidate with the ETag"
    );
}

backend_test!(
    preflight_on_token_endpoints_answers_only_registered_web_origins,
    |app| {
        let (_spa, _svc) = cors_clients(&app);
        // The running server learns of new clients through its sync job; the two clients may
        // arrive in different sync rounds, so wait for both.
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                acao(&preflight(&app, "/token", SPA, "POST").await).as_deref() == Some(SPA)
                    && acao(&preflight(&app, "/token", SVC, "POST").await).as_deref() == Some(SVC)
            })
            .await,
            "a redirect URI's origin is a web origin by default, and --web-origin adds one"
        );
        for path in ["/token", "/userinfo", "/revoke", "/introspect"] {
            for origin in [SPA, SPA_ALT, SVC] {
                let pre = preflight(&app, path, origin, "POST").await;
                assert!(
                    pre.status().is_success(),
                    "{path} {origin}: {}",
                    pre.status()
                );
                assert_eq!(acao(&pre).as_deref(), Some(origin), "{path} {origin}");
                let h = |n: &str| {
                    pre.headers()
                        .get(n)
                        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
                };
                assert!(
                    h("access-control-allow-methods").unwrap().contains("post"),
                    "{path}"
                );
                let allowed = h("access-control-allow-headers").unwrap();
                assert!(
                    allowed.contains("authorization") && allowed.contains("content-type"),
                    "{path}: {allowed}"
                );
                assert!(
                    h("vary").unwrap().contains("origin"),
                    "{path}: Vary: Origin"
                );
                assert!(
                    h("access-control-max-age").is_some(),
                    "{path}: preflight is cacheable"
                );
            }
            for origin in [
                EVIL,
                "null",
                "https://app.example.evil.example",
                "http://app.example",
            ] {
                let pre = preflight(&app, path, origin, "POST").await;
                assert_eq!(acao(&pre), None, "{path}: {origin} is not registered");
            }
        }
        // A deleted client's origins stop being answered.
        let clients = app.cli_json(&["clients", "list"]);
        for c in clients.as_array().unwrap() {
            let id = c["client_id"].as_str().unwrap();
            assert!(app.cli(&["clients", "delete", id]).status.success());
        }
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                acao(&preflight(&app, "/token", SPA, "POST").await).is_none()
            })
            .await,
            "origins of deleted clients are forgotten"
        );
    }
);

backend_test!(
    token_endpoints_answer_the_origin_only_for_its_own_client,
    |app| {
        let (spa, svc) = cors_clients(&app);
        create_user(&app, "cora");
        let secret = svc.secret.clone().unwrap();

        // client_credentials from the service's own origin: allowed; from another client's: not.
        for (origin, expected) in [(SVC, Some(SVC)), (SPA, None), (EVIL, None)] {
            let resp = app
                .client
                .post(format!("{}/token", app.address))
                .header("origin", origin)
                .basic_auth(&svc.id, Some(&secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(acao(&resp).as_deref(), expected, "/token from {origin}");
            if expected.is_some() {
                let vary = resp.headers()["vary"]
                    .to_str()
                    .unwrap()
                    .to_ascii_lowercase();
                assert!(vary.contains("origin"));
            }
        }
        // An unauthenticated request is answered without CORS headers.
        let resp = app
            .client
            .post(format!("{}/token", app.address))
            .header("origin", SPA)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "sgl_nobody"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(acao(&resp), None);

        // The public app: code + PKCE from its own origin.
        let p = pkce();
        let b = browser();
        let url = authorize_url(&app, &spa.id, &p.challenge, "");
        let done = login(&app, &b, &url, "cora", PASSWORD).await;
        assert_eq!(done.status(), 303);
        let code = query_param(&location(&done), "code").unwrap();
        let resp = app
            .client
            .post(format!("{}/token", app.address))
            .header("origin", SPA)
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", spa.id.as_str()),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", p.verifier.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(acao(&resp).as_deref(), Some(SPA));
        let tokens: Value = resp.json().await.unwrap();
        let at = tokens["access_token"].as_str().unwrap().to_owned();

        // /userinfo: the token's client decides.
        for (origin, expected) in [(SPA, Some(SPA)), (SPA_ALT, Some(SPA_ALT)), (SVC, None)] {
            let resp = app
                .client
                .get(format!("{}/userinfo", app.address))
                .header("origin", origin)
                .bearer_auth(&at)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(acao(&resp).as_deref(), expected, "/userinfo from {origin}");
        }
        // /introspect by the service from its origin; /revoke by the app from its origin.
        let resp = app
            .client
            .post(format!("{}/introspect", app.address))
            .header("origin", SVC)
            .basic_auth(&svc.id, Some(&secret))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(acao(&resp).as_deref(), Some(SVC));
        for (origin, expected) in [(SVC, None), (SPA, Some(SPA))] {
            let resp = app
                .client
                .post(format!("{}/revoke", app.address))
                .header("origin", origin)
                .form(&[("token", at.as_str()), ("client_id", spa.id.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(acao(&resp).as_deref(), expected, "/revoke from {origin}");
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_the_login_form_and_pages_send_no_cors_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let (spa, _svc) = cors_clients(&app);
    let p = pkce();
    let url = authorize_url(&app, &spa.id, &p.challenge, "");
    // Once the server knows the origin, /token answers it; the pages still do not.
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            acao(&preflight(&app, "/token", SPA, "POST").await).is_some()
        })
        .await
    );
    let page = app
        .client
        .get(&url)
        .header("origin", SPA)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(acao(&page), None, "login page");
    for (path, method) in [
        ("/authorize", "GET"),
        ("/authorize", "POST"),
        ("/login", "POST"),
        ("/consent", "POST"),
        ("/logout", "GET"),
        ("/assets/sigil.css", "GET"),
        ("/metrics", "GET"),
    ] {
        let pre = preflight(&app, path, SPA, method).await;
        assert_eq!(acao(&pre), None, "preflight {method} {path}");
        assert!(
            pre.headers().get("access-control-allow-methods").is_none(),
            "preflight {method} {path}"
        );
    }
    let form = app
        .client
        .post(format!("{}/login", app.address))
        .header("origin", SPA)
        .form(&[
            ("authz", "x"),
            ("csrf", "y"),
            ("username", "u"),
            ("password", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&form), None, "login form POST");
}

backend_test!(web_origins_are_registered_checked_and_shown, |app| {
    let c = app.create_client(&[
        "--public",
        "--redirect-uri",
        "com.example.app:/cb",
        "--web-origin",
        "https://spa.example:8443",
        "--web-origin",
        "http://localhost:5173",
    ]);
    let shown = app.cli_json(&["clients", "show", &c.id]);
    assert_eq!(
        shown["web_origins"],
        serde_json::json!(["http://localhost:5173", "https://spa.example:8443"]),
        "{shown}"
    );
    for bad in [
        "*",
        "null",
        "https://spa.example/",
        "https://spa.example/app",
        "https://spa.example?x",
        "https://user@spa.example",
        "http://spa.example",
        "javascript:alert(1)",
        "com.example.app:",
    ] {
        let out = app.cli(&[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--web-origin",
            bad,
        ]);
        assert!(!out.status.success(), "{bad} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--web-origin"), "{bad}: {stderr}");
    }
});

backend_test!(
    clients_update_adds_and_removes_a_web_origin_without_a_new_id,
    |app| {
        const LATER: &str = "https://later.example";
        let (spa, _svc) = cors_clients(&app);
        let before = app.cli_json(&["clients", "show", &spa.id]);
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                acao(&preflight(&app, "/token", SPA, "POST").await).as_deref() == Some(SPA)
            })
            .await,
            "the server knows the client"
        );
        assert_eq!(acao(&preflight(&app, "/token", LATER, "POST").await), None);

        let out = app.cli(&["clients", "update", &spa.id, "--add-web-origin", LATER]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            app.eventually(Duration::from_secs(15), || async {
                acao(&preflight(&app, "/token", LATER, "POST").await).as_deref() == Some(LATER)
            })
            .await,
            "an origin added with clients update is answered"
        );
        let after = app.cli_json(&["clients", "show", &spa.id]);
        assert_eq!(after["client_id"], before["client_id"], "the same client");

        let out = app.cli(&["clients", "update", &spa.id, "--remove-web-origin", LATER]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            app.eventually(Duration::from_secs(15), || async {
                acao(&preflight(&app, "/token", LATER, "POST").await).is_none()
            })
            .await,
            "a removed origin is no longer answered"
        );
        // Removing what is not registered, or a malformed origin, is an error that names it.
        let out = app.cli(&["clients", "update", &spa.id, "--remove-web-origin", LATER]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--remove-web-origin"));
        let out = app.cli(&[
            "clients",
            "update",
            &spa.id,
            "--add-web-origin",
            "https://x.example/path",
        ]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--add-web-origin"));
    }
);
