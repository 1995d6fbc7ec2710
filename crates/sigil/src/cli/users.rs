//! `sigil users …`.

use std::io::BufRead;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::{Globals, print};
use crate::clock::{SystemClock, unix_now};
use crate::domain::Name;
use crate::domain::authz::role_names;
use crate::domain::user::{Email, User, Username};
use crate::passwords::Password;
use crate::startup::open_keys_blocking;
use crate::store::{StoreError, users as user_store};

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        /// Login name (letters, digits, '_' and '-', at most 50).
        #[arg(long, allow_hyphen_values = true)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// The email address is known to be the user's (`email_verified` in tokens).
        #[arg(long, requires = "email", num_args = 0..=1, default_missing_value = "true",
              value_name = "true|false")]
        email_verified: Option<bool>,
        /// Role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's email address or its verification state.
    Update {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// New email address (it is unverified unless --email-verified is given too).
        #[arg(long, conflicts_with = "no_email")]
        email: Option<String>,
        /// Remove the email address.
        #[arg(long)]
        no_email: bool,
        /// Whether the address is known to be the user's (`email_verified` in tokens).
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "true|false")]
        email_verified: Option<bool>,
    },
    /// Every user.
    List,
    /// One user (never the password hash).
    Show {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Forbid logins.
    Disable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Allow logins again.
    Enable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Replace the user's roles (none given: no roles).
    SetRoles {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// Roles.
        roles: Vec<String>,
    },
    /// Delete the user.
    Delete {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Everything Sigil stores about the user, as JSON (data-subject export; no password hash).
    Export {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// The user's TOTP second factor: enroll, disable.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Set a new password, read from standard input (one line).
    ResetPassword {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// `users totp` subcommands.
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Enrol a TOTP authenticator (enrolling again replaces the secret and the recovery codes);
    /// prints the secret, its otpauth:// URI and ten recovery codes, once.
    Enroll {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
    /// Remove the TOTP factor and its recovery codes: the user signs in with a password alone.
    Disable {
        /// Username.
        #[arg(allow_hyphen_values = true)]
        username: String,
    },
}

/// The password for `--password-stdin`: from a terminal, a prompt without echo; otherwise one
/// line of standard input (the trailing newline is not part of it).
fn read_password_line() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ")
            .context("cannot read the password from the terminal");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

fn not_found(username: &str) -> anyhow::Error {
    anyhow::anyhow!("no user named {username}")
}

/// Run a `users` subcommand.
pub fn run(g: &Globals, cmd: UsersCommand) -> anyhow::Result<()> {
    let settings = g.settings()?;
    let keys = open_keys_blocking(&settings)?;
    let store = keys.store.clone();
    let now = unix_now(&SystemClock);
    let found = |username: &str| -> anyhow::Result<User> {
        store
            .run_blocking(|c| user_store::find_by_username(c, username))?
            .ok_or_else(|| not_found(username))
    };
    let nf = |username: &str, r: Result<(), StoreError>| -> anyhow::Result<()> {
        match r {
            Err(StoreError::NotFound) => Err(not_found(username)),
            other => Ok(other?),
        }
    };
    match cmd {
        UsersCommand::Create {
            username,
            email,
            email_verified,
            roles,
            ..
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            super::require_roles(&store, &roles)?;
            let email = email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let roles = role_names(&roles, "--role").map_err(anyhow::Error::msg)?;
            let raw = read_password_line()?;
            let password =
                Password::for_user(&raw, username.as_str(), email.as_ref().map(Email::as_str))?;
            let hash = settings.password_hasher()?.hash_blocking(&password)?;
            let user = User::new(
                username,
                email,
                email_verified.unwrap_or(false),
                hash,
                roles,
                now,
            );
            match store.run_blocking(|c| user_store::insert(c, &user)) {
                Err(StoreError::Conflict(_)) => {
                    bail!("the username {} is taken", user.username.as_str())
                }
                other => other?,
            }
            super::audit(
                &keys,
                "user.create",
                Some(user.id.clone()),
                serde_json::json!({"username": user.username.as_str(), "roles": user.roles}),
            )?;
            let view = user.public_view();
            print(g, &view, || {
                format!("created user {} ({})", user.username.as_str(), user.id)
            });
        }
        UsersCommand::Update {
            username,
            email,
            no_email,
            email_verified,
        } => {
            let email = match (email, no_email) {
                (Some(e), _) => Some(Some(Email::parse(&e).map_err(anyhow::Error::msg)?)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let change = user_store::ProfileChange {
                email,
                email_verified,
            };
            let user = match store
                .run_blocking(|c| user_store::update_profile(c, &username, &change, now))
            {
                Err(StoreError::NotFound) => return Err(not_found(&username)),
                other => other?,
            };
            super::audit(
                &keys,
                "user.update",
                Some(user.id.clone()),
                serde_json::json!({
                    "username": username,
                    "email_changed": change.email.is_some(),
                    "email_verified": user.email_verified,
                }),
            )?;
            let view = user.public_view();
            print(g, &view, || format!("updated user {username}"));
        }
        UsersCommand::List => {
            let users = store.run_blocking(user_store::list)?;
            let value = serde_json::Value::Array(users.iter().map(User::public_view).collect());
            print(g, &value, || {
                let mut s = format!(
                    "{:<24} {:<30} {:<9} {}\n",
                    "USERNAME", "EMAIL", "STATE", "ROLES"
                );
                for u in &users {
                    let roles: Vec<&str> = u.roles.iter().map(Name::as_str).collect();
                    s.push_str(&format!(
                        "{:<24} {:<30} {:<9} {}\n",
                        u.username.as_str(),
                        u.email.as_ref().map(Email::as_str).unwrap_or("-"),
                        if u.disabled { "disabled" } else { "enabled" },
                        roles.join(",")
                    ));
                }
                s.trim_end().to_owned()
            });
        }
        UsersCommand::Show { username } | UsersCommand::Export { username } => {
            let user = found(&username)?;
            let totp = store.run_blocking(|c| crate::store::mfa::summary(c, &user.id))?;
            let mut view = user.public_view();
            view["totp"] = match totp {
                Some(t) => serde_json::json!({
                    "enrolled": true,
                    "enrolled_at": crate::clock::rfc3339(t.created_at),
                    "recovery_codes_left": t.recovery_codes_left,
                }),
                None => serde_json::json!({ "enrolled": false }),
            };
            print(g, &view, || {
                serde_json::to_string_pretty(&view).unwrap_or_default()
            });
        }
        UsersCommand::Disable { username } => {
            nf(
                &username,
                store.run_blocking(|c| user_store::set_disabled(c, &username, true, now)),
            )?;
            super::audit(
                &keys,
                "user.disable",
                Some(found(&username)?.id),
                serde_json::json!({"username": username}),
            )?;
            print(g, &serde_json::json!({"disabled": username}), || {
                format!("disabled {username}")
            });
        }
        UsersCommand::Enable { username } => {
            nf(
                &username,
                store.run_blocking(|c| user_store::set_disabled(c, &username, false, now)),
            )?;
            super::audit(
                &keys,
                "user.enable",
                Some(found(&username)?.id),
                serde_json::json!({"username": username}),
            )?;
            print(g, &serde_json::json!({"enabled": username}), || {
                format!("enabled {username}")
            });
        }
        UsersCommand::SetRoles { username, roles } => {
            super::require_roles(&store, &roles)?;
            let roles = role_names(&roles, "role").map_err(anyhow::Error::msg)?;
            nf(
                &username,
                store.run_blocking(|c| user_store::set_roles(c, &username, &roles, now)),
            )?;
            let names: Vec<&str> = roles.iter().map(Name::as_str).collect();
            super::audit(
                &keys,
                "user.set_roles",
                Some(found(&username)?.id),
                serde_json::json!({"username": username, "roles": names}),
            )?;
            print(
                g,
                &serde_json::json!({"username": username, "roles": names}),
                || format!("{username}: roles {}", names.join(", ")),
            );
        }
        UsersCommand::Delete { username } => {
            let id = found(&username)?.id;
            if !store.run_blocking(|c| user_store::delete(c, &username))? {
                return Err(not_found(&username));
            }
            super::audit(
                &keys,
                "user.delete",
                Some(id),
                serde_json::json!({"username": username}),
            )?;
            print(g, &serde_json::json!({"deleted": username}), || {
                format!("deleted {username}")
            });
        }
        UsersCommand::Totp(TotpCommand::Enroll { username }) => {
            let user = found(&username)?;
            let enrolment = crate::mfa::enroll_blocking(
                &store,
                &keys.master,
                &user.id,
                &settings.ui.product_name,
                user.username.as_str(),
                now,
            )?;
            super::audit(
                &keys,
                "user.totp_enroll",
                Some(user.id.clone()),
                serde_json::json!({
                    "username": username,
                    "recovery_codes": enrolment.recovery_codes.len(),
                }),
            )?;
            let value = serde_json::json!({
                "secret": enrolment.secret,
                "otpauth_uri": enrolment.otpauth_uri,
                "recovery_codes": enrolment.recovery_codes,
            });
            print(g, &value, || {
                format!(
                    "TOTP enrolled for {username}; shown once, keep them safe.\n\
                     secret:      {}\n\
                     otpauth URI: {}\n\
                     recovery codes (each works once):\n  {}",
                    enrolment.secret,
                    enrolment.otpauth_uri,
                    enrolment.recovery_codes.join("\n  ")
                )
            });
        }
        UsersCommand::Totp(TotpCommand::Disable { username }) => {
            let user = found(&username)?;
            if !crate::mfa::remove_blocking(&store, &user.id)? {
                bail!("{username} has no TOTP factor");
            }
            super::audit(
                &keys,
                "user.totp_disable",
                Some(user.id.clone()),
                serde_json::json!({"username": username}),
            )?;
            print(g, &serde_json::json!({"totp_disabled": username}), || {
                format!("TOTP removed for {username}: a password alone signs in")
            });
        }
        UsersCommand::ResetPassword { username, .. } => {
            let user = found(&username)?;
            let raw = read_password_line()?;
            let password = Password::for_user(
                &raw,
                user.username.as_str(),
                user.email.as_ref().map(Email::as_str),
            )?;
            let hash = settings.password_hasher()?.hash_blocking(&password)?;
            nf(
                &username,
                store.run_blocking(|c| user_store::set_password(c, &username, &hash, now)),
            )?;
            super::audit(
                &keys,
                "user.reset_password",
                Some(user.id.clone()),
                serde_json::json!({"username": username}),
            )?;
            print(g, &serde_json::json!({"password_reset": username}), || {
                format!("new password set for {username}")
            });
        }
    }
    Ok(())
}
