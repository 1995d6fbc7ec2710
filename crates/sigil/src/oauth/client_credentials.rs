//! The `client_credentials` grant (RFC 6749 §4.4).

use super::OAuthError;
use super::clients::RegisteredClient;
use super::issue::{AccessTokenRequest, TokenResponse, access_token};
use crate::domain::{GrantType, ScopeSet};
use crate::state::AppState;

/// Parameters of the grant, parsed by `http`.
#[derive(Debug, Default)]
pub struct ClientCredentialsRequest {
    /// `scope`, if sent.
    pub scope: Option<String>,
    /// `resource` (RFC 8707, may repeat) and `audience` values.
    pub audiences: Vec<String>,
}

/// Issue a token to an authenticated client for itself.
pub fn grant(
    ctx: &AppState,
    reg: &RegisteredClient,
    req: ClientCredentialsRequest,
) -> Result<TokenResponse, OAuthError> {
    let client = &reg.client;
    if client.public || !client.has_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for the client_credentials grant",
        ));
    }
    let scopes = match req.scope.as_deref() {
        None => client.scopes.clone(),
        Some(raw) => {
            let asked = ScopeSet::parse_param(raw)
                .map_err(|_| OAuthError::InvalidScope("the scope parameter is malformed"))?;
            if asked.is_empty() {
                client.scopes.clone()
            } else if !asked.is_subset(&client.scopes) {
                return Err(OAuthError::InvalidScope(
                    "a requested scope is not registered for this client",
                ));
            } else {
                asked
            }
        }
    };
    let aud = if req.audiences.is_empty() {
        if client.audiences.is_empty() {
            vec![ctx.default_audience.clone()]
        } else {
            client
                .audiences
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect()
        }
    } else {
        for a in &req.audiences {
            if !client.audiences.iter().any(|r| r.as_str() == a) {
                return Err(OAuthError::InvalidTarget(
                    "a requested audience is not registered for this client",
                ));
            }
        }
        let mut v = req.audiences;
        v.sort();
        v.dedup();
        v
    };
    access_token(
        ctx,
        AccessTokenRequest {
            sub: client.id.as_str(),
            client_id: client.id.as_str(),
            aud,
            scope: scopes.to_param(),
            roles: client.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            alg: client.access_token_alg_or(ctx.access_token_alg),
        },
    )
}
