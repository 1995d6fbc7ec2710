//! Access-token claims (RFC 9068) plus the ones Sigil adds.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `aud` claim: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is (one of) the audience(s), compared byte for byte.
    pub fn contains(&self, aud: &str) -> bool {
        self.iter().any(|a| a == aud)
    }

    /// The audiences, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Audience::One(a) => (Some(a.as_str()), &[]),
            Audience::Many(v) => (None, v.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

impl From<String> for Audience {
    fn from(a: String) -> Audience {
        Audience::One(a)
    }
}

impl From<&str> for Audience {
    fn from(a: &str) -> Audience {
        Audience::One(a.to_owned())
    }
}

impl From<Vec<String>> for Audience {
    fn from(a: Vec<String>) -> Audience {
        Audience::Many(a)
    }
}

/// Access-token claims: RFC 9068's registered ones plus Sigil's `roles` and `tenant`, and every
/// other member in [`Claims::extra`].
///
/// Sigil serializes its tokens with this type, in this member order: `iss, sub, aud, exp, iat,
/// nbf, jti, client_id, scope, roles, tenant`, then `extra`. `None` members are left out;
/// `roles` is always written (`[]` when empty) and defaults to empty when read.
///
/// Time claims are NumericDate seconds and must be JSON integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the exact issuer URL.
    pub iss: String,
    /// Subject: a user id, or the client id for `client_credentials` tokens.
    pub sub: String,
    /// Audience(s) the token is meant for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued-at, seconds since the Unix epoch. See
    /// [`VerifierBuilder::require_iat`](crate::VerifierBuilder::require_iat) for tokens that
    /// may lack it (then `0`).
    pub iat: i64,
    /// Not-before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Roles of the subject (always serialized).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Tenant, when tenants are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Whether the space-separated `scope` claim contains `s` exactly.
    ///
    /// ```
    /// # let mut c: sigil_verify::Claims = serde_json::from_str(
    /// #     r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1}"#).unwrap();
    /// c.scope = Some("read write".into());
    /// assert!(c.has_scope("write"));
    /// assert!(!c.has_scope("wri"));
    /// ```
    pub fn has_scope(&self, s: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|scope| scope.split(' ').any(|x| x == s))
    }

    /// Whether `roles` contains `r` exactly.
    pub fn has_role(&self, r: &str) -> bool {
        self.roles.iter().any(|x| x == r)
    }

    /// Whether a `permissions` array of strings among the extra claims contains `p` exactly.
    pub fn has_permission(&self, p: &str) -> bool {
        match self.extra.get("permissions") {
            Some(Value::Array(perms)) => perms.iter().any(|x| x.as_str() == Some(p)),
            _ => false,
        }
    }

    /// The scopes, split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }
}
