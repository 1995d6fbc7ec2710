//! Logging setup: `tracing` to stderr, text or JSON, filtered by `log.level` (or `RUST_LOG`).
//! The text format is coloured only when stderr is a terminal.
//!
//! `sigil serve` writes its log through a buffer ([`init_server`]): each formatted line is
//! appended in memory and the buffer goes to stderr in one `write(2)` when it holds
//! [`BUFFER_BYTES`], at the latest [`FLUSH_EVERY`] after a line was logged (a flusher thread),
//! once start-up is done and on exit ([`flush`], also called by the panic hook). Every line is kept; at the request
//! rate of a busy server this saves one system call per request line. The CLI commands log
//! straight to stderr ([`init`]), so their messages are never late.
//!
//! Text for a terminal is tracing-subscriber's default format, in colour; text for a file or a
//! collector is the same line written by `plain`, without the colour machinery, its cost per
//! request line a fraction of the default's. Directives that name only levels and targets (the
//! usual `info`, `sigil=debug,warn`) filter through `Targets`, decided once per call site;
//! span and field directives need `EnvFilter`, which tracks every span as it is entered and
//! left. Under the plain format a request's fields live in a [`context::LogContext`] instead
//! of a span (`http::request_log`), printed where the span would be.

pub mod context;
pub(crate) mod plain;

use std::io::{self, BufWriter, IsTerminal, Stderr, Write};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The most a server's log line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// The buffer is written out when a line would not fit any more.
pub const BUFFER_BYTES: usize = 64 * 1024;

static BUFFER: LazyLock<Mutex<BufWriter<Stderr>>> =
    LazyLock::new(|| Mutex::new(BufWriter::with_capacity(BUFFER_BYTES, io::stderr())));

fn buffer() -> MutexGuard<'static, BufWriter<Stderr>> {
    BUFFER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Write out whatever the server's log buffer holds (a no-op for the CLI's direct logging).
pub fn flush() {
    let _ = buffer().flush();
}

/// The buffered writer of `sigil serve`.
#[derive(Debug, Clone, Copy)]
struct Buffered;

/// One line's access to the buffer: the formatter has already rendered the line, so the lock is
/// held only for the copy.
struct Line(MutexGuard<'static, BufWriter<Stderr>>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(buffer())
    }
}

/// Install the global subscriber once, logging straight to stderr (CLI commands). Later calls
/// are no-ops.
pub fn init(level: &str, json: bool) {
    install(level, json, io::stderr);
}

/// Install the global subscriber for `sigil serve`: as [`init`], through the buffer, with a
/// flusher thread and a panic hook that writes the buffer out before the panic message.
pub fn init_server(level: &str, json: bool) {
    if !install(level, json, Buffered) {
        return;
    }
    let flusher = std::thread::Builder::new()
        .name("sigil-log".to_owned())
        .spawn(|| {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            }
        });
    if flusher.is_err() {
        // Without the thread, lines would wait for the buffer to fill: log directly instead.
        eprintln!("sigil: cannot start the log flusher thread; log lines may be late");
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // `try_lock`: the panicking thread may be the one holding the buffer.
        if let Ok(mut b) = BUFFER.try_lock() {
            let _ = b.flush();
        }
        previous(info);
    }));
}

/// Returns whether this call installed the subscriber.
fn install<W>(level: &str, json: bool, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match EnvFilter::try_from_default_env() {
        Ok(env) => choose_filter(
            &std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_default(),
            env,
        ),
        Err(_) => choose_filter(level, EnvFilter::new(level)),
    };
    // Colours for a person at a terminal only: a log file or collector gets plain text.
    let ansi = io::stderr().is_terminal();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    if json {
        init_with(filter, layer.json().with_current_span(true))
    } else if ansi {
        init_with(filter, layer)
    } else {
        init_with(
            filter,
            layer
                .event_format(plain::PlainFormat)
                .fmt_fields(plain::PlainFields),
        )
    }
}

/// The registry under one of the two filters (the other `None`, which does nothing) and the
/// format layer, all statically typed, so no span or event goes through a `dyn Layer`.
type Filtered = Layered<Option<EnvFilter>, Layered<Option<Targets>, Registry>>;

fn init_with<L>(filter: Filter, layer: L) -> bool
where
    L: Layer<Filtered> + Send + Sync + 'static,
{
    let (targets, env) = match filter {
        Filter::Targets(t) => (Some(t), None),
        Filter::Env(e) => (None, Some(e)),
    };
    tracing_subscriber::registry()
        .with(targets)
        .with(env)
        .with(layer)
        .try_init()
        .is_ok()
}

/// The global filter of a set of directives.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "made once at start-up and taken apart at once"
)]
enum Filter {
    /// Levels by target only (`info`, `sigil=debug,warn`): decided once per call site, nothing
    /// to do per span.
    Targets(Targets),
    /// Anything else (span or field directives): `EnvFilter`, which tracks every span it is
    /// entered, left and closed.
    Env(EnvFilter),
}

/// `Targets` when `directives` are plain `target=level` lists, which both filters read alike;
/// `env` (the same directives as an `EnvFilter`) otherwise.
fn choose_filter(directives: &str, env: EnvFilter) -> Filter {
    let plain = !directives.is_empty()
        && directives.split(',').all(|d| {
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_:=.-".contains(&b))
        });
    match directives.parse::<Targets>() {
        Ok(t) if plain => Filter::Targets(t),
        _ => Filter::Env(env),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn targets(directives: &str) -> Option<Targets> {
        match choose_filter(directives, EnvFilter::new(directives)) {
            Filter::Targets(t) => Some(t),
            Filter::Env(_) => None,
        }
    }

    #[test]
    fn plain_levels_and_targets_use_the_cheap_filter_with_the_same_meaning() {
        let info = targets("info").expect("a level is plain");
        assert!(info.would_enable("sigil::http", &Level::INFO));
        assert!(info.would_enable("actix_server::worker", &Level::WARN));
        assert!(!info.would_enable("sigil::http", &Level::DEBUG));

        let mixed = targets("warn,sigil=debug,sigil::store=error").expect("targets are plain");
        assert!(mixed.would_enable("sigil::http", &Level::DEBUG));
        assert!(!mixed.would_enable("sigil::store::keys", &Level::WARN));
        assert!(mixed.would_enable("sigil::store::keys", &Level::ERROR));
        assert!(!mixed.would_enable("actix_web", &Level::INFO));
        assert!(mixed.would_enable("actix_web", &Level::WARN));

        let only = targets("sigil=info").expect("one target is plain");
        assert!(!only.would_enable("actix_web", &Level::ERROR));
        assert!(targets("OFF").is_some_and(|t| !t.would_enable("sigil", &Level::ERROR)));
    }

    #[test]
    fn span_and_field_directives_keep_env_filter() {
        for directives in [
            "sigil[request]=debug",
            "sigil[request{client_id=billing}]=trace",
            "info, sigil=debug",
            "info,,sigil=debug",
            "",
            "sigil=loud",
        ] {
            assert!(targets(directives).is_none(), "{directives:?}");
        }
    }
}
