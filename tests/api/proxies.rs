//! Behind reverse proxies (`http.trusted_proxies`): the client is the right-most forwarded hop
//! that is not a trusted proxy, per-client limits count clients (IPv6 per /64), and the audit
//! trail records the client; without the setting forwarded headers are ignored.

use crate::flow::{PASSWORD, authorize_url, browser, create_user, hidden, pkce, web_client};
use crate::helpers::*;
use serde_json::Value;

/// A sign-in page's form, and a function that posts it with wrong credentials as `forwarded`.
async fn wrong_password_poster(
    app: &TestApp,
) -> (reqwest::Client, String, [(&'static str, String); 4]) {
    create_user(app, "pia");
    let c = web_client(app, &[]);
    let p = pkce();
    let b = browser();
    let html = b
        .get(authorize_url(app, &c.id, &p.challenge, ""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("authz", hidden(&html, "authz")),
        ("csrf", hidden(&html, "csrf")),
        ("username", "pia".to_owned()),
        ("password", format!("not {PASSWORD}")),
    ];
    (b, format!("{}/login", app.address), form)
}

/// Post the sign-in form as the client `forwarded`; a refused sign-in renders a new page (with
/// a new binding cookie), whose form the next post uses.
async fn post_as(
    b: &reqwest::Client,
    url: &str,
    form: &mut [(&'static str, String); 4],
    forwarded: &str,
) -> u16 {
    let resp = b
        .post(url)
        .header("x-forwarded-for", forwarded)
        .form(&*form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let html = resp.text().await.unwrap();
    if status == 401 {
        form[0].1 = hidden(&html, "authz");
        form[1].1 = hidden(&html, "csrf");
    }
    assert!(status == 401 || status == 429, "{status}: {html}");
    status
}

fn env(trusted: Option<&str>) -> AppOptions {
    let mut env = vec![(
        "SIGIL_PASSWORDS_MAX_LOGINS_PER_IP_MINUTE".to_owned(),
        "2".to_owned(),
    )];
    if let Some(t) = trusted {
        env.push(("SIGIL_HTTP_TRUSTED_PROXIES".to_owned(), t.to_owned()));
    }
    AppOptions {
        env,
        ..AppOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_limits_count_clients_and_the_audit_names_them() {
    let app = spawn_app_with(Backend::Sqlite, env(Some("10.0.0.0/8, 127.0.0.1/32"))).await;
    let (b, url, mut form) = wrong_password_poster(&app).await;
    // The client wrote the left-most hop itself; it proves nothing.
    let first = "6.6.6.6, 203.0.113.9, 10.1.2.3";
    assert_eq!(post_as(&b, &url, &mut form, first).await, 401);
    assert_eq!(
        post_as(&b, &url, &mut form, "7.7.7.7, 203.0.113.9").await,
        401
    );
    assert_eq!(
        post_as(&b, &url, &mut form, "203.0.113.9").await,
        429,
        "the same client behind the proxy, whatever it wrote"
    );
    assert_eq!(
        post_as(&b, &url, &mut form, "198.51.100.7").await,
        401,
        "another client has its own limit"
    );
    // One IPv6 host holds a /64: its addresses share a bucket.
    assert_eq!(post_as(&b, &url, &mut form, "2001:db8:1:2::1").await, 401);
    assert_eq!(post_as(&b, &url, &mut form, "2001:db8:1:2::2").await, 401);
    assert_eq!(
        post_as(&b, &url, &mut form, "2001:db8:1:2:ffff::3").await,
        429
    );
    assert_eq!(post_as(&b, &url, &mut form, "2001:db8:1:3::1").await, 401);

    let events = app.cli_json(&["audit", "tail", "-n", "100"]);
    let ips: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "login.failure")
        .map(|e| e["details"]["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips[0], "203.0.113.9", "the client, not the proxy: {events}");
    assert!(!ips.contains(&"127.0.0.1"), "{ips:?}");
    assert!(!ips.contains(&"6.6.6.6"), "{ips:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trusted_proxies_forwarded_headers_are_ignored() {
    let app = spawn_app_with(Backend::Sqlite, env(None)).await;
    let (b, url, mut form) = wrong_password_poster(&app).await;
    assert_eq!(post_as(&b, &url, &mut form, "203.0.113.1").await, 401);
    assert_eq!(post_as(&b, &url, &mut form, "203.0.113.2").await, 401);
    assert_eq!(
        post_as(&b, &url, &mut form, "203.0.113.3").await,
        429,
        "every request is the TCP peer's"
    );
    let events: Value = app.cli_json(&["audit", "tail", "-n", "100"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "login.failure")
            .all(|e| e["details"]["ip"] == "127.0.0.1"),
        "{events}"
    );
}
