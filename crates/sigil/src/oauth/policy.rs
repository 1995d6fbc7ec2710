//! The grant policies, as pure functions: which scopes and audiences a token may carry, what a
//! PKCE challenge and verifier must look like, when the user must be asked for consent, and
//! when an existing session answers an authorization request. No I/O, no clock: the callers
//! in `oauth` pass in what they looked up, so every rule here is unit-tested on its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;

use super::OAuthError;
use crate::crypto::ct_eq;
use crate::domain::ScopeSet;

/// What an empty (or absent) `scope` parameter means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenEmpty {
    /// Everything allowed (client_credentials: the client's registered scopes; refresh: what
    /// the family was granted).
    All,
    /// Nothing (an authorization request without `scope`).
    Nothing,
}

/// Why a requested scope is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// Not a space-delimited list of RFC 6749 scope tokens.
    Malformed,
    /// A requested scope is outside what is allowed.
    Wider,
}

/// Narrow `allowed` to the `requested` scope parameter: every requested scope must be in
/// `allowed` (a request can narrow, never widen).
pub fn narrow_scope(
    requested: Option<&str>,
    allowed: &ScopeSet,
    when_empty: WhenEmpty,
) -> Result<ScopeSet, ScopeRefusal> {
    let asked = match requested {
        None => ScopeSet::default(),
        Some(raw) => ScopeSet::parse_param(raw).map_err(|_| ScopeRefusal::Malformed)?,
    };
    if asked.is_empty() {
        return Ok(match when_empty {
            WhenEmpty::All => allowed.clone(),
            WhenEmpty::Nothing => ScopeSet::default(),
        });
    }
    if !asked.is_subset(allowed) {
        return Err(ScopeRefusal::Wider);
    }
    Ok(asked)
}

/// Narrow a token's audiences to those `requested` (RFC 8707 `resource`, or `audience`): each
/// must be one the token would carry anyway (`available`), else `invalid_target`. Nothing
/// requested: all of `available`. Sorted, without duplicates.
pub fn narrow_audience(
    mut available: Vec<String>,
    requested: &[String],
) -> Result<Vec<String>, OAuthError> {
    if !requested.is_empty() {
        if let Some(bad) = requested.iter().find(|r| !available.contains(r)) {
            tracing::info!(audience = %bad, "requested audience not available to the client");
            return Err(OAuthError::InvalidTarget(
                "a requested audience is not registered for this client",
            ));
        }
        available = requested.to_vec();
    }
    available.sort();
    available.dedup();
    Ok(available)
}

/// The audiences a client's tokens carry before narrowing: its registered audiences, or the
/// server's default audience when it has none.
pub fn client_audiences(registered: &[&str], default_audience: &str) -> Vec<String> {
    if registered.is_empty() {
        vec![default_audience.to_owned()]
    } else {
        registered.iter().map(|a| (*a).to_owned()).collect()
    }
}

/// Check an authorization request's PKCE parameters (RFC 7636 §4.3): only `S256`, with a
/// 43-character base64url challenge; required when `required` (public clients, or clients
/// registered with PKCE required). Returns the challenge to store, or the error description.
pub fn pkce_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    required: bool,
) -> Result<Option<String>, &'static str> {
    match (challenge, method) {
        (None, None) if !required => Ok(None),
        (None, _) => Err("PKCE is required: send code_challenge with code_challenge_method=S256"),
        (Some(c), Some("S256")) => {
            let b64url = c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if c.len() == 43 && b64url {
                Ok(Some(c.to_owned()))
            } else {
                Err("code_challenge must be a base64url SHA-256 value")
            }
        }
        (Some(_), _) => Err("code_challenge_method must be S256"),
    }
}

/// Check a token request's `code_verifier` against the challenge stored with the code
/// (RFC 7636 §4.6). A missing or wrong verifier is `invalid_grant`; a malformed one is
/// `invalid_request`.
pub fn pkce_verify(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(OAuthError::InvalidGrant("code_verifier is required")),
        (None, Some(_)) => Err(OAuthError::InvalidGrant(
            "no code_challenge was sent with the authorization request",
        )),
        (Some(challenge), Some(verifier)) => {
            let ok_chars = verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !(43..=128).contains(&verifier.len()) || !ok_chars {
                return Err(OAuthError::InvalidRequest("code_verifier is malformed"));
            }
            let computed =
                URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
            if ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// Whether the user must be asked before a client gets `asked`: never for first-party
/// clients; otherwise when the request says so (`prompt=consent`) or when a scope in `asked`
/// was never granted (`granted` is what the user granted this client before, if anything).
pub fn consent_required(
    first_party: bool,
    prompt_consent: bool,
    granted: Option<&ScopeSet>,
    asked: &ScopeSet,
) -> bool {
    if first_party {
        return false;
    }
    if prompt_consent {
        return true;
    }
    granted.is_none_or(|g| !asked.is_subset(g))
}

/// What an authorization request demands of an existing session.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionDemands<'a> {
    /// `prompt=login`: always sign in again.
    pub prompt_login: bool,
    /// `max_age`: the sign-in must be at most this many seconds old.
    pub max_age: Option<i64>,
    /// A valid `id_token_hint` names this user: only their session may answer.
    pub hint_sub: Option<&'a str>,
}

/// Whether a session of `user_id` that signed in at `auth_time` answers a request silently.
pub fn session_satisfies(
    demands: SessionDemands<'_>,
    user_id: &str,
    auth_time: i64,
    now: i64,
) -> bool {
    !demands.prompt_login
        && demands.max_age.is_none_or(|max| now - auth_time <= max)
        && demands.hint_sub.is_none_or(|sub| sub == user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse_param(s).unwrap_or_default()
    }

    #[test]
    fn a_scope_request_narrows_and_never_widens() {
        let allowed = set("openid profile email");
        assert_eq!(
            narrow_scope(Some("email openid"), &allowed, WhenEmpty::Nothing),
            Ok(set("openid email"))
        );
        assert_eq!(
            narrow_scope(Some("openid admin"), &allowed, WhenEmpty::All),
            Err(ScopeRefusal::Wider)
        );
        assert_eq!(
            narrow_scope(Some("bad\"scope"), &allowed, WhenEmpty::All),
            Err(ScopeRefusal::Malformed)
        );
    }

    #[test]
    fn an_empty_scope_means_what_the_grant_says() {
        let allowed = set("a b");
        for empty in [None, Some("")] {
            assert_eq!(
                narrow_scope(empty, &allowed, WhenEmpty::All),
                Ok(set("a b"))
            );
            assert_eq!(
                narrow_scope(empty, &allowed, WhenEmpty::Nothing),
                Ok(ScopeSet::default())
            );
        }
    }

    #[test]
    fn audiences_narrow_to_what_is_available() -> Result<(), OAuthError> {
        let avail = || vec!["https://b".to_owned(), "https://a".to_owned()];
        assert_eq!(narrow_audience(avail(), &[])?, ["https://a", "https://b"]);
        assert_eq!(
            narrow_audience(avail(), &["https://b".into(), "https://b".into()])?,
            ["https://b"]
        );
        assert!(matches!(
            narrow_audience(avail(), &["https://a".into(), "https://evil".into()]),
            Err(OAuthError::InvalidTarget(_))
        ));
        Ok(())
    }

    #[test]
    fn a_client_without_audiences_gets_the_default() {
        assert_eq!(client_audiences(&[], "https://api"), ["https://api"]);
        assert_eq!(
            client_audiences(&["https://x"], "https://api"),
            ["https://x"]
        );
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn pkce_challenges_are_s256_only() {
        assert_eq!(pkce_challenge(None, None, false), Ok(None));
        assert!(pkce_challenge(None, None, true).is_err());
        assert!(pkce_challenge(None, Some("S256"), false).is_err());
        assert_eq!(
            pkce_challenge(Some(CHALLENGE), Some("S256"), true),
            Ok(Some(CHALLENGE.to_owned()))
        );
        for method in [None, Some("plain"), Some("s256"), Some("S512")] {
            assert_eq!(
                pkce_challenge(Some(CHALLENGE), method, false),
                Err("code_challenge_method must be S256")
            );
        }
        assert!(pkce_challenge(Some(&CHALLENGE[1..]), Some("S256"), false).is_err());
        assert!(pkce_challenge(Some(&CHALLENGE.replace('-', "+")), Some("S256"), false).is_err());
    }

    #[test]
    fn pkce_verifiers_match_their_challenge() {
        // RFC 7636 appendix B.
        assert!(pkce_verify(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        assert!(pkce_verify(None, None).is_ok());
        let wrong = VERIFIER.replace('d', "e");
        assert!(matches!(
            pkce_verify(Some(CHALLENGE), Some(&wrong)),
            Err(OAuthError::InvalidGrant(_))
        ));
        assert!(matches!(
            pkce_verify(Some(CHALLENGE), None),
            Err(OAuthError::InvalidGrant(_))
        ));
        assert!(matches!(
            pkce_verify(None, Some(VERIFIER)),
            Err(OAuthError::InvalidGrant(_))
        ));
        assert!(matches!(
            pkce_verify(Some(CHALLENGE), Some("short")),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            pkce_verify(Some(CHALLENGE), Some(&format!("{VERIFIER}!"))),
            Err(OAuthError::InvalidRequest(_))
        ));
    }

    #[test]
    fn consent_is_asked_for_what_was_never_granted() {
        let asked = set("openid email");
        assert!(!consent_required(true, true, None, &asked), "first party");
        assert!(
            consent_required(false, false, None, &asked),
            "never granted"
        );
        assert!(consent_required(false, false, Some(&set("openid")), &asked));
        assert!(!consent_required(
            false,
            false,
            Some(&set("openid email profile")),
            &asked
        ));
        assert!(consent_required(
            false,
            true,
            Some(&set("openid email")),
            &asked
        ));
    }

    #[test]
    fn a_session_answers_unless_the_request_demands_more() {
        let none = SessionDemands::default();
        assert!(session_satisfies(none, "u1", 100, 5000));
        let login = SessionDemands {
            prompt_login: true,
            ..none
        };
        assert!(!session_satisfies(login, "u1", 100, 100));
        let fresh = SessionDemands {
            max_age: Some(60),
            ..none
        };
        assert!(session_satisfies(fresh, "u1", 100, 160));
        assert!(!session_satisfies(fresh, "u1", 100, 161));
        let hinted = SessionDemands {
            hint_sub: Some("u2"),
            ..none
        };
        assert!(!session_satisfies(hinted, "u1", 100, 100));
        assert!(session_satisfies(hinted, "u2", 100, 100));
    }
}
