//! `sigil clients …`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use sigil_verify::JwkSet;

use super::keys::AlgArg;
use super::{Globals, print};
use crate::clock::{SystemClock, rfc3339, secs, unix_now};
use crate::crypto::{MasterKey, random_b64};
use crate::domain::client::{Client, PkceMode};
use crate::domain::{
    ClientId, GrantType, Name, RedirectUri, Scope, ScopeSet, WebOrigin, parse_duration,
};
use crate::startup::open_keys_blocking;
use crate::store::StoreError;
use crate::store::clients::{self as client_store, SecretRotation};

/// Prefix of every client secret, so secret scanners can find leaked ones.
pub const SECRET_PREFIX: &str = "sigil_secret_";

/// `--grant` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GrantArg {
    /// Browser login (authorization code + PKCE).
    #[value(name = "authorization_code")]
    AuthorizationCode,
    /// Refresh tokens.
    #[value(name = "refresh_token")]
    RefreshToken,
    /// Service-to-service tokens.
    #[value(name = "client_credentials")]
    ClientCredentials,
}

impl From<GrantArg> for GrantType {
    fn from(g: GrantArg) -> GrantType {
        match g {
            GrantArg::AuthorizationCode => GrantType::AuthorizationCode,
            GrantArg::RefreshToken => GrantType::RefreshToken,
            GrantArg::ClientCredentials => GrantType::ClientCredentials,
        }
    }
}

/// `--pkce` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PkceArg {
    /// Always required (default).
    Required,
    /// Optional for this confidential client (a downgrade).
    Optional,
}

/// Options of `clients create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Allowed grant (repeatable). Default: client_credentials (confidential) or
    /// authorization_code (public).
    #[arg(long = "grant")]
    pub grants: Vec<GrantArg>,
    /// Registered redirect URI (repeatable; exact match).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Allowed scope (repeatable).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Allowed audience (repeatable).
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// A public client (no secret; cannot use client_credentials).
    #[arg(long)]
    pub public: bool,
    /// Role carried in the client's own tokens (repeatable).
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// PKCE requirement.
    #[arg(long, value_enum, default_value = "required")]
    pub pkce: PkceArg,
    /// Register these public keys (a JWKS file) for private_key_jwt; no secret is issued.
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// Registered post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A browser origin (https://host[:port]) whose CORS requests to /token, /userinfo, /revoke
    /// and /introspect are answered for this client, besides the origins of its redirect URIs
    /// (repeatable).
    #[arg(long = "web-origin")]
    pub web_origins: Vec<String>,
    /// An application of the same operator: users are not asked to consent to its scopes.
    #[arg(long)]
    pub first_party: bool,
    /// Algorithm of this client's ID tokens (OIDC requires RS256 support, the default); a key
    /// for it is created if none exists.
    #[arg(long, value_enum, default_value = "RS256")]
    pub id_token_alg: AlgArg,
    /// Algorithm of this client's access tokens, for resource servers that accept only some
    /// (default: the server's tokens.access_token_alg); a key for it is created if none exists.
    #[arg(long, value_enum)]
    pub access_token_alg: Option<AlgArg>,
}

/// Options of `clients update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Client id.
    pub id: ClientId,
    /// New display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Register another redirect URI (repeatable).
    #[arg(long = "add-redirect-uri")]
    pub add_redirect_uris: Vec<String>,
    /// Remove a registered redirect URI (repeatable).
    #[arg(long = "remove-redirect-uri")]
    pub remove_redirect_uris: Vec<String>,
    /// Allow another scope (repeatable).
    #[arg(long = "add-scope")]
    pub add_scopes: Vec<String>,
    /// Stop allowing a scope (repeatable).
    #[arg(long = "remove-scope")]
    pub remove_scopes: Vec<String>,
    /// Allow another audience (repeatable).
    #[arg(long = "add-audience")]
    pub add_audiences: Vec<String>,
    /// Stop allowing an audience (repeatable).
    #[arg(long = "remove-audience")]
    pub remove_audiences: Vec<String>,
    /// Answer CORS requests from this web origin (scheme://host[:port]), besides those of the
    /// redirect URIs.
    #[arg(long = "add-web-origin")]
    pub add_web_origins: Vec<String>,
    /// Stop answering CORS requests from this registered web origin.
    #[arg(long = "remove-web-origin")]
    pub remove_web_origins: Vec<String>,
    /// Replace the client's roles with these (repeatable; none given: roles unchanged).
    #[arg(long = "role")]
    pub roles: Vec<String>,
}

/// `clients` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its id and, once, its secret.
    Create(CreateArgs),
    /// Every client.
    List,
    /// One client.
    Show {
        /// Client id.
        id: ClientId,
    },
    /// Remove a client.
    Delete {
        /// Client id.
        id: ClientId,
    },
    /// Change a client's name, redirect URIs, scopes, audiences or roles; its id and secret stay.
    Update(UpdateArgs),
    /// Issue a new secret; the old one stays valid for the overlap.
    RotateSecret {
        /// Client id.
        id: ClientId,
        /// How long the old secret keeps working (default clients.secret_overlap).
        #[arg(long)]
        overlap: Option<String>,
    },
}

/// Run a `clients` subcommand.
pub fn run(g: &Globals, cmd: ClientsCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    let store = keys.store.clone();
    let now = unix_now(&SystemClock);
    match cmd {
        ClientsCommand::Create(args) => {
            super::require_roles(&store, &args.roles)?;
            let (client, secret) = build(args, &keys.master, now)?;
            // The ID- and access-token algorithms need a signing key; a missing one is created
            // signing at once (relying parties fetch the JWKS again on an unknown kid).
            let mut algs = vec![client.id_token_alg];
            algs.extend(client.access_token_alg);
            keys.ensure(&algs, now)?;
            store.run_blocking(|c| client_store::insert(c, &client))?;
            super::audit(
                &keys,
                "client.create",
                Some(client.id.as_str().to_owned()),
                serde_json::json!({
                    "name": client.name,
                    "grants": client.grants,
                    "scopes": client.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "redirect_uris": client.redirect_uris,
                    "auth_method": client.auth_method(),
                }),
            )?;
            let mut value = client.public_view();
            if let (Some(obj), Some(secret)) = (value.as_object_mut(), &secret) {
                obj.insert(
                    "client_secret".into(),
                    serde_json::Value::String(secret.clone()),
                );
            }
            print(g, &value, || {
                let mut s = format!("client_id:     {}\n", client.id);
                match &secret {
                    Some(sec) => s.push_str(&format!(
                        "client_secret: {sec}\n(the secret is shown only now; store it safely)"
                    )),
                    None => s.push_str(&format!("auth method:   {}", client.auth_method())),
                }
                s
            });
        }
        ClientsCommand::List => {
            let clients = store.run_blocking(client_store::list)?;
            let value = serde_json::Value::Array(clients.iter().map(Client::public_view).collect());
            print(g, &value, || {
                let mut s = format!("{:<28} {:<24} {}\n", "CLIENT_ID", "NAME", "GRANTS");
                for c in &clients {
                    let grants: Vec<&str> = c.grants.iter().map(|g| g.as_str()).collect();
                    s.push_str(&format!(
                        "{:<28} {:<24} {}\n",
                        c.id,
                        c.name,
                        grants.join(",")
                    ));
                }
                s.trim_end().to_owned()
            });
        }
        ClientsCommand::Show { id } => {
            let client = store
                .run_blocking(|c| client_store::find(c, &id))?
                .with_context(|| format!("no client with id {id}"))?;
            let value = client.public_view();
            print(g, &value, || {
                serde_json::to_string_pretty(&value).unwrap_or_default()
            });
        }
        ClientsCommand::Delete { id } => {
            if !store.run_blocking(|c| client_store::delete(c, &id))? {
                bail!("no client with id {id}");
            }
            super::audit(
                &keys,
                "client.delete",
                Some(id.to_string()),
                serde_json::json!({}),
            )?;
            print(g, &serde_json::json!({"deleted": id}), || {
                format!("deleted {id}")
            });
        }
        ClientsCommand::Update(args) => {
            super::require_roles(&store, &args.roles)?;
            let id = args.id.clone();
            let (client, changes) = store
                .run_blocking(|c| {
                    client_store::modify(c, &id, |client| apply_update(client, args, now))
                })?
                .with_context(|| format!("no client with id {id}"))?;
            super::audit(&keys, "client.update", Some(id.to_string()), changes)?;
            let value = client.public_view();
            print(g, &value, || {
                format!(
                    "updated {id} (same id and secret; running servers see it within 10 s)\n{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                )
            });
        }
        ClientsCommand::RotateSecret { id, overlap } => {
            let overlap = match overlap {
                Some(o) => parse_duration(&o).map_err(anyhow::Error::msg)?,
                None => settings.clients.secret_overlap,
            };
            let secret = new_secret();
            let hash = keys.master.hash_secret(&secret);
            let until = now + secs(overlap);
            match store.run_blocking(|c| client_store::rotate_secret(c, &id, &hash, until, now)) {
                Ok(SecretRotation::Rotated) => {}
                Ok(SecretRotation::NoSecret) => {
                    bail!("client {id} has no secret (it is public or uses private_key_jwt)")
                }
                Err(StoreError::NotFound) => bail!("no client with id {id}"),
                Err(e) => return Err(e.into()),
            }
            super::audit(
                &keys,
                "client.rotate_secret",
                Some(id.to_string()),
                serde_json::json!({"previous_secret_valid_until": until}),
            )?;
            let value = serde_json::json!({
                "client_id": id,
                "client_secret": secret,
                "previous_secret_valid_until": rfc3339(until),
            });
            print(g, &value, || {
                format!(
                    "client_secret: {secret}\nthe previous secret stays valid until {}",
                    rfc3339(until).unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

/// Apply `update` arguments to `client`; returns it and the changes (for the audit event).
fn apply_update(
    mut client: Client,
    args: UpdateArgs,
    now: i64,
) -> anyhow::Result<(Client, serde_json::Value)> {
    let mut changes = serde_json::Map::new();
    if let Some(name) = &args.name {
        client.name = Name::parse(name, "--name")
            .map_err(anyhow::Error::msg)?
            .as_str()
            .to_owned();
        changes.insert("name".into(), serde_json::json!(client.name));
    }
    let parse_uri = |flag: &str, u: &String| {
        RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("{flag} {u}: {e}"))
    };
    for u in &args.remove_redirect_uris {
        let uri = parse_uri("--remove-redirect-uri", u)?;
        let before = client.redirect_uris.len();
        client.redirect_uris.retain(|r| r != &uri);
        if client.redirect_uris.len() == before {
            bail!("--remove-redirect-uri {u}: not registered for this client");
        }
    }
    for u in &args.add_redirect_uris {
        let uri = parse_uri("--add-redirect-uri", u)?;
        if !client.redirect_uris.contains(&uri) {
            client.redirect_uris.push(uri);
        }
    }
    if client.grants.contains(&GrantType::AuthorizationCode) && client.redirect_uris.is_empty() {
        bail!(
            "the authorization_code grant needs at least one redirect URI; add one before removing the last"
        );
    }
    let mut scopes: Vec<Scope> = client.scopes.iter().cloned().collect();
    for s in &args.remove_scopes {
        let scope = Scope::parse(s).map_err(|e| anyhow::anyhow!("--remove-scope {s}: {e}"))?;
        let before = scopes.len();
        scopes.retain(|x| x != &scope);
        if scopes.len() == before {
            bail!("--remove-scope {s}: not allowed for this client");
        }
    }
    for s in &args.add_scopes {
        let scope = Scope::parse(s).map_err(|e| anyhow::anyhow!("--add-scope {s}: {e}"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    client.scopes = ScopeSet::from_scopes(scopes);
    for a in &args.remove_audiences {
        let aud = Name::parse(a, "--remove-audience").map_err(anyhow::Error::msg)?;
        let before = client.audiences.len();
        client.audiences.retain(|x| x != &aud);
        if client.audiences.len() == before {
            bail!("--remove-audience {a}: not allowed for this client");
        }
    }
    for a in &args.add_audiences {
        let aud = Name::parse(a, "--add-audience").map_err(anyhow::Error::msg)?;
        client.audiences.push(aud);
    }
    client.audiences.sort();
    client.audiences.dedup();
    let parse_origin = |flag: &str, o: &String| {
        WebOrigin::parse(o).map_err(|e| anyhow::anyhow!("{flag} {o}: {e}"))
    };
    for o in &args.remove_web_origins {
        let origin = parse_origin("--remove-web-origin", o)?;
        let before = client.web_origins.len();
        client.web_origins.retain(|x| x != &origin);
        if client.web_origins.len() == before {
            bail!(
                "--remove-web-origin {o}: not registered for this client (a redirect URI's origin goes with the URI)"
            );
        }
    }
    for o in &args.add_web_origins {
        let origin = parse_origin("--add-web-origin", o)?;
        if !client.web_origins.contains(&origin) {
            client.web_origins.push(origin);
        }
    }
    client.web_origins.sort();
    client.web_origins.dedup();
    if !args.roles.is_empty() {
        let mut roles = args
            .roles
            .iter()
            .map(|r| Name::parse(r, "--role").map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        roles.sort();
        roles.dedup();
        client.roles = roles;
        changes.insert("roles".into(), serde_json::json!(client.roles));
    }
    if !(args.add_redirect_uris.is_empty() && args.remove_redirect_uris.is_empty()) {
        changes.insert(
            "redirect_uris".into(),
            serde_json::json!(client.redirect_uris),
        );
    }
    if !(args.add_scopes.is_empty() && args.remove_scopes.is_empty()) {
        let names: Vec<&str> = client.scopes.iter().map(|s| s.as_str()).collect();
        changes.insert("scopes".into(), serde_json::json!(names));
    }
    if !(args.add_audiences.is_empty() && args.remove_audiences.is_empty()) {
        changes.insert("audiences".into(), serde_json::json!(client.audiences));
    }
    if !(args.add_web_origins.is_empty() && args.remove_web_origins.is_empty()) {
        changes.insert("web_origins".into(), serde_json::json!(client.web_origins));
    }
    if changes.is_empty() {
        bail!("nothing to change: give --name, --add-…/--remove-… or --role");
    }
    client.updated_at = now;
    Ok((client, serde_json::Value::Object(changes)))
}

/// A new client secret: the prefix and 256 random bits.
pub fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", random_b64(32))
}

/// Validate `create` arguments into a client (and its secret, shown once).
fn build(
    args: CreateArgs,
    master: &MasterKey,
    now: i64,
) -> anyhow::Result<(Client, Option<String>)> {
    let name = Name::parse(&args.name, "--name").map_err(anyhow::Error::msg)?;
    let mut grants: Vec<GrantType> = args.grants.iter().map(|g| GrantType::from(*g)).collect();
    if grants.is_empty() {
        grants.push(if args.public {
            GrantType::AuthorizationCode
        } else {
            GrantType::ClientCredentials
        });
    }
    grants.sort();
    grants.dedup();
    let redirect_uris = args
        .redirect_uris
        .iter()
        .map(|u| RedirectUri::parse(u).map_err(|e| anyhow::anyhow!("--redirect-uri {u}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let post_logout_redirect_uris = args
        .post_logout_redirect_uris
        .iter()
        .map(|u| {
            RedirectUri::parse(u)
                .map_err(|e| anyhow::anyhow!("--post-logout-redirect-uri {u}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut web_origins = args
        .web_origins
        .iter()
        .map(|o| WebOrigin::parse(o).map_err(|e| anyhow::anyhow!("--web-origin {o}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    web_origins.sort();
    web_origins.dedup();
    let scopes = ScopeSet::from_scopes(
        args.scopes
            .iter()
            .map(|s| Scope::parse(s).map_err(|e| anyhow::anyhow!("--scope {s}: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let audiences = args
        .audiences
        .iter()
        .map(|a| crate::domain::parse_audience(a, "--audience").map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let roles = args
        .roles
        .iter()
        .map(|r| Name::parse(r, "--role").map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (mut audiences, mut roles) = (audiences, roles);
    audiences.sort();
    audiences.dedup();
    roles.sort();
    roles.dedup();
    let pkce = match args.pkce {
        PkceArg::Required => PkceMode::Required,
        PkceArg::Optional => PkceMode::Optional,
    };
    let jwks = match &args.jwks_file {
        None => None,
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let set = JwkSet::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("--jwks-file {}: {e}", path.display()))?;
            if set.keys.is_empty() {
                bail!("--jwks-file {}: the key set is empty", path.display());
            }
            Some(set)
        }
    };
    if args.public {
        if grants.contains(&GrantType::ClientCredentials) {
            bail!("a public client cannot use the client_credentials grant");
        }
        if matches!(pkce, PkceMode::Optional) {
            bail!("PKCE cannot be optional for a public client");
        }
        if jwks.is_some() {
            bail!("a public client cannot register keys (--jwks-file)");
        }
    }
    if grants.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        bail!("the authorization_code grant needs at least one --redirect-uri");
    }
    if grants.contains(&GrantType::RefreshToken) && !grants.contains(&GrantType::AuthorizationCode)
    {
        bail!("the refresh_token grant needs the authorization_code grant too");
    }
    let secret = (!args.public && jwks.is_none()).then(new_secret);
    let client = Client {
        id: ClientId::generate(),
        name: name.as_str().to_owned(),
        public: args.public,
        secret_hash: secret.as_deref().map(|s| master.hash_secret(s)),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        grants,
        scopes,
        audiences,
        roles,
        redirect_uris,
        post_logout_redirect_uris,
        web_origins,
        pkce,
        jwks,
        created_at: now,
        updated_at: now,
        first_party: args.first_party,
        id_token_alg: args.id_token_alg.into(),
        access_token_alg: args.access_token_alg.map(Into::into),
    };
    Ok((client, secret))
}
