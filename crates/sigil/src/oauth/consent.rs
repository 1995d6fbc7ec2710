//! Consent for third-party clients: whether the signed-in user must be asked
//! ([`policy::consent_required`] over what they granted before), and recording what they
//! granted.

use super::OAuthError;
use super::policy;
use super::request::AuthorizationRequest;
use crate::domain::ScopeSet;
use crate::domain::client::Client;
use crate::state::AppState;

/// Whether `user_id` must be asked before `client` gets `req.scope`.
pub async fn needed(
    ctx: &AppState,
    client: &Client,
    req: &AuthorizationRequest,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if client.first_party || req.prompt_consent {
        return Ok(policy::consent_required(
            client.first_party,
            req.prompt_consent,
            None,
            &req.scope,
        ));
    }
    let (uid, cid) = (user_id.to_owned(), client.id.as_str().to_owned());
    let granted = ctx
        .store
        .run(move |c| crate::store::consents::granted(c, &uid, &cid))
        .await?
        .map(|g| ScopeSet::parse_param(&g).unwrap_or_default());
    Ok(policy::consent_required(
        false,
        false,
        granted.as_ref(),
        &req.scope,
    ))
}

/// Record the user's grant (added to what they granted before).
pub async fn record(
    ctx: &AppState,
    user_id: &str,
    req: &AuthorizationRequest,
) -> Result<(), OAuthError> {
    let (uid, cid, asked) = (
        user_id.to_owned(),
        req.client_id.as_str().to_owned(),
        req.scope.clone(),
    );
    let now = ctx.now();
    ctx.store
        .run(move |c| crate::store::consents::grant_more(c, &uid, &cid, &asked, now))
        .await?;
    Ok(())
}
