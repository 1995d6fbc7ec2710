//! Grant logic on plain types: client authentication, the grants, and token issuance.
//!
//! **Invariant:** nothing in `oauth` sees an `HttpRequest`; `http` parses requests into the types
//! here and maps [`OAuthError`] back to HTTP.

pub mod anonymous;
pub mod authorization_code;
pub mod bearer;
pub mod client_auth;
pub mod client_credentials;
pub mod clients;
pub mod consent;
pub mod error;
pub mod issue;
pub mod login;
pub mod logout;
pub mod pending;
pub mod policy;
pub mod refresh;
pub mod request;
pub mod revocation;
pub mod session;

pub use error::OAuthError;
