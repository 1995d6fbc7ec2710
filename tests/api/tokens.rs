//! Tokens at their edges: refresh rotation races, what introspection and /userinfo say about a
//! user's tokens and to whom, password reset, `at_hash` per algorithm, refresh tokens that are no
//! bearer tokens, per-client access-token algorithms, and protocol details of /authorize and
//! /token (PKCE, request objects, HEAD, prompt values, resource indicators).

use std::time::Duration;

use crate::backend_test;
use crate::flow::{
    CALLBACK, PASSWORD, authorize_url, browser, code_tokens, create_user, location, login, pkce,
    query_param, refresh, web_client,
};
use crate::helpers::*;
use serde_json::{Value, json};

fn refresh_client(app: &TestApp, extra: &[&str]) -> TestClient {
    let mut args = vec!["--grant", "refresh_token", "--grant", "authorization_code"];
    args.extend_from_slice(extra);
    web_client(app, &args)
}

// #1 ------------------------------------------------------------------------------------------

backend_test!(
    a_repeat_after_the_successor_was_used_is_reuse_and_revokes_the_family,
    |app| {
        create_user(&app, "rita");
        let c = refresh_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "rita", "openid", &browser()).await;
        let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (s, b1) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(s, 200, "{b1}");
        let rt1 = b1["refresh_token"].as_str().unwrap().to_owned();
        let (s, b2) = refresh(&app, &c, &rt1, None).await;
        assert_eq!(s, 200, "{b2}");
        let rt2 = b2["refresh_token"].as_str().unwrap().to_owned();
        // Well within the race window, but rt1 has been used: rt0 again is reuse.
        let (s, body) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
        let (s, body) = refresh(&app, &c, &rt2, None).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "the whole family is revoked: {body}"
        );
        assert_eq!(metric(&app, "sigil_refresh_token_reuse_total").await, 1.0);
    }
);

backend_test!(
    two_tabs_repeating_a_token_share_its_successor_while_it_is_unused,
    |app| {
        create_user(&app, "sara");
        let c = refresh_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "sara", "openid", &browser()).await;
        let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (s, first) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(s, 200, "{first}");
        let (s, second) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(s, 200, "{second}");
        let rt1 = first["refresh_token"].as_str().unwrap();
        assert_eq!(
            jwt_payload(rt1)["jti"],
            jwt_payload(second["refresh_token"].as_str().unwrap())["jti"]
        );
        // The shared successor still works.
        let (s, body) = refresh(&app, &c, rt1, None).await;
        assert_eq!(s, 200, "{body}");
    }
);

// #8 ------------------------------------------------------------------------------------------

async fn wait_for_alg(app: &TestApp, alg: &str) {
    assert!(
        app.eventually(Duration::from_secs(10), || async {
            app.jwks().await["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["alg"] == alg)
        })
        .await,
        "a {alg} key is published"
    );
    // The sync job reloads the ring and the client cache together; give it one more tick.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

backend_test!(at_hash_uses_the_hash_of_the_id_token_algorithm, |app| {
    use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
    use openidconnect::{AccessToken, AccessTokenHash};
    create_user(&app, "ella");
    let eddsa = web_client(&app, &["--id-token-alg", "EdDSA"]);
    let rs256 = web_client(&app, &[]);
    wait_for_alg(&app, "EdDSA").await;
    for (c, alg) in [
        (&eddsa, CoreJwsSigningAlgorithm::EdDsa),
        (&rs256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ] {
        let t = code_tokens(&app, c, "ella", "openid", &browser()).await;
        let id_token = t["id_token"].as_str().unwrap();
        let kid = jwt_header(id_token)["kid"].as_str().unwrap().to_owned();
        let jwk = app.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .cloned()
            .unwrap();
        let key: CoreJsonWebKey = serde_json::from_value(jwk).unwrap();
        let expected = AccessTokenHash::from_token(
            &AccessToken::new(t["access_token"].as_str().unwrap().to_owned()),
            &alg,
            &key,
        )
        .unwrap();
        assert_eq!(
            jwt_payload(id_token)["at_hash"].as_str(),
            Some(expected.as_str()),
            "{alg:?}"
        );
    }
});

// #9 ------------------------------------------------------------------------------------------

async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

backend_test!(refresh_tokens_are_not_bearer_tokens, |app| {
    create_user(&app, "finn");
    let c = refresh_client(&app, &[]);
    let tokens = code_tokens(&app, &c, "finn", "openid", &browser()).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(jwt_header(rt)["typ"], "refresh+jwt");
    assert_eq!(userinfo_status(&app, rt).await, 401);
    // A resource server that skips `typ` and expects the issuer as audience refuses it.
    let header = jsonwebtoken::decode_header(rt).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[app.address.as_str()]);
    validation.set_issuer(&[app.address.as_str()]);
    let decoded = jsonwebtoken::decode::<Value>(rt, &key, &validation);
    assert!(
        decoded.is_err(),
        "jsonwebtoken accepted a refresh token as an access token"
    );
    let jwks = sigil_verify::JwkSet::from_json(app.jwks().await.to_string().as_bytes()).unwrap();
    let verified = sigil_verify::Verifier::builder(app.address.as_str(), app.address.as_str())
        .typ(None)
        .jwks(jwks)
        .build()
        .unwrap()
        .verify(rt);
    assert!(
        verified.is_err(),
        "sigil-verify accepted a refresh token as an access token"
    );
    // Its audience cannot be registered for a client.
    let aud = jwt_payload(rt)["aud"].as_str().unwrap().to_owned();
    assert_ne!(aud, app.address);
    let out = app.cli(&[
        "clients",
        "create",
        "--name",
        "sneaky",
        "--grant",
        "client_credentials",
        "--audience",
        &aud,
    ]);
    assert!(!out.status.success(), "registered the refresh audience");
    // The refresh grant still works.
    let (s, body) = refresh(&app, &c, rt, None).await;
    assert_eq!(s, 200, "{body}");
});

// #5 ------------------------------------------------------------------------------------------

backend_test!(
    a_disabled_users_access_token_is_inactive_at_introspect_and_userinfo,
    |app| {
        create_user(&app, "dora");
        let c = web_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "dora", "openid", &browser()).await;
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(introspect_ok(&app, &c, at).await["active"], true);
        assert_eq!(userinfo_status(&app, at).await, 200);
        app.cli_json(&["users", "disable", "dora"]);
        assert_eq!(introspect_ok(&app, &c, at).await, json!({"active": false}));
        assert_eq!(userinfo_status(&app, at).await, 401);
    }
);

backend_test!(tokens_issued_before_a_password_reset_are_inactive, |app| {
    create_user(&app, "paul");
    let c = refresh_client(&app, &[]);
    let b = browser();
    let tokens = code_tokens(&app, &c, "paul", "openid", &b).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(introspect_ok(&app, &c, at).await["active"], true);
    // Token times are whole seconds: let one pass before the reset.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = app.cli_stdin(
        &["users", "reset-password", "paul", "--password-stdin"],
        "a brand new passphrase for paul\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(introspect_ok(&app, &c, at).await, json!({"active": false}));
    assert_eq!(userinfo_status(&app, at).await, 401);
    assert_eq!(introspect_ok(&app, &c, rt).await, json!({"active": false}));
    // The reset ended the session and the refresh family (#6).
    let (s, body) = refresh(&app, &c, rt, None).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let p = pkce();
    let silent = authorize_url(&app, &c.id, &p.challenge, "&prompt=none");
    let loc = location(&b.get(&silent).send().await.unwrap());
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
    // The old password fails, the new one works.
    let url = authorize_url(&app, &c.id, &p.challenge, "");
    let old = login(&app, &browser(), &url, "paul", PASSWORD).await;
    assert_ne!(old.status(), 303);
    let new = login(
        &app,
        &browser(),
        &url,
        "paul",
        "a brand new passphrase for paul",
    )
    .await;
    assert_eq!(new.status(), 303);
});

backend_test!(
    introspection_answers_only_clients_entitled_to_the_token_and_never_shows_a_refresh_id,
    |app| {
        create_user(&app, "ivan");
        let c = refresh_client(&app, &[]);
        let tokens = code_tokens(&app, &c, "ivan", "openid", &browser()).await;
        let rt = tokens["refresh_token"].as_str().unwrap();
        let at = tokens["access_token"].as_str().unwrap();
        let stranger = app.service_client();
        assert_eq!(
            introspect_ok(&app, &stranger, rt).await,
            json!({"active": false})
        );
        assert_eq!(
            introspect_ok(&app, &stranger, at).await,
            json!({"active": false})
        );
        // The client it was issued to sees it active, still without the refresh token's id.
        let own = introspect_ok(&app, &c, rt).await;
        assert_eq!(own["active"], true, "{own}");
        assert!(own.get("jti").is_none(), "{own}");
        assert!(
            !own.to_string()
                .contains(jwt_payload(rt)["jti"].as_str().unwrap())
        );
        // A resource server registered for the token's audience may introspect it.
        let svc = app.create_client(&[
            "--grant",
            "client_credentials",
            "--audience",
            "https://api.example",
        ]);
        let rs = app.create_client(&[
            "--grant",
            "client_credentials",
            "--audience",
            "https://api.example",
        ]);
        let body: Value = app.token_for(&svc, None).await.json().await.unwrap();
        let svc_at = body["access_token"].as_str().unwrap();
        assert_eq!(introspect_ok(&app, &rs, svc_at).await["active"], true);
        assert_eq!(
            introspect_ok(&app, &stranger, svc_at).await["active"],
            false
        );
    }
);

// #21 -----------------------------------------------------------------------------------------

backend_test!(clients_choose_their_access_token_algorithm, |app| {
    create_user(&app, "ines");
    let svc = app.create_client(&[
        "--grant",
        "client_credentials",
        "--access-token-alg",
        "PS256",
    ]);
    let web = web_client(&app, &["--access-token-alg", "EdDSA"]);
    let shown = app.cli_json(&["clients", "show", &svc.id]);
    assert_eq!(shown["access_token_alg"], "PS256", "{shown}");
    assert_eq!(
        app.cli_json(&["clients", "show", &web.id])["access_token_alg"],
        "EdDSA"
    );
    wait_for_alg(&app, "PS256").await;
    wait_for_alg(&app, "EdDSA").await;

    let body: Value = app.token_for(&svc, None).await.json().await.unwrap();
    let at = body["access_token"].as_str().expect("access token");
    assert_eq!(jwt_header(at)["alg"], "PS256");
    assert_eq!(jwt_header(at)["typ"], "at+jwt");
    verify_with_jsonwebtoken(&app, at, app.address.as_str()).await;

    let t = code_tokens(&app, &web, "ines", "openid", &browser()).await;
    let at = t["access_token"].as_str().expect("access token");
    assert_eq!(jwt_header(at)["alg"], "EdDSA");
    verify_with_jsonwebtoken(&app, at, app.address.as_str()).await;
    // The ID token keeps the client's ID-token algorithm, and userinfo takes the token.
    assert_eq!(jwt_header(t["id_token"].as_str().unwrap())["alg"], "RS256");
    assert_eq!(userinfo_status(&app, at).await, 200);
    // A client without a choice keeps the server's algorithm.
    let plain = app.service_client();
    let body: Value = app.token_for(&plain, None).await.json().await.unwrap();
    assert_eq!(
        jwt_header(body["access_token"].as_str().unwrap())["alg"],
        "ES256"
    );
});
// #17 -----------------------------------------------------------------------------------------

/// Log in with a fresh browser and return (code, verifier).
async fn code_for(app: &TestApp, c: &TestClient, username: &str, extra: &str) -> (String, String) {
    let p = pkce();
    let done = login(
        app,
        &browser(),
        &authorize_url(app, &c.id, &p.challenge, extra),
        username,
        PASSWORD,
    )
    .await;
    assert_eq!(done.status(), 303);
    let code = query_param(&location(&done), "code").expect("code");
    (code, p.verifier)
}

backend_test!(a_missing_code_verifier_is_invalid_grant, |app| {
    create_user(&app, "gwen");
    let c = web_client(&app, &[]);
    let (code, _) = code_for(&app, &c, "gwen", "").await;
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
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
});

backend_test!(request_objects_are_refused_with_their_own_errors, |app| {
    let c = web_client(&app, &[]);
    let p = pkce();
    for (param, error) in [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ] {
        let url = authorize_url(&app, &c.id, &p.challenge, &format!("&{param}=eyJhbGciOi"));
        let resp = browser().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{param}");
        let loc = location(&resp);
        assert!(loc.starts_with(CALLBACK), "{loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error));
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st-1"));
        // An unknown client is never redirected to.
        let resp = browser()
            .get(url.replace(&c.id, "sgl_nobody"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
    }
});

backend_test!(head_works_wherever_get_works, |app| {
    let c = web_client(&app, &[]);
    let p = pkce();
    let authorize = authorize_url(&app, &c.id, &p.challenge, "")
        .strip_prefix(&app.address)
        .unwrap()
        .to_owned();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/userinfo",
        "/assets/sigil.css",
        authorize.as_str(),
    ] {
        let url = format!("{}{path}", app.address);
        let get = app.client.get(&url).send().await.unwrap();
        let head = app.client.head(&url).send().await.unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_ne!(head.status(), 404, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "HEAD {path}"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
});

backend_test!(discovery_lists_exactly_the_prompt_values_accepted, |app| {
    let c = web_client(&app, &[]);
    let p = pkce();
    let disco: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<String> = disco["prompt_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let refused = |resp: &reqwest::Response| {
        resp.status() == 303
            && query_param(&location(resp), "error").as_deref() == Some("invalid_request")
    };
    for value in [
        "none",
        "login",
        "consent",
        "select_account",
        "create",
        "bogus",
    ] {
        let url = authorize_url(&app, &c.id, &p.challenge, &format!("&prompt={value}"));
        let resp = browser().get(&url).send().await.unwrap();
        assert_eq!(
            listed.iter().any(|l| l == value),
            !refused(&resp),
            "prompt={value} is listed exactly when it is accepted ({listed:?})"
        );
    }
});

backend_test!(
    resource_and_audience_narrow_access_tokens_on_the_code_and_refresh_grants,
    |app| {
        create_user(&app, "hugo");
        let c = refresh_client(
            &app,
            &[
                "--audience",
                "https://a.example",
                "--audience",
                "https://b.example",
            ],
        );
        let exchange = |code: String,
                        verifier: String,
                        extra: Vec<(&'static str, &'static str)>| {
            let app = &app;
            let c = &c;
            async move {
                let mut form = vec![
                    ("grant_type", "authorization_code".to_owned()),
                    ("code", code),
                    ("redirect_uri", CALLBACK.to_owned()),
                    ("code_verifier", verifier),
                ];
                form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let resp = app
                    .post_token(&form, Some((&c.id, c.secret.as_deref().unwrap())))
                    .await;
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            }
        };
        let (code, verifier) = code_for(&app, &c, "hugo", "").await;
        let (s, body) = exchange(code, verifier, vec![("resource", "https://a.example")]).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            jwt_payload(body["access_token"].as_str().unwrap())["aud"],
            "https://a.example"
        );
        let rt = body["refresh_token"].as_str().unwrap().to_owned();

        let (code, verifier) = code_for(&app, &c, "hugo", "").await;
        let (s, body) = exchange(code, verifier, vec![("resource", "https://evil.example")]).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_target")));

        let rt_form = |extra: (&'static str, &'static str), rt: String| {
            let app = &app;
            let c = &c;
            async move {
                let resp = app
                    .post_token(
                        &[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                            extra,
                        ],
                        Some((&c.id, c.secret.as_deref().unwrap())),
                    )
                    .await;
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
            }
        };
        let (s, body) = rt_form(("audience", "https://b.example"), rt).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            jwt_payload(body["access_token"].as_str().unwrap())["aud"],
            "https://b.example"
        );
        let rt = body["refresh_token"].as_str().unwrap().to_owned();
        let (s, body) = rt_form(("resource", "https://evil.example"), rt.clone()).await;
        assert_eq!((s, body["error"].as_str()), (400, Some("invalid_target")));
        // Without a resource the token has every registered audience (and the issuer for openid).
        let (s, body) = refresh(&app, &c, &rt, None).await;
        assert_eq!(s, 200, "{body}");
        let aud = jwt_payload(body["access_token"].as_str().unwrap())["aud"].clone();
        for a in [
            "https://a.example",
            "https://b.example",
            app.address.as_str(),
        ] {
            assert!(aud.as_array().unwrap().iter().any(|v| v == a), "{aud}");
        }
    }
);

// Wire format --------------------------------------------------------------------------------

backend_test!(id_and_refresh_tokens_carry_exactly_their_claims, |app| {
    create_user(&app, "wren");
    let c = refresh_client(&app, &[]);
    let names = |token: &str| -> Vec<String> {
        jwt_payload(token)
            .as_object()
            .expect("claims object")
            .keys()
            .cloned()
            .collect()
    };
    let t = code_tokens(&app, &c, "wren", "openid%20profile%20email", &browser()).await;
    let id_token = t["id_token"].as_str().expect("id_token");
    assert_eq!(
        names(id_token),
        [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "amr",
            "preferred_username",
            "updated_at",
            "email",
            "email_verified"
        ]
    );
    let id = jwt_payload(id_token);
    assert_eq!(id["iss"], app.address.as_str());
    assert_eq!((&id["aud"], &id["azp"]), (&json!(c.id), &json!(c.id)));
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["preferred_username"], "wren");
    assert_eq!(id["email"], "wren@example.com");
    assert!(id["email_verified"].is_boolean(), "{id}");
    assert!(
        id["auth_time"].is_i64() && id["updated_at"].is_i64(),
        "{id}"
    );

    let refresh_names = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ];
    let rt0 = t["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(names(rt0), refresh_names);
    let rt = jwt_payload(rt0);
    assert_eq!(rt["iss"], app.address.as_str());
    assert_eq!(rt["sub"], id["sub"]);
    assert_eq!(
        rt["aud"],
        format!("urn:sigil:refresh:{}", app.address).as_str()
    );
    assert_eq!(rt["client_id"], c.id.as_str());
    assert_eq!(rt["scope"], "email openid profile");
    // A rotated token has the same shape, narrowed or not.
    let (s, body) = refresh(&app, &c, rt0, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        names(body["refresh_token"].as_str().expect("refresh_token")),
        refresh_names
    );

    // Without profile and email: only the protocol claims.
    let plain = web_client(&app, &[]);
    let t = code_tokens(&app, &plain, "wren", "openid", &browser()).await;
    let id_token = t["id_token"].as_str().expect("id_token");
    assert_eq!(
        names(id_token),
        [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "amr"
        ]
    );
});
