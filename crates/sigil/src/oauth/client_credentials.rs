//! The `client_credentials` grant (RFC 6749 §4.4).

use super::OAuthError;
use super::clients::RegisteredClient;
use super::issue::{AccessTokenRequest, TokenResponse, access_token};
use super::policy::{self, ScopeRefusal, WhenEmpty};
use crate::domain::GrantType;
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
    let scopes = policy::narrow_scope(req.scope.as_deref(), &client.scopes, WhenEmpty::All)
        .map_err(|r| match r {
            ScopeRefusal::Malformed => OAuthError::InvalidScope("the scope parameter is malformed"),
            ScopeRefusal::Wider => {
                OAuthError::InvalidScope("a requested scope is not registered for this client")
            }
        })?;
    let registered: Vec<&str> = client.audiences.iter().map(|a| a.as_str()).collect();
    let aud = policy::narrow_audience(
        policy::client_audiences(&registered, &ctx.default_audience),
        &req.audiences,
    )?;
    access_token(
        ctx,
        AccessTokenRequest {
            sub: client.id.as_str(),
            client_id: client.id.as_str(),
            aud,
            scope: scopes.to_param(),
            roles: client.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            alg: client.access_token_alg_or(ctx.access_token_alg),
            link: Default::default(),
        },
    )
}
