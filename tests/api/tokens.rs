//! Tokens at their edges: refresh rotation races, what introspection and /userinfo say about a
//! user's tokens and to whom, password reset, `at_hash` per algorithm, refresh tokens that are no
//! bearer tokens, per-client access-token algorithms, and protocol details of /authorize and
//! /token (PKCE, request objects, HEAD, prompt values, resource indicators).

use std::time::Duration;

use crate::backend_test;
use crate::helpers::*;
use crate::login::refresh::{code_tokens, refresh};
use crate::login::{browser, create_user, web_client};
use base64::Engine;
use serde_json::Value;

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

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
            claims(rt1)["jti"],
            claims(second["refresh_token"].as_str().unwrap())["jti"]
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
            claims(id_token)["at_hash"].as_str(),
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
    let aud = claims(rt)["aud"].as_str().unwrap().to_owned();
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
