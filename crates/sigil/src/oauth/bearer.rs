//! Checking Sigil's own tokens (userinfo, the refresh grant, introspection and revocation) with
//! `sigil-verify`, the same verifier services embed, and whether their user still stands behind
//! them ([`user_may_hold`]). Access tokens verify against the published keys, as any service
//! verifies them; refresh tokens, which only Sigil reads, against every key in the ring (a
//! superseded key leaves the JWKS once its access tokens expired, but stays in the ring while
//! its refresh tokens may be valid). The verifiers are rebuilt only when either set changes
//! (keyed by the JWKS ETag and the ring's tag) and swapped without locks.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sigil_verify::{Claims, RefreshClaims, Verifier};

use crate::state::AppState;

/// Verifiers for the JWKS with this ETag (access tokens) and the ring with this tag (refresh
/// tokens).
#[derive(Debug)]
pub struct OwnVerifier {
    etag: actix_web::web::Bytes,
    kept: [u8; 16],
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
            && v.kept == snap.kept_tag()
        {
            return Ok(v);
        }
        let now = ctx.now();
        let build = |typ: &str, audience: &str, set| {
            Verifier::builder(ctx.issuer.as_str(), audience)
                .typ(Some(typ))
                .clock(ctx.clock.clone())
                .jwks(set)
                .build()
                .map_err(|e| BearerError::Unavailable(e.to_string()))
        };
        let fresh = Arc::new(OwnVerifier {
            etag: snap.jwks.etag.clone(),
            kept: snap.kept_tag(),
            access: build("at+jwt", ctx.issuer.as_str(), snap.published_set(now))?,
            refresh: build(
                "refresh+jwt",
                &crate::domain::refresh_audience(&ctx.issuer),
                snap.kept_set(now),
            )?,
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

/// The revocations an access token is checked against: its own `jti`, the login session it was
/// issued under (`sid`) and the refresh-token family that produced it (`fid`).
pub fn revocation_ids(claims: &Claims) -> Vec<String> {
    use crate::store::revocations::{family_id, session_id, token_id};
    let mut ids = Vec::with_capacity(3);
    if let Some(jti) = &claims.jti {
        ids.push(token_id(jti));
    }
    if let Some(sid) = claims.sid() {
        ids.push(session_id(sid));
    }
    if let Some(fid) = claims.fid() {
        ids.push(family_id(fid));
    }
    ids
}

/// Whether an access token was revoked, or its session or family ended. Asks the database, so
/// every replica answers alike and a revocation survives restarts; a database it cannot reach
/// is an error (the caller refuses with 503), never "not revoked".
pub async fn is_revoked(ctx: &AppState, claims: &Claims) -> Result<bool, super::OAuthError> {
    let ids = revocation_ids(claims);
    if ids.is_empty() {
        return Ok(false);
    }
    let now = ctx.now();
    Ok(ctx
        .store
        .run(move |c| crate::store::revocations::any(c, &ids, now))
        .await?)
}

/// Whether a user may still hold `iat`'s token: enabled, and the token not issued before the last
/// password change (a reset ends everything issued before it).
pub fn user_may_hold(user: &crate::domain::user::User, iat: i64) -> bool {
    !user.disabled && iat >= user.password_changed_at
}

/// The roles the subject of a Sigil token holds now, or `None` when it no longer stands behind
/// the token: for a user's token, the user exists and [`user_may_hold`] it; for a client's own
/// token (`sub` = `client_id`), the client is still registered.
pub async fn current_roles(
    ctx: &AppState,
    claims: &Claims,
) -> Result<Option<Vec<String>>, crate::store::StoreError> {
    let names = |roles: &[crate::domain::Name]| {
        roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    if claims.client_id.as_deref() == Some(claims.sub.as_str()) {
        let reg = ctx.clients.get(&ctx.store, &claims.sub).await?;
        return Ok(reg.map(|r| names(&r.client.roles)));
    }
    let sub = claims.sub.clone();
    let user = ctx
        .store
        .run(move |c| crate::store::users::find_by_id(c, &sub))
        .await?;
    Ok(user
        .filter(|u| user_may_hold(u, claims.iat))
        .map(|u| names(&u.roles)))
}
