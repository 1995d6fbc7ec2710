//! `POST /token` with client_credentials: success, client authentication, and every bad input.

use crate::backend_test;
use crate::helpers::*;
use base64::Engine;
use serde_json::{Value, json};

async fn error_of(resp: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.expect("error body is JSON");
    (status, body, headers)
}

backend_test!(issues_a_token_that_jsonwebtoken_verifies, |app| {
    let c = app.service_client();
    let resp = app.token_for(&c, Some("invoices:read")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "invoices:read");
    let token = body["access_token"].as_str().unwrap();

    let header = jwt_header(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256", "default signing algorithm");
    assert!(header["kid"].is_string());

    let claims = verify_with_jsonwebtoken(&app, token, &app.address).await;
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(
        claims["aud"],
        app.address.as_str(),
        "default audience is the issuer"
    );
    assert_eq!(claims["scope"], "invoices:read");
    assert_eq!(claims["roles"], serde_json::json!([]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    // The token also passes Sigil's own verifier (sigil-verify) against the served JWKS.
    let jwks_bytes = app.get("/jwks.json").await.bytes().await.unwrap();
    let set = sigil_verify::JwkSet::from_json(&jwks_bytes).unwrap();
    let verifier = sigil_verify::Verifier::builder(app.address.as_str(), app.address.as_str())
        .jwks(set)
        .build()
        .unwrap();
    let checked = verifier.verify(token).unwrap();
    assert!(checked.has_scope("invoices:read"));
});

backend_test!(
    no_scope_means_every_registered_scope_and_roles_are_carried,
    |app| {
        app.cli_json(&["roles", "create", "billing-service"]);
        let c = app.create_client(&["--scope", "a", "--scope", "b", "--role", "billing-service"]);
        let body: Value = app.token_for(&c, None).await.json().await.unwrap();
        assert_eq!(body["scope"], "a b");
        let claims =
            verify_with_jsonwebtoken(&app, body["access_token"].as_str().unwrap(), &app.address)
                .await;
        assert_eq!(claims["roles"], serde_json::json!(["billing-service"]));
    }
);

backend_test!(client_secret_post_works_too, |app| {
    let c = app.service_client();
    let resp = app
        .post_token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", c.secret.as_deref().unwrap()),
            ],
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
});

backend_test!(audiences_must_be_registered, |app| {
    let c = app.create_client(&[
        "--scope",
        "x",
        "--audience",
        "https://api.example",
        "--audience",
        "billing",
    ]);
    let secret = c.secret.clone().unwrap();
    let body: Value = app.token_for(&c, None).await.json().await.unwrap();
    let claims =
        verify_with_jsonwebtoken(&app, body["access_token"].as_str().unwrap(), "billing").await;
    assert_eq!(
        claims["aud"],
        serde_json::json!(["billing", "https://api.example"])
    );

    let resp = app
        .post_token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.example"),
            ],
            Some((&c.id, &secret)),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    let claims = verify_with_jsonwebtoken(
        &app,
        body["access_token"].as_str().unwrap(),
        "https://api.example",
    )
    .await;
    assert_eq!(claims["aud"], "https://api.example");

    let resp = app
        .post_token(
            &[
                ("grant_type", "client_credentials"),
                ("audience", "elsewhere"),
            ],
            Some((&c.id, &secret)),
        )
        .await;
    let (status, body, _) = error_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
});

backend_test!(wrong_secret_and_unknown_client_look_the_same, |app| {
    let c = app.service_client();
    let wrong = app
        .post_token(
            &[("grant_type", "client_credentials")],
            Some((&c.id, "sigil_secret_wrong")),
        )
        .await;
    let (s1, b1, h1) = error_of(wrong).await;
    let unknown = app
        .post_token(
            &[("grant_type", "client_credentials")],
            Some(("sgl_nobody", c.secret.as_deref().unwrap())),
        )
        .await;
    let (s2, b2, h2) = error_of(unknown).await;
    assert_eq!(s1, 401);
    assert_eq!(b1["error"], "invalid_client");
    assert!(h1.contains_key("www-authenticate"));
    assert_eq!(
        (s1, &b1),
        (s2, &b2),
        "no difference between unknown client and wrong secret"
    );
    assert!(
        h2["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert!(
        !b1.to_string().contains(&c.id),
        "the error does not echo input"
    );
});

backend_test!(malformed_authorization_headers_are_invalid_client, |app| {
    for value in [
        "Basic",
        "Basic !!!notbase64",
        "Bearer abc",
        "Basic Zm9v",
        "basic",
    ] {
        let resp = app
            .client
            .post(format!("{}/token", app.address))
            .header("authorization", value)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let (status, body, headers) = error_of(resp).await;
        assert_eq!(status, 401, "{value}");
        assert_eq!(body["error"], "invalid_client", "{value}");
        assert!(headers.contains_key("www-authenticate"), "{value}");
    }
    // Non-UTF-8 inside the Basic credentials.
    let raw = base64::engine::general_purpose::STANDARD.encode(b"\xff\xfe:secret");
    let resp = app
        .client
        .post(format!("{}/token", app.address))
        .header("authorization", format!("Basic {raw}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
});

backend_test!(two_authentication_methods_at_once_are_refused, |app| {
    let c = app.service_client();
    let secret = c.secret.clone().unwrap();
    let resp = app
        .post_token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
            Some((&c.id, &secret)),
        )
        .await;
    let (status, body, _) = error_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
});

backend_test!(grant_type_errors, |app| {
    let c = app.service_client();
    let secret = c.secret.clone().unwrap();
    let (status, body, _) = error_of(
        app.post_token(&[("scope", "x")], Some((&c.id, &secret)))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body, _) = error_of(
        app.post_token(&[("grant_type", "password")], Some((&c.id, &secret)))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body, _) = error_of(
        app.post_token(
            &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")],
            Some((&c.id, &secret)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
});

backend_test!(scope_outside_the_registration_is_invalid_scope, |app| {
    let c = app.service_client();
    let (status, body, _) = error_of(app.token_for(&c, Some("invoices:read admin")).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert!(
        !body["error_description"]
            .as_str()
            .unwrap()
            .contains("admin"),
        "no reflection"
    );
    let (status, body, _) = error_of(app.token_for(&c, Some("a  b")).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
});

backend_test!(a_client_without_the_grant_is_unauthorized, |app| {
    let c = app.create_client(&[
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    ]);
    let (status, body, _) = error_of(app.token_for(&c, None).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
});

backend_test!(malformed_bodies, |app| {
    let c = app.service_client();
    let secret = c.secret.clone().unwrap();
    let send = |body: Vec<u8>, ct: &'static str| {
        app.client
            .post(format!("{}/token", app.address))
            .basic_auth(&c.id, Some(&secret))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    // Over 16 KiB.
    let mut big = b"grant_type=client_credentials&pad=".to_vec();
    big.extend(std::iter::repeat_n(b'a', 17 * 1024));
    let (status, body, _) = error_of(
        send(big, "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "invalid_request");
    // Invalid UTF-8, raw and percent-encoded.
    for bad in [
        &b"grant_type=client_credentials&scope=\xff"[..],
        b"grant_type=client_credentials&scope=%C3%28",
    ] {
        let (status, body, _) = error_of(
            send(bad.to_vec(), "application/x-www-form-urlencoded")
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }
    // Duplicate parameters.
    let (status, body, _) = error_of(
        send(
            b"grant_type=client_credentials&grant_type=client_credentials".to_vec(),
            "application/x-www-form-urlencoded",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Not a form.
    let (status, body, _) = error_of(
        send(
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
            "application/json",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // GET is not allowed, and nothing is a 500.
    let resp = app.get("/token").await;
    assert!(resp.status().is_client_error());
});

backend_test!(rotated_secret_overlaps_then_expires, |app| {
    let c = app.service_client();
    let old = c.secret.clone().unwrap();
    let rotated = app.cli_json(&["clients", "rotate-secret", &c.id, "--overlap", "1h"]);
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("sigil_secret_"));
    // Both work during the overlap (the server picks up the change within its sync interval).
    assert!(
        app.eventually(std::time::Duration::from_secs(5), || async {
            app.post_token(&[("grant_type", "client_credentials")], Some((&c.id, &new)))
                .await
                .status()
                == 200
        })
        .await
    );
    assert_eq!(
        app.post_token(&[("grant_type", "client_credentials")], Some((&c.id, &old)))
            .await
            .status(),
        200
    );
    // After the overlap, only the new one.
    app.clock.advance(std::time::Duration::from_secs(3601));
    assert_eq!(
        app.post_token(&[("grant_type", "client_credentials")], Some((&c.id, &old)))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_token(&[("grant_type", "client_credentials")], Some((&c.id, &new)))
            .await
            .status(),
        200
    );
});

backend_test!(deleted_client_is_refused_within_seconds, |app| {
    let c = app.service_client();
    assert_eq!(app.token_for(&c, None).await.status(), 200);
    app.cli_json(&["clients", "delete", &c.id]);
    assert!(
        app.eventually(std::time::Duration::from_secs(10), || async {
            app.token_for(&c, None).await.status() == 401
        })
        .await
    );
});

backend_test!(oversized_tokens_are_refused_naming_the_claim, |app| {
    let long: Vec<String> = (0..30)
        .map(|i| format!("scope-{i:03}-{}", "x".repeat(140)))
        .collect();
    let mut args = vec!["--scope"];
    let mut flat: Vec<&str> = Vec::new();
    for s in &long {
        flat.push("--scope");
        flat.push(s);
    }
    args.clear();
    let c = app.create_client(&flat);
    let (status, body, _) = error_of(app.token_for(&c, None).await).await;
    assert_eq!(status, 400);
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains("`scope`") && d.contains("4096"), "{d}");
    // A narrower request fits.
    assert_eq!(app.token_for(&c, Some(&long[0])).await.status(), 200);
});

pub mod private_key_jwt {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    pub struct AssertionKey {
        pub pkcs8: Vec<u8>,
        pub kid: String,
    }

    /// Register a client with a fresh P-256 key; returns the client and its key.
    pub fn client_with_key(app: &TestApp) -> (TestClient, AssertionKey) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = kp.public_key().as_ref();
        let jwk = sigil_verify::Jwk::ec_p256(&point[1..33], &point[33..65]);
        let kid = jwk.kid.clone().unwrap();
        let path = app.dir.path().join("client-jwks.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&sigil_verify::JwkSet { keys: vec![jwk] }).unwrap(),
        )
        .unwrap();
        let c = app.create_client(&["--scope", "jobs:run", "--jwks-file", path.to_str().unwrap()]);
        assert!(c.secret.is_none(), "no secret for a private_key_jwt client");
        (
            c,
            AssertionKey {
                pkcs8: pkcs8.as_ref().to_vec(),
                kid,
            },
        )
    }

    pub fn assertion(
        key: &AssertionKey,
        client_id: &str,
        aud: &str,
        jti: &str,
        exp_in: i64,
    ) -> String {
        let now = unix_now_real();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": now, "exp": now + exp_in,
        });
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&key.pkcs8),
        )
        .unwrap()
    }

    async fn present(app: &TestApp, client_id: Option<&str>, assertion: &str) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ];
        if let Some(id) = client_id {
            form.push(("client_id", id));
        }
        app.post_token(&form, None).await
    }

    backend_test!(
        signed_assertions_authenticate_and_replays_are_refused,
        |app| {
            let (c, key) = client_with_key(&app);
            let token_endpoint = format!("{}/token", app.address);
            let a = assertion(&key, &c.id, &token_endpoint, "jti-1", 60);
            let resp = present(&app, Some(&c.id), &a).await;
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
            // The same assertion again: replay.
            let (status, body, _) = error_of(present(&app, Some(&c.id), &a).await).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("invalid_client"))
            );
            // The issuer is an accepted audience too; client_id is optional.
            let a2 = assertion(&key, &c.id, &app.address, "jti-2", 60);
            assert_eq!(present(&app, None, &a2).await.status(), 200);
        }
    );

    backend_test!(forged_and_wrong_assertions_are_refused, |app| {
        let (c, key) = client_with_key(&app);
        let token_endpoint = format!("{}/token", app.address);
        let now = unix_now_real();
        // Wrong audience.
        let wrong_aud = assertion(&key, &c.id, "https://elsewhere.example/token", "j1", 60);
        // Expired.
        let expired = assertion(&key, &c.id, &token_endpoint, "j2", -600);
        // Signed by another key with the registered kid.
        let other = client_with_key(&app).1;
        let forged = assertion(
            &AssertionKey {
                pkcs8: other.pkcs8,
                kid: key.kid.clone(),
            },
            &c.id,
            &token_endpoint,
            "j3",
            60,
        );
        // HS256 keyed with something public.
        let claims = serde_json::json!({"iss": c.id, "sub": c.id, "aud": token_endpoint, "jti": "j4", "exp": now + 60});
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.kid.as_bytes()),
        )
        .unwrap();
        // alg none.
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none"})),
            b64(&claims)
        );
        // sub for a different client than client_id.
        let mismatched = assertion(&key, &c.id, &token_endpoint, "j5", 60);
        for (what, a, id) in [
            ("wrong aud", wrong_aud, Some(c.id.as_str())),
            ("expired", expired, Some(c.id.as_str())),
            ("forged", forged, Some(c.id.as_str())),
            ("HS256", hs, Some(c.id.as_str())),
            ("none", none, Some(c.id.as_str())),
            ("client_id mismatch", mismatched, Some("sgl_other")),
            ("garbage", "not.a.jwt".to_owned(), Some(c.id.as_str())),
        ] {
            let (status, body, _) = error_of(present(&app, id, &a).await).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (401, Some("invalid_client")),
                "{what}"
            );
        }
        // Wrong assertion type.
        let good = assertion(&key, &c.id, &token_endpoint, "j6", 60);
        let resp = app
            .post_token(
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:example"),
                    ("client_assertion", &good),
                ],
                None,
            )
            .await;
        assert_eq!(resp.status(), 400);
    });
}

backend_test!(
    malformed_client_ids_are_invalid_client_and_never_looked_up,
    |app| {
        let misses = "sigil_client_cache_misses_total";
        let before = metric(&app, misses).await;
        let long = "c".repeat(129);
        for id in [long.as_str(), "a b", "\u{e9}", "a\u{1}b"] {
            for resp in [
                app.post_token(
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", id),
                        ("client_secret", "sigil_secret_x"),
                    ],
                    None,
                )
                .await,
                app.post_token(
                    &[("grant_type", "client_credentials")],
                    Some((id, "sigil_secret_x")),
                )
                .await,
                app.post_token(
                    &[("grant_type", "client_credentials"), ("client_id", id)],
                    None,
                )
                .await,
            ] {
                let (status, body, headers) = error_of(resp).await;
                assert_eq!(
                    (status, &body["error"]),
                    (401, &json!("invalid_client")),
                    "{id:?}"
                );
                assert!(headers.contains_key("www-authenticate"), "{id:?}");
            }
        }
        assert_eq!(
            metric(&app, misses).await,
            before,
            "no lookup for a malformed id"
        );
        // A well-formed unknown id is looked up.
        let resp = app
            .post_token(
                &[("grant_type", "client_credentials")],
                Some(("sgl_nobody", "sigil_secret_x")),
            )
            .await;
        assert_eq!(resp.status(), 401);
        assert_eq!(metric(&app, misses).await, before + 1.0);
    }
);
