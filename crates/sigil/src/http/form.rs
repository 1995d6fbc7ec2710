//! Strict `application/x-www-form-urlencoded` bodies and query strings: bounded size, at most
//! [`MAX_PARAMS`] parameters with names of at most [`MAX_KEY_LEN`] bytes, valid UTF-8 after
//! percent-decoding (never lossy), and no parameter twice (RFC 6749 §3.2) except those a spec lets
//! repeat (`resource`, RFC 8707). Parsing is linear in the input: a hostile form costs no more
//! than reading it. The parser itself is `form/parser.rs` (no actix, so it can be fuzzed alone).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use futures_util::StreamExt;

use super::error::ApiError;
use crate::oauth::OAuthError;

mod parser;

pub use parser::{Form, MAX_KEY_LEN, MAX_PARAMS};

/// Read the body (at most `max` bytes) of a form POST.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<Form, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        )
        .into());
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > max
    {
        return Err(ApiError::PayloadTooLarge(max));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| OAuthError::InvalidRequest("the request body could not be read"))?;
        if body.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    parse(&body).map_err(ApiError::from)
}

/// Parse a form body or query string.
pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
    parser::parse(body).map_err(|e| OAuthError::InvalidRequest(e.0))
}

/// Decode one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    parser::decode(raw).map_err(|e| OAuthError::InvalidRequest(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() -> Result<(), OAuthError> {
        let f = parse(b"grant_type=client_credentials&scope=a+b%20c&x=")?;
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("a b c"));
        assert_eq!(f.get("x"), None);
        Ok(())
    }

    #[test]
    fn refuses_duplicates_and_bad_utf8() {
        assert!(parse(b"scope=a&scope=b").is_err());
        assert!(parse(b"scope=%ff").is_err());
        assert!(parse(b"scope=\xff").is_err());
        assert!(parse(b"resource=a&resource=b").is_ok());
        assert!(parse(b"a=1&b=2&a=3").is_err());
        assert!(
            parse(b"a+b=1&a%20b=2").is_err(),
            "duplicates compare decoded names"
        );
    }

    #[test]
    fn caps_parameter_count_and_name_length() {
        let at_cap = (0..MAX_PARAMS)
            .map(|i| format!("p{i}="))
            .collect::<Vec<_>>()
            .join("&");
        assert!(parse(at_cap.as_bytes()).is_ok());
        let over = format!("{at_cap}&one=more");
        assert!(parse(over.as_bytes()).is_err());
        // Empty parts (`&&`) are not parameters.
        assert!(parse("&".repeat(10_000).as_bytes()).is_ok());
        let long = "k".repeat(MAX_KEY_LEN);
        assert!(parse(format!("{long}=v").as_bytes()).is_ok());
        assert!(parse(format!("{long}k=v").as_bytes()).is_err());
        assert!(parse("%6B".repeat(MAX_KEY_LEN + 1).as_bytes()).is_err());
        // Values are bounded by the body or query limit, not here.
        assert!(parse(format!("v={}", "x".repeat(100_000)).as_bytes()).is_ok());
    }

    #[test]
    fn a_large_form_is_refused_at_the_cap_without_reading_on() {
        let body = (0..50_000)
            .map(|i| format!("p{i}=x"))
            .collect::<Vec<_>>()
            .join("&");
        let started = std::time::Instant::now();
        assert!(parse(body.as_bytes()).is_err(), "over the parameter cap");
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }
}
