//! `sigil serve`.

use std::net::SocketAddr;

use clap::Args;

use super::Globals;
use crate::startup::Application;

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides config).
    #[arg(long, value_parser = super::parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Issuer URL (overrides config).
    #[arg(long)]
    pub issuer: Option<String>,
}

/// Run the server until SIGINT/SIGTERM.
pub fn run(g: &Globals, args: ServeArgs) -> anyhow::Result<()> {
    let mut g = g.clone();
    g.overrides.listen = args.listen;
    g.overrides.issuer = args.issuer;
    let settings = g.settings()?;
    crate::telemetry::init_server(
        &settings.log.level,
        settings.log.format == crate::config::LogFormat::Json,
    );
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone()).await?;
        tracing::info!(
            listen = %settings.listen,
            port = app.port(),
            issuer = %settings.issuer(),
            database = if settings.database_url().starts_with("sqlite") { "sqlite" } else { "postgres" },
            "sigil is serving"
        );
        // Start-up lines (warnings included) are on disk before the first request is answered.
        crate::telemetry::flush();
        app.run_until_signal().await?;
        Ok(())
    });
    // Before the caller prints an error, so the log comes first, and before the process exits.
    crate::telemetry::flush();
    result
}
