//! Discovery documents, JWKS caching headers, health.

use crate::backend_test;
use crate::helpers::*;
use serde_json::Value;

backend_test!(discovery_advertises_what_is_implemented, |app| {
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let resp = app.get(path).await;
        assert_eq!(resp.status(), 200);
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["issuer"], app.address.as_str());
        assert_eq!(doc["jwks_uri"], format!("{}/jwks.json", app.address));
        assert_eq!(doc["token_endpoint"], format!("{}/token", app.address));
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/authorize", app.address)
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            doc["userinfo_endpoint"],
            format!("{}/userinfo", app.address)
        );
        assert_eq!(
            doc["revocation_endpoint"],
            format!("{}/revoke", app.address)
        );
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{}/introspect", app.address)
        );
    }
    // A certified RP library's provider-metadata types accept the document.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = openidconnect::core::CoreProviderMetadata::discover_async(
        openidconnect::IssuerUrl::new(app.address.clone()).unwrap(),
        &http,
    )
    .await
    .expect("openidconnect parses discovery and the JWKS");
    assert_eq!(metadata.issuer().as_str(), app.address);
    assert_eq!(metadata.jwks().keys().len(), 2);
});

backend_test!(jwks_has_cache_headers_and_etag, |app| {
    let resp = app.get("/jwks.json").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=900");
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert!(
        algs.contains(&"ES256") && algs.contains(&"RS256"),
        "one ES256 and one RS256 key at first start"
    );
    for k in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "no private member {private}");
        }
        assert_eq!(k["use"], "sig");
    }
    let resp = app
        .client
        .get(format!("{}/jwks.json", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    // The JWKS also parses with jsonwebtoken's and openidconnect's types.
    let _: jsonwebtoken::jwk::JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let oidc: openidconnect::core::CoreJsonWebKeySet =
        app.get("/jwks.json").await.json().await.unwrap();
    assert_eq!(oidc.keys().len(), 2);
});

backend_test!(health_and_readiness, |app| {
    assert_eq!(app.get("/healthz").await.status(), 200);
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "up");
    let resp = app.get("/nope").await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
});
