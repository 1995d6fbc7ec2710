//! The command line: `sigil serve` and the admin commands. One file per command group. Every
//! command takes `--json` (anywhere on the line) for machine-readable output. Exit codes: 0 done,
//! 1 refused or failed (the reason on stderr), 2 bad usage.

pub mod apis;
pub mod audit;
pub mod clients;
pub mod config;
pub mod examples;
pub mod keys;
pub mod remote;
pub mod roles;
pub mod serve;
pub mod token;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};

/// Sigil, a small OpenID Connect identity provider.
#[derive(Debug, Parser)]
#[command(name = "sigil", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: $SIGIL_CONFIG, else built-in defaults).
    #[arg(long, global = true, env = "SIGIL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Database URL (overrides config and environment).
    #[arg(long, global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data directory (overrides config and environment).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Run the command against this Sigil's admin API (its issuer URL) instead of the local
    /// database; credentials from SIGIL_ADMIN_TOKEN or SIGIL_ADMIN_CLIENT_ID/_SECRET.
    #[arg(long, global = true, env = "SIGIL_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the identity provider.
    Serve(serve::ServeArgs),
    /// Create the database if missing, apply migrations, create the master key if missing (a
    /// database without keys only), and exit. With `serve`, the only command that creates.
    Migrate,
    /// Signing keys: list, generate, rotate, retire, export.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// OAuth clients: create, list, show, update, delete, rotate-secret.
    #[command(subcommand)]
    Clients(clients::ClientsCommand),
    /// End users: create, list, show, disable, enable, set-roles, delete, export, reset-password,
    /// totp.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Roles: the permissions users and clients hold (create, list, show, update, delete, import).
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// APIs (resource servers): the audience each answers to and the permissions it declares.
    #[command(subcommand)]
    Apis(apis::ApisCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Tokens: verify one as a resource server would.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The audit trail: verify its hash chain, show the newest events, prune old ones.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Parse the process's command line, with every command's examples in its `--help`.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = examples::with_examples(Cli::command()).get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

/// Global options every command needs.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--json`.
    pub json: bool,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// Flag overrides.
    pub overrides: Overrides,
}

impl Globals {
    /// Load settings from the file, the environment and the flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings::load(
            self.config.as_deref(),
            std::env::vars(),
            &self.overrides,
        )?)
    }
}

/// Run a parsed command line. Returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let globals = Globals {
        json: cli.json,
        config: cli.config.clone(),
        overrides: Overrides {
            database_url: cli.database_url.clone(),
            data_dir: cli.data_dir.clone(),
            ..Overrides::default()
        },
    };
    let remote_server = cli
        .server
        .clone()
        .filter(|_| !matches!(cli.command, Command::Token(_)));
    let result = if let Some(server) = remote_server {
        remote::run(&globals, &server, cli.command)
    } else {
        match cli.command {
            Command::Token(cmd) => return token::run(cmd),
            Command::Serve(args) => serve::run(&globals, args),
            Command::Migrate => migrate(&globals),
            Command::Keys(cmd) => keys::run(&globals, cmd),
            Command::Clients(cmd) => clients::run(&globals, cmd),
            Command::Users(cmd) => users::run(&globals, cmd),
            Command::Roles(cmd) => roles::run(&globals, cmd),
            Command::Apis(cmd) => apis::run(&globals, cmd),
            Command::Config(cmd) => config::run(&globals, cmd),
            Command::Audit(cmd) => audit::run(&globals, cmd),
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            if globals.json {
                eprintln!("{}", serde_json::json!({"error": format!("{e:#}")}));
            } else {
                eprintln!("error: {e:#}");
            }
            1
        }
    }
}

fn migrate(g: &Globals) -> anyhow::Result<()> {
    let settings = g.settings()?;
    crate::telemetry::init(
        &settings.log.level,
        settings.log.format == crate::config::LogFormat::Json,
    );
    let (_, applied) = crate::startup::prepare(&settings)?;
    crate::startup::warn_if_exposed(&settings);
    print(g, &serde_json::json!({"applied": applied}), || {
        if applied.is_empty() {
            "database is up to date".to_owned()
        } else {
            format!("applied {}", applied.join(", "))
        }
    });
    Ok(())
}

/// Record an administrative change in the audit trail, as actor `cli:<login name>`. Runs after
/// the change; if the event cannot be written the command fails saying so.
pub fn audit(
    keys: &crate::keys::KeyService,
    kind: &'static str,
    subject: Option<String>,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let who = login_name();
    let event = crate::store::audit::NewEvent {
        at: crate::clock::unix_now(&crate::clock::SystemClock),
        kind,
        actor: format!("cli:{who}"),
        subject,
        client_id: None,
        details,
    };
    keys.store
        .run_blocking(|c| crate::store::audit::append(c, &keys.master, event))
        .map_err(|e| {
            anyhow::anyhow!("the change was made, but its audit event could not be written: {e}")
        })?;
    Ok(())
}

/// Refuse role names that are no role (stored or built in), naming them, so a typo never
/// grants nothing silently.
pub fn require_roles(store: &crate::store::Store, roles: &[String]) -> anyhow::Result<()> {
    if roles.is_empty() {
        return Ok(());
    }
    let names = crate::domain::authz::role_names(roles, "--role").map_err(anyhow::Error::msg)?;
    let unknown = store.run_blocking(|c| crate::store::roles::unknown(c, &names))?;
    if !unknown.is_empty() {
        anyhow::bail!(crate::domain::authz::unknown_roles_message(&unknown));
    }
    Ok(())
}

/// The operator's login name, for `cli:<name>` actors.
pub fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Print `value` as JSON with `--json`, else the human text.
pub fn print(g: &Globals, value: &serde_json::Value, human: impl FnOnce() -> String) {
    if g.json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

/// `--listen` parser shared by commands.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an address like 127.0.0.1:8080"))
}
