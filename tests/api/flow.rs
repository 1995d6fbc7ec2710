//! The browser flow, in one place for every test module: users (`create_user`) and first-party
//! web clients (`web_client`) made through the `sigil` binary, a `browser` that keeps cookies,
//! PKCE (`pkce`), the /authorize URL (`authorize_url`), the login form (`login`), reading the
//! redirect back (`location`, `query_param`), the authorization-code exchange (`exchange_code`
//! for the raw response, `tokens_for_code` when it must succeed), the whole flow in one call
//! (`code_tokens`) and the refresh grant (`refresh`).
//!
//! `helpers.rs` starts the application and holds everything that is not the browser flow.

use base64::Engine;
use serde_json::Value;

use crate::helpers::{TestApp, TestClient};

/// The password `create_user` gives every user.
pub const PASSWORD: &str = "correct horse battery staple";
/// The redirect URI `web_client` registers and `authorize_url` asks for.
pub const CALLBACK: &str = "https://app.example/cb";

/// A user with the role `reader` (created, without permissions, if missing), the email
/// `<username>@example.com` and `PASSWORD`.
pub fn create_user(app: &TestApp, username: &str) {
    // Refused once the role exists; either way it exists afterwards.
    let _ = app.cli(&["roles", "create", "reader"]);
    let out = app.cli_stdin(
        &[
            "users",
            "create",
            "--username",
            username,
            "--email",
            &format!("{username}@example.com"),
            "--role",
            "reader",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A confidential first-party client with the `authorization_code` grant, `CALLBACK` and the
/// scopes `openid profile email`, plus the `extra` arguments of `sigil clients create`.
pub fn web_client(app: &TestApp, extra: &[&str]) -> TestClient {
    let mut args = vec![
        "--first-party",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid",
        "--scope",
        "profile",
        "--scope",
        "email",
    ];
    args.extend_from_slice(extra);
    app.create_client(&args)
}

/// A browser: keeps cookies, follows nothing.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of the hidden form field `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

/// A fresh PKCE verifier and its S256 challenge.
pub fn pkce() -> Pkce {
    let verifier = sigil::crypto::random_b64(32);
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    Pkce {
        challenge: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
        verifier,
    }
}

/// An authorization request for a code on `CALLBACK` with scope `openid profile email`, state
/// `st-1`, nonce `n-1` and the S256 `challenge`; `extra` is appended as it is (`&prompt=none`).
pub fn authorize_url(app: &TestApp, client_id: &str, challenge: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile%20email&state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        app.address,
        urlencode(CALLBACK)
    )
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// GET the login page, POST credentials; returns the final response (303 on success).
pub async fn login(
    app: &TestApp,
    browser: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "login page");
    let html = page.text().await.unwrap();
    let form = [
        ("authz", hidden(&html, "authz")),
        ("csrf", hidden(&html, "csrf")),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ];
    browser
        .post(format!("{}/login", app.address))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The `Location` of a redirect.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The decoded value of the query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// POST /token with `grant_type=authorization_code`: `code` (issued for `CALLBACK`) and its PKCE
/// `verifier`, the confidential client `c` authenticating with HTTP Basic. The raw response, for
/// tests that look at a refusal; `tokens_for_code` when the exchange must succeed.
pub async fn exchange_code(
    app: &TestApp,
    c: &TestClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.post_token(
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
        Some((&c.id, c.secret.as_deref().expect("a confidential client"))),
    )
    .await
}

/// `exchange_code` that must succeed (200): the parsed token response.
pub async fn tokens_for_code(app: &TestApp, c: &TestClient, code: &str, verifier: &str) -> Value {
    let resp = exchange_code(app, c, code, verifier).await;
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON token response");
    assert_eq!(status, 200, "code exchange: {body}");
    body
}

/// The whole flow for `username` with `scope` (URL-encoded): /authorize in browser `b` (the
/// login form unless `b` has a session), then the code exchange. The parsed token response.
pub async fn code_tokens(
    app: &TestApp,
    c: &TestClient,
    username: &str,
    scope: &str,
    b: &reqwest::Client,
) -> Value {
    let p = pkce();
    let url = authorize_url(app, &c.id, &p.challenge, "")
        .replace("scope=openid%20profile%20email", &format!("scope={scope}"));
    let resp = b.get(&url).send().await.unwrap();
    let resp = if resp.status() == 303 {
        resp
    } else {
        let html = resp.text().await.unwrap();
        let form = [
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", username.to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        b.post(format!("{}/login", app.address))
            .form(&form)
            .send()
            .await
            .unwrap()
    };
    let code = query_param(&location(&resp), "code").unwrap();
    tokens_for_code(app, c, &code, &p.verifier).await
}

/// POST /token with `grant_type=refresh_token` (and `scope` if given), `c` authenticating with
/// HTTP Basic: the status and the parsed body.
pub async fn refresh(
    app: &TestApp,
    c: &TestClient,
    token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let resp = app
        .post_token(&form, Some((&c.id, c.secret.as_deref().unwrap())))
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}
