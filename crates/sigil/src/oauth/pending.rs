//! Sign-in and consent screens in progress: the validated request, an anti-CSRF token, and the
//! hash of a browser-binding cookie. The form is honoured only from the browser that holds the
//! binding cookie, with the matching anti-CSRF token (`http` checks both, in constant time).
//!
//! **A sign-in page keeps no server state**: an anonymous `GET /authorize` costs Sigil nothing
//! to remember. The page's form carries its [`PendingLogin`] sealed (AES-256-GCM under a key
//! derived from the master key, [`crate::crypto::MasterKey::seal_page`]) with its expiry, so
//! any replica with the same master key can finish it, and a flood of page views fills no cache.
//! The second step of a sign-in ([`PendingMfa`], the one-time code after a correct password) is
//! sealed the same way under a purpose of its own, so neither opens as the other.
//! A consent screen comes after the user signed in, so it is kept in the short-lived cache
//! under a random id (one decision per screen).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::OAuthError;
use super::request::AuthorizationRequest;
use crate::crypto::{hash_id, random_b64};
use crate::state::AppState;

/// How long a sign-in or consent page stays usable, seconds.
pub const PENDING_TTL: i64 = 600;
/// The longest consent-screen id looked up (Sigil's are 32 characters).
const MAX_ID: usize = 64;
/// The longest sealed sign-in state opened, characters. An authorization request is at most
/// 8 KiB, so its sealed form is well under this.
const MAX_SEALED: usize = 16 * 1024;
/// Associated data of a sealed sign-in page: it opens as nothing else.
const LOGIN_PURPOSE: &str = "sigil/pending-login/v1";
/// How long the second step of a sign-in (the one-time code) stays usable after the password
/// was accepted, seconds. Showing the form again after a wrong code does not extend it.
pub const MFA_TTL: i64 = 300;
/// Associated data of a sealed second step: neither it nor a sign-in page opens as the other.
const MFA_PURPOSE: &str = "sigil/pending-mfa/v1";

/// A sign-in page in progress.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// Anti-CSRF token echoed by the form.
    pub csrf: String,
    /// SHA-256 of the binding cookie value.
    pub binding: String,
    /// Unix seconds after which the page is no longer accepted.
    pub expires_at: i64,
}

/// The second step of a sign-in in progress: the user whose password was accepted, the request,
/// and the same anti-CSRF token and browser binding as a sign-in page. It exists only after a
/// correct password, and travels sealed in its form like a sign-in page: nothing is stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingMfa {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// Anti-CSRF token echoed by the form.
    pub csrf: String,
    /// SHA-256 of the binding cookie value.
    pub binding: String,
    /// The user whose password was accepted.
    pub user_id: String,
    /// Unix seconds after which the step is no longer accepted (set once, at the password).
    pub expires_at: i64,
}

/// A consent screen in progress: the request, who is signed in, and the same anti-CSRF and
/// browser binding as a sign-in page.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingConsent {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// Anti-CSRF token.
    pub csrf: String,
    /// SHA-256 of the binding cookie value.
    pub binding: String,
    /// The signed-in user.
    pub user_id: String,
    /// Their session.
    pub session_hash: String,
}

/// A page just started: its id (carried by the form: the sealed state of a sign-in page, the
/// cache id of a consent screen), its anti-CSRF token, and the value of the binding cookie to
/// set.
#[derive(Debug)]
pub struct Started {
    /// Page id.
    pub id: String,
    /// Anti-CSRF token.
    pub csrf: String,
    /// Binding cookie value.
    pub binding: String,
}

impl Started {
    fn new() -> Started {
        Started {
            id: random_b64(24),
            csrf: random_b64(24),
            binding: random_b64(24),
        }
    }
}

async fn put<T: Serialize>(
    ctx: &AppState,
    kind: &str,
    id: &str,
    value: &T,
) -> Result<(), OAuthError> {
    let bytes = serde_json::to_vec(value).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let now = ctx.now();
    ctx.cache
        .put(&format!("{kind}:{id}"), bytes, now + PENDING_TTL, now)
        .await?;
    Ok(())
}

async fn load<T: DeserializeOwned>(
    ctx: &AppState,
    kind: &str,
    id: &str,
    take: bool,
) -> Result<Option<T>, OAuthError> {
    if id.len() > MAX_ID {
        return Ok(None);
    }
    let now = ctx.now();
    let key = format!("{kind}:{id}");
    let bytes = if take {
        ctx.cache.take(&key, now).await?
    } else {
        ctx.cache.get(&key, now).await?
    };
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Seal a sign-in page's request into the page itself (nothing is stored).
pub fn start_login(ctx: &AppState, request: AuthorizationRequest) -> Result<Started, OAuthError> {
    let mut started = Started::new();
    let pending = PendingLogin {
        request,
        csrf: started.csrf.clone(),
        binding: hash_id(&started.binding),
        expires_at: ctx.now() + PENDING_TTL,
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| OAuthError::Internal(e.to_string()))?;
    started.id = ctx.master.seal_page(LOGIN_PURPOSE, &bytes);
    Ok(started)
}

/// The sign-in page whose form carried `sealed`, if it is Sigil's and has not expired.
pub fn login(ctx: &AppState, sealed: &str) -> Option<PendingLogin> {
    if sealed.len() > MAX_SEALED {
        return None;
    }
    let bytes = ctx.master.open_page(LOGIN_PURPOSE, sealed)?;
    let pending: PendingLogin = serde_json::from_slice(&bytes).ok()?;
    (pending.expires_at > ctx.now()).then_some(pending)
}

/// Seal the second step of a sign-in for `user_id` into its form, usable until `expires_at`
/// (a fresh anti-CSRF token and binding each time it is shown; nothing is stored).
pub fn start_mfa(
    ctx: &AppState,
    request: AuthorizationRequest,
    user_id: &str,
    expires_at: i64,
) -> Result<Started, OAuthError> {
    let mut started = Started::new();
    let pending = PendingMfa {
        request,
        csrf: started.csrf.clone(),
        binding: hash_id(&started.binding),
        user_id: user_id.to_owned(),
        expires_at,
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| OAuthError::Internal(e.to_string()))?;
    started.id = ctx.master.seal_page(MFA_PURPOSE, &bytes);
    Ok(started)
}

/// The second step whose form carried `sealed`, if it is Sigil's and has not expired.
pub fn mfa(ctx: &AppState, sealed: &str) -> Option<PendingMfa> {
    if sealed.len() > MAX_SEALED {
        return None;
    }
    let bytes = ctx.master.open_page(MFA_PURPOSE, sealed)?;
    let pending: PendingMfa = serde_json::from_slice(&bytes).ok()?;
    (pending.expires_at > ctx.now()).then_some(pending)
}

/// Keep a consent screen's request for the signed-in user.
pub async fn start_consent(
    ctx: &AppState,
    request: AuthorizationRequest,
    user_id: &str,
    session_hash: &str,
) -> Result<Started, OAuthError> {
    let started = Started::new();
    let pending = PendingConsent {
        request,
        csrf: started.csrf.clone(),
        binding: hash_id(&started.binding),
        user_id: user_id.to_owned(),
        session_hash: session_hash.to_owned(),
    };
    put(ctx, "consent", &started.id, &pending).await?;
    Ok(started)
}

/// The consent screen `id`, if it is still there (`take`: consume it, one decision per screen).
pub async fn consent(
    ctx: &AppState,
    id: &str,
    take: bool,
) -> Result<Option<PendingConsent>, OAuthError> {
    load(ctx, "consent", id, take).await
}
