//! End users.

use serde::Serialize;

use super::Name;

/// A login name: `^[a-zA-Z0-9_-]{1,50}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Parse a username.
    pub fn parse(s: &str) -> Result<Username, &'static str> {
        if s.is_empty()
            || s.len() > 50
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("a username is 1 to 50 characters of letters, digits, '_' and '-'");
        }
        Ok(Username(s.to_owned()))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: one `@`, a non-empty local part and a dotted domain, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parse an email address (shape only; ownership is not verified).
    pub fn parse(s: &str) -> Result<Email, &'static str> {
        let bad = "an email address looks like name@example.com";
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad);
        }
        let (local, domain) = s.split_once('@').ok_or(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad);
        }
        Ok(Email(s.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// Stable subject identifier (`sub`), never reused.
    pub id: String,
    /// Login name.
    pub username: Username,
    /// Email, if known.
    pub email: Option<Email>,
    /// Whether an operator (or a verification Sigil ran) confirmed the address is the user's.
    pub email_verified: bool,
    /// bcrypt hash (see `passwords`).
    pub password_hash: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// Roles (the `roles` claim).
    pub roles: Vec<Name>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds.
    pub password_changed_at: i64,
}

impl User {
    /// A new, enabled user with a fresh id (`usr_…`, never reused), created and its password
    /// set at `now`. `roles` are expected sorted and unique ([`super::authz::role_names`]).
    pub fn new(
        username: Username,
        email: Option<Email>,
        email_verified: bool,
        password_hash: String,
        roles: Vec<Name>,
        now: i64,
    ) -> User {
        User {
            id: format!("usr_{}", crate::crypto::random_b64(16)),
            username,
            email,
            email_verified,
            password_hash,
            disabled: false,
            roles,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
        }
    }

    /// What `users show` prints: everything but the password hash.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "email_verified": self.email_verified,
            "disabled": self.disabled,
            "roles": self.roles,
            "created_at": crate::clock::rfc3339(self.created_at),
            "updated_at": crate::clock::rfc3339(self.updated_at),
            "password_changed_at": crate::clock::rfc3339(self.password_changed_at),
        })
    }
}

impl User {
    /// The claims about this user that `scope` releases (OIDC Core §5.4), the same in ID tokens
    /// and at `/userinfo`: `profile` → `preferred_username`, `updated_at`; `email` → `email`,
    /// `email_verified`. `sub` is not included (each caller sets it).
    pub fn scoped_claims(&self, has_scope: impl Fn(&str) -> bool) -> sigil_verify::UserClaims {
        let mut claims = sigil_verify::UserClaims::default();
        if has_scope("profile") {
            claims.preferred_username = Some(self.username.as_str().to_owned());
            claims.updated_at = Some(self.updated_at);
        }
        if has_scope("email")
            && let Some(e) = &self.email
        {
            claims.email = Some(e.as_str().to_owned());
            claims.email_verified = Some(self.email_verified);
        }
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("alice_01-x").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"a".repeat(51)).is_err());
        for bad in ["al ice", "alice@x", "älice", "a/b", "a\0"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    fn user(email: Option<&str>, verified: bool) -> User {
        User {
            id: "usr_1".into(),
            username: Username::parse("ann").unwrap_or_else(|e| panic!("{e}")),
            email: email.map(|e| Email::parse(e).unwrap_or_else(|e| panic!("{e}"))),
            email_verified: verified,
            password_hash: String::new(),
            disabled: false,
            roles: vec![],
            created_at: 1,
            updated_at: 2,
            password_changed_at: 1,
        }
    }

    #[test]
    fn claims_follow_the_scopes() {
        let u = user(Some("ann@example.com"), true);
        assert!(u.scoped_claims(|_| false).is_empty());
        let profile = u.scoped_claims(|s| s == "profile");
        assert_eq!(profile.preferred_username.as_deref(), Some("ann"));
        assert_eq!(profile.updated_at, Some(2));
        assert_eq!((profile.email, profile.email_verified), (None, None));
        let email = u.scoped_claims(|s| s == "email");
        assert_eq!(email.email.as_deref(), Some("ann@example.com"));
        assert_eq!(email.email_verified, Some(true));
        assert_eq!((email.preferred_username, email.updated_at), (None, None));
        // No address, no email claims at all.
        assert!(user(None, false).scoped_claims(|s| s == "email").is_empty());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("alice@example.com").is_ok());
        for bad in ["alice", "@example.com", "a@b", "a@@b.c", "a b@c.d", "a@.c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
