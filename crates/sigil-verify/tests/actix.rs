//! The `actix` feature: extractor and guards, through actix-web's test utilities.
#![cfg(feature = "actix")]
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{App, HttpResponse, test, web};
use common::*;
use serde_json::json;
use sigil_verify::ErrorKind;
use sigil_verify::actix::{Authenticated, Require};

async fn whoami(auth: Authenticated) -> HttpResponse {
    HttpResponse::Ok().body(auth.sub.clone())
}

async fn admin_only(auth: Authenticated) -> Result<HttpResponse, sigil_verify::actix::AuthError> {
    auth.require_role("superuser")?;
    Ok(HttpResponse::Ok().finish())
}

macro_rules! app {
    ($verifier:expr) => {
        test::init_service(
            App::new()
                .app_data($verifier)
                .route("/me", web::get().to(whoami))
                .route("/admin", web::get().to(admin_only))
                .service(
                    web::scope("/orders")
                        .wrap(Require::scope("orders:read"))
                        .route("", web::get().to(whoami)),
                )
                .service(
                    web::scope("/reports")
                        .wrap(Require::scope("read"))
                        .route("", web::get().to(whoami)),
                )
                .service(
                    web::scope("/roles")
                        .wrap(Require::role("admin"))
                        .route("", web::get().to(whoami)),
                )
                .service(
                    web::scope("/perm")
                        .wrap(Require::permission("orders:read"))
                        .route("", web::get().to(whoami)),
                ),
        )
        .await
    };
}

fn www(res: &actix_web::dev::ServiceResponse) -> String {
    res.headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[actix_web::test]
async fn valid_token_reaches_the_handler() {
    let s = Signer::es256();
    let app = app!(verifier(&[&s]));
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header((AUTHORIZATION, format!("Bearer {}", s.token())))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(test::read_body(res).await, "user-1");
}

#[actix_web::test]
async fn web_data_verifier_works_too() {
    let s = Signer::ed25519();
    let app = app!(web::Data::new(verifier(&[&s])));
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header((AUTHORIZATION, format!("bearer {}", s.token())))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn missing_token_is_401_with_bare_challenge() {
    let s = Signer::es256();
    let app = app!(verifier(&[&s]));
    for req in [
        test::TestRequest::get().uri("/me").to_request(),
        test::TestRequest::get()
            .uri("/me")
            .insert_header((AUTHORIZATION, "Basic dXNlcjpwYXNz"))
            .to_request(),
    ] {
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www(&res), "Bearer");
    }
}

#[actix_web::test]
async fn invalid_token_is_401_invalid_token() {
    let s = Signer::es256();
    let app = app!(verifier(&[&s]));
    let mut c = claims();
    c["exp"] = json!(NOW - 3600);
    for token in ["garbage".to_string(), s.token_with(&s.header(), &c)] {
        for uri in ["/me", "/orders"] {
            let req = test::TestRequest::get()
                .uri(uri)
                .insert_header((AUTHORIZATION, format!("Bearer {token}")))
                .to_request();
            let res = test::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            assert!(
                www(&res).starts_with("Bearer error=\"invalid_token\""),
                "{}",
                www(&res)
            );
            let body: serde_json::Value = test::read_body_json(res).await;
            assert_eq!(body["error"], "invalid_token");
        }
    }
}

#[actix_web::test]
async fn guards_answer_403_insufficient_scope() {
    let s = Signer::es256();
    let app = app!(verifier(&[&s]));
    let auth = format!("Bearer {}", s.token());
    // The token has scope "read write", role "admin", permission "orders:read".
    for (uri, status) in [
        ("/orders", StatusCode::FORBIDDEN),
        ("/reports", StatusCode::OK),
        ("/roles", StatusCode::OK),
        ("/perm", StatusCode::OK),
        ("/admin", StatusCode::FORBIDDEN),
    ] {
        let req = test::TestRequest::get()
            .uri(uri)
            .insert_header((AUTHORIZATION, auth.clone()))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), status, "{uri}");
        if status == StatusCode::FORBIDDEN {
            assert!(
                www(&res).starts_with("Bearer error=\"insufficient_scope\""),
                "{}",
                www(&res)
            );
        }
        if uri == "/orders" {
            assert!(www(&res).contains("scope=\"orders:read\""));
        }
    }
}

#[actix_web::test]
async fn guard_stores_claims_for_the_extractor() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let app = app!(v.clone());
    let req = test::TestRequest::get()
        .uri("/reports")
        .insert_header((AUTHORIZATION, format!("Bearer {}", s.token())))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::OK);
    // Verified once by the guard; the extractor reused the claims.
    assert_eq!(v.stats().verified, 1);
}

#[actix_web::test]
async fn no_verifier_registered_is_500() {
    let app = test::init_service(App::new().route("/me", web::get().to(whoami))).await;
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header((AUTHORIZATION, "Bearer x.y.z"))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

// The typed guards (handler arguments) and their middleware forms.

mod names {
    sigil_verify::permission! {
        pub OrdersRead = "orders:read";
        pub OrdersWrite = "orders:write";
        pub JobRunNow = "job:run:now";
        pub JobAny = "job:*";
    }
    sigil_verify::scope!(pub Read = "read"; pub OrdersScope = "orders:read");
    sigil_verify::role!(pub Admin = "admin"; pub Superuser = "superuser");
}
use names::*;
use sigil_verify::actix::{RequirePermission, RequireRole, RequireScope};

async fn need_permission<P: sigil_verify::PermissionName>(
    auth: RequirePermission<P>,
) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", auth.sub, P::NAME))
}

async fn need_scope<S: sigil_verify::ScopeName>(auth: RequireScope<S>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", auth.sub, S::NAME))
}

async fn need_role<R: sigil_verify::RoleName>(auth: RequireRole<R>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", auth.sub, R::NAME))
}

/// What a guard demands, so one table drives the extractor and the middleware routes.
#[derive(Clone, Copy, Debug)]
enum Need {
    Permission(&'static str),
    Scope(&'static str),
    Role(&'static str),
}

/// Routes `/x/...` use the typed extractors, routes `/m/...` the middleware constructors.
const ROUTES: &[(&str, Need)] = &[
    ("perm/read", Need::Permission("orders:read")),
    ("perm/write", Need::Permission("orders:write")),
    ("perm/job-run-now", Need::Permission("job:run:now")),
    ("perm/job-any", Need::Permission("job:*")),
    ("scope/read", Need::Scope("read")),
    ("scope/orders", Need::Scope("orders:read")),
    ("role/admin", Need::Role("admin")),
    ("role/superuser", Need::Role("superuser")),
];

fn typed_guards(cfg: &mut web::ServiceConfig) {
    cfg.route("/x/perm/read", web::get().to(need_permission::<OrdersRead>))
        .route(
            "/x/perm/write",
            web::get().to(need_permission::<OrdersWrite>),
        )
        .route(
            "/x/perm/job-run-now",
            web::get().to(need_permission::<JobRunNow>),
        )
        .route("/x/perm/job-any", web::get().to(need_permission::<JobAny>))
        .route("/x/scope/read", web::get().to(need_scope::<Read>))
        .route("/x/scope/orders", web::get().to(need_scope::<OrdersScope>))
        .route("/x/role/admin", web::get().to(need_role::<Admin>))
        .route("/x/role/superuser", web::get().to(need_role::<Superuser>));
    for (path, need) in ROUTES {
        let guard = match *need {
            Need::Permission(p) => RequirePermission::new(p),
            Need::Scope(s) => RequireScope::new(s),
            Need::Role(r) => RequireRole::new(r),
        };
        cfg.service(
            web::scope(&format!("/m/{path}"))
                .wrap(guard)
                .route("", web::get().to(whoami)),
        );
    }
}

fn uris() -> impl Iterator<Item = (String, Need)> {
    ROUTES
        .iter()
        .flat_map(|(path, need)| [(format!("/x/{path}"), *need), (format!("/m/{path}"), *need)])
}

/// (status, WWW-Authenticate, Cache-Control, body) of a GET with this `Authorization`.
macro_rules! get {
    ($app:expr, $uri:expr, $authorization:expr) => {
        // `match` keeps the argument's temporaries alive for the whole request.
        match $authorization {
            authorization => {
                let authorization: Option<&str> = authorization;
                let mut req = test::TestRequest::get().uri($uri);
                if let Some(a) = authorization {
                    req = req.insert_header((AUTHORIZATION, a));
                }
                let res = test::call_service($app, req.to_request()).await;
                let status = res.status();
                let www = www(&res);
                let cache = res
                    .headers()
                    .get(actix_web::http::header::CACHE_CONTROL)
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
                (status, www, cache, body)
            }
        }
    };
}

/// A token like `claims()` (scope "read write", role "admin", permission "orders:read") with
/// these permissions instead.
fn token_with_permissions(s: &Signer, permissions: serde_json::Value) -> String {
    let mut c = claims();
    c["permissions"] = permissions;
    s.token_with(&s.header(), &c)
}

#[actix_web::test]
async fn typed_guards_without_a_token_are_401_with_a_bare_challenge() {
    let s = Signer::es256();
    let app =
        test::init_service(App::new().app_data(verifier(&[&s])).configure(typed_guards)).await;
    for (uri, _) in uris() {
        for authorization in [
            None,
            Some("Basic dXNlcjpwYXNz"),
            Some("Bearer "),
            Some("Bearer"),
        ] {
            let (status, www, cache, body) = get!(&app, &uri, authorization);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {authorization:?}");
            assert_eq!(www, "Bearer", "{uri} {authorization:?}");
            assert_eq!(cache.as_deref(), Some("no-store"));
            assert_eq!(body, "", "{uri}");
        }
    }
}

#[actix_web::test]
async fn typed_guards_with_a_bad_token_are_401_invalid_token() {
    let s = Signer::es256();
    let other = Signer::es256();
    let app =
        test::init_service(App::new().app_data(verifier(&[&s])).configure(typed_guards)).await;
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    let bad = [
        "garbage".to_owned(),
        s.token_with(&s.header(), &expired),
        // Signed by a key the verifier does not hold.
        other.token(),
        // Permissions that are not an array of strings.
        token_with_permissions(&s, json!("orders:read")),
    ];
    for (uri, _) in uris() {
        for token in &bad {
            let (status, www, _, body) = get!(&app, &uri, Some(format!("Bearer {token}").as_str()));
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
            assert!(
                www.starts_with("Bearer error=\"invalid_token\""),
                "{uri}: {www}"
            );
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "invalid_token", "{uri}");
        }
    }
}

#[actix_web::test]
async fn typed_guards_answer_403_or_let_through() {
    let s = Signer::es256();
    let app =
        test::init_service(App::new().app_data(verifier(&[&s])).configure(typed_guards)).await;
    // The plain token: scope "read write", role "admin", permission "orders:read". The wildcard
    // token holds `job:*` instead of `orders:read`.
    let plain = format!("Bearer {}", s.token());
    let wildcard = format!("Bearer {}", token_with_permissions(&s, json!(["job:*"])));
    let run_now = format!(
        "Bearer {}",
        token_with_permissions(&s, json!(["job:run:now"]))
    );
    let let_through = |token: &str, need: Need| match (token, need) {
        (_, Need::Scope(s)) => s == "read",
        (_, Need::Role(r)) => r == "admin",
        ("plain", Need::Permission(p)) => p == "orders:read",
        // `job:*` grants `job:run:now`, and a required `job:*` only to a held `job:*`.
        ("wildcard", Need::Permission(p)) => p == "job:run:now" || p == "job:*",
        ("run_now", Need::Permission(p)) => p == "job:run:now",
        _ => unreachable!(),
    };
    let mut seen = (0, 0);
    for (name, token) in [
        ("plain", &plain),
        ("wildcard", &wildcard),
        ("run_now", &run_now),
    ] {
        for (uri, need) in uris() {
            let (status, www, cache, body) = get!(&app, &uri, Some(token.as_str()));
            if let_through(name, need) {
                seen.0 += 1;
                assert_eq!(status, StatusCode::OK, "{name} {uri}: {www}");
                assert!(body.starts_with("user-1"), "{name} {uri}: {body}");
                assert_eq!(www, "");
                continue;
            }
            seen.1 += 1;
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {uri}");
            assert!(
                www.starts_with("Bearer error=\"insufficient_scope\", error_description=\""),
                "{name} {uri}: {www}"
            );
            assert_eq!(cache.as_deref(), Some("no-store"));
            match need {
                Need::Scope(s) => assert!(www.ends_with(&format!(", scope=\"{s}\"")), "{www}"),
                Need::Permission(p) | Need::Role(p) => {
                    assert!(!www.contains("scope="), "{www}");
                    assert!(www.contains(p), "{www}");
                }
            }
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "insufficient_scope");
        }
    }
    // Per token, scope "read", role "admin" and 1, 2 or 1 permission routes let it through;
    // each route exists as an extractor and as middleware.
    assert_eq!(seen, (2 * (3 + 4 + 3), 2 * (5 + 4 + 5)));
}

#[actix_web::test]
async fn typed_guard_reuses_what_the_middleware_verified() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let app = test::init_service(
        App::new().app_data(v.clone()).service(
            web::scope("/orders")
                .wrap(RequireRole::new("admin"))
                .route("", web::get().to(need_permission::<OrdersRead>)),
        ),
    )
    .await;
    let (status, _, _, body) = get!(
        &app,
        "/orders",
        Some(format!("Bearer {}", s.token()).as_str())
    );
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "user-1 orders:read")
    );
    assert_eq!(v.stats().verified, 1);
    // The middleware's answer comes first; the extractor's check still applies after it.
    let other = token_with_permissions(&s, json!(["orders:write"]));
    let (status, www, _, _) = get!(&app, "/orders", Some(format!("Bearer {other}").as_str()));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(www.contains("permission orders:read required"), "{www}");
}

/// The actix answers are the framework-free ones (`Error::http_status`, `www_authenticate`,
/// `rfc6750_body`), plus `Cache-Control: no-store`.
#[actix_web::test]
async fn actix_answers_are_the_framework_free_answers() {
    use actix_web::ResponseError as _;
    for kind in [
        ErrorKind::MissingToken,
        ErrorKind::Expired,
        ErrorKind::Malformed("x"),
        ErrorKind::InsufficientScope("orders:read".into()),
        ErrorKind::InsufficientRole("admin".into()),
        ErrorKind::InsufficientPermission("job:run".into()),
        ErrorKind::KeySource("https://internal/jwks: refused".into()),
        ErrorKind::Config("no key source"),
    ] {
        let e = sigil_verify::Error::from(kind.clone());
        let res = sigil_verify::actix::AuthError::from(e.clone()).error_response();
        assert_eq!(res.status().as_u16(), e.http_status(), "{kind:?}");
        let www = res
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(www, e.www_authenticate(), "{kind:?}");
        assert_eq!(
            res.headers()
                .get(actix_web::http::header::CACHE_CONTROL)
                .unwrap(),
            "no-store"
        );
        let content_type = res
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        match e.rfc6750_body() {
            Some(expected) => {
                assert_eq!(body, expected.as_bytes(), "{kind:?}");
                assert_eq!(content_type.as_deref(), Some("application/json"));
            }
            None => assert!(body.is_empty(), "{kind:?}"),
        }
    }
}
