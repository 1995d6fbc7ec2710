//! The `authorization_code` grant (RFC 6749 §4.1.3, PKCE RFC 7636, OIDC Core §3.1.3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;

use super::OAuthError;
use super::authorize::{CodeGrant, hash_id};
use super::clients::RegisteredClient;
use super::issue::{IdTokenRequest, TokenResponse, id_token, user_access_token};
use crate::crypto::ct_eq;
use crate::domain::{GrantType, ScopeSet};
use crate::state::AppState;
use crate::store::users as user_store;

/// Parameters of the grant.
#[derive(Debug, Default)]
pub struct CodeRequest {
    /// `code`
    pub code: Option<String>,
    /// `redirect_uri`
    pub redirect_uri: Option<String>,
    /// `code_verifier`
    pub code_verifier: Option<String>,
    /// `resource` (RFC 8707, may repeat) and `audience` values narrowing the access token.
    pub audiences: Vec<String>,
}

fn bad(desc: &'static str) -> OAuthError {
    OAuthError::InvalidGrant(desc)
}

/// Redeem a code (once) for tokens.
pub async fn grant(
    ctx: &AppState,
    reg: &RegisteredClient,
    req: CodeRequest,
) -> Result<TokenResponse, OAuthError> {
    let client = &reg.client;
    if !client.has_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "the client may not use the authorization code flow",
        ));
    }
    let code = req
        .code
        .as_deref()
        .ok_or(OAuthError::InvalidRequest("code is required"))?;
    let now = ctx.now();
    // Single use: taking the record removes it, so a second redemption finds nothing.
    let code_hash = hash_id(code);
    let Some(record) = ctx.cache.take(&format!("code:{code_hash}"), now).await? else {
        replayed(ctx, &code_hash, client.id.as_str()).await?;
        return Err(bad("the code is invalid, expired or already used"));
    };
    let grant: CodeGrant = serde_json::from_slice(&record)
        .map_err(|e| OAuthError::Internal(format!("stored code: {e}")))?;
    if grant.client_id != client.id.as_str() {
        return Err(bad("the code was issued to another client"));
    }
    if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(bad("redirect_uri does not match the authorization request"));
    }
    match (&grant.code_challenge, req.code_verifier.as_deref()) {
        (None, None) => {}
        // RFC 7636 §4.6: a verifier that does not match, missing included, is invalid_grant.
        (Some(_), None) => return Err(bad("code_verifier is required")),
        (None, Some(_)) => {
            return Err(bad(
                "no code_challenge was sent with the authorization request",
            ));
        }
        (Some(challenge), Some(verifier)) => {
            let ok_chars = verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !(43..=128).contains(&verifier.len()) || !ok_chars {
                return Err(OAuthError::InvalidRequest("code_verifier is malformed"));
            }
            let computed =
                URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
            if !ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(bad("code_verifier does not match the code_challenge"));
            }
        }
    }
    let user_id = grant.user_id.clone();
    let user = ctx
        .store
        .run(move |c| user_store::find_by_id(c, &user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or(bad("the user can no longer sign in"))?;
    let scopes = ScopeSet::parse_param(&grant.scope)
        .map_err(|_| OAuthError::Internal("stored scope".into()))?;
    let has = |s: &str| scopes.iter().any(|x| x.as_str() == s);
    let mut response = user_access_token(ctx, client, &user, &scopes, &req.audiences)?;
    if has("openid") {
        let released = user.scoped_claims(has);
        response.id_token = Some(id_token(
            ctx,
            IdTokenRequest {
                sub: &user.id,
                client_id: client.id.as_str(),
                nonce: grant.nonce.as_deref(),
                auth_time: grant.auth_time,
                alg: client.id_token_alg,
                access_token: &response.access_token,
                user: released,
            },
        )?);
    }
    let mut family_id = None;
    if client.has_grant(GrantType::RefreshToken) {
        // Without offline_access the family ends with the login session.
        let session_hash = (!has("offline_access")).then(|| grant.session_hash.clone());
        let (token, family) = super::refresh::issue_new_family(
            ctx,
            super::refresh::NewFamily {
                client_id: client.id.as_str(),
                user_id: &user.id,
                scope: &grant.scope,
                auth_time: grant.auth_time,
                session_hash,
            },
        )
        .await?;
        response.refresh_token = Some(token);
        family_id = Some(family);
    }
    // Remember what this code issued, so a second redemption can revoke it.
    let spent = Spent {
        jti: response.jti.clone(),
        exp: response.exp,
        family_id,
    };
    let bytes = serde_json::to_vec(&spent).map_err(|e| OAuthError::Internal(e.to_string()))?;
    ctx.cache
        .put(&format!("code_spent:{code_hash}"), bytes, response.exp, now)
        .await?;
    Ok(response)
}

/// What a redeemed code issued.
#[derive(serde::Serialize, serde::Deserialize)]
struct Spent {
    jti: String,
    exp: i64,
    family_id: Option<String>,
}

/// A code presented again after its redemption: revoke everything the first redemption issued
/// (OAuth 2.0 §4.1.2, Security BCP §4.5).
async fn replayed(ctx: &AppState, code_hash: &str, client_id: &str) -> Result<(), OAuthError> {
    let now = ctx.now();
    let Some(bytes) = ctx
        .cache
        .take(&format!("code_spent:{code_hash}"), now)
        .await?
    else {
        return Ok(());
    };
    let Ok(spent) = serde_json::from_slice::<Spent>(&bytes) else {
        return Ok(());
    };
    tracing::warn!(client_id = %client_id, event = "authorization_code_replay", "authorization code redeemed twice: revoking what it issued");
    ctx.metrics.authorization_code_replay.inc();
    let mut event = ctx.event("authorization_code.replay", format!("client:{client_id}"));
    event.client_id = Some(client_id.to_owned());
    event.details = serde_json::json!({
        "access_token_jti": spent.jti,
        "refresh_family_revoked": spent.family_id.is_some(),
    });
    ctx.audit(event).await;
    ctx.cache
        .put(
            &super::bearer::revoked_key(&spent.jti),
            vec![1],
            spent.exp + 60,
            now,
        )
        .await?;
    if let Some(family) = spent.family_id {
        ctx.store
            .run(move |c| crate::store::refresh_tokens::revoke_family(c, &family))
            .await?;
    }
    Ok(())
}
