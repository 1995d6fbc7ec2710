//! The authorization endpoint's logic (OAuth 2.0 §4.1, OIDC Core §3.1.2): validating a request,
//! the pending login, sessions, and issuing codes.
//!
//! Errors before the client and its redirect URI are known to be good are shown on Sigil's own
//! error page (never redirected); later errors go back to the client's redirect URI with
//! `error`, `state` and `iss` (RFC 9207).

use std::sync::Arc;

use ring::digest;
use serde::{Deserialize, Serialize};

use super::OAuthError;
use super::clients::RegisteredClient;
use crate::crypto::random_b64;
use crate::domain::client::PkceMode;
use crate::domain::user::User;
use crate::domain::{GrantType, ScopeSet};
use crate::keys::material::b64;
use crate::state::AppState;
use crate::store::sessions::{self as session_store, SessionRow};
use crate::store::users as user_store;

/// Lifetime of an authorization code.
pub const CODE_TTL: i64 = 60;
/// How long a login page stays usable.
pub const PENDING_TTL: i64 = 600;
/// Idle session timeout.
pub const SESSION_IDLE: i64 = 8 * 3600;
/// Absolute session timeout.
pub const SESSION_ABSOLUTE: i64 = 24 * 3600;

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
    /// `id_token_hint` (accepted; the session decides who is logged in)
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

/// A validated authorization request (storable while the user logs in).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// Client.
    pub client_id: String,
    /// Exactly as registered.
    pub redirect_uri: String,
    /// Granted scope (within the registration).
    pub scope: String,
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
    #[serde(default)]
    pub prompt_consent: bool,
    /// The user named by a valid `id_token_hint`: only that user's session may answer.
    #[serde(default)]
    pub hint_sub: Option<String>,
    /// `max_age` seconds.
    pub max_age: Option<i64>,
    /// Pre-fills the username.
    pub login_hint: Option<String>,
}

/// Where an authorization error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Sigil's error page (400), never a redirect: the redirect target is not trusted.
    Page {
        /// Error code shown.
        code: &'static str,
        /// Fixed message.
        message: &'static str,
    },
    /// Back to the client.
    Redirect {
        /// Registered redirect URI.
        redirect_uri: String,
        /// OAuth error code.
        error: &'static str,
        /// Fixed description.
        description: &'static str,
        /// Echoed state.
        state: Option<String>,
    },
    /// Storage or cache trouble.
    Unavailable(String),
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Unavailable(e.to_string())
    }
}

impl From<crate::cache::CacheError> for AuthorizeError {
    fn from(e: crate::cache::CacheError) -> Self {
        AuthorizeError::Unavailable(e.to_string())
    }
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
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or(page(
            "invalid_request",
            "The request does not name a client (client_id).",
        ))?;
    let reg = ctx.clients.get(&ctx.store, client_id).await?.ok_or(page(
        "invalid_client",
        "The application is not registered with Sigil.",
    ))?;
    let client = &reg.client;
    let redirect_uri = p
        .redirect_uri
        .as_deref()
        .ok_or(page("invalid_request", "The request has no redirect_uri."))?;
    if !client
        .redirect_uris
        .iter()
        .any(|r| r.as_str() == redirect_uri)
    {
        return Err(page(
            "invalid_request",
            "The redirect_uri is not registered for this application, so Sigil will not send you there.",
        ));
    }
    let state = p.state.clone().filter(|s| !s.is_empty());
    let fail = |error: &'static str, description: &'static str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
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
    let requested = ScopeSet::parse_param(p.scope.as_deref().unwrap_or(""))
        .map_err(|_| fail("invalid_scope", "the scope parameter is malformed"))?;
    let allowed = client.scopes.clone();
    if !requested.is_subset(&allowed) {
        return Err(fail(
            "invalid_scope",
            "a requested scope is not registered for this client",
        ));
    }
    let pkce_required = client.public || client.pkce == PkceMode::Required;
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if !pkce_required => None,
        (None, _) => {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        (Some(_), Some("plain")) | (Some(_), None) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(c), Some("S256")) => {
            if c.len() != 43
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 value",
                ));
            }
            Some(c.to_owned())
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    };
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
    if p.nonce.as_deref().is_some_and(|n| n.len() > 512)
        || state.as_deref().is_some_and(|s| s.len() > 2048)
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
        client_id: client.id.as_str().to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: requested.to_param(),
        state,
        nonce: p.nonce.filter(|n| !n.is_empty()),
        code_challenge,
        prompt_none: prompts.contains(&"none"),
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        hint_sub,
        max_age,
        login_hint: p.login_hint.filter(|h| h.len() <= 50),
    };
    Ok((reg, request))
}

/// A login page in progress: the request, its anti-CSRF token, and a hash of the browser-binding
/// cookie value.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// Anti-CSRF token echoed by the form.
    pub csrf: String,
    /// SHA-256 of the binding cookie value.
    pub binding: String,
}

/// Hash of a secret value as stored (sessions, bindings, codes).
pub fn hash_id(value: &str) -> String {
    b64(digest::digest(&digest::SHA256, value.as_bytes()).as_ref())
}

/// Store a pending login; returns (pending id, csrf token, binding cookie value).
pub async fn start_login(
    ctx: &AppState,
    request: AuthorizationRequest,
) -> Result<(String, String, String), OAuthError> {
    let id = random_b64(24);
    let csrf = random_b64(24);
    let binding = random_b64(24);
    let pending = Pending {
        request,
        csrf: csrf.clone(),
        binding: hash_id(&binding),
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let now = ctx.now();
    ctx.cache
        .put(&format!("pending:{id}"), bytes, now + PENDING_TTL, now)
        .await?;
    Ok((id, csrf, binding))
}

/// Load a pending login.
pub async fn pending(ctx: &AppState, id: &str) -> Result<Option<Pending>, OAuthError> {
    if id.len() > 64 {
        return Ok(None);
    }
    let now = ctx.now();
    Ok(ctx
        .cache
        .get(&format!("pending:{id}"), now)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Forget a pending login (after success).
pub async fn finish_login(ctx: &AppState, id: &str) -> Result<(), OAuthError> {
    let now = ctx.now();
    ctx.cache.take(&format!("pending:{id}"), now).await?;
    Ok(())
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// Stored row.
    pub row: SessionRow,
    /// The (enabled) user.
    pub user: User,
}

/// Resolve a session cookie value to a live session of an enabled user.
pub async fn session(ctx: &AppState, cookie: &str) -> Result<Option<LiveSession>, OAuthError> {
    if cookie.is_empty() || cookie.len() > 64 {
        return Ok(None);
    }
    let id_hash = hash_id(cookie);
    let now = ctx.now();
    let found = ctx
        .store
        .run(move |c| {
            let Some(row) = session_store::find_live(c, &id_hash, now, now - SESSION_IDLE)? else {
                return Ok(None);
            };
            let user = user_store::find_by_id(c, &row.user_id)?;
            Ok::<_, crate::store::StoreError>(user.map(|u| (row, u)))
        })
        .await?;
    Ok(found
        .filter(|(_, u)| !u.disabled)
        .map(|(row, user)| LiveSession { row, user }))
}

/// Start a new session for `user` (a new id every login: no fixation); ends `previous` if given.
/// Returns the cookie value.
pub async fn create_session(
    ctx: &AppState,
    user: &User,
    previous: Option<String>,
) -> Result<(String, SessionRow), OAuthError> {
    let id = random_b64(32);
    let now = ctx.now();
    let row = SessionRow {
        id_hash: hash_id(&id),
        user_id: user.id.clone(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now + SESSION_ABSOLUTE,
    };
    let stored = row.clone();
    ctx.store
        .run(move |c| {
            if let Some(prev) = previous {
                session_store::delete(c, &hash_id(&prev))?;
            }
            session_store::insert(c, &stored)
        })
        .await?;
    Ok((id, row))
}

/// What a code stands for until it is redeemed.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Client it was issued to.
    pub client_id: String,
    /// Redirect URI it was issued for.
    pub redirect_uri: String,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Nonce for the ID token.
    pub nonce: Option<String>,
    /// The user.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The login session (refresh tokens without offline_access end with it).
    pub session_hash: String,
}

/// Issue a code and build the success redirect.
pub async fn issue_code(
    ctx: &AppState,
    req: &AuthorizationRequest,
    user: &User,
    session: &SessionRow,
) -> Result<String, OAuthError> {
    let auth_time = session.auth_time;
    let code = random_b64(32);
    let grant = CodeGrant {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        user_id: user.id.clone(),
        scope: req.scope.clone(),
        auth_time,
        session_hash: session.id_hash.clone(),
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
    Ok(with_query(&req.redirect_uri, &params))
}

/// Whether an existing session may be used silently for `req`.
pub fn session_satisfies(req: &AuthorizationRequest, session: &SessionRow, now: i64) -> bool {
    !req.prompt_login
        && req.max_age.is_none_or(|max| now - session.auth_time <= max)
        && req
            .hint_sub
            .as_deref()
            .is_none_or(|sub| sub == session.user_id)
}

/// Everything but RFC 3986 unreserved characters is percent-encoded in query values.
const UNRESERVED_KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Append query parameters to a URI that may already have a query.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        sep = '&';
        out.push_str(k);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(v, UNRESERVED_KEPT));
    }
    out
}

/// A consent screen in progress: the request, who is signed in, and the same anti-CSRF and
/// browser binding as a login page.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingConsent {
    /// The validated request.
    pub request: AuthorizationRequest,
    /// Anti-CSRF token.
    pub csrf: String,
    /// SHA-256 of the binding cookie value.
    pub binding: String,
    /// The signed-in user.
    pub user_id: String,
    /// Their session.
    pub session_hash: String,
}

/// Whether `user_id` must be asked before `client` gets `req.scope`: never for first-party
/// clients; otherwise when asked to (`prompt=consent`) or when a requested scope was never
/// granted.
pub async fn needs_consent(
    ctx: &AppState,
    client: &crate::domain::client::Client,
    req: &AuthorizationRequest,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if client.first_party {
        return Ok(false);
    }
    if req.prompt_consent {
        return Ok(true);
    }
    let (uid, cid) = (user_id.to_owned(), client.id.as_str().to_owned());
    let granted = ctx
        .store
        .run(move |c| crate::store::consents::granted(c, &uid, &cid))
        .await?;
    let Some(granted) = granted else {
        return Ok(true);
    };
    let granted = ScopeSet::parse_param(&granted).unwrap_or_default();
    let asked = ScopeSet::parse_param(&req.scope).unwrap_or_default();
    Ok(!asked.is_subset(&granted))
}

/// Store a pending consent; returns (id, csrf, binding cookie value).
pub async fn start_consent(
    ctx: &AppState,
    request: AuthorizationRequest,
    user_id: &str,
    session_hash: &str,
) -> Result<(String, String, String), OAuthError> {
    let id = random_b64(24);
    let csrf = random_b64(24);
    let binding = random_b64(24);
    let pending = PendingConsent {
        request,
        csrf: csrf.clone(),
        binding: hash_id(&binding),
        user_id: user_id.to_owned(),
        session_hash: session_hash.to_owned(),
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let now = ctx.now();
    ctx.cache
        .put(&format!("consent:{id}"), bytes, now + PENDING_TTL, now)
        .await?;
    Ok((id, csrf, binding))
}

/// Load (or with `take`, consume) a pending consent.
pub async fn pending_consent(
    ctx: &AppState,
    id: &str,
    take: bool,
) -> Result<Option<PendingConsent>, OAuthError> {
    if id.len() > 64 {
        return Ok(None);
    }
    let now = ctx.now();
    let key = format!("consent:{id}");
    let bytes = if take {
        ctx.cache.take(&key, now).await?
    } else {
        ctx.cache.get(&key, now).await?
    };
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Record the user's grant (the union with what they granted before).
pub async fn record_consent(
    ctx: &AppState,
    user_id: &str,
    client_id: &str,
    scope: &str,
) -> Result<(), OAuthError> {
    let (uid, cid, asked) = (user_id.to_owned(), client_id.to_owned(), scope.to_owned());
    let now = ctx.now();
    ctx.store
        .run(move |c| {
            let before = crate::store::consents::granted(c, &uid, &cid)?.unwrap_or_default();
            let union = ScopeSet::from_scopes(
                ScopeSet::parse_param(&before)
                    .unwrap_or_default()
                    .iter()
                    .chain(ScopeSet::parse_param(&asked).unwrap_or_default().iter())
                    .cloned(),
            );
            crate::store::consents::grant(c, &uid, &cid, &union.to_param(), now)
        })
        .await?;
    Ok(())
}
