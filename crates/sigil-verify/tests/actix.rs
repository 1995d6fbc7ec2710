//! The `actix` feature: extractor and guards, through actix-web's test utilities.
#![cfg(feature = "actix")]
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{App, HttpResponse, test, web};
use common::*;
use serde_json::json;
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
