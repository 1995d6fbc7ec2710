//! `sigil roles …`: roles and the permissions they bundle, and `roles import` of a file of roles
//! and APIs (docs/authorization.md). The built-in `sigil-admin` is listed and shown, never
//! changed or deleted. Running servers apply a change to the next token, and to `/introspect`
//! and `/userinfo` within a second.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::{Globals, print};
use crate::clock::{SystemClock, unix_now};
use crate::domain::Name;
use crate::domain::authz::{Api, Permission, Role, SIGIL_ADMIN, normalize};
use crate::startup::open_keys_blocking;
use crate::store::{StoreError, roles as role_store};

/// `roles` subcommands.
#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Create a role.
    Create {
        /// Role name (what `--role` and tokens' `roles` name).
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Permission it bundles, e.g. `job:create` (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// What the role is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Add or remove permissions, or change the description.
    Update {
        /// Role name.
        #[arg(allow_hyphen_values = true)]
        name: String,
        /// Permission to add (repeatable).
        #[arg(long = "add-permission")]
        add: Vec<String>,
        /// Permission to remove (repeatable).
        #[arg(long = "remove-permission")]
        remove: Vec<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Every role, the built-in `sigil-admin` first.
    List,
    /// One role.
    Show {
        /// Role name.
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Delete a role; every user and client holding it loses it.
    Delete {
        /// Role name.
        #[arg(allow_hyphen_values = true)]
        name: String,
    },
    /// Create or replace the roles and APIs a TOML file lists (`[[role]]`: name, description,
    /// permissions; `[[api]]`: audience, name, permissions), all in one transaction.
    Import {
        /// The file (e.g. deploy/examples/authorization.toml).
        file: PathBuf,
    },
}

/// Parse permission flags.
pub fn parse_permissions(flag: &str, raw: &[String]) -> anyhow::Result<Vec<Permission>> {
    raw.iter()
        .map(|p| Permission::parse(p).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()
        .map(normalize)
}

fn role_name(raw: &str) -> anyhow::Result<Name> {
    Name::parse(raw, "the role name").map_err(anyhow::Error::msg)
}

fn not_found(name: &str) -> anyhow::Error {
    anyhow::anyhow!("no role named {name} (see `sigil roles list`)")
}

fn builtin(name: &str, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{name} is built in (every admin API permission) and cannot be {what}")
}

/// The file `roles import` reads.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportFile {
    #[serde(default)]
    role: Vec<ImportRole>,
    #[serde(default)]
    api: Vec<ImportApi>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRole {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportApi {
    audience: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

/// Run a `roles` subcommand.
pub fn run(g: &Globals, cmd: RolesCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    let store = keys.store.clone();
    let now = unix_now(&SystemClock);
    match cmd {
        RolesCommand::Create {
            name,
            permissions,
            description,
        } => {
            let name = role_name(&name)?;
            if name.as_str() == SIGIL_ADMIN {
                bail!("{SIGIL_ADMIN} is built in");
            }
            let role = Role {
                name,
                description,
                permissions: parse_permissions("--permission", &permissions)?,
                created_at: now,
                updated_at: now,
            };
            match store.run_blocking(|c| role_store::insert(c, &role)) {
                Err(StoreError::Conflict(_)) => {
                    bail!("a role named {} exists", role.name.as_str())
                }
                other => other?,
            }
            super::audit(
                &keys,
                "role.create",
                Some(role.name.as_str().to_owned()),
                serde_json::json!({"permissions": role.permissions}),
            )?;
            print(g, &role.view(), || {
                format!(
                    "created role {} ({} permissions)",
                    role.name.as_str(),
                    role.permissions.len()
                )
            });
        }
        RolesCommand::Update {
            name,
            add,
            remove,
            description,
        } => {
            if name == SIGIL_ADMIN {
                return Err(builtin(&name, "changed"));
            }
            let change = role_store::RoleChange {
                add: parse_permissions("--add-permission", &add)?,
                remove: parse_permissions("--remove-permission", &remove)?,
                description,
            };
            if change.add.is_empty() && change.remove.is_empty() && change.description.is_none() {
                bail!(
                    "nothing to change: give --add-permission, --remove-permission or --description"
                );
            }
            if let Some(p) = change.add.iter().find(|p| change.remove.contains(p)) {
                bail!("{} is both added and removed", p.as_str());
            }
            let before = store
                .run_blocking(|c| role_store::find(c, &name))?
                .ok_or_else(|| not_found(&name))?;
            if let Some(p) = change
                .remove
                .iter()
                .find(|p| !before.permissions.contains(p))
            {
                bail!(
                    "--remove-permission {}: role {name} does not hold it",
                    p.as_str()
                );
            }
            let role = match store.run_blocking(|c| role_store::update(c, &name, &change, now)) {
                Err(StoreError::NotFound) => return Err(not_found(&name)),
                other => other?,
            };
            super::audit(
                &keys,
                "role.update",
                Some(name.clone()),
                serde_json::json!({
                    "added": change.add,
                    "removed": change.remove,
                    "description_changed": change.description.is_some(),
                }),
            )?;
            let view = role.view();
            print(g, &view, || {
                format!(
                    "updated role {name}: {}",
                    serde_json::to_string(&role.permissions).unwrap_or_default()
                )
            });
        }
        RolesCommand::List => {
            let mut all = vec![Role::sigil_admin()];
            all.extend(store.run_blocking(role_store::list)?);
            let views: Vec<serde_json::Value> = all.iter().map(Role::view).collect();
            print(g, &serde_json::Value::Array(views), || {
                all.iter()
                    .map(|r| {
                        let perms: Vec<&str> = r.permissions.iter().map(|p| p.as_str()).collect();
                        format!("{}\t{}", r.name.as_str(), perms.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RolesCommand::Show { name } => {
            let role = if name == SIGIL_ADMIN {
                Role::sigil_admin()
            } else {
                store
                    .run_blocking(|c| role_store::find(c, &name))?
                    .ok_or_else(|| not_found(&name))?
            };
            let view = role.view();
            print(g, &view, || {
                serde_json::to_string_pretty(&view).unwrap_or_default()
            });
        }
        RolesCommand::Delete { name } => {
            if name == SIGIL_ADMIN {
                return Err(builtin(&name, "deleted"));
            }
            let holders = match store.run_blocking(|c| role_store::delete(c, &name, now)) {
                Err(StoreError::NotFound) => return Err(not_found(&name)),
                other => other?,
            };
            let details = serde_json::json!({
                "users": holders.users,
                "clients": holders.clients,
            });
            super::audit(&keys, "role.delete", Some(name.clone()), details.clone())?;
            print(
                g,
                &serde_json::json!({"deleted": name, "removed_from": details}),
                || {
                    format!(
                        "deleted role {name} (taken from {} users and {} clients)",
                        holders.users, holders.clients
                    )
                },
            );
        }
        RolesCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let parsed: ImportFile = toml::from_str(&text)
                .with_context(|| format!("{} is not valid", file.display()))?;
            let (roles, apis) = import_items(parsed, now)
                .with_context(|| format!("{} is not valid", file.display()))?;
            let done = store.run_blocking(|c| role_store::import(c, &roles, &apis, now))?;
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            let auds: Vec<&str> = apis.iter().map(|a| a.audience.as_str()).collect();
            super::audit(
                &keys,
                "role.import",
                None,
                serde_json::json!({"roles": names, "apis": auds}),
            )?;
            print(g, &serde_json::to_value(done).unwrap_or_default(), || {
                format!(
                    "roles: {} created, {} replaced; APIs: {} created, {} replaced",
                    done.roles_created, done.roles_replaced, done.apis_created, done.apis_replaced
                )
            });
        }
    }
    Ok(())
}

/// The roles and APIs of an import file, checked as the single commands check them.
fn import_items(file: ImportFile, now: i64) -> anyhow::Result<(Vec<Role>, Vec<Api>)> {
    let mut roles: Vec<Role> = Vec::new();
    for r in file.role {
        let name = role_name(&r.name)?;
        if name.as_str() == SIGIL_ADMIN {
            bail!("role {SIGIL_ADMIN} is built in");
        }
        if roles.iter().any(|x| x.name == name) {
            bail!("role {} is listed twice", name.as_str());
        }
        roles.push(Role {
            permissions: parse_permissions(
                &format!("role {} permissions", name.as_str()),
                &r.permissions,
            )?,
            name,
            description: r.description,
            created_at: now,
            updated_at: now,
        });
    }
    let mut apis: Vec<Api> = Vec::new();
    for a in file.api {
        let audience = super::apis::parse_api_audience(&a.audience)?;
        if apis.iter().any(|x| x.audience == audience) {
            bail!("api {} is listed twice", audience.as_str());
        }
        let permissions = super::apis::parse_api_permissions(
            &format!("api {} permissions", audience.as_str()),
            &a.permissions,
        )?;
        apis.push(Api {
            name: a.name.unwrap_or_else(|| audience.as_str().to_owned()),
            audience,
            permissions,
            created_at: now,
            updated_at: now,
        });
    }
    Ok((roles, apis))
}
