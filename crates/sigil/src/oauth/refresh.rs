//! Refresh tokens (OAuth 2.0 §6, OAuth 2.0 Security BCP §4.14): signed JWTs (`typ: refresh+jwt`,
//! `aud` = [`crate::domain::refresh_audience`], which no access token carries, so no resource
//! server takes one as a bearer token) honoured only while the hash of their id is live in
//! storage, rotated on every use.
//!
//! Rotation ([`crate::store::refresh_tokens::rotate`], one store call): the first use of a token
//! marks it used with one conditional UPDATE (one winner across all processes) and issues a
//! successor whose id is a keyed hash of the parent's id. A repeat of the same token within
//! `tokens.refresh_reuse_window` re-issues that same successor (lost responses, two tabs) only
//! while the successor is unused, so there are never two live successors. A repeat after the
//! window, or once the successor has been used, is reuse: the whole family is revoked.

use sigil_verify::RefreshClaims;

use super::OAuthError;
use super::clients::RegisteredClient;
use super::issue::{TokenResponse, user_access_token};
use crate::crypto::hash_id;
use crate::domain::{GrantType, ScopeSet};
use crate::keys::material::compact_jws;
use crate::state::AppState;
use crate::store::refresh_tokens::{self as rt_store, RefreshRow, RotateRequest, Rotation};

/// What a new family starts from.
#[derive(Debug)]
pub struct NewFamily<'a> {
    /// The first token's id ([`crate::crypto::MasterKey::code_family`] of the code redeemed).
    pub id: String,
    /// Client.
    pub client_id: &'a str,
    /// User.
    pub user_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The session the family ends with (None with offline_access).
    pub session_hash: Option<String>,
}

fn sign(ctx: &AppState, id: &str, row: &RefreshRow) -> Result<String, OAuthError> {
    let now = ctx.now();
    let key = ctx
        .ring
        .signer(ctx.access_token_alg, now)
        .ok_or_else(|| OAuthError::Unavailable("no active signing key".into()))?;
    let claims = RefreshClaims {
        iss: ctx.issuer.clone(),
        sub: row.user_id.clone(),
        aud: crate::domain::refresh_audience(&ctx.issuer),
        exp: row.expires_at,
        iat: row.created_at,
        jti: id.to_owned(),
        client_id: row.client_id.clone(),
        scope: row.scope.clone(),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    compact_jws(&key.rt_header_b64, &payload, &key.signer, &ctx.rng)
        .map_err(|_| OAuthError::Internal("signing failed".into()))
}

/// Start a family after a login; returns the first refresh token and the family id.
pub async fn issue_new_family(
    ctx: &AppState,
    new: NewFamily<'_>,
) -> Result<(String, String), OAuthError> {
    let now = ctx.now();
    let id = new.id;
    let idle = crate::clock::secs(ctx.settings.tokens.refresh_token_idle);
    let absolute = crate::clock::secs(ctx.settings.tokens.refresh_token_absolute);
    let id_hash = hash_id(&id);
    let row = RefreshRow {
        family_id: id_hash.clone(),
        id_hash,
        client_id: new.client_id.to_owned(),
        user_id: new.user_id.to_owned(),
        scope: new.scope.to_owned(),
        auth_time: new.auth_time,
        session_hash: new.session_hash,
        created_at: now,
        expires_at: now + idle.min(absolute),
        family_expires_at: now + absolute,
        used_at: None,
        revoked: false,
    };
    let stored = row.clone();
    ctx.store.run(move |c| rt_store::insert(c, &stored)).await?;
    Ok((sign(ctx, &id, &row)?, row.family_id))
}

/// The `refresh_token` grant.
pub async fn grant(
    ctx: &AppState,
    reg: &RegisteredClient,
    token: Option<&str>,
    scope: Option<&str>,
    audiences: &[String],
) -> Result<TokenResponse, OAuthError> {
    let client = &reg.client;
    if !client.has_grant(GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient(
            "the client may not use refresh tokens",
        ));
    }
    let token = token.ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
    let claims = ctx.own_tokens.verify_refresh(ctx, token).map_err(|e| {
        tracing::info!(client_id = %client.id, reason = %e, "refresh token refused");
        OAuthError::InvalidGrant("the refresh token is invalid or expired")
    })?;
    if claims.client_id != client.id.as_str() {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client",
        ));
    }
    let id = claims.jti;
    let now = ctx.now();
    let window = crate::clock::secs(ctx.settings.tokens.refresh_reuse_window);
    let idle = crate::clock::secs(ctx.settings.tokens.refresh_token_idle);
    let successor_id = ctx.master.refresh_successor(&id);
    let successor_hash = hash_id(&successor_id);
    let parent_hash = hash_id(&id);
    let master = ctx.master.clone();
    let session_idle_cutoff = now - super::session::SESSION_IDLE;
    // A little before `Store::run` gives up, so the rollback happens while someone waits.
    let deadline =
        std::time::Instant::now() + crate::store::DEADLINE - std::time::Duration::from_millis(500);
    // The rotation and the successor's user on one pooled connection (one checkout; on
    // PostgreSQL usually one statement).
    let (rotation, user) = ctx
        .store
        .run(move |c| {
            rt_store::rotate_with_user(
                c,
                &master,
                &RotateRequest {
                    parent_hash: &parent_hash,
                    successor_hash: &successor_hash,
                    now,
                    window,
                    idle,
                    session_idle_cutoff,
                    deadline,
                },
            )
        })
        .await?;
    let successor = match rotation {
        Rotation::Successor(s) => s,
        Rotation::Invalid => {
            return Err(OAuthError::InvalidGrant(
                "the refresh token is invalid or expired",
            ));
        }
        Rotation::SessionEnded => {
            return Err(OAuthError::InvalidGrant("the login session has ended"));
        }
        Rotation::Reused => {
            ctx.metrics.refresh_token_reuse.inc();
            tracing::warn!(
                client_id = %client.id,
                user = %claims.sub,
                event = "refresh_token_reuse",
                "refresh token reused after rotation: the whole family is revoked"
            );
            return Err(OAuthError::InvalidGrant(
                "the refresh token was already used",
            ));
        }
    };
    if successor.revoked {
        return Err(OAuthError::InvalidGrant(
            "the refresh token is invalid or expired",
        ));
    }
    let user = user
        .filter(|u| !u.disabled)
        .ok_or(OAuthError::InvalidGrant("the user can no longer sign in"))?;
    let granted = ScopeSet::parse_param(&successor.scope)
        .map_err(|_| OAuthError::Internal("stored scope".into()))?;
    let scopes = super::policy::narrow_scope(scope, &granted, super::policy::WhenEmpty::All)
        .map_err(|r| match r {
            super::policy::ScopeRefusal::Malformed => {
                OAuthError::InvalidScope("the scope parameter is malformed")
            }
            super::policy::ScopeRefusal::Wider => {
                OAuthError::InvalidScope("a refresh can narrow the scope, never widen it")
            }
        })?;
    let link = super::issue::TokenLink::new(
        successor.session_hash.as_deref(),
        Some(&successor.family_id),
    );
    let mut response = user_access_token(ctx, client, &user, &scopes, audiences, link)?;
    response.refresh_token = Some(sign(ctx, &successor_id, &successor)?);
    Ok(response)
}
