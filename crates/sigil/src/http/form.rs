//! Strict `application/x-www-form-urlencoded` bodies: bounded size, valid UTF-8 after
//! percent-decoding (never lossy), and no parameter twice (RFC 6749 §3.2) except those a spec lets
//! repeat (`resource`, RFC 8707).

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use futures_util::StreamExt;
use percent_encoding::percent_decode;

use super::error::ApiError;
use crate::oauth::OAuthError;

/// Parameters that may appear more than once.
const REPEATABLE: &[&str] = &["resource"];

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

/// Parse a form body.
pub fn parse(body: &[u8]) -> Result<Form, OAuthError> {
    let mut form = Form::default();
    if body.is_empty() {
        return Ok(form);
    }
    for part in body.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let k = decode(k)?;
        let v = decode(v)?;
        if !REPEATABLE.contains(&k.as_str()) && form.pairs.iter().any(|(seen, _)| *seen == k) {
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
    }
}
