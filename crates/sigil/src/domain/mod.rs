//! Parsed domain types. A value of one of these types is valid by construction
//! ("parse, don't validate"): HTTP and CLI input is converted with `parse`/`TryFrom` at the edge.

pub mod authz;
pub mod client;
pub mod uri;
pub mod user;

pub use uri::{IssuerUrl, RedirectUri, WebOrigin};

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Parse `30s`, `10m`, `12h`, `90d` (and anything `humantime` accepts, such as `1h 30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}` ({e}); write it like 30s, 10m, 12h or 90d"))
}

/// Write a duration the way the contract spells them: the largest unit that divides it exactly
/// (`90d`, `12h`, `10m`, `30s`), so what `config check` prints parses back to the same value.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match s {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A client identifier. Sigil issues `sgl_` followed by base64url characters; [`ClientId::parse`]
/// is the one rule for what a client id may look like, wherever one comes in (the token
/// endpoint's credentials, the client registry's lookups, the CLI's arguments, stored rows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Accept any client_id a client might send: 1..=128 visible ASCII characters. Whether it exists
    /// is the store's business.
    pub fn parse(s: &str) -> Result<ClientId, &'static str> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("client_id must be 1 to 128 visible ASCII characters");
        }
        Ok(ClientId(s.to_owned()))
    }

    /// A new random client id.
    pub fn generate() -> ClientId {
        ClientId(format!("sgl_{}", crate::crypto::random_b64(16)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ClientId {
    type Err = &'static str;

    /// [`ClientId::parse`] (so command-line arguments are parsed by the same rule).
    fn from_str(s: &str) -> Result<ClientId, &'static str> {
        ClientId::parse(s)
    }
}

/// One scope token (RFC 6749 §3.3: `%x21 / %x23-5B / %x5D-7E`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

impl Scope {
    /// Parse one scope token.
    pub fn parse(s: &str) -> Result<Scope, String> {
        if s.is_empty() || s.len() > 200 {
            return Err("a scope must be 1 to 200 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(
                "a scope may contain only printable ASCII other than space, '\"' and '\\'".into(),
            );
        }
        Ok(Scope(s.to_owned()))
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Scope::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.0
    }
}

/// A set of scopes, kept sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parse a space-delimited `scope` parameter. Empty means no scope requested.
    pub fn parse_param(s: &str) -> Result<ScopeSet, String> {
        let mut set = BTreeSet::new();
        for part in s.split(' ') {
            if part.is_empty() {
                if s.is_empty() {
                    continue;
                }
                return Err("scopes must be separated by exactly one space".into());
            }
            set.insert(Scope::parse(part)?);
        }
        Ok(ScopeSet(set))
    }

    /// Build from already-parsed scopes.
    pub fn from_scopes(it: impl IntoIterator<Item = Scope>) -> ScopeSet {
        ScopeSet(it.into_iter().collect())
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterate in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Space-delimited, sorted: the `scope` claim and response member.
    pub fn to_param(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s.as_str());
        }
        out
    }
}

/// OAuth grant types Sigil knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1
    AuthorizationCode,
    /// RFC 6749 §6
    RefreshToken,
    /// RFC 6749 §4.4
    ClientCredentials,
}

impl GrantType {
    /// Parse the `grant_type` value.
    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

/// A role name (also used for audiences and client names): 1..=100 printable characters, no spaces
/// at the ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Parse a name.
    pub fn parse(s: &str, what: &str) -> Result<Name, String> {
        if s.is_empty()
            || s.chars().count() > 100
            || s.trim() != s
            || s.chars().any(|c| c.is_control())
        {
            return Err(format!(
                "{what} must be 1 to 100 characters without control characters or surrounding spaces"
            ));
        }
        Ok(Name(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Audiences in this namespace are Sigil's own (e.g. [`refresh_audience`]); no client may register
/// one and no access token carries one.
pub const RESERVED_AUDIENCE_PREFIX: &str = "urn:sigil:";

/// The `aud` of Sigil's refresh tokens for `issuer`: in the reserved namespace, so it is never an
/// audience an access token could carry and no resource server takes a refresh token as a bearer.
pub fn refresh_audience(issuer: &str) -> String {
    format!("{RESERVED_AUDIENCE_PREFIX}refresh:{issuer}")
}

/// Parse an audience a client registers (or `tokens.default_audience`): a [`Name`] outside the
/// reserved `urn:sigil:` namespace.
pub fn parse_audience(s: &str, what: &str) -> Result<Name, String> {
    let name = Name::parse(s, what)?;
    if name
        .as_str()
        .get(..RESERVED_AUDIENCE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_AUDIENCE_PREFIX))
    {
        return Err(format!(
            "{what} must not start with {RESERVED_AUDIENCE_PREFIX} (reserved for Sigil's own tokens)"
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_audience_cannot_be_registered() {
        let issuer = "https://id.example";
        let aud = refresh_audience(issuer);
        assert_ne!(aud, issuer);
        assert!(parse_audience(&aud, "--audience").is_err());
        assert!(parse_audience("URN:Sigil:anything", "--audience").is_err());
        assert!(parse_audience("https://api.example", "--audience").is_ok());
        assert!(parse_audience(issuer, "--audience").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        for text in ["0s", "1s", "90s", "10m", "12h", "90d", "1500ms"] {
            let d = parse_duration(text).map_err(|e| e.to_string());
            assert_eq!(d.map(format_duration).as_deref(), Ok(text));
        }
        assert!(parse_duration("ten minutes").is_err());
    }

    #[test]
    fn scope_sets() {
        let s = ScopeSet::parse_param("b a a").ok();
        assert_eq!(s.map(|s| s.to_param()), Some("a b".to_owned()));
        assert!(ScopeSet::parse_param("a  b").is_err());
        assert!(ScopeSet::parse_param(" a").is_err());
        assert!(ScopeSet::parse_param("a\"b").is_err());
        assert_eq!(ScopeSet::parse_param("").map(|s| s.is_empty()), Ok(true));
    }
}
