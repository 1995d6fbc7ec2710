//! The example resource server's routes (`examples/resource_server/routes.rs`), run with
//! tokens signed by test keys: each guard lets through exactly the tokens it should.
#![cfg(feature = "actix")]
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

#[path = "../examples/resource_server/routes.rs"]
mod routes;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{App, test};
use common::*;
use serde_json::{Value, json};

/// A token with these `scope`, `roles` and `permissions`.
fn token(s: &Signer, scope: &str, roles: Value, permissions: Value) -> String {
    let mut c = claims();
    c["scope"] = json!(scope);
    c["roles"] = roles;
    c["permissions"] = permissions;
    s.token_with(&s.header(), &c)
}

#[actix_web::test]
async fn each_route_lets_through_what_it_names() {
    let s = Signer::es256();
    let app = test::init_service(
        App::new()
            .app_data(verifier(&[&s]))
            .configure(routes::configure),
    )
    .await;
    let nothing = token(&s, "", json!([]), json!([]));
    let reader = token(&s, "reports:read", json!([]), json!(["orders:read"]));
    let orders_all = token(&s, "", json!([]), json!(["orders:*"]));
    let jobs = token(&s, "", json!([]), json!(["job:*"]));
    let admin = token(&s, "", json!(["admin"]), json!([]));
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    let expired = s.token_with(&s.header(), &expired);

    use StatusCode as S;
    let routes = [
        ("GET", "/orders"),
        ("POST", "/orders"),
        ("POST", "/jobs/nightly/run"),
        ("GET", "/reports"),
        ("GET", "/admin"),
    ];
    // The expected status per token, in the order of `routes`.
    let cases: [(&str, Option<&str>, [S; 5]); 7] = [
        ("none", None, [S::UNAUTHORIZED; 5]),
        ("expired", Some(&expired), [S::UNAUTHORIZED; 5]),
        ("nothing", Some(&nothing), [S::FORBIDDEN; 5]),
        (
            "reader",
            Some(&reader),
            [S::OK, S::FORBIDDEN, S::FORBIDDEN, S::OK, S::FORBIDDEN],
        ),
        (
            "orders:*",
            Some(&orders_all),
            [S::OK, S::CREATED, S::FORBIDDEN, S::FORBIDDEN, S::FORBIDDEN],
        ),
        (
            "job:*",
            Some(&jobs),
            [
                S::FORBIDDEN,
                S::FORBIDDEN,
                S::ACCEPTED,
                S::FORBIDDEN,
                S::FORBIDDEN,
            ],
        ),
        (
            "admin",
            Some(&admin),
            [
                S::FORBIDDEN,
                S::FORBIDDEN,
                S::FORBIDDEN,
                S::FORBIDDEN,
                S::OK,
            ],
        ),
    ];
    for (name, bearer, expected) in cases {
        for ((method, uri), status) in routes.iter().zip(expected) {
            let mut req = test::TestRequest::default()
                .method(method.parse().unwrap())
                .uri(uri);
            if let Some(t) = bearer {
                req = req.insert_header((AUTHORIZATION, format!("Bearer {t}")));
            }
            let res = test::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), status, "{name}: {method} {uri}");
            let www = res
                .headers()
                .get(WWW_AUTHENTICATE)
                .map(|v| v.to_str().unwrap().to_owned());
            let www = www.as_deref();
            match (bearer, status) {
                (None, _) => assert_eq!(www, Some("Bearer"), "{name}: {uri}"),
                (_, S::UNAUTHORIZED) => assert!(
                    www.is_some_and(|w| w.starts_with(r#"Bearer error="invalid_token""#)),
                    "{name}: {uri}: {www:?}"
                ),
                (_, S::FORBIDDEN) => {
                    let w = www.unwrap();
                    assert!(
                        w.starts_with(r#"Bearer error="insufficient_scope""#),
                        "{name}: {uri}: {w}"
                    );
                    // Only the scope-guarded route names the scope it needs.
                    assert_eq!(
                        w.ends_with(r#", scope="reports:read""#),
                        *uri == "/reports",
                        "{w}"
                    );
                }
                _ => {
                    assert_eq!(www, None);
                    let body: Value = test::read_body_json(res).await;
                    assert!(body.to_string().contains("user-1"), "{name}: {uri}: {body}");
                }
            }
        }
    }
    let res = test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
}
