//! The admin API over HTTP (`/admin/api/v1`): who may call what (a permission matrix per
//! endpoint), the same data as the CLI both ways, the audit actor, pagination, and the
//! OpenAPI document.

use std::time::Duration;

use crate::backend_test;
use crate::flow::{
    PASSWORD, authorize_url, browser, code_tokens, create_user, login, pkce, web_client,
};
use crate::helpers::*;
use serde_json::{Value, json};

/// A client_credentials token of a new client holding `roles` (`[]`: none), for the issuer.
async fn admin_token(app: &TestApp, roles: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["--grant", "client_credentials"];
    for r in roles {
        args.push("--role");
        args.push(r);
    }
    args.extend_from_slice(extra);
    let c = app.create_client(&args);
    let body: Value = app.token_for(&c, None).await.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let url = format!("{}/admin/api/v1{path}", app.address);
    let mut req = match method {
        "GET" => app.client.get(url),
        "POST" => app.client.post(url),
        "PATCH" => app.client.patch(url),
        "PUT" => app.client.put(url),
        "DELETE" => app.client.delete(url),
        m => panic!("method {m}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// Every endpoint, with a body for the writes (each write targets its own role, so the matrix
/// can run them in any order).
fn endpoints(tag: &str) -> Vec<(&'static str, String, Option<Value>, &'static str)> {
    vec![
        ("GET", "/roles".into(), None, "roles"),
        (
            "POST",
            "/roles".into(),
            Some(json!({"name": format!("made-{tag}"), "permissions": ["job:read"]})),
            "roles",
        ),
        ("GET", "/roles/target".into(), None, "roles"),
        (
            "PATCH",
            "/roles/target".into(),
            Some(json!({"add_permissions": [format!("job:{tag}")]})),
            "roles",
        ),
        ("DELETE", format!("/roles/doomed-{tag}"), None, "roles"),
        ("GET", "/users".into(), None, "users"),
        ("GET", "/users/alice".into(), None, "users"),
        (
            "POST",
            "/users".into(),
            Some(json!({"username": format!("made-{tag}"), "password": PASSWORD})),
            "users",
        ),
        ("POST", "/users/alice/disable".into(), None, "users"),
        ("POST", "/users/alice/enable".into(), None, "users"),
        (
            "PUT",
            "/users/alice/roles".into(),
            Some(json!({"roles": ["target"]})),
            "users",
        ),
        (
            "POST",
            "/users/alice/reset-password".into(),
            Some(json!({"password": "a different horse staple battery"})),
            "users",
        ),
        ("DELETE", format!("/users/doomed-{tag}"), None, "users"),
        ("GET", "/audit".into(), None, "audit"),
        ("GET", "/audit/verify".into(), None, "audit"),
    ]
}

backend_test!(
    the_admin_api_answers_only_tokens_with_the_permission,
    |app| {
        create_user(&app, "alice");
        create_user(&app, "doomed-w");
        app.cli_json(&["roles", "create", "target"]);
        app.cli_json(&["roles", "create", "doomed-w"]);
        app.cli_json(&[
            "roles",
            "create",
            "auditor",
            "--permission",
            "admin:roles:read",
            "--permission",
            "admin:users:read",
            "--permission",
            "admin:audit:read",
        ]);
        let nothing = admin_token(&app, &[], &[]).await;
        // Tokens carry a role's permissions once the server has loaded it (within 500 ms).
        let c = app.create_client(&["--grant", "client_credentials", "--role", "auditor"]);
        let mut reader = String::new();
        for _ in 0..40 {
            let body: Value = app.token_for(&c, None).await.json().await.unwrap();
            reader = body["access_token"].as_str().unwrap().to_owned();
            if jwt_payload(&reader)["permissions"]
                .as_array()
                .unwrap()
                .len()
                == 3
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            jwt_payload(&reader)["permissions"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let writer = admin_token(&app, &["sigil-admin"], &[]).await;
        // sigil-admin's permissions are the issuer's: a token for another audience holds none, and
        // is no token for Sigil's own API.
        let elsewhere = admin_token(
            &app,
            &["sigil-admin"],
            &["--audience", "https://jobs.example.com"],
        )
        .await;
        let web = web_client(&app, &["--grant", "refresh_token"]);
        let tokens = code_tokens(&app, &web, "alice", "openid", &browser()).await;
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        // A token signed by a key Sigil never had, with the kid of one it has.
        let forged = {
            let real = jwt_header(&writer);
            let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": real["kid"]});
            let claims = jwt_payload(&writer);
            use base64::Engine;
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!("{}.{}.c2lnbmF0dXJl", b64(&header), b64(&claims))
        };

        for (method, path, body, _resource) in endpoints("w") {
            // No token: 401 with a bare Bearer challenge.
            let resp = call(&app, method, &path, None, body.clone()).await;
            assert_eq!(resp.status(), 401, "{method} {path} without a token");
            assert_eq!(
                resp.headers()["www-authenticate"].to_str().unwrap(),
                "Bearer realm=\"sigil\""
            );
            for (what, t) in [
                ("an ID token", &id_token),
                ("a refresh token", &refresh_token),
                ("a token for another audience", &elsewhere),
                ("a forged token", &forged),
            ] {
                let resp = call(&app, method, &path, Some(t), body.clone()).await;
                assert_eq!(resp.status(), 401, "{method} {path} with {what}");
                assert!(
                    resp.headers()["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .contains("invalid_token")
                );
            }
            let resp = call(&app, method, &path, Some(&nothing), body.clone()).await;
            assert_eq!(resp.status(), 403, "{method} {path} without the permission");
            assert!(
                resp.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("insufficient_scope")
            );
            let resp = call(&app, method, &path, Some(&reader), body.clone()).await;
            let want = if method == "GET" { 200 } else { 403 };
            assert_eq!(resp.status(), want, "{method} {path} read-only");
            let resp = call(&app, method, &path, Some(&writer), body.clone()).await;
            assert!(
                resp.status().is_success(),
                "{method} {path} with write: {}",
                resp.status()
            );
            assert!(
                resp.headers().contains_key("x-ratelimit-limit"),
                "{method} {path} rate-limited"
            );
            assert!(!resp.headers().contains_key("access-control-allow-origin"));
        }
    }
);

backend_test!(
    changes_through_the_api_are_the_cli_s_and_audited_with_the_token_s_subject,
    |app| {
        let c = app.create_client(&["--grant", "client_credentials", "--role", "sigil-admin"]);
        let body: Value = app.token_for(&c, None).await.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();

        let resp = call(
        &app,
        "POST",
        "/roles",
        Some(&token),
        Some(json!({"name": "editor", "description": "Edits", "permissions": ["job:read", "job:create"]})),
    )
    .await;
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        assert_eq!(
            created,
            app.cli_json(&["roles", "show", "editor"]),
            "the CLI's --json shape"
        );

        app.cli_json(&[
            "roles",
            "update",
            "editor",
            "--add-permission",
            "job:delete",
        ]);
        let shown: Value = call(&app, "GET", "/roles/editor", Some(&token), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            shown["permissions"],
            json!(["job:create", "job:delete", "job:read"])
        );

        let resp = call(
            &app,
            "PATCH",
            "/roles/editor",
            Some(&token),
            Some(json!({"remove_permissions": ["job:create"]})),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            app.cli_json(&["roles", "show", "editor"])["permissions"],
            json!(["job:delete", "job:read"])
        );

        // Refusals in the API's own shape.
        let bad = call(
            &app,
            "POST",
            "/roles",
            Some(&token),
            Some(json!({"name": "x", "permissions": ["Nope"]})),
        )
        .await;
        assert_eq!(bad.status(), 400);
        assert_eq!(
            bad.json::<Value>().await.unwrap()["error"],
            "invalid_request"
        );
        let dup = call(
            &app,
            "POST",
            "/roles",
            Some(&token),
            Some(json!({"name": "editor"})),
        )
        .await;
        assert_eq!(dup.status(), 409);
        let builtin = call(&app, "DELETE", "/roles/sigil-admin", Some(&token), None).await;
        assert_eq!(builtin.status(), 409);
        let missing = call(&app, "GET", "/roles/ghost", Some(&token), None).await;
        assert_eq!(missing.status(), 404);
        let garbage = app
            .client
            .post(format!("{}/admin/api/v1/roles", app.address))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);

        let resp = call(&app, "DELETE", "/roles/editor", Some(&token), None).await;
        assert_eq!(resp.status(), 200);
        assert!(app.cli(&["roles", "show", "editor"]).status.code() == Some(1));

        let events = app.cli_json(&["audit", "tail", "-n", "20"]);
        let mine: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["kind"].as_str().unwrap().starts_with("role.") && e["actor"] == c.id.as_str()
            })
            .collect();
        let kinds: Vec<&str> = mine.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["role.create", "role.update", "role.delete"],
            "{events}"
        );
        assert!(mine.iter().all(|e| e["client_id"] == c.id.as_str()));
        // What the API shows of the trail is the CLI's.
        let tail: Value = call(&app, "GET", "/audit?n=20", Some(&token), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(tail, events);
        let verdict: Value = call(&app, "GET", "/audit/verify", Some(&token), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(verdict["status"], "intact");
    }
);

backend_test!(users_page_through_the_api_without_loading_them_all, |app| {
    for name in ["ann", "bob", "cat", "dan", "eve"] {
        create_user(&app, name);
    }
    let token = admin_token(&app, &["sigil-admin"], &[]).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..5 {
        let path = match &after {
            Some(a) => format!("/users?limit=2&after={a}"),
            None => "/users?limit=2".to_owned(),
        };
        let page: Value = call(&app, "GET", &path, Some(&token), None)
            .await
            .json()
            .await
            .unwrap();
        for u in page["users"].as_array().unwrap() {
            assert!(u.get("password_hash").is_none());
            seen.push(u["username"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["ann", "bob", "cat", "dan", "eve"]);
    let one: Value = call(&app, "GET", "/users/cat", Some(&token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, app.cli_json(&["users", "show", "cat"]));
    for bad in ["/users?limit=0", "/users?limit=201", "/users?limit=x"] {
        assert_eq!(
            call(&app, "GET", bad, Some(&token), None).await.status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(
        call(&app, "GET", "/users/nobody", Some(&token), None)
            .await
            .status(),
        404
    );
});

backend_test!(
    admin_rights_end_when_the_role_is_taken_away_not_when_the_token_expires,
    |app| {
        app.cli_json(&["roles", "create", "ops", "--permission", "admin:roles:read"]);
        let c = app.create_client(&["--grant", "client_credentials", "--role", "ops"]);
        let ok = app
            .eventually(Duration::from_secs(2), || async {
                let body: Value = app.token_for(&c, None).await.json().await.unwrap();
                let t = body["access_token"].as_str().unwrap().to_owned();
                call(&app, "GET", "/roles", Some(&t), None).await.status() == 200
            })
            .await;
        assert!(ok);
        let body: Value = app.token_for(&c, None).await.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            call(&app, "GET", "/roles", Some(&token), None)
                .await
                .status(),
            200
        );
        app.cli_json(&[
            "roles",
            "update",
            "ops",
            "--remove-permission",
            "admin:roles:read",
        ]);
        let ended = app
            .eventually(Duration::from_secs(2), || async {
                call(&app, "GET", "/roles", Some(&token), None)
                    .await
                    .status()
                    == 403
            })
            .await;
        assert!(
            ended,
            "the same token is refused once the role no longer holds the permission"
        );
    }
);

backend_test!(the_openapi_document_is_served_without_a_token, |app| {
    let resp = app.get("/admin/api/v1/openapi.json").await;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/admin/api/v1/roles",
        "/admin/api/v1/roles/{name}",
        "/admin/api/v1/users",
        "/admin/api/v1/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Unknown admin paths are the API's 404, not a page.
    let resp = app.get("/admin/api/v1/nothing").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_found");
});

/// Log `username` in with `password` through the login form: whether it was accepted.
async fn signs_in(
    app: &TestApp,
    web: &crate::helpers::TestClient,
    username: &str,
    password: &str,
) -> bool {
    let url = authorize_url(app, &web.id, &pkce().challenge, "");
    login(app, &browser(), &url, username, password)
        .await
        .status()
        == 303
}

backend_test!(
    users_changed_through_the_api_are_the_cli_s_and_the_other_way_round,
    |app| {
        let c = app.create_client(&["--grant", "client_credentials", "--role", "sigil-admin"]);
        let body: Value = app.token_for(&c, None).await.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let t = Some(token.as_str());
        app.cli_json(&["roles", "create", "editor"]);
        app.cli_json(&["roles", "create", "viewer"]);
        let web = web_client(&app, &[]);

        // Create: the CLI's `users show --json`, never the password or its hash.
        let resp = call(
            &app,
            "POST",
            "/users",
            t,
            Some(
                json!({"username": "bob", "email": "bob@example.com", "email_verified": true,
                        "roles": ["viewer", "editor", "viewer"], "password": PASSWORD}),
            ),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(PASSWORD) && !text.contains("password_hash") && !text.contains("$2")
        );
        let created: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(created, app.cli_json(&["users", "show", "bob"]));
        assert_eq!(created["roles"], json!(["editor", "viewer"]));
        assert_eq!(created["email_verified"], true);
        assert!(
            signs_in(&app, &web, "bob", PASSWORD).await,
            "the server's hash verifies"
        );

        // The CLI's rules, in the API's statuses.
        for (body, status, what) in [
            (
                json!({"username": "bob", "password": PASSWORD}),
                409,
                "a taken username",
            ),
            (
                json!({"username": "carol", "roles": ["ghost"], "password": PASSWORD}),
                409,
                "an unknown role",
            ),
            (
                json!({"username": "carol", "password": "password1"}),
                422,
                "a guessable password",
            ),
            (
                json!({"username": "carol", "password": "carolcarol123"}),
                422,
                "a password built from the username",
            ),
            (
                json!({"username": "carol", "password": "short"}),
                400,
                "a short password",
            ),
            (
                json!({"username": "carol", "email_verified": true, "password": PASSWORD}),
                422,
                "email_verified without email",
            ),
            (
                json!({"username": "no spaces", "password": PASSWORD}),
                400,
                "a bad username",
            ),
            (
                json!({"username": "carol", "email": "nope", "password": PASSWORD}),
                400,
                "a bad email",
            ),
            (
                json!({"username": "carol", "password": PASSWORD, "admin": true}),
                400,
                "an unknown field",
            ),
        ] {
            let resp = call(&app, "POST", "/users", t, Some(body)).await;
            assert_eq!(resp.status(), status, "{what}");
            let err: Value = resp.json().await.unwrap();
            assert!(
                err["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{what}"
            );
        }
        assert_eq!(app.cli(&["users", "show", "carol"]).status.code(), Some(1));

        // Disable in the CLI: the API sees it; enable in the API: the CLI sees it.
        app.cli_json(&["users", "disable", "bob"]);
        let shown: Value = call(&app, "GET", "/users/bob", t, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["disabled"], true);
        assert!(!signs_in(&app, &web, "bob", PASSWORD).await);
        let resp = call(&app, "POST", "/users/bob/enable", t, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"enabled": "bob"})
        );
        assert_eq!(app.cli_json(&["users", "show", "bob"])["disabled"], false);
        let resp = call(&app, "POST", "/users/bob/disable", t, None).await;
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"disabled": "bob"})
        );
        assert_eq!(app.cli_json(&["users", "show", "bob"])["disabled"], true);
        app.cli_json(&["users", "enable", "bob"]);

        // Roles both ways, each checked to exist.
        let resp = call(
            &app,
            "PUT",
            "/users/bob/roles",
            t,
            Some(json!({"roles": ["viewer"]})),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"username": "bob", "roles": ["viewer"]})
        );
        assert_eq!(
            app.cli_json(&["users", "show", "bob"])["roles"],
            json!(["viewer"])
        );
        app.cli_json(&["users", "set-roles", "bob", "editor"]);
        let shown: Value = call(&app, "GET", "/users/bob", t, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["roles"], json!(["editor"]));
        let resp = call(
            &app,
            "PUT",
            "/users/bob/roles",
            t,
            Some(json!({"roles": ["ghost"]})),
        )
        .await;
        assert_eq!(resp.status(), 409);
        assert!(
            resp.json::<Value>().await.unwrap()["error_description"]
                .as_str()
                .unwrap()
                .contains("no role named ghost")
        );
        assert_eq!(
            app.cli_json(&["users", "show", "bob"])["roles"],
            json!(["editor"])
        );
        assert_eq!(
            call(
                &app,
                "PUT",
                "/users/nobody/roles",
                t,
                Some(json!({"roles": []}))
            )
            .await
            .status(),
            404
        );

        // A new password: the policy, then only the new one signs in.
        let new_password = "a different horse staple battery";
        let resp = call(
            &app,
            "POST",
            "/users/bob/reset-password",
            t,
            Some(json!({"password": "bobbobbob123"})),
        )
        .await;
        assert_eq!(resp.status(), 422);
        let resp = call(
            &app,
            "POST",
            "/users/bob/reset-password",
            t,
            Some(json!({"password": new_password})),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(!text.contains(new_password));
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"password_reset": "bob"})
        );
        assert!(signs_in(&app, &web, "bob", new_password).await);
        assert!(!signs_in(&app, &web, "bob", PASSWORD).await);
        assert_eq!(
            call(
                &app,
                "POST",
                "/users/nobody/reset-password",
                t,
                Some(json!({"password": new_password}))
            )
            .await
            .status(),
            404
        );

        // Delete through the API: gone for the CLI; through the CLI: gone for the API.
        let bob_id = created["id"].as_str().unwrap().to_owned();
        let resp = call(&app, "DELETE", "/users/bob", t, None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Value>().await.unwrap(),
            json!({"deleted": "bob"})
        );
        assert_eq!(app.cli(&["users", "show", "bob"]).status.code(), Some(1));
        create_user(&app, "dave");
        app.cli_json(&["users", "delete", "dave"]);
        for (method, path) in [
            ("GET", "/users/dave"),
            ("DELETE", "/users/dave"),
            ("POST", "/users/dave/disable"),
            ("POST", "/users/dave/enable"),
        ] {
            assert_eq!(
                call(&app, method, path, t, None).await.status(),
                404,
                "{method} {path}"
            );
        }
        // Undocumented methods are 405 with Allow.
        let resp = call(&app, "GET", "/users/bob/disable", t, None).await;
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "POST");

        // Every change, with the token's subject and client as actor, as the CLI records it.
        let events = app.cli_json(&["audit", "tail", "-n", "100"]);
        let mine: Vec<&Value> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == c.id.as_str())
            .collect();
        let kinds: Vec<&str> = mine.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "user.create",
                "user.enable",
                "user.disable",
                "user.set_roles",
                "user.reset_password",
                "user.delete"
            ],
            "{events}"
        );
        assert!(
            mine.iter()
                .all(|e| e["client_id"] == c.id.as_str() && e["subject"] == bob_id.as_str())
        );
        assert_eq!(
            mine[0]["details"],
            json!({"username": "bob", "roles": ["editor", "viewer"]})
        );
        assert_eq!(
            mine[3]["details"],
            json!({"username": "bob", "roles": ["viewer"]})
        );
        assert!(!events.to_string().contains(new_password));
        let cli_kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"].as_str().unwrap().starts_with("cli:"))
            .map(|e| e["kind"].as_str().unwrap())
            .filter(|k| k.starts_with("user."))
            .collect();
        assert_eq!(
            cli_kinds,
            [
                "user.disable",
                "user.enable",
                "user.set_roles",
                "user.create",
                "user.delete"
            ]
        );
    }
);
