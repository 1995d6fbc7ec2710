//! Client authentication at the token endpoint: `client_secret_basic`, `client_secret_post` and
//! `private_key_jwt` (RFC 7523). Every failure is the same `invalid_client` whatever the cause, so
//! a caller learns nothing about which client ids exist.

use std::sync::Arc;

use super::OAuthError;
use super::clients::RegisteredClient;
use crate::domain::ClientId;
use crate::state::AppState;

/// `client_assertion_type` for JWT assertions.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime (its `jti` is remembered that long).
const MAX_ASSERTION_LIFETIME: i64 = 3600;

/// How the client presented itself, as parsed by `http` (client ids with [`ClientId::parse`]).
#[derive(Debug)]
pub enum Credentials {
    /// HTTP Basic (`client_secret_basic`).
    Basic {
        /// Decoded client id.
        id: ClientId,
        /// Decoded secret.
        secret: String,
    },
    /// Form fields (`client_secret_post`).
    Post {
        /// `client_id`.
        id: ClientId,
        /// `client_secret`.
        secret: String,
    },
    /// A signed JWT (`private_key_jwt`).
    Assertion {
        /// `client_assertion`.
        assertion: String,
        /// `client_id`, if also sent.
        id: Option<ClientId>,
    },
    /// Only a `client_id` (public clients).
    IdOnly(ClientId),
    /// Nothing.
    None,
}

fn invalid() -> OAuthError {
    OAuthError::InvalidClient("client authentication failed")
}

/// Authenticate the client. Returns the registration on success.
pub async fn authenticate(
    ctx: &AppState,
    creds: Credentials,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    match creds {
        Credentials::Basic { id, secret } | Credentials::Post { id, secret } => {
            by_secret(ctx, &id, &secret).await
        }
        Credentials::Assertion { assertion, id } => {
            by_assertion(ctx, &assertion, id.as_ref()).await
        }
        // Public clients authenticate by id alone (PKCE protects their codes).
        Credentials::IdOnly(id) => {
            let reg = ctx
                .clients
                .get(&ctx.store, id.as_str())
                .await?
                .ok_or_else(invalid)?;
            if reg.client.public {
                Ok(reg)
            } else {
                Err(invalid())
            }
        }
        Credentials::None => Err(invalid()),
    }
}

async fn by_secret(
    ctx: &AppState,
    id: &ClientId,
    secret: &str,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    if secret.is_empty() || secret.len() > 512 {
        return Err(invalid());
    }
    let found = ctx.clients.get(&ctx.store, id.as_str()).await?;
    let now = ctx.now();
    let Some(reg) = found else {
        // Same work as a known client, so timing does not reveal which ids exist.
        let _ = ctx.master.verify_secret(secret, &[0u8; 32]);
        return Err(invalid());
    };
    let c = &reg.client;
    let current_ok = c
        .secret_hash
        .as_deref()
        .is_some_and(|h| ctx.master.verify_secret(secret, h));
    let previous_ok = !current_ok
        && c.previous_secret_expires_at.is_some_and(|t| now < t)
        && c.previous_secret_hash
            .as_deref()
            .is_some_and(|h| ctx.master.verify_secret(secret, h));
    if c.public || !(current_ok || previous_ok) {
        return Err(invalid());
    }
    Ok(reg)
}

/// Read `sub` from an assertion *before* verifying it, only to know whose keys to verify with.
fn peek_subject(assertion: &str) -> Option<String> {
    sigil_verify::dangerous::insecure_decode(assertion)
        .ok()?
        .claim_str("sub")
        .map(str::to_owned)
}

async fn by_assertion(
    ctx: &AppState,
    assertion: &str,
    id: Option<&ClientId>,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    let sub = peek_subject(assertion).ok_or_else(invalid)?;
    if id.is_some_and(|id| id.as_str() != sub) {
        return Err(invalid());
    }
    let reg = ctx
        .clients
        .get(&ctx.store, &sub)
        .await?
        .ok_or_else(invalid)?;
    let verifier = reg.assertion_verifier.as_ref().ok_or_else(invalid)?;
    let claims = verifier.verify(assertion).map_err(|e| {
        tracing::info!(client_id = %sub, reason = %e, "client assertion rejected");
        invalid()
    })?;
    // iss == client_id is checked by the verifier; RFC 7523 §3 also needs sub == client_id.
    if claims.sub != sub {
        return Err(invalid());
    }
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(invalid)?;
    let now = ctx.now();
    if claims.exp - now > MAX_ASSERTION_LIFETIME {
        return Err(invalid());
    }
    let leeway = crate::clock::secs(ctx.settings.keys.clock_skew);
    let key = format!("assertion:{sub}:{jti}");
    if !ctx
        .cache
        .insert_if_absent(&key, claims.exp + leeway, now)
        .await?
    {
        tracing::warn!(client_id = %sub, "replayed client assertion refused");
        return Err(invalid());
    }
    Ok(reg)
}
