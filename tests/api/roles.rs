//! Roles with permissions, APIs that declare them, and what tokens carry: `sigil roles`,
//! `sigil apis`, `permissions` narrowed to the audience, the size budget naming the role, and
//! changes that hold at the next token and at `/introspect` and `/userinfo` at once.

use std::time::{Duration, Instant};

use crate::flow::{browser, code_tokens, create_user, refresh, web_client};
use crate::helpers::*;
use crate::{backend_test, replica_test};
use serde_json::{Value, json};

/// The example file the docs tell operators to load.
fn example_file() -> String {
    format!(
        "{}/../../deploy/examples/authorization.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

const JOBS: &str = "https://jobs.example.com";

fn cli_fails(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sigil {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn token_with(app: &TestApp, c: &TestClient, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    app.post_token(&form, Some((&c.id, c.secret.as_deref().unwrap())))
        .await
}

async fn permissions_of(app: &TestApp, c: &TestClient, extra: &[(&str, &str)]) -> Value {
    let resp = token_with(app, c, extra).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    jwt_payload(body["access_token"].as_str().unwrap())["permissions"].clone()
}

/// Wait (up to 2 s: the server reloads roles and APIs within 500 ms)
/// until `c`'s token for `extra` carries `want`.
async fn permissions_become(app: &TestApp, c: &TestClient, extra: &[(&str, &str)], want: Value) {
    let ok = app
        .eventually(Duration::from_secs(2), || {
            let want = want.clone();
            async move { permissions_of(app, c, extra).await == want }
        })
        .await;
    assert!(
        ok,
        "tokens carry {want}, not {}",
        permissions_of(app, c, extra).await
    );
}

backend_test!(roles_and_apis_through_the_cli, |app| {
    let created = app.cli_json(&[
        "roles",
        "create",
        "editor",
        "--permission",
        "job:read",
        "--permission",
        "job:create",
        "--permission",
        "job:read",
        "--description",
        "Edits jobs",
    ]);
    assert_eq!(created["permissions"], json!(["job:create", "job:read"]));
    assert_eq!(created["builtin"], false);
    assert!(cli_fails(&app, &["roles", "create", "editor"]).contains("exists"));
    assert!(
        cli_fails(&app, &["roles", "create", "x", "--permission", "Job"])
            .contains("not a permission")
    );

    let updated = app.cli_json(&[
        "roles",
        "update",
        "editor",
        "--add-permission",
        "job:delete",
        "--remove-permission",
        "job:create",
    ]);
    assert_eq!(updated["permissions"], json!(["job:delete", "job:read"]));
    assert!(
        cli_fails(
            &app,
            &[
                "roles",
                "update",
                "editor",
                "--remove-permission",
                "job:create"
            ]
        )
        .contains("does not hold")
    );
    assert!(
        cli_fails(
            &app,
            &["roles", "update", "nope", "--add-permission", "a:b"]
        )
        .contains("no role named nope")
    );

    // sigil-admin is listed first, holds every admin permission, and cannot be changed.
    let list = app.cli_json(&["roles", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sigil-admin", "editor"]);
    let admin = &list[0];
    assert_eq!(admin["builtin"], true);
    assert_eq!(admin["permissions"].as_array().unwrap().len(), 12);
    assert!(
        admin["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("admin:users:write"))
    );
    assert!(cli_fails(&app, &["roles", "delete", "sigil-admin"]).contains("built in"));
    assert!(
        cli_fails(
            &app,
            &["roles", "update", "sigil-admin", "--add-permission", "a:b"]
        )
        .contains("built in")
    );
    assert!(cli_fails(&app, &["roles", "create", "sigil-admin"]).contains("built in"));

    // A role that does not exist is refused where it would be given, naming it.
    let out = app.cli_stdin(
        &[
            "users",
            "create",
            "--username",
            "bob",
            "--role",
            "editr",
            "--password-stdin",
        ],
        "correct horse battery staple\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no role named editr"));
    assert!(
        cli_fails(
            &app,
            &[
                "clients",
                "create",
                "--name",
                "x",
                "--grant",
                "client_credentials",
                "--role",
                "ghost"
            ]
        )
        .contains("no role named ghost")
    );
    let c = app.create_client(&[
        "--grant",
        "client_credentials",
        "--role",
        "editor",
        "--role",
        "sigil-admin",
    ]);
    assert_eq!(
        app.cli_json(&["clients", "show", &c.id])["roles"],
        json!(["editor", "sigil-admin"])
    );

    // Deleting a role takes it from its holders.
    let deleted = app.cli_json(&["roles", "delete", "editor"]);
    assert_eq!(deleted["removed_from"], json!({"users": 0, "clients": 1}));
    assert_eq!(
        app.cli_json(&["clients", "show", &c.id])["roles"],
        json!(["sigil-admin"])
    );
    assert!(cli_fails(&app, &["roles", "show", "editor"]).contains("no role named editor"));

    // APIs.
    let api = app.cli_json(&[
        "apis",
        "create",
        "--audience",
        JOBS,
        "--name",
        "Jobs",
        "--permission",
        "job:read",
    ]);
    assert_eq!(api["permissions"], json!(["job:read"]));
    assert!(cli_fails(&app, &["apis", "create", "--audience", JOBS]).contains("exists"));
    assert!(
        cli_fails(
            &app,
            &[
                "apis",
                "create",
                "--audience",
                "https://x",
                "--permission",
                "admin:users:read"
            ]
        )
        .contains("admin API")
    );
    assert!(cli_fails(&app, &["apis", "create", "--audience", "urn:sigil:x"]).contains("reserved"));
    let api = app.cli_json(&["apis", "update", JOBS, "--add-permission", "job:run"]);
    assert_eq!(api["permissions"], json!(["job:read", "job:run"]));
    assert_eq!(app.cli_json(&["apis", "show", JOBS])["name"], "Jobs");
    assert_eq!(app.cli_json(&["apis", "list"]).as_array().unwrap().len(), 1);
    app.cli_json(&["apis", "delete", JOBS]);
    assert!(cli_fails(&app, &["apis", "show", JOBS]).contains("no API"));

    // The example loads in one command, and loading it again replaces rather than duplicates.
    let file = example_file();
    let done = app.cli_json(&["roles", "import", &file]);
    assert_eq!(
        done,
        json!({"roles_created": 3, "roles_replaced": 0, "apis_created": 1, "apis_replaced": 0})
    );
    let again = app.cli_json(&["roles", "import", &file]);
    assert_eq!(
        again,
        json!({"roles_created": 0, "roles_replaced": 3, "apis_created": 0, "apis_replaced": 1})
    );
    assert_eq!(
        app.cli_json(&["roles", "show", "readonly"])["permissions"],
        json!(["job:read", "user:read"])
    );

    // Every change is in the audit trail.
    let tail = app.cli(&["audit", "tail", "-n", "50", "--json"]);
    let text = String::from_utf8_lossy(&tail.stdout);
    for kind in [
        "role.create",
        "role.update",
        "role.delete",
        "api.create",
        "api.delete",
        "role.import",
    ] {
        assert!(text.contains(kind), "{kind} audited: {text}");
    }
});

backend_test!(tokens_carry_permissions_narrowed_to_the_audience, |app| {
    app.cli_json(&["roles", "import", &example_file()]);
    let c = app.create_client(&[
        "--grant",
        "client_credentials",
        "--audience",
        JOBS,
        "--audience",
        "https://reports.example.com",
        "--role",
        "admin",
    ]);
    // For the jobs API: its permissions and the undeclared user:* ones.
    permissions_become(
        &app,
        &c,
        &[("resource", JOBS)],
        json!([
            "job:create",
            "job:delete",
            "job:read",
            "job:update",
            "user:read",
            "user:write"
        ]),
    )
    .await;
    // For another audience: only what no API declares.
    assert_eq!(
        permissions_of(&app, &c, &[("resource", "https://reports.example.com")]).await,
        json!(["user:read", "user:write"])
    );
    // Both audiences: the union.
    assert_eq!(
        permissions_of(&app, &c, &[])
            .await
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let body: Value = token_with(&app, &c, &[("resource", JOBS)])
        .await
        .json()
        .await
        .unwrap();
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["admin"]));

    // sigil-admin's admin:* permissions reach only tokens for the issuer (the admin API).
    let admin = app.create_client(&["--grant", "client_credentials", "--role", "sigil-admin"]);
    let perms = permissions_of(&app, &admin, &[]).await;
    assert_eq!(perms.as_array().unwrap().len(), 12, "{perms}");
    let elsewhere = app.create_client(&[
        "--grant",
        "client_credentials",
        "--audience",
        JOBS,
        "--role",
        "sigil-admin",
    ]);
    assert_eq!(permissions_of(&app, &elsewhere, &[]).await, json!([]));

    // A user's tokens from the code flow carry them too, checked by a third-party verifier.
    create_user(&app, "alice");
    app.cli_json(&["users", "set-roles", "alice", "readonly"]);
    let web = web_client(&app, &["--audience", JOBS]);
    let tokens = code_tokens(&app, &web, "alice", "openid", &browser()).await;
    let at = tokens["access_token"].as_str().unwrap();
    let verified = verify_with_jsonwebtoken(&app, at, JOBS).await;
    assert_eq!(verified["permissions"], json!(["job:read", "user:read"]));
});

backend_test!(
    a_principal_with_500_permissions_across_20_apis_gets_a_small_token_for_each,
    |app| {
        let mut toml = String::from("[[role]]\nname = \"big\"\npermissions = [");
        let mut apis = String::new();
        for i in 0..20 {
            let perms: Vec<String> = (0..25)
                .map(|j| format!("\"svc{i:02}:action{j:02}\""))
                .collect();
            toml.push_str(&perms.join(","));
            toml.push(if i < 19 { ',' } else { ']' });
            apis.push_str(&format!(
                "\n[[api]]\naudience = \"https://svc{i:02}.example.com\"\npermissions = [{}]\n",
                perms.join(",")
            ));
        }
        toml.push('\n');
        toml.push_str(&apis);
        let file = app.dir.path().join("big.toml");
        std::fs::write(&file, toml).unwrap();
        app.cli_json(&["roles", "import", file.to_str().unwrap()]);
        assert_eq!(
            app.cli_json(&["roles", "show", "big"])["permissions"]
                .as_array()
                .unwrap()
                .len(),
            500
        );
        let mut args = vec![
            "--grant".to_owned(),
            "client_credentials".to_owned(),
            "--role".to_owned(),
            "big".to_owned(),
        ];
        for i in 0..20 {
            args.push("--audience".to_owned());
            args.push(format!("https://svc{i:02}.example.com"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let c = app.create_client(&args);
        let first = "https://svc00.example.com";
        let want: Vec<String> = (0..25).map(|j| format!("svc00:action{j:02}")).collect();
        permissions_become(&app, &c, &[("resource", first)], json!(want)).await;
        let mut largest = 0;
        for i in 0..20 {
            let aud = format!("https://svc{i:02}.example.com");
            let resp = token_with(&app, &c, &[("resource", &aud)]).await;
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            let at = body["access_token"].as_str().unwrap();
            let perms = jwt_payload(at)["permissions"].clone();
            let perms = perms.as_array().unwrap();
            assert_eq!(perms.len(), 25, "{aud}");
            assert!(
                perms
                    .iter()
                    .all(|p| p.as_str().unwrap().starts_with(&format!("svc{i:02}:")))
            );
            largest = largest.max(at.len());
        }
        eprintln!("largest per-API token: {largest} bytes");
        assert!(largest < 2000, "each token is small: {largest} bytes");
        // All twenty audiences at once would be over the 4 KiB budget: refused, naming the role.
        let resp = token_with(&app, &c, &[]).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        let text = body["error_description"].as_str().unwrap();
        assert!(
            text.contains("`big`") && text.contains("permissions"),
            "{text}"
        );
    }
);

backend_test!(
    role_changes_apply_to_the_next_token_and_at_introspect_and_userinfo_at_once,
    |app| {
        app.cli_json(&[
            "roles",
            "create",
            "ops",
            "--permission",
            "job:read",
            "--permission",
            "job:run",
        ]);
        app.cli_json(&["roles", "create", "viewer", "--permission", "report:read"]);
        // A service principal.
        let svc = app.create_client(&["--grant", "client_credentials", "--role", "ops"]);
        let body: Value = token_with(&app, &svc, &[]).await.json().await.unwrap();
        let svc_token = body["access_token"].as_str().unwrap().to_owned();
        permissions_become(&app, &svc, &[], json!(["job:read", "job:run"])).await;
        assert_eq!(
            introspect_ok(&app, &svc, &svc_token).await["permissions"],
            json!(["job:read", "job:run"])
        );
        app.cli_json(&["roles", "update", "ops", "--remove-permission", "job:run"]);
        let seen = app
            .eventually(Duration::from_secs(2), || async {
                introspect_ok(&app, &svc, &svc_token).await["permissions"] == json!(["job:read"])
            })
            .await;
        assert!(seen, "introspection shows the role's current permissions");
        assert_eq!(
            permissions_of(&app, &svc, &[]).await,
            json!(["job:read"]),
            "the next token too"
        );
        app.cli_json(&["clients", "update", &svc.id, "--role", "viewer"]);
        let seen = app
            .eventually(Duration::from_secs(2), || async {
                let i = introspect_ok(&app, &svc, &svc_token).await;
                i["roles"] == json!(["viewer"]) && i["permissions"] == json!(["report:read"])
            })
            .await;
        assert!(seen, "introspection shows the client's current roles");

        // A user: the refresh grant never brings back a removed permission.
        create_user(&app, "alice");
        app.cli_json(&["users", "set-roles", "alice", "ops", "viewer"]);
        let web = web_client(&app, &["--grant", "refresh_token"]);
        let tokens = code_tokens(&app, &web, "alice", "openid", &browser()).await;
        let at = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            jwt_payload(&at)["permissions"],
            json!(["job:read", "report:read"])
        );
        app.cli_json(&["users", "set-roles", "alice", "viewer"]);
        let i = introspect_ok(&app, &web, &at).await;
        assert_eq!(i["roles"], json!(["viewer"]));
        assert_eq!(i["permissions"], json!(["report:read"]));
        let info: Value = app
            .client
            .get(format!("{}/userinfo", app.address))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["roles"], json!(["viewer"]), "{info}");
        assert_eq!(info["permissions"], json!(["report:read"]), "{info}");
        let (status, next) =
            refresh(&app, &web, tokens["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(status, 200, "{next}");
        let claims = jwt_payload(next["access_token"].as_str().unwrap());
        assert_eq!(claims["roles"], json!(["viewer"]));
        assert_eq!(claims["permissions"], json!(["report:read"]));
        // Deleting a role ends it in the next refresh too.
        app.cli_json(&["roles", "delete", "viewer"]);
        let (status, last) =
            refresh(&app, &web, next["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(status, 200, "{last}");
        let claims = jwt_payload(last["access_token"].as_str().unwrap());
        assert_eq!(claims["roles"], json!([]));
        assert_eq!(claims["permissions"], json!([]));
    }
);

replica_test!(
    a_role_change_holds_at_introspect_on_every_replica_within_a_second,
    |app| {
        app.cli_json(&[
            "roles",
            "create",
            "ops",
            "--permission",
            "job:read",
            "--permission",
            "job:run",
        ]);
        let svc = app.create_client(&["--grant", "client_credentials", "--role", "ops"]);
        let body: Value = token_with(&app, &svc, &[]).await.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let b = spawn_replica_with(&app, options().env).await;
        // The replica read the role at start-up.
        assert_eq!(
            introspect_ok(&b, &svc, &token).await["permissions"],
            json!(["job:read", "job:run"])
        );
        for round in 0..3 {
            let (flag, want) = if round % 2 == 0 {
                ("--remove-permission", json!(["job:read"]))
            } else {
                ("--add-permission", json!(["job:read", "job:run"]))
            };
            app.cli_json(&["roles", "update", "ops", flag, "job:run"]);
            let changed = Instant::now();
            loop {
                if introspect_ok(&b, &svc, &token).await["permissions"] == want {
                    break;
                }
                assert!(
                    changed.elapsed() < Duration::from_millis(1000),
                    "replica B applies a role change within 1 s (round {round})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
);
