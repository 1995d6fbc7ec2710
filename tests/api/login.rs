//! Browser login through /authorize and the login page, code exchange, and a certified RP
//! library (`openidconnect`) driving the whole flow.

use std::time::Duration;

use crate::backend_test;
use crate::flow::*;
use crate::helpers::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

backend_test!(openidconnect_rp_logs_in_end_to_end, |app| {
    create_user(&app, "alice");
    let c = web_client(&app, &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(c.id.clone()),
        Some(ClientSecret::new(c.secret.clone().unwrap())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let done = login(&app, &browser, url.as_str(), "alice", PASSWORD).await;
    assert_eq!(done.status(), 303);
    let back = location(&done);
    assert!(back.starts_with(CALLBACK), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let code = query_param(&back, "code").unwrap();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("ID token validates (signature, iss, aud, nonce)");
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert!(claims.auth_time().is_some());
    // at_hash binds the access token.
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&rp.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);
    assert_eq!(jwt_header(tokens.access_token().secret())["typ"], "at+jwt");
    let header = jwt_header(&id_token.to_string());
    assert_eq!(header["alg"], "RS256");

    // The access token carries the user's roles and verifies independently.
    let at = verify_with_jsonwebtoken(&app, tokens.access_token().secret(), &app.address).await;
    assert_eq!(at["roles"], serde_json::json!(["reader"]));
    assert_eq!(at["client_id"], c.id.as_str());

    // userinfo through the RP library.
    let info: openidconnect::core::CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert_eq!(info.subject().as_str(), claims.subject().as_str());

    // The code is single use.
    let again = exchange_code(&app, &c, &code, &"x".repeat(43)).await;
    assert_eq!(again.status(), 400);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
});

backend_test!(
    a_session_signs_in_silently_and_prompt_none_without_one_fails,
    |app| {
        create_user(&app, "bob");
        let c = web_client(&app, &[]);
        let p = pkce();
        let url = authorize_url(&app, &c.id, &p.challenge, "&prompt=none");
        // No session: prompt=none comes back with login_required.
        let resp = browser().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let loc = location(&resp);
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some("login_required")
        );
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st-1"));

        let b = browser();
        let done = login(
            &app,
            &b,
            &authorize_url(&app, &c.id, &p.challenge, ""),
            "bob",
            PASSWORD,
        )
        .await;
        assert_eq!(done.status(), 303);
        let set_cookie: Vec<String> = done
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let session = set_cookie
            .iter()
            .find(|c| c.starts_with("sigil_session="))
            .expect("session cookie");
        assert!(
            session.contains("HttpOnly") && session.contains("SameSite=Lax"),
            "{session}"
        );
        // With the session: prompt=none issues a code without any page.
        let resp = b.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        assert!(query_param(&location(&resp), "code").is_some());
        // prompt=login forces the page again.
        let resp = b
            .get(authorize_url(&app, &c.id, &p.challenge, "&prompt=login"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // max_age=0 too (the login was more than 0 seconds ago once a second passes).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let resp = b
            .get(authorize_url(&app, &c.id, &p.challenge, "&max_age=0"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
);

backend_test!(
    untrusted_redirects_get_an_error_page_and_others_an_error_redirect,
    |app| {
        let c = web_client(&app, &[]);
        let p = pkce();
        let b = browser();
        // Unknown client and unregistered redirect_uri: a page, never a redirect.
        for url in [
            authorize_url(&app, "sgl_unknown", &p.challenge, ""),
            authorize_url(&app, &c.id, &p.challenge, "")
                .replace(&urlencode(CALLBACK), &urlencode("https://evil.example/cb")),
            format!("{}/authorize?client_id={}", app.address, c.id),
            format!("{}/authorize?client_id={}&client_id=x", app.address, c.id),
        ] {
            let resp = b.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 400, "{url}");
            assert!(resp.headers().get("location").is_none());
            assert_eq!(resp.headers()["x-frame-options"], "DENY");
            let html = resp.text().await.unwrap();
            assert!(!html.contains("evil.example"), "no reflection");
        }
        // Other errors go back to the client with error, state and iss.
        let url = |rt: &str, method: &str, scope: &str, extra: &str| {
            format!(
                "{}/authorize?response_type={rt}&client_id={}&redirect_uri={}&scope={scope}&state=st-1&code_challenge={}&code_challenge_method={method}{extra}",
                app.address,
                c.id,
                urlencode(CALLBACK),
                p.challenge
            )
        };
        for (url, error) in [
            (
                url("token", "S256", "openid", ""),
                "unsupported_response_type",
            ),
            (url("code", "plain", "openid", ""), "invalid_request"),
            (url("code", "S256", "openid%20admin", ""), "invalid_scope"),
            (
                url("code", "S256", "openid", "&prompt=none%20login"),
                "invalid_request",
            ),
            (
                url("code", "S256", "openid", "&max_age=soon"),
                "invalid_request",
            ),
        ] {
            let resp = b.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 303, "{url}");
            let loc = location(&resp);
            assert!(loc.starts_with(CALLBACK));
            assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{url}");
            assert_eq!(query_param(&loc, "state").as_deref(), Some("st-1"));
            assert_eq!(
                query_param(&loc, "iss").as_deref(),
                Some(app.address.as_str())
            );
        }
        // Missing PKCE.
        let url = authorize_url(&app, &c.id, &p.challenge, "")
            .replace(&format!("&code_challenge={}", p.challenge), "");
        let loc = location(&b.get(&url).send().await.unwrap());
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some("invalid_request")
        );
    }
);

backend_test!(login_page_is_safe_and_failures_are_generic, |app| {
    create_user(&app, "carol");
    let c = web_client(&app, &[]);
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let b = browser();
    let page = b.get(&url).send().await.unwrap();
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline")
            && csp.contains("default-src 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"));
    assert!(html.contains("svc"), "the client's name is shown");
    assert!(
        !html.contains("<script"),
        "usable without JavaScript, no inline script"
    );

    let wrong = login(&app, &b, &url, "carol", "wrong password entirely").await;
    assert_eq!(wrong.status(), 401);
    let wrong_html = wrong.text().await.unwrap();
    let unknown = login(&app, &b, &url, "nobody", PASSWORD).await;
    let unknown_html = unknown.text().await.unwrap();
    let message = "Incorrect username or password, or this account cannot sign in right now.";
    assert!(wrong_html.contains(message) && unknown_html.contains(message));
    assert!(wrong_html.contains("aria-describedby=\"login-error\""));

    // A forged form (no binding cookie, wrong csrf) is refused.
    let page = b.get(&url).send().await.unwrap().text().await.unwrap();
    let forged = browser()
        .post(format!("{}/login", app.address))
        .form(&[
            ("authz", hidden(&page, "authz")),
            ("csrf", hidden(&page, "csrf")),
            ("username", "carol".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let bad_csrf = b
        .post(format!("{}/login", app.address))
        .form(&[
            ("authz", hidden(&page, "authz")),
            ("csrf", "x".to_owned()),
            ("username", "carol".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_csrf.status(), 400);

    // A disabled account gets the same message, even with the right password.
    app.cli_json(&["users", "disable", "carol"]);
    let disabled = login(&app, &b, &url, "carol", PASSWORD).await;
    assert_eq!(disabled.status(), 401);
    assert!(disabled.text().await.unwrap().contains(message));
});

backend_test!(five_failures_lock_the_account, |app| {
    create_user(&app, "dave");
    let c = web_client(&app, &[]);
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let b = browser();
    for _ in 0..5 {
        assert_eq!(
            login(&app, &b, &url, "dave", "not the password at all")
                .await
                .status(),
            401
        );
    }
    let locked = login(&app, &b, &url, "dave", PASSWORD).await;
    assert_eq!(locked.status(), 401, "locked even with the right password");
    // After the window, the right password works again.
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(login(&app, &b, &url, "dave", PASSWORD).await.status(), 303);
});

backend_test!(code_exchange_checks_pkce_redirect_uri_and_client, |app| {
    create_user(&app, "erin");
    let c = web_client(&app, &[]);
    let other = web_client(&app, &[]);
    let p = pkce();
    let exchange = |code: String, verifier: String, redirect: &'static str, who: TestClient| {
        let app = &app;
        async move {
            let resp = app
                .post_token(
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", redirect),
                        ("code_verifier", &verifier),
                    ],
                    Some((&who.id, who.secret.as_deref().unwrap())),
                )
                .await;
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body)
        }
    };
    let new_code = || async {
        let b = browser();
        let done = login(
            &app,
            &b,
            &authorize_url(&app, &c.id, &p.challenge, ""),
            "erin",
            PASSWORD,
        )
        .await;
        query_param(&location(&done), "code").unwrap()
    };
    let same = |t: &TestClient| TestClient {
        id: t.id.clone(),
        secret: t.secret.clone(),
    };
    let (s, body) = exchange(new_code().await, "y".repeat(43), CALLBACK, same(&c)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong verifier"
    );
    let (s, body) = exchange(
        new_code().await,
        p.verifier.clone(),
        "https://app.example/other",
        same(&c),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong redirect_uri"
    );
    let (s, body) = exchange(new_code().await, p.verifier.clone(), CALLBACK, same(&other)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client"
    );
    let (s, body) = exchange(new_code().await, p.verifier.clone(), CALLBACK, same(&c)).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["id_token"].is_string());
    // Codes expire after 60 s.
    let code = new_code().await;
    app.clock.advance(Duration::from_secs(61));
    let (s, body) = exchange(code, p.verifier.clone(), CALLBACK, same(&c)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired"
    );
});

backend_test!(public_clients_use_pkce_without_a_secret, |app| {
    create_user(&app, "frank");
    let c = app.create_client(&[
        "--public",
        "--first-party",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid",
    ]);
    assert!(c.secret.is_none());
    let p = pkce();
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge={}&code_challenge_method=S256",
        app.address,
        c.id,
        urlencode(CALLBACK),
        p.challenge
    );
    let done = login(&app, &browser(), &url, "frank", PASSWORD).await;
    let code = query_param(&location(&done), "code").unwrap();
    let resp = app
        .post_token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &c.id),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &p.verifier),
            ],
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
});

backend_test!(disabling_a_user_ends_their_sessions, |app| {
    create_user(&app, "gina");
    let c = web_client(&app, &[]);
    let p = pkce();
    let b = browser();
    assert_eq!(
        login(
            &app,
            &b,
            &authorize_url(&app, &c.id, &p.challenge, ""),
            "gina",
            PASSWORD
        )
        .await
        .status(),
        303
    );
    let silent = authorize_url(&app, &c.id, &p.challenge, "&prompt=none");
    assert!(query_param(&location(&b.get(&silent).send().await.unwrap()), "code").is_some());
    app.cli_json(&["users", "disable", "gina"]);
    app.cli_json(&["users", "enable", "gina"]);
    let loc = location(&b.get(&silent).send().await.unwrap());
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required"),
        "the session ended when the user was disabled"
    );
});

backend_test!(userinfo_refuses_what_it_should, |app| {
    create_user(&app, "hank");
    let url = format!("{}/userinfo", app.address);
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer realm=\"sigil\"");
    let resp = app
        .client
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // A service token (no openid scope) is not a userinfo token.
    let svc = app.service_client();
    let body: Value = app.token_for(&svc, None).await.json().await.unwrap();
    let resp = app
        .client
        .get(&url)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // A user's token works with GET and POST until the user is deleted.
    let c = web_client(&app, &[]);
    let p = pkce();
    let done = login(
        &app,
        &browser(),
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "hank",
        PASSWORD,
    )
    .await;
    let code = query_param(&location(&done), "code").unwrap();
    let tokens = tokens_for_code(&app, &c, &code, &p.verifier).await;
    let at = tokens["access_token"].as_str().unwrap();
    let info: Value = app
        .client
        .get(&url)
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "hank@example.com");
    assert_eq!(
        app.client
            .post(&url)
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.cli_json(&["users", "delete", "hank"]);
    assert_eq!(
        app.client
            .get(&url)
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
});

backend_test!(rp_initiated_logout_ends_the_session, |app| {
    create_user(&app, "ivy");
    let c = web_client(
        &app,
        &["--post-logout-redirect-uri", "https://app.example/bye"],
    );
    let p = pkce();
    let b = browser();
    let done = login(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "ivy",
        PASSWORD,
    )
    .await;
    let code = query_param(&location(&done), "code").unwrap();
    let tokens = tokens_for_code(&app, &c, &code, &p.verifier).await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // An unregistered return address: signed out, but no redirect.
    let resp = b
        .get(format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}",
            app.address,
            urlencode("https://evil.example/")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("signed out"));
    let silent = authorize_url(&app, &c.id, &p.challenge, "&prompt=none");
    let loc = location(&b.get(&silent).send().await.unwrap());
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );

    // Log in again, then log out with a registered return address and state.
    login(
        &app,
        &b,
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "ivy",
        PASSWORD,
    )
    .await;
    assert!(query_param(&location(&b.get(&silent).send().await.unwrap()), "code").is_some());
    let resp = b
        .get(format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye-1",
            app.address,
            urlencode("https://app.example/bye")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "https://app.example/bye?state=bye-1");
    let loc = location(&b.get(&silent).send().await.unwrap());
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );

    // A forged hint does not earn a redirect (and is an error: see tests/api/logout.rs).
    let forged = format!("{}x", &id_token[..id_token.len() - 1]);
    let resp = b
        .get(format!(
            "{}/logout?id_token_hint={forged}&post_logout_redirect_uri={}",
            app.address,
            urlencode("https://app.example/bye")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
});

mod refresh {
    use super::*;

    fn jti(token: &str) -> String {
        jwt_payload(token)["jti"].as_str().unwrap().to_owned()
    }

    backend_test!(
        refresh_tokens_rotate_and_a_late_reuse_revokes_the_family,
        |app| {
            create_user(&app, "jack");
            let c = web_client(
                &app,
                &["--grant", "refresh_token", "--grant", "authorization_code"],
            );
            let tokens = code_tokens(&app, &c, "jack", "openid%20profile", &browser()).await;
            let r0 = tokens["refresh_token"]
                .as_str()
                .expect("refresh_token issued")
                .to_owned();
            assert_eq!(jwt_header(&r0)["typ"], "refresh+jwt");

            let (s, first) = refresh(&app, &c, &r0, None).await;
            assert_eq!(s, 200, "{first}");
            let r1 = first["refresh_token"].as_str().unwrap().to_owned();
            assert_ne!(jti(&r0), jti(&r1), "rotated");
            assert_eq!(first["scope"], "openid profile");
            // A repeat within the window (lost response, second tab): the same successor.
            let (s, again) = refresh(&app, &c, &r0, None).await;
            assert_eq!(s, 200);
            assert_eq!(
                jti(again["refresh_token"].as_str().unwrap()),
                jti(&r1),
                "never two live successors"
            );
            // Narrowing works, widening does not.
            let (s, narrow) = refresh(&app, &c, &r1, Some("openid")).await;
            assert_eq!((s, narrow["scope"].as_str()), (200, Some("openid")));
            let r2 = narrow["refresh_token"].as_str().unwrap().to_owned();
            let (s, wide) = refresh(&app, &c, &r2, Some("openid email")).await;
            assert_eq!((s, wide["error"].as_str()), (400, Some("invalid_scope")));
            // Another client cannot use it.
            let other = web_client(
                &app,
                &["--grant", "refresh_token", "--grant", "authorization_code"],
            );
            let (s, body) = refresh(&app, &other, &r2, None).await;
            assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));

            // After the window, reusing r0 revokes the whole family: r2's successor stops working too.
            app.clock.advance(Duration::from_secs(11));
            let (s, body) = refresh(&app, &c, &r0, None).await;
            assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
            let (s, body) = refresh(&app, &c, &r2, None).await;
            assert_eq!(
                (s, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "family revoked"
            );
            // The late reuse (and not the repeat within the window) is audited and counted.
            let events = app.cli_json(&["audit", "tail", "-n", "100"]);
            let reuses: Vec<&Value> = events
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "refresh_token.reuse")
                .collect();
            assert_eq!(reuses.len(), 1, "{events}");
            assert_eq!(reuses[0]["client_id"], c.id.as_str());
            assert_eq!(reuses[0]["details"]["family_revoked"], true);
            assert_eq!(metric(&app, "sigil_refresh_token_reuse_total").await, 1.0);
        }
    );

    backend_test!(concurrent_refreshes_share_one_successor, |app| {
        create_user(&app, "kate");
        let c = web_client(
            &app,
            &["--grant", "refresh_token", "--grant", "authorization_code"],
        );
        let tokens = code_tokens(&app, &c, "kate", "openid", &browser()).await;
        let r0 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let results =
            futures_util::future::join_all((0..6).map(|_| refresh(&app, &c, &r0, None))).await;
        let jtis: std::collections::BTreeSet<String> = results
            .iter()
            .map(|(s, body)| {
                assert_eq!(*s, 200, "{body}");
                jti(body["refresh_token"].as_str().unwrap())
            })
            .collect();
        assert_eq!(jtis.len(), 1, "one successor whatever the race");
    });

    backend_test!(refresh_ends_with_the_session_unless_offline_access, |app| {
        create_user(&app, "liam");
        let c = web_client(
            &app,
            &[
                "--grant",
                "refresh_token",
                "--grant",
                "authorization_code",
                "--scope",
                "offline_access",
            ],
        );
        let b = browser();
        let online = code_tokens(&app, &c, "liam", "openid", &b).await;
        let offline = code_tokens(&app, &c, "liam", "openid%20offline_access", &b).await;
        // Logging out of Sigil (confirmed by the user) ends the online family, not the
        // offline one.
        let page = b
            .get(format!("{}/logout", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let done = b
            .post(format!("{}/logout", app.address))
            .form(&[("csrf", hidden(&page, "csrf"))])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        let (s, _) = refresh(&app, &c, online["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(s, 400);
        let (s, body) = refresh(&app, &c, offline["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(s, 200, "{body}");
        // Disabling the user revokes everything.
        app.cli_json(&["users", "disable", "liam"]);
        let (s, _) = refresh(&app, &c, body["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(s, 400);
    });

    backend_test!(clients_without_the_grant_get_no_refresh_token, |app| {
        create_user(&app, "mia");
        let c = web_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "mia", "openid", &browser()).await;
        assert!(tokens.get("refresh_token").is_none());
    });
}

mod revocation {
    use super::*;

    async fn introspect(app: &TestApp, who: &TestClient, token: &str) -> (u16, Value) {
        let resp = app
            .client
            .post(format!("{}/introspect", app.address))
            .basic_auth(&who.id, who.secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn revoke(app: &TestApp, who: &TestClient, token: &str) -> u16 {
        app.client
            .post(format!("{}/revoke", app.address))
            .basic_auth(&who.id, who.secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    backend_test!(introspection_and_revocation_of_access_tokens, |app| {
        // The resource server may introspect the token because it is registered for the
        // token's audience.
        let api = [
            "--grant",
            "client_credentials",
            "--scope",
            "invoices:read",
            "--scope",
            "invoices:write",
            "--audience",
            "https://invoices.example",
        ];
        let svc = app.create_client(&api);
        let rs = app.create_client(&api);
        let body: Value = app.token_for(&svc, None).await.json().await.unwrap();
        let at = body["access_token"].as_str().unwrap().to_owned();
        let (s, info) = introspect(&app, &rs, &at).await;
        assert_eq!(s, 200);
        assert_eq!(info["active"], true);
        assert_eq!(info["client_id"], svc.id.as_str());
        assert_eq!(info["scope"], "invoices:read invoices:write");
        for junk in ["garbage", "a.b.c", &format!("{at}x")] {
            assert_eq!(
                introspect(&app, &rs, junk).await.1,
                serde_json::json!({"active": false})
            );
        }
        // Introspection needs client authentication.
        let resp = app
            .client
            .post(format!("{}/introspect", app.address))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        // Another client's revocation is ignored; the owner's works.
        assert_eq!(revoke(&app, &rs, &at).await, 200);
        assert_eq!(introspect(&app, &rs, &at).await.1["active"], true);
        assert_eq!(revoke(&app, &svc, &at).await, 200);
        assert_eq!(
            introspect(&app, &rs, &at).await.1,
            serde_json::json!({"active": false})
        );
        // Revoking garbage is still 200 (RFC 7009 §2.2).
        assert_eq!(revoke(&app, &svc, "garbage").await, 200);
        // Expired tokens are inactive.
        let body: Value = app.token_for(&svc, None).await.json().await.unwrap();
        app.clock.advance(Duration::from_secs(601));
        assert_eq!(
            introspect(&app, &rs, body["access_token"].as_str().unwrap())
                .await
                .1["active"],
            false
        );
    });

    backend_test!(
        revoking_a_refresh_token_revokes_its_family_and_userinfo_honours_revocation,
        |app| {
            create_user(&app, "noah");
            let c = web_client(
                &app,
                &["--grant", "refresh_token", "--grant", "authorization_code"],
            );
            let tokens = code_tokens(&app, &c, "noah", "openid", &browser()).await;
            let r0 = tokens["refresh_token"].as_str().unwrap().to_owned();
            let (_, next) = refresh(&app, &c, &r0, None).await;
            let r1 = next["refresh_token"].as_str().unwrap().to_owned();
            assert_eq!(introspect(&app, &c, &r1).await.1["active"], true);
            assert_eq!(introspect(&app, &c, &r0).await.1["active"], false, "spent");
            assert_eq!(revoke(&app, &c, &r0).await, 200);
            assert_eq!(
                introspect(&app, &c, &r1).await.1["active"],
                false,
                "family revoked"
            );
            let (s, _) = refresh(&app, &c, &r1, None).await;
            assert_eq!(s, 400);
            let url = format!("{}/userinfo", app.address);
            let status = |at: String| {
                let (app, url) = (&app, &url);
                async move {
                    app.client
                        .get(url)
                        .bearer_auth(at)
                        .send()
                        .await
                        .unwrap()
                        .status()
                }
            };
            for at in [&tokens, &next] {
                assert_eq!(
                    status(at["access_token"].as_str().unwrap().to_owned()).await,
                    401,
                    "the family's access tokens end with it"
                );
            }

            // An access token revoked on its own (a new sign-in: another family).
            let tokens = code_tokens(&app, &c, "noah", "openid", &browser()).await;
            let at = tokens["access_token"].as_str().unwrap();
            assert_eq!(
                app.client
                    .get(&url)
                    .bearer_auth(at)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200
            );
            assert_eq!(revoke(&app, &c, at).await, 200);
            assert_eq!(
                app.client
                    .get(&url)
                    .bearer_auth(at)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                401
            );
        }
    );
}

backend_test!(a_replayed_code_revokes_what_it_issued, |app| {
    create_user(&app, "olga");
    let c = web_client(
        &app,
        &["--grant", "refresh_token", "--grant", "authorization_code"],
    );
    let p = pkce();
    let done = login(
        &app,
        &browser(),
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "olga",
        PASSWORD,
    )
    .await;
    let code = query_param(&location(&done), "code").unwrap();
    let first = tokens_for_code(&app, &c, &code, &p.verifier).await;
    let at = first["access_token"].as_str().unwrap().to_owned();
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let again = exchange_code(&app, &c, &code, &p.verifier).await;
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let rs = app.service_client();
    let active = |token: String| {
        let app = &app;
        let rs = &rs;
        async move {
            let v: Value = app
                .client
                .post(format!("{}/introspect", app.address))
                .basic_auth(&rs.id, rs.secret.as_deref())
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["active"].as_bool().unwrap()
        }
    };
    assert!(
        !active(at).await,
        "the access token from the first redemption is revoked"
    );
    assert!(!active(rt.clone()).await, "and the refresh token family");
    assert_eq!(
        metric(&app, "sigil_authorization_code_replay_total").await,
        1.0
    );
    let events = app.cli_json(&["audit", "tail"]);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "authorization_code.replay" && e["client_id"] == c.id.as_str()),
        "{events}"
    );
    let resp = app
        .post_token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ],
            Some((&c.id, c.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(resp.status(), 400);
});

/// A redemption that stored its refresh family and died before recording what it issued (the
/// record is gone here as it is with a killed process): a replay still finds the family, from
/// the code, and revokes it. On PostgreSQL, whose cache is a table the test can empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_revokes_its_family_when_the_redemption_recorded_nothing() {
    let app = spawn_app(Backend::Postgres).await;
    create_user(&app, "olga");
    let c = web_client(&app, &["--grant", "refresh_token"]);
    let p = pkce();
    let done = login(
        &app,
        &browser(),
        &authorize_url(&app, &c.id, &p.challenge, ""),
        "olga",
        PASSWORD,
    )
    .await;
    let code = query_param(&location(&done), "code").unwrap();
    let first = tokens_for_code(&app, &c, &code, &p.verifier).await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        raw_sql(
            &app,
            "DELETE FROM shared_state WHERE key LIKE '%code_spent:%'"
        ),
        1
    );
    let again = exchange_code(&app, &c, &code, &p.verifier).await;
    assert_eq!(again.status(), 400);
    let (status, body) = refresh(&app, &c, &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        metric(&app, "sigil_authorization_code_replay_total").await,
        1.0
    );
}

backend_test!(third_party_clients_ask_for_consent_once, |app| {
    create_user(&app, "pia");
    let c = app.create_client(&[
        "--grant",
        "authorization_code",
        "--redirect-uri",
        CALLBACK,
        "--scope",
        "openid",
        "--scope",
        "email",
    ]);
    let p = pkce();
    let b = browser();
    let url_for = |scope: &str, extra: &str| {
        authorize_url(&app, &c.id, &p.challenge, extra)
            .replace("scope=openid%20profile%20email", &format!("scope={scope}"))
    };
    // Logging in leads to the consent screen, not straight back.
    let done = login(&app, &b, &url_for("openid", ""), "pia", PASSWORD).await;
    assert_eq!(done.status(), 303);
    let to = location(&done);
    assert!(to.starts_with("/consent?authz="), "{to}");
    let page = b.get(format!("{}{to}", app.address)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("svc") && html.contains("Sign you in"),
        "{html}"
    );
    let decide = |html: String, decision: &'static str| {
        let b = &b;
        let app = &app;
        async move {
            b.post(format!("{}/consent", app.address))
                .form(&[
                    ("authz", hidden(&html, "authz")),
                    ("csrf", hidden(&html, "csrf")),
                    ("decision", decision.to_owned()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // Deny: back to the client with access_denied.
    let denied = decide(html, "deny").await;
    assert_eq!(
        query_param(&location(&denied), "error").as_deref(),
        Some("access_denied")
    );
    // Again, allow: a code.
    let to = location(&b.get(url_for("openid", "")).send().await.unwrap());
    let html = b
        .get(format!("{}{to}", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let allowed = decide(html, "allow").await;
    assert!(query_param(&location(&allowed), "code").is_some());
    // Remembered: the next request goes straight back with a code.
    let resp = b.get(url_for("openid", "")).send().await.unwrap();
    assert!(query_param(&location(&resp), "code").is_some());
    // A new scope asks again; prompt=none cannot ask.
    let resp = b
        .get(url_for("openid%20email", "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_param(&location(&resp), "error").as_deref(),
        Some("consent_required")
    );
    let resp = b.get(url_for("openid%20email", "")).send().await.unwrap();
    assert!(location(&resp).starts_with("/consent"));
    // prompt=consent always asks.
    let resp = b
        .get(url_for("openid", "&prompt=consent"))
        .send()
        .await
        .unwrap();
    assert!(location(&resp).starts_with("/consent"));
    // Another browser cannot use this consent screen.
    let to = location(&resp);
    let html = b
        .get(format!("{}{to}", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stolen = browser()
        .post(format!("{}/consent", app.address))
        .form(&[
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("decision", "allow".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_is_rate_limited_per_ip() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![(
                "SIGIL_RATE_LIMITS_LOGIN_PER_IP".to_owned(),
                "3/1m".to_owned(),
            )],
            ..AppOptions::default()
        },
    )
    .await;
    create_user(&app, "quinn");
    let c = web_client(&app, &[]);
    let p = pkce();
    let b = browser();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    for _ in 0..3 {
        assert_eq!(
            login(&app, &b, &url, "quinn", "wrong password here")
                .await
                .status(),
            401
        );
    }
    let limited = login(&app, &b, &url, "quinn", PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(limited.headers()["x-ratelimit-limit"], "3");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        metric(&app, r#"sigil_rate_limited_total{class="login_per_ip"}"#).await,
        1.0
    );
    assert_eq!(
        metric(&app, r#"sigil_logins_total{outcome="rate_limited"}"#).await,
        1.0
    );
    // A minute later the address may try again.
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(login(&app, &b, &url, "quinn", PASSWORD).await.status(), 303);
}

backend_test!(pkce_can_be_optional_for_confidential_clients_only, |app| {
    create_user(&app, "rosa");
    let out = app.cli(&[
        "clients",
        "create",
        "--name",
        "spa",
        "--public",
        "--redirect-uri",
        CALLBACK,
        "--pkce",
        "optional",
    ]);
    assert_eq!(out.status.code(), Some(1), "never for public clients");
    let c = web_client(&app, &["--pkce", "optional"]);
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
        app.address,
        c.id,
        urlencode(CALLBACK)
    );
    let done = login(&app, &browser(), &url, "rosa", PASSWORD).await;
    let code = query_param(&location(&done), "code").expect("a code without PKCE");
    let resp = app
        .post_token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
            ],
            Some((&c.id, c.secret.as_deref().unwrap())),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // plain is still refused.
    let loc = location(
        &browser()
            .get(format!(
                "{url}&code_challenge={}&code_challenge_method=plain",
                "a".repeat(43)
            ))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
});

backend_test!(id_token_hint_must_match_the_signed_in_user, |app| {
    create_user(&app, "sam");
    create_user(&app, "tess");
    let c = web_client(&app, &[]);
    let p = pkce();
    let id_token_of = |user: &'static str, b: reqwest::Client| {
        let app = &app;
        let c = &c;
        let p = &p;
        async move {
            let done = login(
                app,
                &b,
                &authorize_url(app, &c.id, &p.challenge, ""),
                user,
                PASSWORD,
            )
            .await;
            let code = query_param(&location(&done), "code").unwrap();
            let t = tokens_for_code(app, c, &code, &p.verifier).await;
            t["id_token"].as_str().unwrap().to_owned()
        }
    };
    let sams_browser = browser();
    let sam = id_token_of("sam", sams_browser.clone()).await;
    let tess = id_token_of("tess", browser()).await;
    let silent = |hint: &str| {
        authorize_url(
            &app,
            &c.id,
            &p.challenge,
            &format!("&prompt=none&id_token_hint={hint}"),
        )
    };
    let loc = location(&sams_browser.get(silent(&sam)).send().await.unwrap());
    assert!(
        query_param(&loc, "code").is_some(),
        "the hinted user is signed in"
    );
    let loc = location(&sams_browser.get(silent(&tess)).send().await.unwrap());
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required"),
        "another user is signed in"
    );
    let loc = location(
        &sams_browser
            .get(silent("not-a-token"))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
});

backend_test!(clients_choose_their_id_token_algorithm, |app| {
    create_user(&app, "uma");
    let default = web_client(&app, &[]);
    let eddsa = web_client(&app, &["--id-token-alg", "EdDSA"]);
    let shown = app.cli_json(&["clients", "show", &eddsa.id]);
    assert_eq!(shown["id_token_signed_response_alg"], "EdDSA");
    // Registering the client created the EdDSA key; the server picks it up within seconds.
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.jwks().await["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["alg"] == "EdDSA")
        })
        .await,
        "the EdDSA key is published"
    );
    let jwks = sigil_verify::JwkSet::from_json(app.jwks().await.to_string().as_bytes()).unwrap();
    for (client, alg) in [(&default, "RS256"), (&eddsa, "EdDSA")] {
        let t = code_tokens(&app, client, "uma", "openid", &browser()).await;
        let id_token = t["id_token"].as_str().unwrap();
        assert_eq!(jwt_header(id_token)["alg"], alg);
        let claims = sigil_verify::Verifier::builder(app.address.as_str(), client.id.as_str())
            .typ(Some("JWT"))
            .jwks(jwks.clone())
            .build()
            .unwrap()
            .verify(id_token)
            .unwrap();
        assert!(claims.aud.contains(&client.id));
        // The access token keeps the server's access-token algorithm.
        assert_eq!(
            jwt_header(t["access_token"].as_str().unwrap())["alg"],
            "ES256"
        );
    }
    let disco: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        disco["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
});

backend_test!(sessions_end_after_8h_idle_or_24h_in_all, |app| {
    create_user(&app, "vera");
    let c = web_client(&app, &[]);
    let p = pkce();
    let silent = authorize_url(&app, &c.id, &p.challenge, "&prompt=none");
    let silent_ok = |b: &reqwest::Client| {
        let b = b.clone();
        let url = silent.clone();
        async move {
            let loc = location(&b.get(&url).send().await.unwrap());
            match (query_param(&loc, "code"), query_param(&loc, "error")) {
                (Some(_), _) => true,
                (None, Some(e)) if e == "login_required" => false,
                _ => panic!("unexpected answer {loc}"),
            }
        }
    };
    let hour = Duration::from_secs(3600);

    // Idle: each use within 8 h keeps the session; 8 h without one ends it.
    let b = browser();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    assert_eq!(login(&app, &b, &url, "vera", PASSWORD).await.status(), 303);
    app.clock.advance(7 * hour);
    assert!(silent_ok(&b).await, "used after 7 h");
    app.clock.advance(7 * hour);
    assert!(silent_ok(&b).await, "7 h after the last use");
    app.clock.advance(8 * hour + Duration::from_secs(1));
    assert!(!silent_ok(&b).await, "8 h idle ends the session");

    // Absolute: used every 7 h, the session still ends 24 h after the login.
    let b = browser();
    assert_eq!(login(&app, &b, &url, "vera", PASSWORD).await.status(), 303);
    for step in 1..=3 {
        app.clock.advance(7 * hour);
        assert!(silent_ok(&b).await, "used at {} h", 7 * step);
    }
    app.clock.advance(3 * hour + Duration::from_secs(1));
    assert!(
        !silent_ok(&b).await,
        "24 h after the login, however recent the use"
    );
});

/// Under an https issuer the cookies are `__Host-` prefixed and `Secure` (so the browser keeps
/// them to this exact origin), and a login always issues a new session id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_issuers_use_host_prefixed_secure_cookies() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![(
                "SIGIL_ISSUER".to_owned(),
                "https://id.example.test".to_owned(),
            )],
            ..AppOptions::default()
        },
    )
    .await;
    create_user(&app, "wes");
    let c = web_client(&app, &[]);
    let p = pkce();
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    // reqwest's cookie store (rightly) keeps Secure cookies from plain-http origins out of
    // requests, so this browser carries the cookies by hand.
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let set_cookies = |resp: &reqwest::Response| -> Vec<String> {
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let pair = |cookie: &str| cookie.split(';').next().unwrap().to_owned();
    let check = |cookie: &str| {
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attr), "{attr} missing: {cookie}");
        }
        assert!(
            !cookie.contains("Domain"),
            "__Host- forbids Domain: {cookie}"
        );
    };
    let mut session_ids = Vec::new();
    let mut session: Option<String> = None;
    for _ in 0..2 {
        let page = b.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let binding = set_cookies(&page)
            .into_iter()
            .find(|c| c.starts_with("__Host-sigil_login="))
            .expect("__Host- login binding cookie");
        check(&binding);
        let html = page.text().await.unwrap();
        let form = [
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", "wes".to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        let mut cookie_header = pair(&binding);
        if let Some(s) = &session {
            cookie_header = format!("{cookie_header}; {s}");
        }
        let done = b
            .post(format!("{}/login", app.address))
            .header("cookie", cookie_header)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303);
        assert!(location(&done).starts_with(CALLBACK));
        let cookie = set_cookies(&done)
            .into_iter()
            .find(|c| c.starts_with("__Host-sigil_session="))
            .expect("__Host- session cookie");
        check(&cookie);
        session_ids.push(pair(&cookie));
        session = Some(pair(&cookie));
    }
    assert_ne!(
        session_ids[0], session_ids[1],
        "logging in again (with the old session cookie) issues a new session id"
    );
    // The session answers prompt=none under its __Host- name.
    let loc = location(
        &b.get(authorize_url(&app, &c.id, &p.challenge, "&prompt=none"))
            .header("cookie", session.unwrap())
            .send()
            .await
            .unwrap(),
    );
    assert!(query_param(&loc, "code").is_some(), "{loc}");
    assert!(query_param(&loc, "iss").as_deref() == Some("https://id.example.test"));
}

backend_test!(
    a_sign_in_page_opened_on_one_server_is_finished_on_another,
    |app| {
        // The page's state travels in its form, sealed under the master key: nothing was
        // stored by the GET, so any replica can take the POST.
        create_user(&app, "rhea");
        let c = web_client(&app, &[]);
        let replica = spawn_replica(&app).await;
        let p = pkce();
        let b = browser();
        let page = b
            .get(authorize_url(&app, &c.id, &p.challenge, ""))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let form = [
            ("authz", hidden(&html, "authz")),
            ("csrf", hidden(&html, "csrf")),
            ("username", "rhea".to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        let resp = b
            .post(format!("{}/login", replica.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
        let code = query_param(&location(&resp), "code").expect("a code");
        let tokens = tokens_for_code(&replica, &c, &code, &p.verifier).await;
        assert!(tokens["id_token"].is_string(), "{tokens}");

        // A page's state cannot be altered: one changed character and it is refused.
        let mut tampered = hidden(&html, "authz").into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        let resp = b
            .post(format!("{}/login", app.address))
            .form(&[
                ("authz", String::from_utf8(tampered).unwrap()),
                ("csrf", hidden(&html, "csrf")),
                ("username", "rhea".to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("expired"));
    }
);
