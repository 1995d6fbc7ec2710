//! A registered OAuth client, as the rest of Sigil sees it (parsed from its row).

use serde::Serialize;
use sigil_verify::{Algorithm, JwkSet};

use std::collections::BTreeSet;

use super::{ClientId, GrantType, Name, RedirectUri, ScopeSet, WebOrigin};

/// Whether PKCE is required for this client's authorization-code flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PkceMode {
    /// Always (the default; public clients cannot opt out).
    Required,
    /// Confidential clients only, documented as a downgrade.
    Optional,
}

impl PkceMode {
    /// Parse `required` / `optional`.
    pub fn parse(s: &str) -> Option<PkceMode> {
        match s {
            "required" => Some(PkceMode::Required),
            "optional" => Some(PkceMode::Optional),
            _ => None,
        }
    }

    /// Wire/storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMode::Required => "required",
            PkceMode::Optional => "optional",
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Issued id.
    pub id: ClientId,
    /// Display name.
    pub name: String,
    /// Public clients have no secret and cannot use `client_credentials`.
    pub public: bool,
    /// Keyed hash of the current secret.
    pub secret_hash: Option<Vec<u8>>,
    /// Keyed hash of the previous secret, valid until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// End of the rotation overlap (Unix seconds).
    pub previous_secret_expires_at: Option<i64>,
    /// Grants the client may use.
    pub grants: Vec<GrantType>,
    /// Scopes the client may request.
    pub scopes: ScopeSet,
    /// Audiences the client may request tokens for.
    pub audiences: Vec<Name>,
    /// Roles carried in the client's own tokens (`roles` claim).
    pub roles: Vec<Name>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<RedirectUri>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Web origins registered besides those of the redirect URIs (CORS).
    pub web_origins: Vec<WebOrigin>,
    /// PKCE requirement.
    pub pkce: PkceMode,
    /// Public keys for `private_key_jwt`.
    pub jwks: Option<JwkSet>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// First-party clients skip the consent screen.
    pub first_party: bool,
    /// The algorithm of this client's ID tokens (RS256 unless registered otherwise).
    pub id_token_alg: Algorithm,
    /// The algorithm of this client's access tokens; `None`: the server's
    /// `tokens.access_token_alg`.
    pub access_token_alg: Option<Algorithm>,
}

impl Client {
    /// Whether the client registered `grant`.
    pub fn has_grant(&self, grant: GrantType) -> bool {
        self.grants.contains(&grant)
    }

    /// A view safe to print (`clients show`): no secret hashes.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.id.as_str(),
            "name": self.name,
            "public": self.public,
            "grants": self.grants,
            "scopes": self.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "audiences": self.audiences,
            "roles": self.roles,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "web_origins": self.web_origins,
            "pkce": self.pkce,
            "first_party": self.first_party,
            "id_token_signed_response_alg": self.id_token_alg.as_str(),
            "access_token_alg": self.access_token_alg.map(Algorithm::as_str),
            "token_endpoint_auth_method": self.auth_method(),
            "jwks": self.jwks,
            "secret_overlap_until": self.previous_secret_expires_at.and_then(crate::clock::rfc3339),
            "created_at": crate::clock::rfc3339(self.created_at),
            "updated_at": crate::clock::rfc3339(self.updated_at),
        })
    }

    /// The origins whose CORS requests are answered for this client: its registered web origins
    /// and the origins of its http(s) redirect URIs.
    pub fn cors_origins(&self) -> BTreeSet<WebOrigin> {
        self.redirect_uris
            .iter()
            .filter_map(RedirectUri::origin)
            .chain(self.web_origins.iter().cloned())
            .collect()
    }

    /// The algorithm that signs this client's access tokens, given the server's default.
    pub fn access_token_alg_or(&self, default: Algorithm) -> Algorithm {
        self.access_token_alg.unwrap_or(default)
    }

    /// The registered authentication method.
    pub fn auth_method(&self) -> &'static str {
        if self.public {
            "none"
        } else if self.jwks.is_some() {
            "private_key_jwt"
        } else {
            "client_secret_basic"
        }
    }
}
