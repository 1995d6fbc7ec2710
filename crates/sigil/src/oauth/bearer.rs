//! Checking Sigil's own access tokens (userinfo, later introspection) with `sigil-verify`, the
//! same verifier services embed. The verifier is rebuilt only when the published key set changes
//! (keyed by the JWKS ETag) and swapped without locks.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sigil_verify::{Claims, Verifier};

use super::Context;

/// A verifier for the JWKS with this ETag.
#[derive(Debug)]
pub struct OwnVerifier {
    etag: actix_web::web::Bytes,
    verifier: Verifier,
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
    /// Valid, but without the needed scope.
    #[error("insufficient_scope")]
    InsufficientScope,
    /// Keys could not be loaded.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl OwnTokens {
    fn verifier(&self, ctx: &Context) -> Result<Arc<OwnVerifier>, BearerError> {
        let snap = ctx.ring.load();
        if let Some(v) = self.0.load_full()
            && v.etag == snap.jwks.etag
        {
            return Ok(v);
        }
        let verifier = Verifier::builder(ctx.issuer.as_str(), ctx.issuer.as_str())
            .clock(ctx.clock.clone())
            .jwks(snap.published_set(ctx.now()))
            .build()
            .map_err(|e| BearerError::Unavailable(e.to_string()))?;
        let fresh = Arc::new(OwnVerifier {
            etag: snap.jwks.etag.clone(),
            verifier,
        });
        self.0.store(Some(fresh.clone()));
        Ok(fresh)
    }

    /// Verify an access token Sigil issued for itself (`aud` contains the issuer).
    pub fn verify(&self, ctx: &Context, token: &str) -> Result<Claims, BearerError> {
        let v = self.verifier(ctx)?;
        v.verifier
            .verify(token)
            .map_err(|e| BearerError::InvalidToken(e.to_string()))
    }
}
