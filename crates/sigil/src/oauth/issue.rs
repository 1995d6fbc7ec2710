//! Building and signing access tokens (RFC 9068) and ID tokens (OIDC Core §2). Their claims are
//! `sigil_verify::Claims` and `sigil_verify::IdTokenClaims`, the types the verifier reads them
//! back as, so signer and verifier cannot drift.

use serde::Serialize;
use sigil_verify::{Audience, Claims, IdTokenClaims, UserClaims};

use super::OAuthError;
use crate::crypto::random_b64;
use crate::keys::material::compact_jws;
use crate::state::AppState;

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
    /// Signing algorithm (the client's, or the server's `tokens.access_token_alg`).
    pub alg: sigil_verify::Algorithm,
    /// What the token was issued under, so ending that ends the token too.
    pub link: TokenLink,
}

/// What a user's access token was issued under: the login session (`sid`) and the refresh-token
/// family (`fid`), each as the derived id its revocation is recorded by
/// (`store::revocations::{session_claim, family_claim}`).
#[derive(Debug, Clone, Default)]
pub struct TokenLink {
    /// `sid`: the login session.
    pub sid: Option<String>,
    /// `fid`: the refresh-token family.
    pub fid: Option<String>,
}

impl TokenLink {
    /// As access-token claims (`sid`, `fid`; what `sigil_verify::Claims::{sid, fid}` read).
    fn claims(self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(sid) = self.sid {
            m.insert("sid".to_owned(), sid.into());
        }
        if let Some(fid) = self.fid {
            m.insert("fid".to_owned(), fid.into());
        }
        m
    }

    /// The link for a session stored as `session_hash` and a family `family_id`.
    pub fn new(session_hash: Option<&str>, family_id: Option<&str>) -> TokenLink {
        use crate::store::revocations::{family_claim, session_claim};
        TokenLink {
            sid: session_hash.map(session_claim),
            fid: family_id.map(family_claim),
        }
    }
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
    /// Refresh token (clients registered with the refresh_token grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OIDC ID token (authorization code flow with `openid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The access token's `jti` (not sent; for revoking what a replayed code issued).
    #[serde(skip)]
    pub jti: String,
    /// The access token's `exp` (not sent).
    #[serde(skip)]
    pub exp: i64,
}

/// Sign an access token with the key that signs `req.alg` now.
pub fn access_token(
    ctx: &AppState,
    req: AccessTokenRequest<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now();
    let ttl = crate::clock::secs(ctx.settings.tokens.access_token_ttl);
    let key = ctx.ring.signer(req.alg, now).ok_or_else(|| {
        OAuthError::Unavailable(format!("no active {} signing key", req.alg.as_str()))
    })?;
    let model = ctx.authz.load();
    let permissions = model.permissions(&req.roles, &req.aud);
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
        permissions,
        tenant: None,
        extra: req.link.claims(),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    let max = ctx.settings.tokens.max_size;
    let size =
        key.at_header_b64.len() + 2 + b64_len(payload.len()) + b64_len(signature_len(&key.signer));
    if size > max {
        // The error path only: the claims already hold the roles and audiences.
        let aud: Vec<String> = claims.aud.iter().map(str::to_owned).collect();
        let largest = model.largest_role(&claims.roles, &aud);
        return Err(OAuthError::InvalidRequestDetail(too_large_reason(
            &claims, size, max, largest,
        )));
    }
    let token = compact_jws(&key.at_header_b64, &payload, &key.signer, &ctx.rng)
        .map_err(|_| OAuthError::Internal("signing failed".into()))?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: req.scope,
        refresh_token: None,
        id_token: None,
        jti: claims.jti.clone().unwrap_or_default(),
        exp: claims.exp,
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

/// Name the claim that made a token too large, and for `roles` or `permissions` the role that
/// adds the most (`largest`: name and bytes); sizes and names only, never other values.
fn too_large_reason(
    claims: &Claims,
    size: usize,
    max: usize,
    largest: Option<(String, usize)>,
) -> String {
    let len = |v: serde_json::Result<String>| v.map(|s| s.len()).unwrap_or(0);
    let parts = [
        ("scope", len(serde_json::to_string(&claims.scope))),
        ("aud", len(serde_json::to_string(&claims.aud))),
        ("roles", len(serde_json::to_string(&claims.roles))),
        (
            "permissions",
            len(serde_json::to_string(&claims.permissions)),
        ),
    ];
    let (name, bytes) = parts
        .iter()
        .max_by_key(|(_, n)| *n)
        .copied()
        .unwrap_or(("scope", 0));
    match (name, largest) {
        ("roles" | "permissions", Some((role, role_bytes))) => format!(
            "the access token would be {size} bytes, over the {max}-byte limit (tokens.max_size); the largest claim is `{name}` ({bytes} bytes), most of it from role `{role}` (about {role_bytes} bytes of permissions): request one audience (`resource`), declare its permissions on the APIs that use them (`sigil apis`), or split the role"
        ),
        _ => format!(
            "the access token would be {size} bytes, over the {max}-byte limit (tokens.max_size); the largest claim is `{name}` ({bytes} bytes): request fewer scopes or audiences, or register fewer roles"
        ),
    }
}

/// What goes into an ID token (OIDC Core §2).
#[derive(Debug)]
pub struct IdTokenRequest<'a> {
    /// Subject (user id).
    pub sub: &'a str,
    /// The client (`aud` and `azp`).
    pub client_id: &'a str,
    /// From the authorization request.
    pub nonce: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How the user authenticated (`amr`, RFC 8176 values); empty means a password alone.
    pub amr: &'a [String],
    /// The client's ID-token algorithm.
    pub alg: sigil_verify::Algorithm,
    /// The access token issued alongside (for `at_hash`).
    pub access_token: &'a str,
    /// What the granted scopes release about the user (`preferred_username`, `email`, …).
    pub user: UserClaims,
}

/// Sign an ID token with the key that signs the client's ID-token algorithm now (RS256, OIDC's
/// default, unless the client registered another).
pub fn id_token(ctx: &AppState, req: IdTokenRequest<'_>) -> Result<String, OAuthError> {
    let now = ctx.now();
    let ttl = crate::clock::secs(ctx.settings.tokens.access_token_ttl);
    let key = ctx.ring.signer(req.alg, now).ok_or_else(|| {
        OAuthError::Unavailable(format!("no active {} signing key", req.alg.as_str()))
    })?;
    let claims = IdTokenClaims {
        iss: ctx.issuer.clone(),
        sub: req.sub.to_owned(),
        aud: req.client_id.to_owned(),
        exp: now + ttl,
        iat: now,
        auth_time: req.auth_time,
        nonce: req.nonce.map(str::to_owned),
        at_hash: at_hash(req.alg, req.access_token),
        azp: req.client_id.to_owned(),
        amr: if req.amr.is_empty() {
            vec!["pwd".to_owned()]
        } else {
            req.amr.to_vec()
        },
        user: req.user,
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| OAuthError::Internal(e.to_string()))?;
    compact_jws(&key.jwt_header_b64, &payload, &key.signer, &ctx.rng)
        .map_err(|_| OAuthError::Internal("signing failed".into()))
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the access token's hash, with the hash of the
/// ID token's algorithm: SHA-256 for RS256, PS256 and ES256; SHA-512 for EdDSA over Ed25519 (the
/// only curve Sigil signs with; ES384 would be SHA-384).
pub fn at_hash(alg: sigil_verify::Algorithm, access_token: &str) -> String {
    use sigil_verify::Algorithm;
    let hash = match alg {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => &ring::digest::SHA256,
        Algorithm::EdDSA => &ring::digest::SHA512,
    };
    let digest = ring::digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    crate::keys::material::b64(&bytes[..bytes.len() / 2])
}

/// An access token for a signed-in user: `aud` is the client's registered audiences (or the
/// default audience) plus the issuer when `openid` is granted (userinfo is Sigil's own
/// resource), narrowed to `requested` ([`super::policy::narrow_audience`]); `roles` are the user's.
pub fn user_access_token(
    ctx: &AppState,
    client: &crate::domain::client::Client,
    user: &crate::domain::user::User,
    scopes: &crate::domain::ScopeSet,
    requested: &[String],
    link: TokenLink,
) -> Result<TokenResponse, OAuthError> {
    let registered: Vec<&str> = client.audiences.iter().map(|a| a.as_str()).collect();
    let mut aud = super::policy::client_audiences(&registered, &ctx.default_audience);
    if scopes.iter().any(|s| s.as_str() == "openid") && !aud.contains(&ctx.issuer) {
        aud.push(ctx.issuer.clone());
    }
    let aud = super::policy::narrow_audience(aud, requested)?;
    access_token(
        ctx,
        AccessTokenRequest {
            sub: &user.id,
            client_id: client.id.as_str(),
            aud,
            scope: scopes.to_param(),
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            alg: client.access_token_alg_or(ctx.access_token_alg),
            link,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::at_hash;
    use sigil_verify::Algorithm;

    #[test]
    fn at_hash_follows_the_algorithm() {
        // OIDC Core §3.1.3.6 example: SHA-256 of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        // gives "77QmUPtjPfzWtF2AnpK9RQ".
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256] {
            assert_eq!(at_hash(alg, token), "77QmUPtjPfzWtF2AnpK9RQ");
        }
        // Ed25519: the left 32 of SHA-512's 64 bytes, 43 base64url characters.
        let eddsa = at_hash(Algorithm::EdDSA, token);
        assert_eq!(eddsa.len(), 43);
        let full = ring::digest::digest(&ring::digest::SHA512, token.as_bytes());
        assert_eq!(eddsa, crate::keys::material::b64(&full.as_ref()[..32]));
    }
}
