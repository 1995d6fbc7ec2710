//! Validating an authorization request (OAuth 2.0 §4.1.1, OIDC Core §3.1.2.1): from the raw
//! parameters to an [`AuthorizationRequest`] of domain types, or an [`AuthorizeError`] that says
//! where the error may go.
//!
//! Errors before the client and its redirect URI are known to be good are shown on Sigil's own
//! error page (never redirected); later errors go back to the client's redirect URI with
//! `error`, `state` and `iss` (RFC 9207).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::clients::RegisteredClient;
use super::policy::{self, ScopeRefusal, SessionDemands, WhenEmpty};
use crate::domain::client::PkceMode;
use crate::domain::{ClientId, GrantType, RedirectUri, ScopeSet};
use crate::state::AppState;

/// Raw parameters (query string or form).
#[derive(Debug, Default)]
pub struct AuthorizeParams {
    /// `client_id`
    pub client_id: Option<String>,
    /// `redirect_uri`
    pub redirect_uri: Option<String>,
    /// `response_type`
    pub response_type: Option<String>,
    /// `scope`
    pub scope: Option<String>,
    /// `state`
    pub state: Option<String>,
    /// `nonce`
    pub nonce: Option<String>,
    /// `code_challenge`
    pub code_challenge: Option<String>,
    /// `code_challenge_method`
    pub code_challenge_method: Option<String>,
    /// `prompt`
    pub prompt: Option<String>,
    /// `max_age`
    pub max_age: Option<String>,
    /// `login_hint`
    pub login_hint: Option<String>,
    /// `id_token_hint` (a valid one restricts which session may answer)
    pub id_token_hint: Option<String>,
    /// `response_mode` (only `query` is supported)
    pub response_mode: Option<String>,
    /// `request` (a request object: not supported, OIDC Core §6)
    pub request: Option<String>,
    /// `request_uri` (not supported, OIDC Core §6)
    pub request_uri: Option<String>,
}

/// The `prompt` values `/authorize` accepts, as discovery advertises them (`select_account`: the
/// browser's one session is the account).
pub const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];

/// The longest `nonce` accepted, bytes.
pub const MAX_NONCE: usize = 512;
/// The longest `state` accepted, bytes.
pub const MAX_STATE: usize = 2048;
/// The longest `login_hint` kept (a longer one is ignored), bytes.
pub const MAX_LOGIN_HINT: usize = 50;

/// A validated authorization request (storable while the user signs in).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The registered client.
    pub client_id: ClientId,
    /// One of the client's registered redirect URIs, exactly.
    pub redirect_uri: RedirectUri,
    /// Requested scope (within the registration).
    pub scope: ScopeSet,
    /// Echoed back.
    pub state: Option<String>,
    /// Put in the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt=none`
    pub prompt_none: bool,
    /// `prompt=login`
    pub prompt_login: bool,
    /// `prompt=consent`
    pub prompt_consent: bool,
    /// The user named by a valid `id_token_hint`: only that user's session may answer.
    pub hint_sub: Option<String>,
    /// `max_age` seconds.
    pub max_age: Option<i64>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    /// What this request demands of an existing session ([`policy::session_satisfies`]).
    pub fn session_demands(&self) -> SessionDemands<'_> {
        SessionDemands {
            prompt_login: self.prompt_login,
            max_age: self.max_age,
            hint_sub: self.hint_sub.as_deref(),
        }
    }
}

/// Where an authorization error goes.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Sigil's error page (400), never a redirect: the redirect target is not trusted.
    #[error("{code}: {message}")]
    Page {
        /// Error code shown.
        code: &'static str,
        /// Fixed message.
        message: &'static str,
    },
    /// Back to the client.
    #[error("{error}: {description}")]
    Redirect {
        /// Registered redirect URI.
        redirect_uri: RedirectUri,
        /// OAuth error code.
        error: &'static str,
        /// Fixed description.
        description: &'static str,
        /// Echoed state.
        state: Option<String>,
    },
    /// Storage or cache trouble, or a bug.
    #[error(transparent)]
    Failed(#[from] super::OAuthError),
}

fn page(code: &'static str, message: &'static str) -> AuthorizeError {
    AuthorizeError::Page { code, message }
}

/// Validate a request. Returns the client too.
pub async fn validate(
    ctx: &AppState,
    p: AuthorizeParams,
) -> Result<(Arc<RegisteredClient>, AuthorizationRequest), AuthorizeError> {
    let client_id = p
        .client_id
        .as_deref()
        .and_then(|c| ClientId::parse(c).ok())
        .ok_or(page(
            "invalid_request",
            "The request does not name a client (client_id).",
        ))?;
    let reg = ctx
        .clients
        .get(&ctx.store, client_id.as_str())
        .await
        .map_err(super::OAuthError::from)?
        .ok_or(page(
            "invalid_client",
            "The application is not registered with Sigil.",
        ))?;
    let client = &reg.client;
    let asked_uri = p
        .redirect_uri
        .as_deref()
        .ok_or(page("invalid_request", "The request has no redirect_uri."))?;
    let redirect_uri = client
        .redirect_uris
        .iter()
        .find(|r| r.as_str() == asked_uri)
        .cloned()
        .ok_or(page(
            "invalid_request",
            "The redirect_uri is not registered for this application, so Sigil will not send you there.",
        ))?;
    let state = p.state.clone().filter(|s| !s.is_empty());
    let fail = |error: &'static str, description: &'static str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description,
        state: state.clone(),
    };
    if p.request.is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.has_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "the client may not use the authorization code flow",
        ));
    }
    let scope = policy::narrow_scope(p.scope.as_deref(), &client.scopes, WhenEmpty::Nothing)
        .map_err(|r| match r {
            ScopeRefusal::Malformed => fail("invalid_scope", "the scope parameter is malformed"),
            ScopeRefusal::Wider => fail(
                "invalid_scope",
                "a requested scope is not registered for this client",
            ),
        })?;
    let pkce_required = client.public || client.pkce == PkceMode::Required;
    let code_challenge = policy::pkce_challenge(
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
        pkce_required,
    )
    .map_err(|d| fail("invalid_request", d))?;
    let prompts: Vec<&str> = p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    if prompts.iter().any(|p| !PROMPT_VALUES.contains(p)) {
        return Err(fail("invalid_request", "unsupported prompt value"));
    }
    let max_age =
        match p.max_age.as_deref() {
            None | Some("") => None,
            Some(m) => Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                fail("invalid_request", "max_age must be a non-negative integer")
            })?),
        };
    if p.nonce.as_deref().is_some_and(|n| n.len() > MAX_NONCE)
        || state.as_deref().is_some_and(|s| s.len() > MAX_STATE)
    {
        return Err(fail("invalid_request", "nonce or state is too long"));
    }
    let hint_sub = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(hint) => match super::logout::verified_id_token_hint(ctx, hint) {
            Some((aud, sub)) if aud == client.id.as_str() => Some(sub),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "id_token_hint is not an ID token this issuer gave this client",
                ));
            }
        },
    };
    let request = AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        scope,
        state,
        nonce: p.nonce.filter(|n| !n.is_empty()),
        code_challenge,
        prompt_none: prompts.contains(&"none"),
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        hint_sub,
        max_age,
        login_hint: p.login_hint.filter(|h| h.len() <= MAX_LOGIN_HINT),
    };
    Ok((reg, request))
}
