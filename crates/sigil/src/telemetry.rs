//! Logging setup: `tracing` to stderr, text or JSON, filtered by `log.level` (or `RUST_LOG`).
//! The text format is coloured only when stderr is a terminal.
//!
//! `sigil serve` writes its log through a buffer ([`init_server`]): each formatted line is
//! appended in memory and the buffer goes to stderr in one `write(2)` when it holds
//! [`BUFFER_BYTES`], at the latest [`FLUSH_EVERY`] after a line was logged (a flusher thread),
//! once start-up is done and on exit ([`flush`], also called by the panic hook). Every line is kept; at the request
//! rate of a busy server this saves one system call per request line. The CLI commands log
//! straight to stderr ([`init`]), so their messages are never late.

use std::io::{self, BufWriter, IsTerminal, Stderr, Write};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours for a person at a terminal only: a log file or collector gets plain text,
        // which is also cheaper to render.
        .with_ansi(io::stderr().is_terminal())
        .with_writer(writer);
    if json {
        builder.json().with_current_span(true).try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    }
}
