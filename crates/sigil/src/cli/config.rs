//! `sigil config check`.

use clap::Subcommand;

use super::{Globals, print};

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (`--config FILE`, else $SIGIL_CONFIG) and the environment, and
    /// print the effective settings with secrets redacted, and where shared state is kept
    /// (`shared_state`: redis, postgres or in-process).
    Check,
}

/// Run a `config` subcommand.
pub fn run(g: &Globals, cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check => {
            let settings = g.settings()?;
            let shared = crate::cache::Choice::for_settings(&settings);
            let mut view = serde_json::to_value(settings.effective())?;
            if let Some(map) = view.as_object_mut() {
                map.insert("shared_state".into(), shared.to_string().into());
            }
            print(g, &view, || {
                format!(
                    "configuration is valid\nshared state: {}\n{}",
                    shared.describe(),
                    serde_json::to_string_pretty(&view).unwrap_or_default()
                )
            });
            Ok(())
        }
    }
}
