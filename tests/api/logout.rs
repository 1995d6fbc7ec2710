//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3): a request that does not
//! prove which client sent it is confirmed by the user through a form with an anti-CSRF token; a
//! tampered `id_token_hint` is an error and ends nothing.

use std::time::Duration;

use crate::backend_test;
use crate::flow::{
    authorize_url, browser, code_tokens, create_user, hidden, location, pkce, query_param,
    urlencode, web_client,
};
use crate::helpers::*;

const BYE: &str = "https://app.example/bye";

/// Signs `user` in with a browser; returns the browser, the client and an ID token.
async fn signed_in(app: &TestApp, user: &str) -> (reqwest::Client, TestClient, String) {
    create_user(app, user);
    let c = web_client(app, &["--post-logout-redirect-uri", BYE]);
    let b = browser();
    let tokens = code_tokens(app, &c, user, "openid", &b).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    (b, c, id_token)
}

/// Whether the browser still has a Sigil session for `client` (a silent `prompt=none` succeeds).
async fn has_session(app: &TestApp, b: &reqwest::Client, client: &TestClient) -> bool {
    let p = pkce();
    let silent = authorize_url(app, &client.id, &p.challenge, "&prompt=none");
    let resp = b.get(&silent).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    query_param(&location(&resp), "code").is_some()
}

backend_test!(
    logout_without_a_hint_asks_for_confirmation_and_ends_nothing_until_confirmed,
    |app| {
        let (b, c, _) = signed_in(&app, "lou").await;
        let page = b
            .get(format!(
                "{}/logout?client_id={}&post_logout_redirect_uri={}&state=s-9",
                app.address,
                c.id,
                urlencode(BYE)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("form-action")
        );
        let html = page.text().await.unwrap();
        assert!(
            html.contains("method=\"post\"") && html.contains("action=\"/logout\""),
            "{html}"
        );
        let csrf = hidden(&html, "csrf");
        // Showing the page ended nothing.
        assert!(
            has_session(&app, &b, &c).await,
            "GET /logout must not end the session"
        );

        // A POST without the right anti-CSRF token ends nothing either.
        for bad in ["", "forged", &format!("{csrf}x")] {
            let resp = b
                .post(format!("{}/logout", app.address))
                .form(&[
                    ("csrf", bad),
                    ("client_id", &c.id),
                    ("post_logout_redirect_uri", BYE),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "csrf {bad:?}");
            assert!(has_session(&app, &b, &c).await);
        }
        // Another browser (no session cookie) cannot use this browser's token.
        let other = browser();
        let resp = other
            .post(format!("{}/logout", app.address))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 303);
        assert!(has_session(&app, &b, &c).await);

        // Confirmed: the session ends and the browser returns to the registered address.
        let resp = b
            .post(format!("{}/logout", app.address))
            .form(&[
                ("csrf", csrf.as_str()),
                ("client_id", &c.id),
                ("post_logout_redirect_uri", BYE),
                ("state", "s-9"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), format!("{BYE}?state=s-9"));
        assert!(!has_session(&app, &b, &c).await);
    }
);

backend_test!(
    logout_with_a_tampered_id_token_hint_is_an_error_and_ends_nothing,
    |app| {
        let (b, c, id_token) = signed_in(&app, "max").await;
        let forged = format!("{}x", &id_token[..id_token.len() - 1]);
        for hint in [forged.as_str(), "not-a-jwt", "a.b.c"] {
            let resp = b
                .get(format!(
                    "{}/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
                    app.address,
                    urlencode(BYE)
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "hint {hint}");
            assert!(resp.headers().get("location").is_none());
            let html = resp.text().await.unwrap();
            assert!(html.contains("invalid_request"), "{html}");
            assert!(
                has_session(&app, &b, &c).await,
                "a bad hint must not log out"
            );
        }
        // A hint whose client disagrees with client_id is refused too.
        let resp = b
            .get(format!(
                "{}/logout?id_token_hint={id_token}&client_id=someone-else",
                app.address
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(has_session(&app, &b, &c).await);

        // The genuine hint logs out at once and returns to the registered address.
        let resp = b
            .get(format!(
                "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=z",
                app.address,
                urlencode(BYE)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), format!("{BYE}?state=z"));
        assert!(!has_session(&app, &b, &c).await);
    }
);

backend_test!(
    a_valid_hint_for_another_user_asks_before_ending_this_session,
    |app| {
        let (_, _, other_hint) = signed_in(&app, "ned").await;
        let (b, c, _) = signed_in(&app, "ola").await;
        let resp = b
            .get(format!("{}/logout?id_token_hint={other_hint}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains("action=\"/logout\""), "{html}");
        assert!(has_session(&app, &b, &c).await);
    }
);

backend_test!(
    a_hint_signed_by_a_key_that_left_the_jwks_still_logs_out_at_once,
    |app| {
        let (b, c, id_token) = signed_in(&app, "pia").await;
        let kid = jwt_header(&id_token)["kid"].as_str().unwrap().to_owned();
        app.cli_json(&["keys", "rotate", "--alg", "RS256", "--now"]);
        // Once the ID tokens it signed have expired (10 min + 60 s of skew), the key leaves the
        // JWKS...
        app.clock.advance(Duration::from_secs(10 * 60 + 60 + 30));
        assert!(
            app.eventually(Duration::from_secs(10), || async {
                !app.jwks_kids().await.contains(&kid)
            })
            .await
        );
        assert!(has_session(&app, &b, &c).await);
        // ...but it stays in the ring: the expired ID token still proves client and user.
        let resp = b
            .get(format!(
                "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=k",
                app.address,
                urlencode(BYE)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), format!("{BYE}?state=k"));
        assert!(!has_session(&app, &b, &c).await);
    }
);
