//! Bearer checks without any web framework: `Verifier::verify_bearer`, `Claims::require_*` and
//! the RFC 6750 answers an `Error` describes.
#![expect(clippy::unwrap_used, reason = "tests")]

mod common;

use common::*;
use serde_json::json;
use sigil_verify::{Claims, Error, ErrorKind};

/// (status, WWW-Authenticate, body) as a server on any framework would answer.
fn answer(e: &Error) -> (u16, Option<String>, Option<String>) {
    (e.http_status(), e.www_authenticate(), e.rfc6750_body())
}

#[test]
fn verify_bearer_reads_the_authorization_header() {
    let s = Signer::es256();
    let v = verifier(&[&s]);
    let token = s.token();
    for ok in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER   {token}"),
    ] {
        assert_eq!(v.verify_bearer(Some(&ok)).unwrap().sub, "user-1", "{ok}");
    }
    for missing in [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer    ".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some(format!("Bearer{token}")),
        Some(format!("Token {token}")),
        Some(token.clone()),
    ] {
        let e = v.verify_bearer(missing.as_deref()).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::MissingToken, "{missing:?}");
        assert_eq!(answer(&e), (401, Some("Bearer".to_owned()), None));
    }
    let e = v.verify_bearer(Some("Bearer not.a.token")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Malformed(_)));
    let e = v
        .verify_bearer(Some(&format!("Bearer {token} ")))
        .unwrap_err();
    assert_eq!(e.http_status(), 401);
    assert!(
        e.www_authenticate()
            .unwrap()
            .starts_with(r#"Bearer error="invalid_token", error_description=""#)
    );
    assert_eq!(json_error(&e), "invalid_token");
    // A verification through `verify_bearer` counts like any other.
    assert_eq!(v.stats().verified, 3);
}

fn json_error(e: &Error) -> String {
    let body: serde_json::Value = serde_json::from_str(&e.rfc6750_body().unwrap()).unwrap();
    body["error"].as_str().unwrap().to_owned()
}

fn verified(permissions: serde_json::Value) -> Claims {
    let s = Signer::ed25519();
    let mut c = claims();
    c["permissions"] = permissions;
    verifier(&[&s])
        .verify_bearer(Some(&format!("Bearer {}", s.token_with(&s.header(), &c))))
        .unwrap()
}

#[test]
fn require_answers_403_insufficient_scope() {
    // Scope "read write", role "admin".
    let c = verified(json!(["orders:read", "job:*"]));
    for ok in [
        c.require_scope("read"),
        c.require_scope("write"),
        c.require_role("admin"),
        c.require_permission("orders:read"),
        c.require_permission("job:create"),
        c.require_permission("job:run:now"),
        c.require_permission("job:*"),
    ] {
        ok.unwrap();
    }

    let e = c.require_scope("orders:write").unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::InsufficientScope("orders:write".into())
    );
    assert_eq!(
        answer(&e),
        (
            403,
            Some(
                r#"Bearer error="insufficient_scope", error_description="insufficient scope: orders:write required", scope="orders:write""#
                    .to_owned()
            ),
            Some(
                r#"{"error":"insufficient_scope","error_description":"insufficient scope: orders:write required"}"#
                    .to_owned()
            ),
        )
    );

    let e = c.require_role("superuser").unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::InsufficientRole("superuser".into()));
    assert_eq!(
        answer(&e),
        (
            403,
            Some(
                r#"Bearer error="insufficient_scope", error_description="role superuser required""#
                    .to_owned()
            ),
            Some(
                r#"{"error":"insufficient_scope","error_description":"role superuser required"}"#
                    .to_owned()
            ),
        )
    );

    for missing in ["orders:write", "job", "jobs:create", "orders:*"] {
        let e = c.require_permission(missing).unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::InsufficientPermission(missing.into()));
        assert_eq!(e.http_status(), 403);
        assert_eq!(
            e.www_authenticate().unwrap(),
            format!(
                r#"Bearer error="insufficient_scope", error_description="permission {missing} required""#
            )
        );
        assert_eq!(json_error(&e), "insufficient_scope");
    }
    // Without wildcards, `job:*` is not held and nothing under `job:` is granted.
    let c = verified(json!(["job:create"]));
    assert!(c.require_permission("job:create").is_ok());
    assert!(c.require_permission("job:*").is_err());
    assert!(c.require_permission("job:run").is_err());
    let c = verified(json!([]));
    assert!(c.require_permission("orders:read").is_err());
}

#[test]
fn challenges_stay_one_header_value() {
    // Whatever a requirement's name holds, the challenge stays a valid quoted-string.
    let c = verified(json!([]));
    let e = c.require_scope("a\"b\\c\u{e9}\n").unwrap_err();
    assert_eq!(
        e.www_authenticate().unwrap(),
        r#"Bearer error="insufficient_scope", error_description="insufficient scope: a'b'c?? required", scope="a'b'c??""#
    );
    // The JSON body is JSON, with the name as given.
    let body: serde_json::Value = serde_json::from_str(&e.rfc6750_body().unwrap()).unwrap();
    assert_eq!(
        body["error_description"],
        "insufficient scope: a\"b\\c\u{e9}\n required"
    );
}

#[test]
fn verifier_problems_say_nothing_internal() {
    let e = Error::from(ErrorKind::KeySource(
        "https://id.internal:8443/jwks.json: connection refused".into(),
    ));
    assert_eq!(
        answer(&e),
        (
            503,
            Some(
                r#"Bearer error="invalid_token", error_description="key source unavailable""#
                    .to_owned()
            ),
            Some(
                r#"{"error":"invalid_token","error_description":"key source unavailable"}"#
                    .to_owned()
            ),
        )
    );
    let e = Error::from(ErrorKind::Config("no key source"));
    assert_eq!(answer(&e), (500, None, None));
}
