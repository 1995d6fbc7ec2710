//! Checking Sigil's own tokens (userinfo, the refresh grant, introspection and revocation) with
//! `sigil-verify`, the same verifier services embed, and whether their user still stands behind
//! them ([`user_may_hold`]). The verifier is rebuilt only when the published key set changes
//! (keyed by the JWKS ETag) and swapped without locks.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sigil_verify::{Claims, RefreshClaims, Verifier};

use crate::state::AppState;

/// A verifier for the JWKS with this ETag.
#[derive(Debug)]
pub struct OwnVerifier {
    etag: actix_web::web::Bytes,
    access: Verifier,
    refresh: Verifier,
}

/// Which kind of Sigil token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `typ: at+jwt`
    Access,
    /// `typ: refresh+jwt`
    Refresh,
}

/// The cache of the current verifier.
#[derive(Debug, Default)]
pub struct OwnTokens(ArcSwapOption<OwnVerifier>);

/// Why a bearer token was refused (RFC 6750).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// Not valid (expired, forged, not ours, revoked, user gone).
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// Keys could not be loaded.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl OwnTokens {
    fn verifier(&self, ctx: &AppState) -> Result<Arc<OwnVerifier>, BearerError> {
        let snap = ctx.ring.load();
        if let Some(v) = self.0.load_full()
            && v.etag == snap.jwks.etag
        {
            return Ok(v);
        }
        let set = snap.published_set(ctx.now());
        let build = |typ: &str, audience: &str| {
            Verifier::builder(ctx.issuer.as_str(), audience)
                .typ(Some(typ))
                .clock(ctx.clock.clone())
                .jwks(set.clone())
                .build()
                .map_err(|e| BearerError::Unavailable(e.to_string()))
        };
        let fresh = Arc::new(OwnVerifier {
            etag: snap.jwks.etag.clone(),
            access: build("at+jwt", ctx.issuer.as_str())?,
            refresh: build("refresh+jwt", &crate::domain::refresh_audience(&ctx.issuer))?,
        });
        self.0.store(Some(fresh.clone()));
        Ok(fresh)
    }

    /// Verify an access token Sigil issued for itself (`aud` contains the issuer).
    pub fn verify(&self, ctx: &AppState, token: &str) -> Result<Claims, BearerError> {
        self.verify_kind(ctx, token, Kind::Access)
    }

    /// Verify a Sigil token of the given kind (an access token's `aud` contains the issuer; a
    /// refresh token's is [`crate::domain::refresh_audience`]).
    pub fn verify_kind(
        &self,
        ctx: &AppState,
        token: &str,
        kind: Kind,
    ) -> Result<Claims, BearerError> {
        let v = self.verifier(ctx)?;
        let verifier = match kind {
            Kind::Access => &v.access,
            Kind::Refresh => &v.refresh,
        };
        verifier
            .verify(token)
            .map_err(|e| BearerError::InvalidToken(e.to_string()))
    }

    /// Verify a refresh token Sigil issued, read as `sigil_verify::RefreshClaims` (the type it was
    /// written with).
    pub fn verify_refresh(
        &self,
        ctx: &AppState,
        token: &str,
    ) -> Result<RefreshClaims, BearerError> {
        let claims = self.verify_kind(ctx, token, Kind::Refresh)?;
        RefreshClaims::try_from(claims).map_err(|e| BearerError::InvalidToken(e.to_string()))
    }
}

impl OwnTokens {
    /// Check header and signature only (any `aud`), returning the claims; the caller checks
    /// what else it needs. For introspection and revocation, where the token's audience is
    /// some resource server, not Sigil.
    pub fn signed_claims(&self, ctx: &AppState, token: &str, kind: Kind) -> Option<Claims> {
        let v = self.verifier(ctx).ok()?;
        let verifier = match kind {
            Kind::Access => &v.access,
            Kind::Refresh => &v.refresh,
        };
        let payload = verifier.verify_signature(token).ok()?;
        let claims: Claims = serde_json::from_slice(&payload).ok()?;
        (claims.iss == ctx.issuer).then_some(claims)
    }
}

/// Cache key of a revoked access token's id.
pub fn revoked_key(jti: &str) -> String {
    format!("revoked_at:{jti}")
}

/// Whether an access token id was revoked (fails closed: an unreachable cache counts as
/// revoked).
pub async fn is_revoked(ctx: &AppState, claims: &Claims) -> bool {
    match &claims.jti {
        Some(jti) => !matches!(ctx.cache.get(&revoked_key(jti), ctx.now()).await, Ok(None)),
        None => false,
    }
}

/// Whether a user may still hold `iat`'s token: enabled, and the token not issued before the last
/// password change (a reset ends everything issued before it).
pub fn user_may_hold(user: &crate::domain::user::User, iat: i64) -> bool {
    !user.disabled && iat >= user.password_changed_at
}

/// Whether the subject of a Sigil token still stands behind it: for a user's token, the user
/// exists and [`user_may_hold`] it; a client's own token (`sub` = `client_id`) has no user.
pub async fn subject_is_current(
    ctx: &AppState,
    claims: &Claims,
) -> Result<bool, crate::store::StoreError> {
    if claims.client_id.as_deref() == Some(claims.sub.as_str()) {
        return Ok(true);
    }
    let sub = claims.sub.clone();
    let user = ctx
        .store
        .run(move |c| crate::store::users::find_by_id(c, &sub))
        .await?;
    Ok(user.is_some_and(|u| user_may_hold(&u, claims.iat)))
}
