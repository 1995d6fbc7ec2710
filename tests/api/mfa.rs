//! The TOTP second factor, end to end: enrolment through the `sigil` binary, sign-in through the
//! real forms with codes computed here by an RFC 6238 implementation of the test's own (RustCrypto
//! HMAC-SHA-1, base32 from `data-encoding`), `amr` read from ID tokens verified with
//! `jsonwebtoken`, single use of codes and recovery codes, the lock after five wrong codes,
//! removal of the factor, and what is stored.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use sigil::clock::Clock;

use crate::backend_test;
use crate::flow::*;
use crate::helpers::{TestApp, TestClient, metric, verify_with_jsonwebtoken};

/// RFC 6238 with SHA-1, 6 digits and 30-second steps, written from the RFC: HMAC of the
/// big-endian step counter, dynamic truncation (RFC 4226 §5.3).
fn totp_at(secret_b32: &str, unix: u64) -> String {
    use hmac::{Hmac, Mac};
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .expect("the secret is base32");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes(digest[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

#[test]
fn the_tests_own_totp_matches_rfc_6238() {
    // Appendix B, SHA-1 seed "12345678901234567890", last six of the eight digits.
    let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
    assert_eq!(totp_at(&secret, 59), "287082");
    assert_eq!(totp_at(&secret, 1_111_111_109), "081804");
    assert_eq!(totp_at(&secret, 2_000_000_000), "279037");
}

/// Now on the server's clock (real time plus whatever the test advanced it by).
fn server_now(app: &TestApp) -> u64 {
    app.clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The current code for `secret` on the server's clock, `steps` time steps ahead.
fn code(app: &TestApp, secret: &str, steps: u64) -> String {
    totp_at(secret, server_now(app) + 30 * steps)
}

/// Six digits that are none of the codes the server accepts now.
fn wrong_code(app: &TestApp, secret: &str) -> String {
    let valid: Vec<String> = [0, 30, 60]
        .iter()
        .map(|d| totp_at(secret, server_now(app) + d - 30))
        .collect();
    (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// `users totp enroll U --json`, its shape checked.
fn enroll(app: &TestApp, username: &str) -> Value {
    let out = app.cli_json(&["users", "totp", "enroll", username]);
    let secret = out["secret"].as_str().expect("secret");
    assert!(
        data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .is_ok(),
        "{out}"
    );
    let uri = out["otpauth_uri"].as_str().expect("otpauth_uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains(username), "{uri}");
    let codes = out["recovery_codes"].as_array().expect("recovery_codes");
    assert_eq!(codes.len(), 10);
    out
}

fn secret_of(enrolment: &Value) -> String {
    enrolment["secret"].as_str().unwrap().to_owned()
}

/// GET /authorize and POST the password: the second-factor form (200, field `totp`), its HTML.
async fn password_step(app: &TestApp, b: &reqwest::Client, url: &str, username: &str) -> String {
    let resp = login(app, b, url, username, PASSWORD).await;
    assert_eq!(resp.status(), 200, "the code form, not a redirect");
    let html = resp.text().await.unwrap();
    assert!(html.contains("name=\"totp\""), "{html}");
    assert!(html.contains("action=\"/login/otp\""), "{html}");
    html
}

/// POST the code form of `html` with `totp`.
async fn submit_code(
    app: &TestApp,
    b: &reqwest::Client,
    html: &str,
    totp: &str,
) -> reqwest::Response {
    let form = [
        ("authz", hidden(html, "authz")),
        ("csrf", hidden(html, "csrf")),
        ("totp", totp.to_owned()),
    ];
    b.post(format!("{}/login/otp", app.address))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The refusal: 401 and the same code form again, with the one generic message.
async fn assert_refused(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 401);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("name=\"totp\""),
        "the code form again: {html}"
    );
    assert!(html.contains("That code is not valid"), "{html}");
    html
}

/// The code redirect `resp` exchanged, and the `amr` of its ID token, verified independently.
async fn amr_of(app: &TestApp, c: &TestClient, resp: reqwest::Response, verifier: &str) -> Value {
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(loc.starts_with(CALLBACK), "{loc}");
    let code = query_param(&loc, "code").expect("a code");
    let tokens = tokens_for_code(app, c, &code, verifier).await;
    let id = verify_with_jsonwebtoken(app, tokens["id_token"].as_str().unwrap(), &c.id).await;
    id["amr"].clone()
}

/// The `kind`s of the newest audit events.
fn audit_kinds(app: &TestApp) -> Vec<Value> {
    app.cli_json(&["audit", "tail", "-n", "200"])
        .as_array()
        .unwrap()
        .clone()
}

backend_test!(
    a_totp_sign_in_says_pwd_and_otp_and_a_code_works_once,
    |app| {
        create_user(&app, "alice");
        let c = web_client(&app, &[]);
        let enrolment = enroll(&app, "alice");
        let secret = secret_of(&enrolment);

        let b = browser();
        let p = pkce();
        let url = authorize_url(&app, &c.id, &p.challenge, "");
        let html = password_step(&app, &b, &url, "alice").await;
        let used = code(&app, &secret, 0);
        let resp = submit_code(&app, &b, &html, &used).await;
        assert_eq!(
            amr_of(&app, &c, resp, &p.verifier).await,
            serde_json::json!(["pwd", "otp"])
        );

        // The session remembers how it was made: a prompt-less request answers at once, alike.
        let p2 = pkce();
        let again = b
            .get(authorize_url(&app, &c.id, &p2.challenge, ""))
            .send()
            .await
            .unwrap();
        assert_eq!(
            amr_of(&app, &c, again, &p2.verifier).await,
            serde_json::json!(["pwd", "otp"])
        );

        // The same code, from another browser that knows the password: refused.
        let other = browser();
        let p3 = pkce();
        let html = password_step(
            &app,
            &other,
            &authorize_url(&app, &c.id, &p3.challenge, ""),
            "alice",
        )
        .await;
        assert_refused(submit_code(&app, &other, &html, &used).await).await;
        assert_eq!(
            metric(&app, "sigil_mfa_total{outcome=\"success\"}").await,
            1.0
        );
        assert_eq!(
            metric(&app, "sigil_mfa_total{outcome=\"failure\"}").await,
            1.0
        );
        assert_eq!(
            metric(&app, "sigil_mfa_total{outcome=\"locked\"}").await,
            0.0
        );
        assert_eq!(
            metric(&app, "sigil_mfa_total{outcome=\"recovery\"}").await,
            0.0
        );

        // The next step's code still works there (one step of skew), once.
        let next = code(&app, &secret, 1);
        assert_ne!(next, used);
        let html = password_step(
            &app,
            &other,
            &authorize_url(&app, &c.id, &p3.challenge, ""),
            "alice",
        )
        .await;
        let resp = submit_code(&app, &other, &html, &next).await;
        assert_eq!(
            amr_of(&app, &c, resp, &p3.verifier).await,
            serde_json::json!(["pwd", "otp"])
        );

        // The audit trail has the enrolment and the sign-ins, never the secret.
        let events = audit_kinds(&app);
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
        assert!(kinds.contains(&"user.totp_enroll"), "{kinds:?}");
        assert!(kinds.contains(&"login.mfa_challenge"), "{kinds:?}");
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains(&secret), "no secret in the audit trail");
        let replay = events
            .iter()
            .find(|e| e["details"]["reason"] == "replayed_code")
            .expect("the replay is recorded");
        assert_eq!(replay["details"]["step"], "otp");
    }
);

backend_test!(
    the_code_form_is_bound_to_its_browser_and_its_csrf_token,
    |app| {
        create_user(&app, "alice");
        let c = web_client(&app, &[]);
        let secret = secret_of(&enroll(&app, "alice"));
        let b = browser();
        let p = pkce();
        let html = password_step(
            &app,
            &b,
            &authorize_url(&app, &c.id, &p.challenge, ""),
            "alice",
        )
        .await;

        // Another browser with the same form (no binding cookie): the page has expired.
        let thief = browser();
        let resp = submit_code(&app, &thief, &html, &code(&app, &secret, 0)).await;
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("has expired"));
        // A wrong CSRF token in the right browser: the same.
        let form = [
            ("authz", hidden(&html, "authz")),
            ("csrf", "x".repeat(32)),
            ("totp", code(&app, &secret, 0)),
        ];
        let resp = b
            .post(format!("{}/login/otp", app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        // A sign-in page's sealed state is no second step (and no password skips it).
        let page = b
            .get(authorize_url(&app, &c.id, &p.challenge, ""))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let resp = submit_code(&app, &b, &page, &code(&app, &secret, 0)).await;
        assert_eq!(resp.status(), 400);
        // The second step expires within minutes.
        let html = password_step(
            &app,
            &b,
            &authorize_url(&app, &c.id, &p.challenge, ""),
            "alice",
        )
        .await;
        app.clock.advance(Duration::from_secs(6 * 60));
        let resp = submit_code(&app, &b, &html, &code(&app, &secret, 0)).await;
        assert_eq!(resp.status(), 400, "an expired second step");
        assert_eq!(
            metric(&app, "sigil_mfa_total{outcome=\"success\"}").await,
            0.0
        );
    }
);

backend_test!(a_recovery_code_works_once, |app| {
    create_user(&app, "alice");
    let c = web_client(&app, &[]);
    let enrolment = enroll(&app, "alice");
    let recovery = enrolment["recovery_codes"][3].as_str().unwrap().to_owned();

    let b = browser();
    let p = pkce();
    let html = password_step(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "alice",
    )
    .await;
    // Typed in capitals with spaces for dashes: the same code.
    let typed = recovery.to_uppercase().replace('-', " ");
    let resp = submit_code(&app, &b, &html, &typed).await;
    assert_eq!(
        amr_of(&app, &c, resp, &p.verifier).await,
        serde_json::json!(["pwd", "otp"])
    );
    assert_eq!(
        metric(&app, "sigil_mfa_total{outcome=\"recovery\"}").await,
        1.0
    );
    let events = audit_kinds(&app);
    let success = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "login.success")
        .expect("a login.success event");
    assert_eq!(success["details"]["mfa"], "recovery_code");
    assert_eq!(success["details"]["recovery_codes_left"], 9);

    let other = browser();
    let p2 = pkce();
    let html = password_step(
        &app,
        &other,
        &authorize_url(&app, &c.id, &p2.challenge, ""),
        "alice",
    )
    .await;
    let html = assert_refused(submit_code(&app, &other, &html, &recovery).await).await;

    // The export says a factor is there and how many codes are left, and nothing secret.
    let export = app.cli_json(&["users", "export", "alice"]);
    assert_eq!(export["totp"]["enrolled"], true, "{export}");
    assert_eq!(export["totp"]["recovery_codes_left"], 9, "{export}");
    let text = export.to_string();
    assert!(!text.contains(enrolment["secret"].as_str().unwrap()));
    assert!(!text.contains(&enrolment["recovery_codes"][0].as_str().unwrap().to_owned()));

    // Enrolling again replaces the secret and every code.
    let again = enroll(&app, "alice");
    assert_ne!(again["secret"], enrolment["secret"]);
    let unused = enrolment["recovery_codes"][5].as_str().unwrap();
    let html = assert_refused(submit_code(&app, &other, &html, unused).await).await;
    let fresh = again["recovery_codes"][0].as_str().unwrap();
    let resp = submit_code(&app, &other, &html, fresh).await;
    assert_eq!(
        amr_of(&app, &c, resp, &p2.verifier).await,
        serde_json::json!(["pwd", "otp"])
    );
});

backend_test!(five_wrong_codes_lock_the_second_factor_for_a_while, |app| {
    create_user(&app, "alice");
    let c = web_client(&app, &[]);
    let secret = secret_of(&enroll(&app, "alice"));
    let b = browser();
    let p = pkce();
    let mut html = password_step(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "alice",
    )
    .await;
    for _ in 0..5 {
        html = assert_refused(submit_code(&app, &b, &html, &wrong_code(&app, &secret)).await).await;
    }
    assert_eq!(metric(&app, "sigil_mfa_lockouts_total").await, 1.0);
    // Locked: the right code is refused alike, unchecked (so it is not used up either).
    let right = code(&app, &secret, 0);
    assert_refused(submit_code(&app, &b, &html, &right).await).await;
    assert_eq!(
        metric(&app, "sigil_mfa_total{outcome=\"locked\"}").await,
        1.0
    );
    assert_eq!(
        metric(&app, "sigil_mfa_total{outcome=\"failure\"}").await,
        5.0
    );
    let events = audit_kinds(&app);
    let lock = events
        .iter()
        .find(|e| e["kind"] == "login.mfa_locked")
        .expect("a login.mfa_locked event");
    assert_eq!(lock["details"]["failures"], 5);

    // After the window (passwords.lockout_window, 15 min) the factor works again.
    app.clock.advance(Duration::from_secs(16 * 60));
    let b = browser();
    let p = pkce();
    let html = password_step(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "alice",
    )
    .await;
    let resp = submit_code(&app, &b, &html, &code(&app, &secret, 0)).await;
    assert_eq!(
        amr_of(&app, &c, resp, &p.verifier).await,
        serde_json::json!(["pwd", "otp"])
    );
});

backend_test!(disabling_totp_removes_the_second_step, |app| {
    create_user(&app, "alice");
    let c = web_client(&app, &[]);
    enroll(&app, "alice");
    let b = browser();
    let p = pkce();
    let html = password_step(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "alice",
    )
    .await;

    let out = app.cli_json(&["users", "totp", "disable", "alice"]);
    assert_eq!(out["totp_disabled"], "alice");
    let out = app.cli(&["users", "totp", "disable", "alice"]);
    assert_eq!(out.status.code(), Some(1), "nothing left to disable");
    let kinds: Vec<Value> = audit_kinds(&app)
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(kinds.contains(&Value::from("user.totp_disable")));
    // A second step begun before is no way in any more: start again.
    let resp = submit_code(&app, &b, &html, "000000").await;
    assert_eq!(resp.status(), 400);

    let b = browser();
    let p = pkce();
    let resp = login(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(
        amr_of(&app, &c, resp, &p.verifier).await,
        serde_json::json!(["pwd"])
    );
    let export = app.cli_json(&["users", "export", "alice"]);
    assert_eq!(export["totp"]["enrolled"], false, "{export}");
    let out = app.cli(&["users", "totp", "enroll", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
});

/// The rows of a one-column `Binary` query, on either backend.
fn binary_column(app: &TestApp, sql: &str) -> Vec<Vec<u8>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        value: Vec<u8>,
    }
    let store = sigil::store::Store::open(
        &app.db.url,
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .unwrap();
    let sql = sql.to_owned();
    store
        .run_blocking(move |c| {
            diesel::RunQueryDsl::load::<Row>(diesel::sql_query(sql), c)
                .map_err(sigil::store::StoreError::from)
        })
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect()
}

backend_test!(the_stored_secret_and_codes_are_not_the_plaintext, |app| {
    create_user(&app, "alice");
    create_user(&app, "bob");
    let enrolment = enroll(&app, "alice");
    enroll(&app, "bob");
    let raw = data_encoding::BASE32_NOPAD
        .decode(enrolment["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let sealed = binary_column(
        &app,
        "SELECT f.secret AS value FROM totp_factors f JOIN users u ON u.id = f.user_id WHERE u.username = 'alice'",
    );
    assert_eq!(sealed.len(), 1);
    let sealed = &sealed[0];
    assert!(!contains(sealed, &raw), "the secret is not stored as it is");
    assert!(!contains(
        sealed,
        enrolment["secret"].as_str().unwrap().as_bytes()
    ));
    // AES-256-GCM: a 12-byte nonce, the 20-byte secret, a 16-byte tag.
    assert_eq!(sealed.len(), 12 + raw.len() + 16);
    let hashes = binary_column(
        &app,
        "SELECT c.code_hash AS value FROM totp_recovery_codes c JOIN users u ON u.id = c.user_id WHERE u.username = 'alice'",
    );
    assert_eq!(hashes.len(), 10);
    for code in enrolment["recovery_codes"].as_array().unwrap() {
        let code = code.as_str().unwrap();
        for h in &hashes {
            assert!(!contains(h, code.as_bytes()));
            assert!(!contains(h, code.replace('-', "").as_bytes()));
        }
    }

    // Deleting a user deletes their factor and codes; the other user's stay.
    let out = app.cli(&["users", "delete", "alice"]);
    assert!(out.status.success());
    assert_eq!(
        binary_column(&app, "SELECT secret AS value FROM totp_factors").len(),
        1
    );
    assert_eq!(
        binary_column(&app, "SELECT code_hash AS value FROM totp_recovery_codes").len(),
        10
    );
});
