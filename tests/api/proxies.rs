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
        "SIGIL_RATE_LIMITS_LOGIN_PER_IP".to_owned(),
        "2/1m".to_owned(),
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

/// Open a sign-in page and post `password` for `user` as the client `forwarded`.
async fn sign_in_as(
    app: &TestApp,
    b: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    forwarded: &str,
) -> u16 {
    let html = b.get(url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("authz", hidden(&html, "authz")),
        ("csrf", hidden(&html, "csrf")),
        ("username", user.to_owned()),
        ("password", password.to_owned()),
    ];
    b.post(format!("{}/login", app.address))
        .header("x-forwarded-for", forwarded)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_locks_out_his_own_network_and_the_device_cookie_lets_the_user_in() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![
                ("SIGIL_HTTP_TRUSTED_PROXIES".into(), "127.0.0.1/32".into()),
                ("SIGIL_PASSWORDS_LOCKOUT_FAILURES".into(), "3".into()),
                (
                    "SIGIL_PASSWORDS_LOCKOUT_ACCOUNT_FAILURES".into(),
                    "8".into(),
                ),
            ],
            ..AppOptions::default()
        },
    )
    .await;
    create_user(&app, "uma");
    let c = web_client(&app, &[]);
    let p = pkce();
    // prompt=login: a browser with a session still gets the sign-in page.
    let url = authorize_url(&app, &c.id, &p.challenge, "&prompt=login");
    let wrong = "not the password at all";
    // The user signed in from this browser before: it holds the account's device cookie.
    let users_browser = browser();
    assert_eq!(
        sign_in_as(&app, &users_browser, &url, "uma", PASSWORD, "198.51.100.7").await,
        303
    );

    let guesser = browser();
    for _ in 0..3 {
        assert_eq!(
            sign_in_as(&app, &guesser, &url, "uma", wrong, "203.0.113.9").await,
            401
        );
    }
    assert_eq!(
        sign_in_as(&app, &guesser, &url, "uma", PASSWORD, "203.0.113.9").await,
        401,
        "locked for the guesser's network, even with the right password"
    );
    assert_eq!(
        sign_in_as(&app, &browser(), &url, "uma", PASSWORD, "198.51.100.50").await,
        303,
        "another network is not locked out"
    );

    // A guesser with many addresses hits the account-wide bound: 8 failures in all.
    for i in 0..5 {
        let from = format!("203.0.113.{}", 20 + i);
        assert_eq!(
            sign_in_as(&app, &browser(), &url, "uma", wrong, &from).await,
            401
        );
    }
    assert_eq!(
        sign_in_as(&app, &browser(), &url, "uma", PASSWORD, "192.0.2.99").await,
        401,
        "locked for every client without the device cookie"
    );
    assert_eq!(
        sign_in_as(&app, &users_browser, &url, "uma", PASSWORD, "203.0.113.9").await,
        303,
        "the browser the user signed in from before gets in, from anywhere"
    );
    let events = app.cli_json(&["audit", "tail", "-n", "200"]);
    let scopes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "account.lock")
        .map(|e| e["details"]["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["client", "account"], "{events}");

    // The locks end with their window.
    app.clock
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    assert_eq!(
        sign_in_as(&app, &browser(), &url, "uma", PASSWORD, "203.0.113.9").await,
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_foreign_device_cookie_counts_for_nothing() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![(
                "SIGIL_PASSWORDS_LOCKOUT_ACCOUNT_FAILURES".into(),
                "5".into(),
            )],
            ..AppOptions::default()
        },
    )
    .await;
    create_user(&app, "vic");
    create_user(&app, "wes");
    let c = web_client(&app, &[]);
    let p = pkce();
    // prompt=login: a browser with a session still gets the sign-in page.
    let url = authorize_url(&app, &c.id, &p.challenge, "&prompt=login");
    // wes's browser holds wes's device cookie; it is not vic's.
    let b = browser();
    assert_eq!(sign_in_as(&app, &b, &url, "wes", PASSWORD, "").await, 303);
    for _ in 0..5 {
        assert_eq!(
            sign_in_as(&app, &browser(), &url, "vic", "wrong password!", "").await,
            401
        );
    }
    assert_eq!(
        sign_in_as(&app, &b, &url, "vic", PASSWORD, "").await,
        401,
        "another account's device cookie does not lift vic's lock"
    );
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = forged.get(&url).send().await.unwrap();
    let cookie = html
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let html = html.text().await.unwrap();
    let resp = forged
        .post(format!("{}/login", app.address))
        .header("cookie", format!("{cookie}; sigil_device=AAAA.BBBB"))
        .form(&[
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", "vic".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a forged device cookie lifts nothing");
}
