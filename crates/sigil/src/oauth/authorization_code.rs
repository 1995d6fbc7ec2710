//! Authorization codes: issuing one at the end of `/authorize` (RFC 6749 §4.1.2), and the
//! `authorization_code` grant that redeems it once (RFC 6749 §4.1.3, PKCE RFC 7636, OIDC Core
//! §3.1.3). A replayed code revokes what its first redemption issued.
//!
//! A redemption takes the code from the cache (one winner across processes), then stores the
//! refresh family, signs, and records what it issued (`code_spent`) for a replay to revoke. A
//! process can die anywhere in between, or its cache with it (in process on SQLite), with the
//! family stored and nothing recorded; so the family's first token id is derived from the code
//! ([`crate::crypto::MasterKey::code_family`]) and a replay finds the family from the code alone.
//! An access token names its family (`fid`) and is revoked with it.

use serde::{Deserialize, Serialize};

use super::OAuthError;
use super::clients::RegisteredClient;
use super::issue::{IdTokenRequest, TokenLink, TokenResponse, id_token, user_access_token};
use super::request::AuthorizationRequest;
use crate::crypto::{hash_id, random_b64};
use crate::domain::user::User;
use crate::domain::{ClientId, GrantType, RedirectUri, ScopeSet};
use crate::state::AppState;
use crate::store::sessions::SessionRow;
use crate::store::users as user_store;

/// Lifetime of an authorization code, seconds.
pub const CODE_TTL: i64 = 60;

/// What a code stands for until it is redeemed.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Client it was issued to.
    pub client_id: ClientId,
    /// Redirect URI it was issued for.
    pub redirect_uri: RedirectUri,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// The user.
    pub user_id: String,
    /// Granted scope.
    pub scope: ScopeSet,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The login session (refresh tokens without offline_access end with it).
    pub session_hash: String,
    /// How the user authenticated (the ID token's `amr`); empty for a code issued before
    /// sessions remembered it, which means a password.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// Issue a code for `req` to the signed-in `user` and return the success redirect
/// (`code`, `state`, `iss`).
pub async fn issue(
    ctx: &AppState,
    req: &AuthorizationRequest,
    user: &User,
    session: &SessionRow,
) -> Result<String, OAuthError> {
    let code = random_b64(32);
    let grant = CodeGrant {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        user_id: user.id.clone(),
        scope: req.scope.clone(),
        auth_time: session.auth_time,
        session_hash: session.id_hash.clone(),
        amr: session.methods(),
    };
    let now = ctx.now();
    let bytes = serde_json::to_vec(&grant).map_err(|e| OAuthError::Internal(e.to_string()))?;
    ctx.cache
        .put(
            &format!("code:{}", hash_id(&code)),
            bytes,
            now + CODE_TTL,
            now,
        )
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", ctx.issuer.as_str()));
    Ok(req.redirect_uri.with_query(&params))
}

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
        replayed(ctx, code, &code_hash, client.id.as_str()).await?;
        return Err(bad("the code is invalid, expired or already used"));
    };
    let grant: CodeGrant = serde_json::from_slice(&record)
        .map_err(|e| OAuthError::Internal(format!("stored code: {e}")))?;
    if grant.client_id != client.id {
        return Err(bad("the code was issued to another client"));
    }
    if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(bad("redirect_uri does not match the authorization request"));
    }
    super::policy::pkce_verify(
        grant.code_challenge.as_deref(),
        req.code_verifier.as_deref(),
    )?;
    let user_id = grant.user_id.clone();
    let user = ctx
        .store
        .run(move |c| user_store::find_by_id(c, &user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or(bad("the user can no longer sign in"))?;
    let scopes = &grant.scope;
    let has = |s: &str| scopes.iter().any(|x| x.as_str() == s);
    // The family first, so the access token can name it (`fid`) and die with it.
    let mut family = None;
    let mut refresh_token = None;
    if client.has_grant(GrantType::RefreshToken) {
        // Without offline_access the family ends with the login session.
        let session_hash = (!has("offline_access")).then(|| grant.session_hash.clone());
        let (token, family_id) = super::refresh::issue_new_family(
            ctx,
            super::refresh::NewFamily {
                id: ctx.master.code_family(code),
                client_id: client.id.as_str(),
                user_id: &user.id,
                scope: &grant.scope.to_param(),
                auth_time: grant.auth_time,
                session_hash,
            },
        )
        .await?;
        refresh_token = Some(token);
        family = Some(family_id);
    }
    let link = TokenLink::new(Some(&grant.session_hash), family.as_deref());
    let mut response = user_access_token(ctx, client, &user, scopes, &req.audiences, link)?;
    response.refresh_token = refresh_token;
    let family_id = family;
    if has("openid") {
        let released = user.scoped_claims(has);
        response.id_token = Some(id_token(
            ctx,
            IdTokenRequest {
                sub: &user.id,
                client_id: client.id.as_str(),
                nonce: grant.nonce.as_deref(),
                auth_time: grant.auth_time,
                amr: &grant.amr,
                alg: client.id_token_alg,
                access_token: &response.access_token,
                user: released,
            },
        )?);
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
/// (OAuth 2.0 §4.1.2, Security BCP §4.5): what it recorded, or else the family derived from the
/// code, which exists when the redemption stored it and died before recording (see the module
/// docs). A code never redeemed finds neither.
async fn replayed(
    ctx: &AppState,
    code: &str,
    code_hash: &str,
    client_id: &str,
) -> Result<(), OAuthError> {
    let now = ctx.now();
    let spent = ctx
        .cache
        .take(&format!("code_spent:{code_hash}"), now)
        .await?
        .and_then(|bytes| serde_json::from_slice::<Spent>(&bytes).ok());
    let family_revoked = match spent.as_ref().and_then(|s| s.family_id.clone()) {
        Some(family) => {
            ctx.store
                .run(move |c| crate::store::refresh_tokens::revoke_family(c, &family, now))
                .await?;
            true
        }
        None => {
            let first = hash_id(&ctx.master.code_family(code));
            ctx.store
                .run(move |c| crate::store::refresh_tokens::revoke_family_of(c, &first, now))
                .await?
                > 0
        }
    };
    if spent.is_none() && !family_revoked {
        return Ok(());
    }
    tracing::warn!(client_id = %client_id, event = "authorization_code_replay", "authorization code redeemed twice: revoking what it issued");
    ctx.metrics.authorization_code_replay.inc();
    let mut event = ctx.event("authorization_code.replay", format!("client:{client_id}"));
    event.client_id = Some(client_id.to_owned());
    event.details = serde_json::json!({
        "access_token_jti": spent.as_ref().map(|s| s.jti.clone()),
        "refresh_family_revoked": family_revoked,
    });
    ctx.audit(event).await;
    if let Some(spent) = spent {
        let id = crate::store::revocations::token_id(&spent.jti);
        let until = spent.exp + crate::clock::secs(ctx.settings.keys.clock_skew);
        ctx.store
            .run(move |c| crate::store::revocations::insert(c, &id, until))
            .await?;
    }
    Ok(())
}
