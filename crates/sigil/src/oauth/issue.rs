//! Building and signing access tokens (RFC 9068). Claims use `sigil_verify::Claims`, the same type
//! the verifier parses, so signer and verifier cannot drift.

use serde::Serialize;
use sigil_verify::{Audience, Claims};

use super::{Context, OAuthError};
use crate::crypto::random_b64;
use crate::keys::material::compact_jws;

/// What goes into one access token.
#[derive(Debug)]
pub struct AccessTokenRequest<'a> {
    /// Subject (the client id for client_credentials).
    pub sub: &'a str,
    /// Client the token is issued to.
    pub client_id: &'a str,
    /// Audiences.
    pub aud: Vec<String>,
    /// Space-delimited granted scope.
    pub scope: String,
    /// Roles claim.
    pub roles: Vec<String>,
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    /// Granted scope.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// Sign an access token with the key that signs `ctx.access_token_alg` now.
pub fn access_token(
    ctx: &Context,
    req: AccessTokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now();
    let ttl = crate::clock::secs(ctx.settings.tokens.access_token_ttl);
    let key = ctx.ring.signer(ctx.access_token_alg, now).ok_or_else(|| {
        OAuthError::Unavailable(format!(
            "no active {} signing key",
            ctx.access_token_alg.as_str()
        ))
    })?;
    let aud = if req.aud.len() == 1 {
        Audience::One(req.aud.into_iter().next().unwrap_or_default())
    } else {
        Audience::Many(req.aud)
    };
    let claims = Claims {
        iss: ctx.issuer.clone(),
        sub: req.sub.to_owned(),
        aud,
        exp: now + ttl,
        iat: now,
        nbf: None,
        jti: Some(random_b64(16)),
        client_id: Some(req.client_id.to_owned()),
        scope: if req.scope.is_empty() {
            None
        } else {
            Some(req.scope.clone())
        },
        roles: req.roles,
        tenant: None,
        extra: serde_json::Map::new(),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let max = ctx.settings.tokens.max_size;
    let size =
        key.at_header_b64.len() + 2 + b64_len(payload.len()) + b64_len(signature_len(&key.signer));
    if size > max {
        return Err(OAuthError::InvalidRequestDetail(too_large_reason(
            &claims, size, max,
        )));
    }
    let token = compact_jws(&key.at_header_b64, &payload, &key.signer, &ctx.rng)
        .map_err(|_| OAuthError::Internal("signing failed".into()))?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: req.scope,
    })
}

fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

fn signature_len(signer: &crate::keys::material::Signer) -> usize {
    use crate::keys::material::Signer;
    match signer {
        Signer::Es256(_) | Signer::EdDsa(_) => 64,
        Signer::Rs256(k) | Signer::Ps256(k) => k.public().modulus_len(),
    }
}

/// Name the claim that made a token too large; sizes only, never values.
fn too_large_reason(claims: &Claims, size: usize, max: usize) -> String {
    let len = |v: serde_json::Result<String>| v.map(|s| s.len()).unwrap_or(0);
    let parts = [
        ("scope", len(serde_json::to_string(&claims.scope))),
        ("aud", len(serde_json::to_string(&claims.aud))),
        ("roles", len(serde_json::to_string(&claims.roles))),
    ];
    let (name, bytes) = parts
        .iter()
        .max_by_key(|(_, n)| *n)
        .copied()
        .unwrap_or(("scope", 0));
    format!(
        "the access token would be {size} bytes, over the {max}-byte limit (tokens.max_size); the largest claim is `{name}` ({bytes} bytes): request fewer scopes or audiences, or register fewer roles"
    )
}
