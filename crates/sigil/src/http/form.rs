//! Strict `application/x-www-form-urlencoded` bodies and query strings: bounded size, at most
//! [`MAX_PARAMS`] parameters with names of at most [`MAX_KEY_LEN`] bytes, valid UTF-8 after
//! percent-decoding (never lossy), and no parameter twice (RFC 6749 §3.2) except those a spec lets
//! repeat (`resource`, RFC 8707). Parsing is linear in the input: a hostile form costs no more
//! than reading it.

use std::collections::HashSet;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use futures_util::StreamExt;
use percent_encoding::percent_decode;

use super::error::ApiError;
use crate::oauth::OAuthError;

/// Parameters that may appear more than once.
const REPEATABLE: &[&str] = &["resource"];

/// The most parameters one form or query may carry. An authorization request has about 15
/// defined ones, a token request fewer; the rest is room for extensions.
pub const MAX_PARAMS: usize = 64;

/// The longest parameter name, in bytes after decoding (the longest defined one,
/// `client_assertion_type`, has 21).
pub const MAX_KEY_LEN: usize = 64;

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// The single value of `name`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter in the order sent, empty values included.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every non-empty value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }
}

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
    let mut form = Form::default();
    let mut seen: HashSet<String> = HashSet::new();
    for part in body.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        if form.pairs.len() == MAX_PARAMS {
            return Err(OAuthError::InvalidRequest(
                "the request has too many parameters",
            ));
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        // Encoded, a name is at most three times its decoded length.
        if k.len() > 3 * MAX_KEY_LEN {
            return Err(OAuthError::InvalidRequest("a parameter name is too long"));
        }
        let k = decode(k)?;
        if k.len() > MAX_KEY_LEN {
            return Err(OAuthError::InvalidRequest("a parameter name is too long"));
        }
        let v = decode(v)?;
        if !REPEATABLE.contains(&k.as_str()) && !seen.insert(k.clone()) {
            return Err(OAuthError::InvalidRequest(
                "a parameter was sent more than once",
            ));
        }
        form.pairs.push((k, v));
    }
    Ok(form)
}

/// Decode one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus).collect();
    String::from_utf8(bytes)
        .map_err(|_| OAuthError::InvalidRequest("the request is not valid UTF-8"))
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
