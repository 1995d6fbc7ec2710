//! Errors of the OAuth endpoints, as RFC 6749 §5.2 names them. `http::ApiError` maps them to
//! status codes and JSON; descriptions are fixed text chosen here and never echo request input.

/// An OAuth error response.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// 400 `invalid_request`.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// 400 `invalid_request` with a description built from fixed parts (no request input).
    #[error("invalid_request: {0}")]
    InvalidRequestDetail(String),
    /// 401 `invalid_client`, always with `WWW-Authenticate: Basic` (RFC 6749 §5.2 requires it
    /// when the client used Basic; sending it on every failure keeps them all alike).
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    /// 400 `invalid_grant`.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400 `unauthorized_client`.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// 400 `unsupported_grant_type`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// 400 `invalid_scope`.
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// 400 `invalid_target` (RFC 8707).
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// 503 `temporarily_unavailable`; the cause is logged, not shown.
    #[error("temporarily_unavailable: {0}")]
    Unavailable(String),
    /// 500 `server_error`; the cause is logged, not shown.
    #[error("server_error: {0}")]
    Internal(String),
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::InvalidRequestDetail(_) => {
                "invalid_request"
            }
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::Unavailable(_) => "temporarily_unavailable",
            OAuthError::Internal(_) => "server_error",
        }
    }

    /// The `error_description` shown to the client.
    pub fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d) => (*d).to_owned(),
            OAuthError::InvalidRequestDetail(d) => d.clone(),
            OAuthError::UnsupportedGrantType => "grant_type is not supported".to_owned(),
            OAuthError::Unavailable(_) => {
                "the service is temporarily unavailable; retry later".to_owned()
            }
            OAuthError::Internal(_) => "internal error".to_owned(),
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    /// Only an unreachable or overloaded database is `temporarily_unavailable` (503); a query the
    /// database refused or a row that cannot be read is a `server_error` (500), so a bug does not
    /// pass for an outage. Either way the whole cause chain is kept for the log.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::{StoreError, error_chain};
        match e {
            StoreError::Unavailable(_) => OAuthError::Unavailable(error_chain(&e)),
            _ => OAuthError::Internal(error_chain(&e)),
        }
    }
}

impl From<crate::cache::CacheError> for OAuthError {
    /// A full or unreachable cache is `temporarily_unavailable` (503); one that refused what
    /// Sigil sent is a `server_error` (500).
    fn from(e: crate::cache::CacheError) -> Self {
        use crate::cache::CacheError;
        match e {
            CacheError::Unavailable(_) => OAuthError::Unavailable(e.to_string()),
            CacheError::Failed(_) => OAuthError::Internal(e.to_string()),
        }
    }
}

impl From<crate::mfa::MfaError> for OAuthError {
    /// The database's and the cache's errors as theirs; a secret that does not open is a
    /// `server_error` (500).
    fn from(e: crate::mfa::MfaError) -> Self {
        use crate::mfa::MfaError;
        match e {
            MfaError::Store(e) => e.into(),
            MfaError::Cache(e) => e.into(),
            MfaError::Sealed(_) => OAuthError::Internal(e.to_string()),
        }
    }
}
