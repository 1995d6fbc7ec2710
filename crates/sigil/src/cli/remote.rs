//! `sigil --server URL …`: the commands the admin API covers, run against a remote Sigil over
//! `/admin/api/v1` instead of the local database, with the same output (`--json` included) and
//! exit codes, so an operator needs neither the database nor the master key.
//!
//! Credentials, from the environment: `SIGIL_ADMIN_TOKEN` (an access token) or
//! `SIGIL_ADMIN_TOKEN_FILE` (a file holding one), else `SIGIL_ADMIN_CLIENT_ID` with
//! `SIGIL_ADMIN_CLIENT_SECRET` (or `SIGIL_ADMIN_CLIENT_SECRET_FILE`), for which a token is asked
//! of the server's `/token` (client_credentials). Covered today: `roles create|update|list|
//! show|delete`, `users list|show`, `audit tail|verify`; anything else is refused with a message
//! saying to run it locally.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::audit::AuditCommand;
use super::roles::RolesCommand;
use super::users::UsersCommand;
use super::{Command, Globals, print};

/// A remote Sigil's admin API, with a bearer token.
pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn env_or_file(var: &str) -> anyhow::Result<Option<String>> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Some(v.trim().to_owned()));
    }
    let file_var = format!("{var}_FILE");
    match std::env::var(&file_var) {
        Ok(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .with_context(|| format!("cannot read {file_var} ({path})")),
        Err(_) => Ok(None),
    }
}

impl Remote {
    /// Connect to `server` (the issuer URL) with the credentials of the environment.
    pub fn connect(server: &str) -> anyhow::Result<Remote> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            bail!(
                "--server must be an http(s) URL, the server's issuer (e.g. https://id.example.com)"
            );
        }
        let agent = agent();
        let token = match env_or_file("SIGIL_ADMIN_TOKEN")? {
            Some(t) if !t.is_empty() => t,
            _ => {
                let id = std::env::var("SIGIL_ADMIN_CLIENT_ID").ok();
                let secret = env_or_file("SIGIL_ADMIN_CLIENT_SECRET")?;
                let (Some(id), Some(secret)) = (id, secret) else {
                    bail!(
                        "--server needs credentials: SIGIL_ADMIN_TOKEN (or SIGIL_ADMIN_TOKEN_FILE), or SIGIL_ADMIN_CLIENT_ID with SIGIL_ADMIN_CLIENT_SECRET (or SIGIL_ADMIN_CLIENT_SECRET_FILE)"
                    );
                };
                client_credentials(&agent, &base, &id, &secret)?
            }
        };
        Ok(Remote { base, token, agent })
    }

    /// Call the admin API; a non-2xx answer is an error with the server's description.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}/admin/api/v1{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            ("PATCH", Some(b)) => self
                .agent
                .patch(&url)
                .header("Authorization", &auth)
                .send_json(b),
            _ => bail!("unsupported call {method} {path}"),
        }
        .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {}", self.base))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let what = value["error_description"]
            .as_str()
            .or_else(|| value["error"].as_str())
            .unwrap_or("no description");
        match status {
            401 => bail!("the server refused the credentials ({what})"),
            403 => bail!("not allowed: {what}"),
            _ => bail!("{what}"),
        }
    }
}

/// A token by the client_credentials grant at `<base>/token`.
fn client_credentials(
    agent: &ureq::Agent,
    base: &str,
    id: &str,
    secret: &str,
) -> anyhow::Result<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        urlencoding(id),
        urlencoding(secret)
    ));
    let resp = agent
        .post(&format!("{base}/token"))
        .header("Authorization", &format!("Basic {basic}"))
        .send_form([("grant_type", "client_credentials")])
        .with_context(|| format!("cannot reach {base}/token"))?;
    let status = resp.status().as_u16();
    let body: Value = resp
        .into_body()
        .read_json()
        .with_context(|| format!("{base}/token answered something that is not JSON"))?;
    if status != 200 {
        bail!(
            "{base}/token refused the client credentials: {}",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no description")
        );
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the token response has no access_token")
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded inside Basic.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Run `cmd` against `server`.
pub fn run(g: &Globals, server: &str, cmd: Command) -> anyhow::Result<()> {
    let not_covered = |what: &str| {
        anyhow::anyhow!(
            "`sigil {what}` is not available with --server (the admin API does not cover it yet): run it where the database and master key are"
        )
    };
    // Refuse before asking for a token.
    match &cmd {
        Command::Roles(RolesCommand::Import { .. }) => return Err(not_covered("roles import")),
        Command::Roles(_) => {}
        Command::Users(UsersCommand::List | UsersCommand::Show { .. }) => {}
        Command::Users(_) => return Err(not_covered("users …")),
        Command::Audit(AuditCommand::Tail { .. } | AuditCommand::Verify) => {}
        Command::Audit(_) => return Err(not_covered("audit prune")),
        Command::Serve(_) => {
            bail!("`sigil serve` runs a server; --server is for the admin commands")
        }
        _ => return Err(not_covered("this command")),
    }
    let remote = Remote::connect(server)?;
    match cmd {
        Command::Roles(rc) => roles(g, &remote, rc),
        Command::Users(UsersCommand::List) => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let path = match &after {
                    Some(a) => format!("/users?limit=200&after={}", path_segment(a)),
                    None => "/users?limit=200".to_owned(),
                };
                let page = remote.call("GET", &path, None)?;
                all.extend(page["users"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(n) => after = Some(n.to_owned()),
                    None => break,
                }
            }
            let value = Value::Array(all);
            print(g, &value, || {
                let mut s = format!(
                    "{:<24} {:<30} {:<9} {}\n",
                    "USERNAME", "EMAIL", "STATE", "ROLES"
                );
                for u in value.as_array().into_iter().flatten() {
                    let roles: Vec<&str> = u["roles"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    s.push_str(&format!(
                        "{:<24} {:<30} {:<9} {}\n",
                        u["username"].as_str().unwrap_or(""),
                        u["email"].as_str().unwrap_or("-"),
                        if u["disabled"] == true {
                            "disabled"
                        } else {
                            "enabled"
                        },
                        roles.join(",")
                    ));
                }
                s.trim_end().to_owned()
            });
            Ok(())
        }
        Command::Users(UsersCommand::Show { username }) => {
            let view = remote.call("GET", &format!("/users/{}", path_segment(&username)), None)?;
            print(g, &view, || {
                serde_json::to_string_pretty(&view).unwrap_or_default()
            });
            Ok(())
        }
        Command::Audit(AuditCommand::Tail { n }) => {
            let rows = remote.call("GET", &format!("/audit?n={n}"), None)?;
            print(g, &rows, || {
                rows.as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        format!(
                            "{:>6} {} {:<26} {:<28} {} {}",
                            r["seq"],
                            r["at"].as_str().unwrap_or_default(),
                            r["kind"].as_str().unwrap_or_default(),
                            r["actor"].as_str().unwrap_or_default(),
                            r["subject"].as_str().unwrap_or("-"),
                            r["details"]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => {
            let verdict = remote.call("GET", "/audit/verify", None)?;
            if verdict["status"] == "intact" {
                print(g, &verdict, || {
                    format!(
                        "audit trail intact: {} events\nhead hash: {}\n(keep a copy of the head hash elsewhere: it also reveals events cut off the end)",
                        verdict["events"],
                        verdict["head_hash"].as_str().unwrap_or_default()
                    )
                });
                Ok(())
            } else {
                let seq = verdict["seq"].clone();
                print(g, &verdict, || {
                    format!(
                        "audit trail BROKEN at event {seq}: {}",
                        verdict["reason"].as_str().unwrap_or_default()
                    )
                });
                bail!("the audit trail does not verify (event {seq})")
            }
        }
        _ => Err(not_covered("this command")),
    }
}

fn roles(g: &Globals, remote: &Remote, cmd: RolesCommand) -> anyhow::Result<()> {
    match cmd {
        RolesCommand::Create {
            name,
            permissions,
            description,
        } => {
            let role = remote.call(
                "POST",
                "/roles",
                Some(&serde_json::json!({"name": name, "description": description, "permissions": permissions})),
            )?;
            print(g, &role, || {
                format!(
                    "created role {} ({} permissions)",
                    role["name"].as_str().unwrap_or_default(),
                    role["permissions"].as_array().map_or(0, Vec::len)
                )
            });
        }
        RolesCommand::Update {
            name,
            add,
            remove,
            description,
        } => {
            if add.is_empty() && remove.is_empty() && description.is_none() {
                bail!(
                    "nothing to change: give --add-permission, --remove-permission or --description"
                );
            }
            let role = remote.call(
                "PATCH",
                &format!("/roles/{}", path_segment(&name)),
                Some(&serde_json::json!({
                    "add_permissions": add,
                    "remove_permissions": remove,
                    "description": description,
                })),
            )?;
            print(g, &role, || {
                format!("updated role {name}: {}", role["permissions"])
            });
        }
        RolesCommand::List => {
            let all = remote.call("GET", "/roles", None)?;
            print(g, &all, || {
                all.as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let perms: Vec<&str> = r["permissions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        format!(
                            "{}\t{}",
                            r["name"].as_str().unwrap_or_default(),
                            perms.join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        RolesCommand::Show { name } => {
            let role = remote.call("GET", &format!("/roles/{}", path_segment(&name)), None)?;
            print(g, &role, || {
                serde_json::to_string_pretty(&role).unwrap_or_default()
            });
        }
        RolesCommand::Delete { name } => {
            let done = remote.call("DELETE", &format!("/roles/{}", path_segment(&name)), None)?;
            print(g, &done, || {
                format!(
                    "deleted role {name} (taken from {} users and {} clients)",
                    done["removed_from"]["users"], done["removed_from"]["clients"]
                )
            });
        }
        RolesCommand::Import { .. } => bail!("`sigil roles import` is not available with --server"),
    }
    Ok(())
}
