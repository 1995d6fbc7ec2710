//! Logging setup: `tracing` to stderr, text or JSON, filtered by `log.level` (or `RUST_LOG`).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber once. Later calls are no-ops.
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
