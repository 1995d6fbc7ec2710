//! `sigil config check`.

use clap::Subcommand;

use super::{Globals, print};

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (`--config FILE`, else $SIGIL_CONFIG) and the environment, and
    /// print the effective settings with secrets redacted.
    Check,
}

/// Run a `config` subcommand.
pub fn run(g: &Globals, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            let settings = g.settings()?;
            let view = serde_json::to_value(settings.effective())?;
            print(g, &view, || {
                format!(
                    "configuration is valid\n{}",
                    serde_json::to_string_pretty(&view).unwrap_or_default()
                )
            });
            Ok(())
        }
    }
}
