//! URLs Sigil registers or announces, parsed with the `url` crate (WHATWG URL, as browsers parse
//! them) behind one set of rules, so what Sigil checks is where a browser goes:
//! [`RedirectUri`] (redirect and post-logout redirect URIs), [`IssuerUrl`], [`WebOrigin`] (the
//! browser origins a client's CORS requests may come from) and the CSP `form-action` source
//! derived from a redirect URI ([`RedirectUri::csp_source`]).
//!
//! Every one is absolute, at most 2000 characters, without whitespace, control characters,
//! backslashes, userinfo (`user@host`) or a fragment. A redirect URI is `https`, plain `http`
//! only for the exact loopback hosts `127.0.0.1`, `[::1]` and `localhost` (RFC 8252 §7.3), or a
//! private-use scheme for native apps, which must contain a `.` (reverse DNS, RFC 8252 §7.1), so
//! `javascript:`, `data:`, `file:`, `vbscript:` and the like never pass. Registered URIs are kept
//! exactly as written (they are matched as strings, RFC 9700 §4.1.3).

use std::fmt;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// The most characters a registered URL may have.
pub const MAX_LEN: usize = 2000;

/// Hosts for which a plain `http` redirect URI is allowed, as they must be written.
const LOOPBACK: &[&str] = &["127.0.0.1", "[::1]", "localhost"];

/// The checks every URL shares; `what` starts each message ("redirect URI", "issuer").
fn parse_absolute(s: &str, what: &str) -> Result<Url, String> {
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(format!("{what} must be 1 to {MAX_LEN} characters"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(format!(
            "{what} must not contain whitespace, control characters or backslashes"
        ));
    }
    if s.contains('#') {
        return Err(format!("{what} must not contain a fragment (#)"));
    }
    let url = Url::parse(s).map_err(|e| format!("{what} must be an absolute URI ({e})"))?;
    // The authority as written: `https://:@host` parses to no userinfo but still has one.
    let written_authority = s
        .get(url.scheme().len() + 1..)
        .and_then(|rest| rest.strip_prefix("//"))
        .map(|rest| rest.split(['/', '?']).next().unwrap_or(""))
        .unwrap_or("");
    if !url.username().is_empty() || url.password().is_some() || written_authority.contains('@') {
        return Err(format!(
            "{what} must not contain a user name or password (user@host)"
        ));
    }
    if matches!(url.scheme(), "http" | "https") {
        // `https:///cb` and `https:/cb` parse (to host `cb`); as written they name no host.
        let rest = &s[url.scheme().len() + 1..];
        let authority = rest.strip_prefix("//").unwrap_or("");
        if authority.is_empty() || authority.starts_with('/') || url.host().is_none() {
            return Err(format!("{what} must name a host (scheme://host/...)"));
        }
    }
    Ok(url)
}

/// Whether a parsed `http` URL's host is one of the exact loopback hosts, written as such
/// (not `127.1`, `0x7f.0.0.1` or `localhost.example`).
fn is_loopback(url: &Url, raw: &str) -> bool {
    let exact = match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    };
    // The host as written: after `http://`, up to the port, path or query.
    let written = raw
        .get("http://".len()..)
        .map(|rest| {
            let end = if rest.starts_with('[') {
                rest.find(']').map_or(rest.len(), |i| i + 1)
            } else {
                rest.find([':', '/', '?']).unwrap_or(rest.len())
            };
            &rest[..end]
        })
        .unwrap_or("");
    exact && LOOPBACK.iter().any(|h| h.eq_ignore_ascii_case(written))
}

/// An absolute redirect URI registered for a client (matched later by exact string).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// `https://`, `http://` for an exact loopback host, or a private-use `reverse.dns:` scheme;
    /// no userinfo, no fragment.
    pub fn parse(s: &str) -> Result<RedirectUri, String> {
        let url = parse_absolute(s, "redirect URI")?;
        match url.scheme() {
            "https" => {}
            "http" => {
                if !is_loopback(&url, s) {
                    return Err("redirect URI: plain http is allowed only for the loopback hosts 127.0.0.1, [::1] and localhost; use https".into());
                }
            }
            scheme if scheme.contains('.') => {}
            scheme => {
                return Err(format!(
                    "redirect URI scheme `{scheme}:` is not allowed: use https, http on a loopback host, or a private-use scheme in reverse-DNS form such as com.example.app:"
                ));
            }
        }
        Ok(RedirectUri(s.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed URL; none for a stored URI from before these rules that no longer passes.
    fn url(&self) -> Option<Url> {
        RedirectUri::parse(&self.0).ok()?;
        Url::parse(&self.0).ok()
    }

    /// The web origin (`https://host[:port]`) of an http(s) redirect URI; none for a native
    /// app's private-use scheme.
    pub fn web_origin(&self) -> Option<String> {
        let url = self.url()?;
        matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
    }

    /// The CSP source that lets a form lead here: the origin, or `scheme:` for a private-use
    /// scheme. Only characters a CSP source may hold.
    pub fn csp_source(&self) -> Option<String> {
        let url = self.url()?;
        let source = match url.scheme() {
            "http" | "https" => url.origin().ascii_serialization(),
            scheme => format!("{scheme}:"),
        };
        source
            .chars()
            .all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']' | '+')
            })
            .then_some(source)
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A web origin (RFC 6454) a client's browser code runs on, answered by CORS on the token,
/// userinfo, revocation and introspection endpoints: `https://host[:port]`, or `http://` on an
/// exact loopback host; no path, query, userinfo or fragment. Kept in the form browsers send in
/// `Origin` (lower-case host, no default port), so matching is string equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebOrigin(String);

impl WebOrigin {
    /// Parse an origin as registered (`https://spa.example`, `http://localhost:5173`).
    pub fn parse(s: &str) -> Result<WebOrigin, String> {
        let url = parse_absolute(s, "web origin")?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url, s) => {}
            "http" => return Err("web origin: plain http is allowed only for the loopback hosts 127.0.0.1, [::1] and localhost; use https".into()),
            _ => return Err("web origin must be https://host[:port] (or http:// on a loopback host)".into()),
        }
        let authority_only = s
            .get(url.scheme().len() + 3..)
            .is_some_and(|rest| !rest.contains(['/', '?']));
        if !authority_only {
            return Err("web origin must be only scheme://host[:port], without a path, query or trailing '/'".into());
        }
        Ok(WebOrigin(url.origin().ascii_serialization()))
    }

    /// The origin as browsers send it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RedirectUri {
    /// The redirect URI's origin as a [`WebOrigin`], for http(s) URIs.
    pub fn origin(&self) -> Option<WebOrigin> {
        self.web_origin().map(WebOrigin)
    }
}

/// The issuer URL: absolute `http(s)`, a host, no userinfo, query, fragment or trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IssuerUrl(String);

impl TryFrom<String> for IssuerUrl {
    type Error = String;
    fn try_from(s: String) -> Result<IssuerUrl, String> {
        IssuerUrl::parse(&s)
    }
}

impl From<IssuerUrl> for String {
    fn from(i: IssuerUrl) -> String {
        i.0
    }
}

impl std::fmt::Display for IssuerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl IssuerUrl {
    /// Parse and check an issuer URL.
    pub fn parse(s: &str) -> Result<IssuerUrl, String> {
        let url = parse_absolute(s, "the issuer")?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the issuer must start with https:// or http://".into());
        }
        if s.contains('?') {
            return Err("the issuer must not contain a query".into());
        }
        if s.ends_with('/') {
            return Err("the issuer must not end with '/'".into());
        }
        Ok(IssuerUrl(s.to_owned()))
    }

    /// The issuer as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything but RFC 3986 unreserved characters is percent-encoded in query values.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Append query parameters to a URI that may already have a query (a registered redirect or
/// post-logout URI: the parameters Sigil adds come after the registered ones).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        sep = '&';
        out.push_str(k);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(v, UNRESERVED_KEPT));
    }
    out
}

impl RedirectUri {
    /// This URI with `params` appended to its query ([`with_query`]).
    pub fn with_query(&self, params: &[(&str, &str)]) -> String {
        with_query(self.as_str(), params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example/cb",
            "https://app.example",
            "HTTPS://App.Example/cb",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
            "http://LOCALHOST:5173/cb",
            "com.example.app:/cb",
            "com.example.app://cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.nip.io/cb",
            "http://localhost@evil.example/cb",
            "http://127.1/cb",
            "http://0x7f.0.0.1/cb",
            "http://[::1].evil/cb",
            "http://[0:0:0:0:0:0:0:1]/cb",
            "http://sub.localhost/cb",
            "https://u:p@app.example/cb",
            "https://app.example\\@evil.example/cb",
            "https://app.example/cb#x",
            "https://app.example/cb#",
            "https:///cb",
            "https:/cb",
            "https:cb",
            "/relative",
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "vbscript:x",
            "blob:https://app.example/x",
            "about:blank",
            "ftp://app.example/",
            "wss://app.example/",
            "myapp:/cb",
            "com.example.app://user@host/cb",
            "https://app.example/c b",
            "https://app.example/\tcb",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
        assert!(RedirectUri::parse(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }

    #[test]
    fn origins_and_csp_sources() {
        let origin = |s: &str| RedirectUri::parse(s).ok().and_then(|u| u.web_origin());
        assert_eq!(
            origin("https://App.Example:443/cb?x"),
            Some("https://app.example".into())
        );
        assert_eq!(
            origin("https://app.example:8443/cb"),
            Some("https://app.example:8443".into())
        );
        assert_eq!(
            origin("http://[::1]:8080/cb"),
            Some("http://[::1]:8080".into())
        );
        assert_eq!(origin("com.example.app:/cb"), None);
        let csp = |s: &str| RedirectUri::parse(s).ok().and_then(|u| u.csp_source());
        assert_eq!(
            csp("https://app.example/cb"),
            Some("https://app.example".into())
        );
        assert_eq!(csp("com.example.app:/cb"), Some("com.example.app:".into()));
        assert_eq!(
            csp("https://bücher.example/cb"),
            Some("https://xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn web_origins() {
        let o = |s: &str| WebOrigin::parse(s).map(|o| o.as_str().to_owned());
        assert_eq!(o("https://SPA.example"), Ok("https://spa.example".into()));
        assert_eq!(
            o("https://spa.example:443"),
            Ok("https://spa.example".into())
        );
        assert_eq!(
            o("https://spa.example:8443"),
            Ok("https://spa.example:8443".into())
        );
        assert_eq!(
            o("http://localhost:5173"),
            Ok("http://localhost:5173".into())
        );
        assert_eq!(o("http://[::1]:3000"), Ok("http://[::1]:3000".into()));
        for bad in [
            "*",
            "null",
            "https://spa.example/",
            "https://spa.example/app",
            "https://spa.example?x",
            "https://spa.example#x",
            "https://u@spa.example",
            "http://spa.example",
            "http://localhost.evil.example",
            "com.example.app:",
            "com.example.app://host",
            "javascript:alert(1)",
        ] {
            assert!(WebOrigin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_urls() {
        assert!(IssuerUrl::parse("https://id.example").is_ok());
        assert!(IssuerUrl::parse("https://id.example/t/acme").is_ok());
        assert!(IssuerUrl::parse("http://0.0.0.0:8080").is_ok());
        assert!(IssuerUrl::parse("https://id.example/").is_err());
        assert!(IssuerUrl::parse("id.example").is_err());
        assert!(IssuerUrl::parse("https://id.example?x").is_err());
        assert!(IssuerUrl::parse("https://id.example#x").is_err());
        assert!(IssuerUrl::parse("https://user@id.example").is_err());
        assert!(IssuerUrl::parse("ftp://id.example").is_err());
        assert!(IssuerUrl::parse("https:///id").is_err());
    }

    fn host_like() -> impl Strategy<Value = String> {
        let base = prop_oneof![
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
            Just("localhost".to_owned()),
            "[a-z0-9]{1,10}".prop_map(|s| s),
        ];
        let affix = prop_oneof![
            Just(String::new()),
            Just(".".to_owned()),
            Just("@".to_owned()),
            "[a-z0-9.@%\\[\\]-]{1,12}".prop_map(|s| s),
        ];
        (affix.clone(), base, affix).prop_map(|(a, b, c)| format!("{a}{b}{c}"))
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = RedirectUri::parse(&s);
            let _ = IssuerUrl::parse(&s);
        }

        #[test]
        fn plain_http_only_for_the_exact_loopback_hosts(
            host in host_like(),
            port in proptest::option::of(1024u16..),
            path in "(/[a-z0-9]{0,8}){0,3}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let uri = format!("http://{host}{port}{path}");
            let accepted = RedirectUri::parse(&uri).is_ok();
            let exact = LOOPBACK.contains(&host.as_str());
            prop_assert!(!accepted || exact, "{} accepted", uri);
            if accepted {
                let origin = RedirectUri::parse(&uri).ok().and_then(|u| u.web_origin());
                prop_assert_eq!(origin, Some(format!("http://{host}{port}")));
            }
        }

        #[test]
        fn what_is_accepted_has_no_userinfo_or_fragment_and_a_safe_scheme(s in "[a-zA-Z.:/@#%0-9\\[\\]-]{1,40}") {
            if let Ok(uri) = RedirectUri::parse(&s) {
                let url = Url::parse(uri.as_str()).expect("accepted means parsed");
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(url.fragment().is_none());
                prop_assert!(matches!(url.scheme(), "https" | "http") || url.scheme().contains('.'));
                if url.scheme() == "http" {
                    prop_assert!(url.host_str().is_some_and(|h| LOOPBACK.contains(&h)));
                }
            }
        }

        #[test]
        fn userinfo_is_always_refused(user in "[a-z0-9.:]{1,10}", host in "[a-z]{1,10}\\.example") {
            let https = format!("https://{user}@{host}/cb");
            let http = format!("http://{user}@localhost/cb");
            prop_assert!(RedirectUri::parse(&https).is_err());
            prop_assert!(RedirectUri::parse(&http).is_err());
        }
    }
}
