//! Token revocation (RFC 7009) and introspection (RFC 7662). Introspection answers `active: true`
//! only to a client entitled to the token, and only while its user still exists, is enabled and
//! has not changed their password since the token was issued.

use serde_json::{Value, json};

use crate::crypto::hash_id;
use sigil_verify::Claims;

use super::OAuthError;
use super::bearer::{Kind, current_roles, is_revoked};
use super::clients::RegisteredClient;
use crate::domain::client::Client;
use crate::domain::refresh_audience;
use crate::state::AppState;
use crate::store::refresh_tokens as rt_store;

fn kind_of(token: &str, hint: Option<&str>) -> Kind {
    // The header's typ decides; the hint only breaks a tie for tokens without one.
    // Unverified, only to choose the verifier; the token is verified before anything is done.
    let typ = sigil_verify::dangerous::insecure_decode(token)
        .ok()
        .and_then(|t| t.header_str("typ").map(str::to_ascii_lowercase));
    match (typ.as_deref(), hint) {
        (Some("refresh+jwt"), _) => Kind::Refresh,
        (Some(_), _) => Kind::Access,
        (None, Some("refresh_token")) => Kind::Refresh,
        (None, _) => Kind::Access,
    }
}

/// Revoke `token` if it is a Sigil token issued to `reg`. Unknown, invalid or foreign tokens are
/// ignored (RFC 7009 §2.2: the response is the same).
pub async fn revoke(
    ctx: &AppState,
    reg: &RegisteredClient,
    token: &str,
    hint: Option<&str>,
) -> Result<(), OAuthError> {
    let kind = kind_of(token, hint);
    let Some(claims) = ctx.own_tokens.signed_claims(ctx, token, kind) else {
        return Ok(());
    };
    if claims.client_id.as_deref() != Some(reg.client.id.as_str()) {
        return Ok(());
    }
    let Some(jti) = claims.jti.clone() else {
        return Ok(());
    };
    let now = ctx.now();
    match kind {
        Kind::Refresh => {
            let id_hash = hash_id(&jti);
            ctx.store
                .run(move |c| rt_store::revoke_family_of(c, &id_hash, now))
                .await?;
        }
        Kind::Access => {
            if claims.exp > now {
                let id = crate::store::revocations::token_id(&jti);
                let until = claims.exp + crate::clock::secs(ctx.settings.keys.clock_skew);
                ctx.store
                    .run(move |c| crate::store::revocations::insert(c, &id, until))
                    .await?;
            }
        }
    }
    tracing::info!(client_id = %reg.client.id, kind = ?kind, "token revoked");
    Ok(())
}

/// Whether `caller` may learn that `claims` is active (RFC 7662 §2.1 leaves it to the server):
/// the client the token was issued to, or, for an access token, a client registered for one of
/// its audiences (the resource server it is meant for). A refresh token's audience is Sigil's
/// own, so only its client qualifies.
pub fn entitled(caller: &Client, claims: &Claims, kind: Kind) -> bool {
    if claims.client_id.as_deref() == Some(caller.id.as_str()) {
        return true;
    }
    // Hook: once roles exist, a principal holding an introspection permission is entitled too.
    kind == Kind::Access
        && caller
            .audiences
            .iter()
            .any(|a| claims.aud.contains(a.as_str()))
}

/// Introspect `token` (RFC 7662) for `caller`. Anything not active, or not the caller's to know
/// about ([`entitled`]), is exactly `{"active": false}`. A refresh token's id is never shown.
pub async fn introspect(
    ctx: &AppState,
    caller: &RegisteredClient,
    token: &str,
    hint: Option<&str>,
) -> Result<Value, OAuthError> {
    let inactive = json!({"active": false});
    let kind = kind_of(token, hint);
    let Some(claims) = ctx.own_tokens.signed_claims(ctx, token, kind) else {
        return Ok(inactive);
    };
    if kind == Kind::Refresh && !claims.aud.contains(&refresh_audience(&ctx.issuer)) {
        return Ok(inactive);
    }
    if !entitled(&caller.client, &claims, kind) {
        return Ok(inactive);
    }
    let now = ctx.now();
    let leeway = crate::clock::secs(ctx.settings.keys.clock_skew);
    if claims.exp <= now || claims.iat > now + leeway {
        return Ok(inactive);
    }
    match kind {
        Kind::Access => {
            if is_revoked(ctx, &claims).await? {
                return Ok(inactive);
            }
        }
        Kind::Refresh => {
            let Some(jti) = claims.jti.clone() else {
                return Ok(inactive);
            };
            let id_hash = hash_id(&jti);
            let row = ctx.store.run(move |c| rt_store::find(c, &id_hash)).await?;
            match row {
                Some(r) if !r.revoked && r.used_at.is_none() && now < r.expires_at => {}
                _ => return Ok(inactive),
            }
        }
    }
    let Some(roles) = current_roles(ctx, &claims).await? else {
        return Ok(inactive);
    };
    let mut body = serde_json::Map::new();
    body.insert("active".into(), true.into());
    if let Some(s) = &claims.scope {
        body.insert("scope".into(), s.clone().into());
    }
    if let Some(c) = &claims.client_id {
        body.insert("client_id".into(), c.clone().into());
    }
    body.insert(
        "token_type".into(),
        match kind {
            Kind::Access => "Bearer",
            Kind::Refresh => "refresh_token",
        }
        .into(),
    );
    body.insert("exp".into(), claims.exp.into());
    body.insert("iat".into(), claims.iat.into());
    body.insert("sub".into(), claims.sub.clone().into());
    body.insert(
        "aud".into(),
        serde_json::to_value(&claims.aud).unwrap_or(Value::Null),
    );
    body.insert("iss".into(), claims.iss.clone().into());
    if kind == Kind::Access {
        // A refresh token's jti is the secret its stored hash is of: never shown.
        if let Some(j) = &claims.jti {
            body.insert("jti".into(), j.clone().into());
        }
        // What the subject holds now, not what the token was issued with: a role or
        // membership change shows here at once (within the authz sync interval for roles).
        let aud: Vec<String> = claims.aud.iter().map(str::to_owned).collect();
        let permissions = ctx.authz.load().permissions(&roles, &aud);
        body.insert("roles".into(), json!(roles));
        body.insert("permissions".into(), json!(permissions));
    }
    Ok(Value::Object(body))
}
