//! `sigil apis …`: the APIs (resource servers) Sigil issues tokens for, each with the audience it
//! answers to and the permissions it declares. A declared permission appears only in tokens for
//! its API's audience (docs/authorization.md).

use anyhow::bail;
use clap::Subcommand;

use super::roles::parse_permissions;
use super::{Globals, print};
use crate::clock::{SystemClock, unix_now};
use crate::domain::Name;
use crate::domain::authz::{Api, Permission};
use crate::startup::open_keys_blocking;
use crate::store::{StoreError, roles as role_store};

/// `apis` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApisCommand {
    /// Register an API.
    Create {
        /// The audience its tokens carry (what clients register with `--audience` and ask for
        /// with `resource`).
        #[arg(long)]
        audience: String,
        /// Display name (default: the audience).
        #[arg(long)]
        name: Option<String>,
        /// Permission it declares (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
    /// Change an API's name or declared permissions.
    Update {
        /// Its audience.
        audience: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// Permission to declare (repeatable).
        #[arg(long = "add-permission")]
        add: Vec<String>,
        /// Permission to stop declaring (repeatable).
        #[arg(long = "remove-permission")]
        remove: Vec<String>,
    },
    /// Every API.
    List,
    /// One API.
    Show {
        /// Its audience.
        audience: String,
    },
    /// Forget an API: the permissions it declared then appear in every token of their holders.
    Delete {
        /// Its audience.
        audience: String,
    },
}

/// An API's audience: an audience a client could register.
pub fn parse_api_audience(raw: &str) -> anyhow::Result<Name> {
    crate::domain::parse_audience(raw, "--audience").map_err(anyhow::Error::msg)
}

/// Permissions an API declares: never the admin API's own `admin:…`.
pub fn parse_api_permissions(flag: &str, raw: &[String]) -> anyhow::Result<Vec<Permission>> {
    let perms = parse_permissions(flag, raw)?;
    if let Some(p) = perms.iter().find(|p| p.is_admin()) {
        bail!(
            "{flag}: {} belongs to Sigil's admin API (the issuer's audience declares every admin: permission)",
            p.as_str()
        );
    }
    Ok(perms)
}

fn not_found(audience: &str) -> anyhow::Error {
    anyhow::anyhow!("no API with audience {audience} (see `sigil apis list`)")
}

/// Run an `apis` subcommand.
pub fn run(g: &Globals, cmd: ApisCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    let store = keys.store.clone();
    let now = unix_now(&SystemClock);
    match cmd {
        ApisCommand::Create {
            audience,
            name,
            permissions,
        } => {
            let audience = parse_api_audience(&audience)?;
            let api = Api {
                name: name.unwrap_or_else(|| audience.as_str().to_owned()),
                audience,
                permissions: parse_api_permissions("--permission", &permissions)?,
                created_at: now,
                updated_at: now,
            };
            match store.run_blocking(|c| role_store::insert_api(c, &api)) {
                Err(StoreError::Conflict(_)) => {
                    bail!("an API with audience {} exists", api.audience.as_str())
                }
                other => other?,
            }
            super::audit(
                &keys,
                "api.create",
                Some(api.audience.as_str().to_owned()),
                serde_json::json!({"name": api.name, "permissions": api.permissions}),
            )?;
            print(g, &api.view(), || {
                format!(
                    "registered API {} ({} permissions)",
                    api.audience.as_str(),
                    api.permissions.len()
                )
            });
        }
        ApisCommand::Update {
            audience,
            name,
            add,
            remove,
        } => {
            let add = parse_api_permissions("--add-permission", &add)?;
            let remove = parse_permissions("--remove-permission", &remove)?;
            if add.is_empty() && remove.is_empty() && name.is_none() {
                bail!("nothing to change: give --name, --add-permission or --remove-permission");
            }
            let before = store
                .run_blocking(|c| role_store::find_api(c, &audience))?
                .ok_or_else(|| not_found(&audience))?;
            if let Some(p) = remove.iter().find(|p| !before.permissions.contains(p)) {
                bail!(
                    "--remove-permission {}: API {audience} does not declare it",
                    p.as_str()
                );
            }
            let api = match store.run_blocking(|c| {
                role_store::update_api(c, &audience, name.as_deref(), &add, &remove, now)
            }) {
                Err(StoreError::NotFound) => return Err(not_found(&audience)),
                other => other?,
            };
            super::audit(
                &keys,
                "api.update",
                Some(audience.clone()),
                serde_json::json!({"added": add, "removed": remove, "name": name}),
            )?;
            let view = api.view();
            print(g, &view, || {
                serde_json::to_string_pretty(&view).unwrap_or_default()
            });
        }
        ApisCommand::List => {
            let all = store.run_blocking(role_store::list_apis)?;
            let views: Vec<serde_json::Value> = all.iter().map(Api::view).collect();
            print(g, &serde_json::Value::Array(views), || {
                all.iter()
                    .map(|a| {
                        let perms: Vec<&str> = a.permissions.iter().map(|p| p.as_str()).collect();
                        format!("{}\t{}\t{}", a.audience.as_str(), a.name, perms.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ApisCommand::Show { audience } => {
            let api = store
                .run_blocking(|c| role_store::find_api(c, &audience))?
                .ok_or_else(|| not_found(&audience))?;
            let view = api.view();
            print(g, &view, || {
                serde_json::to_string_pretty(&view).unwrap_or_default()
            });
        }
        ApisCommand::Delete { audience } => {
            if !store.run_blocking(|c| role_store::delete_api(c, &audience))? {
                return Err(not_found(&audience));
            }
            super::audit(
                &keys,
                "api.delete",
                Some(audience.clone()),
                serde_json::json!({}),
            )?;
            print(g, &serde_json::json!({"deleted": audience}), || {
                format!("deleted API {audience}")
            });
        }
    }
    Ok(())
}
