//! The claims of Sigil's three token kinds: access tokens ([`Claims`], RFC 9068 plus the ones
//! Sigil adds), refresh tokens ([`RefreshClaims`]) and ID tokens ([`IdTokenClaims`], OIDC Core
//! §2, with the scoped [`UserClaims`]). The server writes each kind with its type and reads it
//! back through the same type, so what is signed and what is read cannot drift apart.
//!
//! [`RefreshClaims`] and [`IdTokenClaims`] are read from verified [`Claims`] (`TryFrom`, which
//! their `Deserialize` goes through too), so one set of rules decides what each kind must carry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

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

/// Access-token claims: RFC 9068's registered ones plus Sigil's `roles`, `permissions` and
/// `tenant`, and every other member in [`Claims::extra`].
///
/// Sigil serializes its access tokens with this type, in this member order: `iss, sub, aud, exp, iat,
/// nbf, jti, client_id, scope, roles, permissions, tenant`, then `extra` (where a user's token
/// carries `sid` and `fid`, read with [`Claims::sid`] and [`Claims::fid`]). `None` members are
/// left out; `roles` and `permissions` are always written (`[]` when empty) and default to empty
/// when read. Both must be arrays of strings when present.
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
    /// Permissions of the subject, e.g. `orders:read` (always serialized): the union of its
    /// roles' permissions, narrowed to the token's audience. See [`Claims::has_permission`].
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Tenant, when tenants are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// `sid`: the login session a user's access token was issued under (Sigil writes it for
    /// tokens from a sign-in, and ends the session's tokens with it at sign-out). A string, else
    /// `None`.
    pub fn sid(&self) -> Option<&str> {
        self.extra.get("sid").and_then(Value::as_str)
    }

    /// `fid`: the refresh-token family that produced a user's access token (revoking or reusing
    /// the family ends its tokens). A string, else `None`.
    pub fn fid(&self) -> Option<&str> {
        self.extra.get("fid").and_then(Value::as_str)
    }

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
    ///
    /// ```
    /// # let mut c: sigil_verify::Claims = serde_json::from_str(
    /// #     r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1}"#).unwrap();
    /// c.roles = vec!["admin".into()];
    /// assert!(c.has_role("admin"));
    /// assert!(!c.has_role("Admin"));
    /// ```
    pub fn has_role(&self, r: &str) -> bool {
        self.roles.iter().any(|x| x == r)
    }

    /// Whether one of `permissions` grants `p`: an equal one, or one ending in the segment `*`
    /// whose prefix `p` extends by one or more segments (`job:*` grants `job:create` and
    /// `job:run:now`). A required `p` containing `*` is granted only by that very string. The
    /// rule is [`permission_covers`](crate::permission_covers), described in full in
    /// [`authz`](crate::authz).
    ///
    /// ```
    /// # let mut c: sigil_verify::Claims = serde_json::from_str(
    /// #     r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1}"#).unwrap();
    /// c.permissions = vec!["orders:read".into(), "job:*".into()];
    /// assert!(c.has_permission("orders:read"));
    /// assert!(c.has_permission("job:create"));
    /// assert!(c.has_permission("job:run:now"));
    /// assert!(c.has_permission("job:*"));
    /// assert!(!c.has_permission("orders:write"));
    /// assert!(!c.has_permission("job"));
    /// ```
    pub fn has_permission(&self, p: &str) -> bool {
        self.permissions
            .iter()
            .any(|held| crate::authz::permission_covers(held, p))
    }

    /// `Ok` if [`has_scope`](Claims::has_scope)`(s)`, else
    /// [`ErrorKind::InsufficientScope`]`(s)`, which answers 403 with
    /// `WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="s"`
    /// (see [`Error::www_authenticate`]).
    ///
    /// ```
    /// # let mut c: sigil_verify::Claims = serde_json::from_str(
    /// #     r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1,"scope":"read"}"#).unwrap();
    /// assert!(c.require_scope("read").is_ok());
    /// let err = c.require_scope("write").unwrap_err();
    /// assert_eq!(err.http_status(), 403);
    /// assert_eq!(err.rfc6750_code(), "insufficient_scope");
    /// ```
    pub fn require_scope(&self, s: &str) -> Result<(), Error> {
        require(self.has_scope(s), || {
            ErrorKind::InsufficientScope(s.to_owned())
        })
    }

    /// `Ok` if [`has_role`](Claims::has_role)`(r)`, else
    /// [`ErrorKind::InsufficientRole`]`(r)` (403 `insufficient_scope`).
    pub fn require_role(&self, r: &str) -> Result<(), Error> {
        require(self.has_role(r), || {
            ErrorKind::InsufficientRole(r.to_owned())
        })
    }

    /// `Ok` if [`has_permission`](Claims::has_permission)`(p)` (wildcards included), else
    /// [`ErrorKind::InsufficientPermission`]`(p)` (403 `insufficient_scope`).
    ///
    /// ```
    /// # let mut c: sigil_verify::Claims = serde_json::from_str(
    /// #     r#"{"iss":"i","sub":"s","aud":"a","exp":2,"iat":1,"permissions":["job:*"]}"#).unwrap();
    /// assert!(c.require_permission("job:run").is_ok());
    /// let err = c.require_permission("orders:read").unwrap_err();
    /// assert_eq!(
    ///     err.www_authenticate().as_deref(),
    ///     Some(r#"Bearer error="insufficient_scope", error_description="permission orders:read required""#),
    /// );
    /// ```
    pub fn require_permission(&self, p: &str) -> Result<(), Error> {
        require(self.has_permission(p), || {
            ErrorKind::InsufficientPermission(p.to_owned())
        })
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

/// Refresh-token claims as Sigil writes them, in this member order: `iss, sub, aud, exp, iat,
/// jti, client_id, scope` (header `typ: refresh+jwt`). Every member is always written; `scope`
/// may be empty.
///
/// Read from verified [`Claims`] with `TryFrom` (which `Deserialize` goes through too): `aud`
/// must be one string, and `jti`, `client_id` and `scope` must be present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Claims")]
pub struct RefreshClaims {
    /// Issuer: the exact issuer URL.
    pub iss: String,
    /// Subject: the user the family was issued for.
    pub sub: String,
    /// The refresh audience (`urn:sigil:refresh:<issuer>`), which no access token carries.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued-at, seconds since the Unix epoch.
    pub iat: i64,
    /// The token's id; Sigil keeps only its hash.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes granted to the family.
    pub scope: String,
}

impl TryFrom<Claims> for RefreshClaims {
    type Error = Error;

    fn try_from(c: Claims) -> Result<RefreshClaims, Error> {
        Ok(RefreshClaims {
            iss: c.iss,
            sub: c.sub,
            aud: one_audience(c.aud)?,
            exp: c.exp,
            iat: c.iat,
            jti: c.jti.ok_or_else(|| missing("jti"))?,
            client_id: c.client_id.ok_or_else(|| missing("client_id"))?,
            scope: c.scope.ok_or_else(|| missing("scope"))?,
        })
    }
}

/// ID-token claims as Sigil writes them (OIDC Core §2), in this member order: `iss, sub, aud,
/// exp, iat, auth_time, nonce, at_hash, azp, amr`, then the [`UserClaims`] the granted scopes
/// release (header `typ: JWT`). `nonce` and absent user claims are left out.
///
/// Read from verified [`Claims`] with `TryFrom` (which `Deserialize` goes through too): `aud`
/// must be one string, and `auth_time`, `at_hash`, `azp` and `amr` must be present; other
/// members are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Claims")]
pub struct IdTokenClaims {
    /// Issuer: the exact issuer URL.
    pub iss: String,
    /// Subject: the user's id.
    pub sub: String,
    /// Audience: the client the token was issued to (Sigil's ID tokens name exactly one).
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued-at, seconds since the Unix epoch.
    pub iat: i64,
    /// When the user authenticated, seconds since the Unix epoch.
    pub auth_time: i64,
    /// The `nonce` of the authorization request, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of the access token's hash, base64url (OIDC Core §3.1.3.6).
    pub at_hash: String,
    /// Authorized party: the client, as in `aud`.
    pub azp: String,
    /// Authentication methods used (RFC 8176), e.g. `pwd`.
    pub amr: Vec<String>,
    /// What the granted scopes release about the user.
    #[serde(flatten)]
    pub user: UserClaims,
}

impl TryFrom<Claims> for IdTokenClaims {
    type Error = Error;

    fn try_from(c: Claims) -> Result<IdTokenClaims, Error> {
        let mut extra = c.extra;
        Ok(IdTokenClaims {
            iss: c.iss,
            sub: c.sub,
            aud: one_audience(c.aud)?,
            exp: c.exp,
            iat: c.iat,
            auth_time: take_int(&mut extra, "auth_time")?.ok_or_else(|| missing("auth_time"))?,
            nonce: take_string(&mut extra, "nonce")?,
            at_hash: take_string(&mut extra, "at_hash")?.ok_or_else(|| missing("at_hash"))?,
            azp: take_string(&mut extra, "azp")?.ok_or_else(|| missing("azp"))?,
            amr: take_strings(&mut extra, "amr")?.ok_or_else(|| missing("amr"))?,
            user: UserClaims::take(&mut extra)?,
        })
    }
}

/// Claims about the user that scopes release (OIDC Core §5.1, §5.4): in ID tokens and from
/// `/userinfo`, in this member order. Absent members are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    /// `profile`: the user's login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `profile`: when the user's profile last changed, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    /// `email`: the user's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email`: whether the address was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl UserClaims {
    /// Whether no member is present.
    pub fn is_empty(&self) -> bool {
        *self == UserClaims::default()
    }

    fn take(extra: &mut Map<String, Value>) -> Result<UserClaims, Error> {
        Ok(UserClaims {
            preferred_username: take_string(extra, "preferred_username")?,
            updated_at: take_int(extra, "updated_at")?,
            email: take_string(extra, "email")?,
            email_verified: match extra.remove("email_verified") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(b),
                Some(_) => return Err(invalid("email_verified")),
            },
        })
    }
}

fn require(ok: bool, missing: impl FnOnce() -> ErrorKind) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::new(missing()))
    }
}

fn missing(name: &'static str) -> Error {
    Error::new(ErrorKind::MissingClaim(name))
}

fn invalid(name: &'static str) -> Error {
    Error::new(ErrorKind::InvalidClaim(name))
}

/// A token for one party: `aud` as a single string.
fn one_audience(aud: Audience) -> Result<String, Error> {
    match aud {
        Audience::One(a) => Ok(a),
        Audience::Many(_) => Err(invalid("aud")),
    }
}

/// An optional string member; `null` reads as absent.
fn take_string(
    extra: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, Error> {
    match extra.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(name)),
    }
}

/// An optional integer member (seconds); `null` reads as absent.
fn take_int(extra: &mut Map<String, Value>, name: &'static str) -> Result<Option<i64>, Error> {
    match extra.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(name)),
        Some(_) => Err(invalid(name)),
    }
}

/// An optional array of strings; `null` reads as absent.
fn take_strings(
    extra: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<Vec<String>>, Error> {
    match extra.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid(name)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_token() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "usr_1".into(),
            aud: "sgl_c".into(),
            exp: 20,
            iat: 10,
            auth_time: 5,
            nonce: Some("n-1".into()),
            at_hash: "h".into(),
            azp: "sgl_c".into(),
            amr: vec!["pwd".into()],
            user: UserClaims {
                preferred_username: Some("ann".into()),
                updated_at: Some(3),
                email: Some("ann@example.com".into()),
                email_verified: Some(false),
            },
        }
    }

    fn refresh() -> RefreshClaims {
        RefreshClaims {
            iss: "https://id.example.com".into(),
            sub: "usr_1".into(),
            aud: "urn:sigil:refresh:https://id.example.com".into(),
            exp: 20,
            iat: 10,
            jti: "j".into(),
            client_id: "sgl_c".into(),
            scope: String::new(),
        }
    }

    /// What the verifier would hand back for `json` (minus its checks).
    fn read<T: TryFrom<Claims, Error = Error>>(json: &str) -> Result<T, Error> {
        let claims: Claims = serde_json::from_str(json).map_err(|_| Error::malformed("test"))?;
        T::try_from(claims)
    }

    #[test]
    fn id_tokens_keep_their_wire_format() -> Result<(), Error> {
        let full = serde_json::to_string(&id_token()).map_err(|_| Error::malformed("json"))?;
        assert_eq!(
            full,
            r#"{"iss":"https://id.example.com","sub":"usr_1","aud":"sgl_c","exp":20,"iat":10,"auth_time":5,"nonce":"n-1","at_hash":"h","azp":"sgl_c","amr":["pwd"],"preferred_username":"ann","updated_at":3,"email":"ann@example.com","email_verified":false}"#
        );
        let bare = IdTokenClaims {
            nonce: None,
            user: UserClaims::default(),
            ..id_token()
        };
        let text = serde_json::to_string(&bare).map_err(|_| Error::malformed("json"))?;
        assert_eq!(
            text,
            r#"{"iss":"https://id.example.com","sub":"usr_1","aud":"sgl_c","exp":20,"iat":10,"auth_time":5,"at_hash":"h","azp":"sgl_c","amr":["pwd"]}"#
        );
        // What is written reads back the same, both through `Claims` and through serde.
        assert_eq!(read::<IdTokenClaims>(&full)?, id_token());
        assert_eq!(read::<IdTokenClaims>(&text)?, bare);
        let direct: IdTokenClaims =
            serde_json::from_str(&full).map_err(|_| Error::malformed("json"))?;
        assert_eq!(direct, id_token());
        Ok(())
    }

    #[test]
    fn refresh_tokens_keep_their_wire_format() -> Result<(), Error> {
        let text = serde_json::to_string(&refresh()).map_err(|_| Error::malformed("json"))?;
        assert_eq!(
            text,
            r#"{"iss":"https://id.example.com","sub":"usr_1","aud":"urn:sigil:refresh:https://id.example.com","exp":20,"iat":10,"jti":"j","client_id":"sgl_c","scope":""}"#
        );
        assert_eq!(read::<RefreshClaims>(&text)?, refresh());
        let direct: RefreshClaims =
            serde_json::from_str(&text).map_err(|_| Error::malformed("json"))?;
        assert_eq!(direct, refresh());
        Ok(())
    }

    #[test]
    fn each_kind_refuses_what_it_cannot_be() {
        let base = r#""iss":"i","sub":"s","exp":2,"iat":1"#;
        let refused = |json: String, kind: ErrorKind| {
            let got = read::<RefreshClaims>(&json).err().map(Error::into_kind);
            assert_eq!(got, Some(kind), "{json}");
        };
        for name in ["jti", "client_id", "scope"] {
            let all = [("jti", "j"), ("client_id", "c"), ("scope", "")];
            let members: Vec<String> = all
                .iter()
                .filter(|(n, _)| *n != name)
                .map(|(n, v)| format!(r#""{n}":"{v}""#))
                .collect();
            refused(
                format!(r#"{{{base},"aud":"a",{}}}"#, members.join(",")),
                ErrorKind::MissingClaim(name),
            );
        }
        refused(
            format!(r#"{{{base},"aud":["a","b"],"jti":"j","client_id":"c","scope":""}}"#),
            ErrorKind::InvalidClaim("aud"),
        );
        let id = |extra: &str| {
            read::<IdTokenClaims>(&format!(r#"{{{base},"aud":"a"{extra}}}"#))
                .err()
                .map(Error::into_kind)
        };
        let ok = r#","auth_time":1,"at_hash":"h","azp":"a","amr":["pwd"]"#;
        assert_eq!(id(ok), None);
        assert_eq!(
            id(r#","at_hash":"h","azp":"a","amr":[]"#),
            Some(ErrorKind::MissingClaim("auth_time"))
        );
        assert_eq!(
            id(r#","auth_time":1.5,"at_hash":"h","azp":"a","amr":[]"#),
            Some(ErrorKind::InvalidClaim("auth_time"))
        );
        assert_eq!(
            id(r#","auth_time":1,"at_hash":"h","azp":"a","amr":"pwd""#),
            Some(ErrorKind::InvalidClaim("amr"))
        );
        assert_eq!(
            id(&format!(r#"{ok},"email_verified":"yes""#)),
            Some(ErrorKind::InvalidClaim("email_verified"))
        );
        assert_eq!(
            id(&format!(r#"{ok},"nonce":7"#)),
            Some(ErrorKind::InvalidClaim("nonce"))
        );
        assert_eq!(
            id(r#","auth_time":1,"azp":"a","amr":[]"#),
            Some(ErrorKind::MissingClaim("at_hash"))
        );
    }
}
