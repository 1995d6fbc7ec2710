//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): whether a logout request may end
//! the session at once or must be confirmed by the user, and where the browser may go afterwards.
//!
//! A request proves which client and user it speaks for only with a valid `id_token_hint`. Without
//! one (or with a hint for another user than the session's), anyone could have sent the browser
//! here (a cross-site `<img src=/logout>`), so the user confirms through a form whose anti-CSRF
//! token is bound to the session (§2, "the OP SHOULD ask the End-User"). A hint that does not
//! verify is an error, and nothing ends (§3).

use std::time::Duration;

use sigil_verify::{IdTokenClaims, Verifier};

use super::OAuthError;
use crate::state::AppState;

/// An ID token presented as `id_token_hint` may have expired long ago; it still names the client
/// and user. Beyond this age it is refused.
const HINT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// The purpose the confirmation form's anti-CSRF token is bound to.
const CONFIRM_PURPOSE: &str = "logout";

/// Parameters of a logout request (query of `GET /logout`, or the confirmation form).
#[derive(Debug, Default, Clone)]
pub struct LogoutRequest {
    /// `id_token_hint`
    pub id_token_hint: Option<String>,
    /// `client_id`
    pub client_id: Option<String>,
    /// `post_logout_redirect_uri`
    pub post_logout_redirect_uri: Option<String>,
    /// `state`
    pub state: Option<String>,
}

/// Why a logout request is not carried out (shown on Sigil's error page; nothing ends).
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The `id_token_hint` is not an ID token Sigil signed (or is too old).
    #[error("the id_token_hint is not a valid ID token from this issuer")]
    InvalidHint,
    /// `client_id` names another client than the hint's audience.
    #[error("client_id does not match the id_token_hint")]
    ClientMismatch,
    /// The client registry could not be read.
    #[error("logout unavailable")]
    Unavailable(#[from] OAuthError),
}

/// What to do with a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutDecision {
    /// End the session (if any), then go to `return_to` or show the signed-out page.
    End {
        /// The registered `post_logout_redirect_uri` with `state`, when the request earned it.
        return_to: Option<String>,
    },
    /// Ask the user first; the form carries `client_id` (the hint's audience when there was a
    /// hint) and leads to `return_to` once confirmed.
    Confirm {
        /// The client whose registered address the confirmation may return to.
        client_id: Option<String>,
        /// Where the confirmation leads.
        return_to: Option<String>,
    },
}

/// Decide a `GET /logout`. `session_user` is the user of the browser's live session, if any.
pub async fn decide(
    ctx: &AppState,
    req: &LogoutRequest,
    session_user: Option<&str>,
) -> Result<LogoutDecision, LogoutError> {
    let hinted = match req.id_token_hint.as_deref() {
        Some(hint) => Some(verified_id_token_hint(ctx, hint).ok_or(LogoutError::InvalidHint)?),
        None => None,
    };
    if let (Some((aud, _)), Some(client_id)) = (&hinted, req.client_id.as_deref())
        && aud != client_id
    {
        return Err(LogoutError::ClientMismatch);
    }
    let proven = match (&hinted, session_user) {
        // Nothing to end: going back to a registered address is harmless.
        (_, None) => true,
        (Some((_, sub)), Some(user)) => sub == user,
        (None, Some(_)) => false,
    };
    let client_id = hinted.map(|(aud, _)| aud).or_else(|| req.client_id.clone());
    let return_to = return_to(ctx, req, client_id.as_deref()).await?;
    Ok(if proven {
        LogoutDecision::End { return_to }
    } else {
        LogoutDecision::Confirm {
            client_id,
            return_to,
        }
    })
}

/// After the user confirmed: where to go (the client is named by `client_id` only).
pub async fn confirmed_return_to(
    ctx: &AppState,
    req: &LogoutRequest,
) -> Result<Option<String>, OAuthError> {
    return_to(ctx, req, req.client_id.as_deref()).await
}

/// The anti-CSRF token of the confirmation form for the session whose cookie hashes to
/// `session_hash`.
pub fn confirmation_token(ctx: &AppState, session_hash: &str) -> String {
    ctx.master.form_token(CONFIRM_PURPOSE, session_hash)
}

/// Whether `token` is the confirmation token of that session (constant time).
pub fn confirmation_token_ok(ctx: &AppState, session_hash: &str, token: &str) -> bool {
    ctx.master
        .verify_form_token(CONFIRM_PURPOSE, session_hash, token)
}

/// The registered `post_logout_redirect_uri` of `client_id` (exact match) with `state`, or
/// nowhere.
async fn return_to(
    ctx: &AppState,
    req: &LogoutRequest,
    client_id: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let (Some(uri), Some(client_id)) = (req.post_logout_redirect_uri.as_deref(), client_id) else {
        return Ok(None);
    };
    let Some(reg) = ctx.clients.get(&ctx.store, client_id).await? else {
        return Ok(None);
    };
    if !reg
        .client
        .post_logout_redirect_uris
        .iter()
        .any(|r| r.as_str() == uri)
    {
        return Ok(None);
    }
    let mut params = Vec::new();
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    Ok(Some(crate::domain::uri::with_query(uri, &params)))
}

/// The client (`aud`) and user (`sub`) of an ID token Sigil signed, expired up to
/// [`HINT_MAX_AGE`] ago, read as `sigil_verify::IdTokenClaims` (the type it was written with).
pub fn verified_id_token_hint(ctx: &AppState, hint: &str) -> Option<(String, String)> {
    // Only to choose the audience to verify against; verified below.
    let unverified = sigil_verify::dangerous::insecure_decode(hint).ok()?;
    let aud = unverified.claim_str("aud")?.to_owned();
    let snap = ctx.ring.load();
    let verifier = Verifier::builder(ctx.issuer.as_str(), aud.as_str())
        .typ(Some("JWT"))
        .leeway(HINT_MAX_AGE)
        .clock(ctx.clock.clone())
        // A hint may be long expired: its key may have left the JWKS but still be in the ring.
        .jwks(snap.kept_set(ctx.now()))
        .build()
        .ok()?;
    let claims = IdTokenClaims::try_from(verifier.verify(hint).ok()?).ok()?;
    Some((claims.aud, claims.sub))
}
