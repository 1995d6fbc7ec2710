//! Reading a token **without verifying it**.
//!
//! Nothing returned here is authenticated: anyone can write any header and claims. Use it only
//! to decide *how* to verify (which client's keys a `private_key_jwt` assertion names, which
//! audience an `id_token_hint` claims, whether a token says it is a refresh token), and then
//! verify with a [`Verifier`](crate::Verifier) before trusting anything. The name follows
//! jsonwebtoken's `dangerous` module, so a reader sees at the call site that nothing was checked.
//!
//! The parsing is as strict as verification's: three segments, canonical base64url, JSON objects
//! without duplicate member names, at most [`DEFAULT_MAX_TOKEN_SIZE`](crate::DEFAULT_MAX_TOKEN_SIZE)
//! bytes. So a token this accepts is one a verifier could read the same way.

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};
use crate::{b64, json};

/// A JWS's header and claims, **not verified**.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedToken {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims set.
    pub claims: Map<String, Value>,
}

impl UnverifiedToken {
    /// A string member of the claims (e.g. `sub`, `aud` when it is a single string).
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A string member of the header (e.g. `typ`, `kid`).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// Decode `token`'s header and claims **without checking the signature or any claim**.
pub fn insecure_decode(token: &str) -> Result<UnverifiedToken, Error> {
    if token.len() > crate::DEFAULT_MAX_TOKEN_SIZE {
        return Err(ErrorKind::TokenTooLarge.into());
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::malformed("token segments"));
    };
    let header = json::parse_object(&b64::decode(h.as_bytes(), "header")?, "header")?;
    let claims = json::parse_object(&b64::decode(c.as_bytes(), "claims")?, "claims")?;
    Ok(UnverifiedToken { header, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64::encode(json.as_bytes())
    }

    #[test]
    fn decodes_header_and_claims() -> Result<(), Error> {
        let t = format!(
            "{}.{}.sig",
            seg(r#"{"alg":"ES256","typ":"JWT"}"#),
            seg(r#"{"sub":"a","aud":"b"}"#)
        );
        let u = insecure_decode(&t)?;
        assert_eq!(u.header_str("typ"), Some("JWT"));
        assert_eq!(u.claim_str("sub"), Some("a"));
        assert_eq!(u.claim_str("aud"), Some("b"));
        assert_eq!(u.claim_str("nope"), None);
        Ok(())
    }

    #[test]
    fn is_as_strict_as_verification() {
        let h = seg(r#"{"alg":"ES256"}"#);
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{h}.{}.s.extra", seg("{}")),
            // Duplicate members: serde_json alone would keep the last `sub`.
            format!("{h}.{}.s", seg(r#"{"sub":"a","sub":"b"}"#)),
            // Not an object.
            format!("{h}.{}.s", seg("[1]")),
            // Padding is not canonical base64url.
            format!("{h}.{}=.s", seg(r#"{"a":1}"#)),
            format!("{h}.{}.s", "x".repeat(crate::DEFAULT_MAX_TOKEN_SIZE)),
        ] {
            assert!(insecure_decode(&bad).is_err(), "{bad}");
        }
    }
}
