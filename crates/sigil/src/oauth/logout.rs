//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which client asks, and where the
//! browser may go afterwards.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sigil_verify::Verifier;

use super::Context;

/// An ID token presented as `id_token_hint` may have expired long ago; it still names the client
/// and user. Beyond this age it is refused.
const HINT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Parameters of a logout request.
#[derive(Debug, Default)]
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

/// Where to send the browser after the session ends: the registered `post_logout_redirect_uri`
/// (exact match, for the client named by a valid `id_token_hint` or by `client_id`), or nowhere.
pub async fn return_to(ctx: &Context, req: &LogoutRequest) -> Option<String> {
    let uri = req.post_logout_redirect_uri.as_deref()?;
    let hinted = match req.id_token_hint.as_deref() {
        Some(hint) => Some(verified_hint_client(ctx, hint)?),
        None => None,
    };
    let client_id = match (hinted, req.client_id.as_deref()) {
        (Some(h), Some(c)) if h != c => return None,
        (Some(h), _) => h,
        (None, Some(c)) => c.to_owned(),
        (None, None) => return None,
    };
    let reg = ctx.clients.get(&ctx.store, &client_id).await.ok()??;
    if !reg
        .client
        .post_logout_redirect_uris
        .iter()
        .any(|r| r.as_str() == uri)
    {
        return None;
    }
    let mut params = Vec::new();
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    Some(super::authorize::with_query(uri, &params))
}

/// The client (`aud`) of an ID token Sigil signed; expired tokens are accepted up to
/// [`HINT_MAX_AGE`].
fn verified_hint_client(ctx: &Context, hint: &str) -> Option<String> {
    verified_id_token_hint(ctx, hint).map(|(aud, _)| aud)
}

/// The client (`aud`) and user (`sub`) of an ID token Sigil signed, expired up to
/// [`HINT_MAX_AGE`] ago.
pub fn verified_id_token_hint(ctx: &Context, hint: &str) -> Option<(String, String)> {
    let payload = hint.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let aud = claims.get("aud")?.as_str()?.to_owned();
    let snap = ctx.ring.load();
    let verifier = Verifier::builder(ctx.issuer.as_str(), aud.as_str())
        .typ(Some("JWT"))
        .leeway(HINT_MAX_AGE)
        .clock(ctx.clock.clone())
        .jwks(snap.published_set(ctx.now()))
        .build()
        .ok()?;
    let claims = verifier.verify(hint).ok()?;
    Some((aud, claims.sub))
}
