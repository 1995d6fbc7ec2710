//! The plain-text log format of a log file or collector (no terminal, so no colours): the line
//! tracing-subscriber's default format writes without ANSI, written without its styling
//! machinery, which costs a request line most of its formatting time even when every style is
//! empty.
//!
//! ```text
//! 2026-12-01T13:06:48.309356Z  INFO request{method=GET path=/jwks.json request_id=…}: sigil::http: request completed status=200
//! ```
//!
//! [`PlainFormat`] writes timestamp, level, the spans in scope with their fields, target and the
//! event's fields; the timestamp's date and time of day are rendered once a second (per thread),
//! only the microseconds every line. [`PlainFields`] renders fields as `DefaultFields` does:
//! the message first as written, then `name=value` with values in their `Debug` form (strings
//! quoted), ANSI and C1 control characters in messages and errors escaped. A unit test checks
//! line for line that both formats agree. A line logged while a [`LogContext`] is current
//! carries it first, where its span would be.
//!
//! [`LogContext`]: super::context::LogContext

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFormat;

/// The field format (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // An event from the `log` crate carries its real level and target as fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level_str(meta.level()))?;
        writer.write_char(' ')?;
        // A request's context (a request served without a span) comes first, as its span
        // would.
        let mut prefixed = Ok(());
        let mut seen = super::context::with_current(|c| prefixed = c.write_prefix(&mut writer));
        prefixed?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
        }
        if seen {
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let sanitize = writer.sanitizes_ansi_escapes();
        write_fields(&mut writer, sanitize, event)?;
        writer.write_char('\n')
    }
}

/// The level as the default format pads it.
fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

thread_local! {
    /// The second last rendered on this thread and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// `2026-12-01T13:06:48.309356Z ` (RFC 3339, UTC, microseconds, then a space).
fn write_timestamp(writer: &mut Writer<'_>, now: SystemTime) -> fmt::Result {
    let Ok(since) = now.duration_since(UNIX_EPOCH) else {
        return writer.write_str("<unknown time> ");
    };
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let Some(rendered) = render_second(secs) else {
            return writer.write_str("<unknown time> ");
        };
        text = rendered;
        SECOND.set((secs, text));
    }
    let mut micros = since.subsec_micros();
    let mut frac = *b".000000Z ";
    for digit in frac[1..7].iter_mut().rev() {
        // `micros % 10` is a single digit.
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    writer.write_str(std::str::from_utf8(&frac).map_err(|_| fmt::Error)?)
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second (years 0 to 9999, which covers any clock this runs
/// under).
fn render_second(secs: u64) -> Option<[u8; 19]> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    let mut out = [0u8; 19];
    let mut w = &mut out[..];
    std::io::Write::write_fmt(
        &mut w,
        format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
    )
    .ok()?;
    w.is_empty().then_some(out)
}

impl<'writer> FormatFields<'writer> for PlainFields {
    /// A span's fields (an event's are written straight into its line by [`PlainFormat`]): they
    /// are rendered into a reused buffer first and stored with one `write_str`, so the span's
    /// string is allocated once at its full length rather than grown from nothing.
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let sanitize = writer.sanitizes_ansi_escapes();
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                write_fields(&mut *buf, sanitize, fields)?;
                writer.write_str(&buf)
            }
            // A field's `Debug` that itself formats fields: write directly.
            Err(_) => write_fields(&mut writer, sanitize, fields),
        })
    }
}

thread_local! {
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Write `fields` as `DefaultFields` does.
fn write_fields<R: RecordFields>(
    writer: &mut dyn fmt::Write,
    sanitize: bool,
    fields: R,
) -> fmt::Result {
    let mut v = PlainVisitor {
        writer,
        sanitize,
        empty: true,
        result: Ok(()),
    };
    fields.record(&mut v);
    v.result
}

/// Writes fields as `DefaultFields` does.
struct PlainVisitor<'a> {
    writer: &'a mut dyn fmt::Write,
    sanitize: bool,
    empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn pad(&mut self) -> fmt::Result {
        if self.empty {
            self.empty = false;
            Ok(())
        } else {
            self.writer.write_char(' ')
        }
    }

    fn write(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        let name = field.name();
        // What a `log` record carries besides its message is in the line already.
        if name.starts_with("log.") {
            return Ok(());
        }
        self.pad()?;
        match name {
            "message" => write!(self.writer, "{:?}", Escaped(value, self.sanitize)),
            name => {
                self.writer
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.writer.write_char('=')?;
                write!(self.writer, "{value:?}")
            }
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.write(field, &format_args!("{value}"))
        } else {
            self.write(field, &value)
        };
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        let sanitize = self.sanitize;
        self.result = match value.source() {
            Some(source) => {
                let name = field.name();
                self.write(
                    field,
                    &format_args!(
                        "{} {name}.sources={}",
                        Escaped(&format_args!("{value}"), sanitize),
                        Sources(source, sanitize)
                    ),
                )
            }
            None => self.write(
                field,
                &format_args!("{}", Escaped(&format_args!("{value}"), sanitize)),
            ),
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.write(field, value);
    }
}

/// An error and its sources, `[outer, inner, ...]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static), bool);

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut current = Some(self.0);
        while let Some(e) = current {
            list.entry(&Escaped(&format_args!("{e}"), self.1));
            current = e.source();
        }
        list.finish()
    }
}

/// A value written with ANSI and C1 control characters escaped (when `.1`), so a logged
/// message cannot drive the terminal that shows the log.
struct Escaped<'a>(&'a dyn fmt::Debug, bool);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(EscapingWriter(f), "{:?}", self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // The common case, nothing to escape, in one piece.
        if !s.chars().any(needs_escape) {
            return self.0.write_str(s);
        }
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                ch if needs_escape(ch) => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                ch => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

fn needs_escape(ch: char) -> bool {
    matches!(
        ch,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            let bytes = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("store unavailable\x1b[31m")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    /// Everything the server logs, in the shapes it logs it.
    fn emit() {
        tracing::info!("started");
        let span = tracing::info_span!(
            "request",
            method = %"POST",
            path = %"/token",
            request_id = %"8a1c94d0-421a-48b3-9d2e-3cf9027f1fa2",
            client_id = tracing::field::Empty,
            grant = tracing::field::Empty,
        );
        span.record("grant", "client_credentials");
        span.record("client_id", "billing \"quoted\"\x1b[2J");
        span.in_scope(|| {
            let inner = tracing::debug_span!("db", table = "clients");
            inner.in_scope(|| tracing::warn!(error = %"timeout", "query \u{9b}slow\x07"));
            tracing::error!(
                error = &Outer(Inner) as &(dyn std::error::Error + 'static),
                "failed"
            );
            tracing::error!(
                error = &Inner as &(dyn std::error::Error + 'static),
                "plain"
            );
            tracing::info!(
                status = 200u16,
                ok = true,
                ratio = 0.5,
                n = -3i64,
                r#type = "x",
                "request completed"
            );
        });
        tracing::info!(target: "custom::target", kid = ?Some("k1"), "keys {} loaded", 2);
        tracing::warn!("");
        tracing::info!(only = 1);
    }

    fn strip_timestamp(line: &str) -> String {
        // `2026-12-01T13:06:48.309356Z ` is 28 bytes.
        assert_eq!(line.as_bytes().get(26), Some(&b'Z'), "{line}");
        assert_eq!(line.as_bytes().get(10), Some(&b'T'), "{line}");
        line[28..].to_owned()
    }

    #[test]
    fn lines_match_the_default_format_without_ansi() {
        let ours = Capture::default();
        let theirs = Capture::default();
        let plain = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .event_format(PlainFormat)
            .fmt_fields(PlainFields)
            .with_writer(ours.clone())
            .finish();
        let default = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_ansi(false)
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(plain, emit);
        tracing::subscriber::with_default(default, emit);
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 8, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(strip_timestamp(a), strip_timestamp(b));
        }
        // The escapes really happened (the comparison alone would pass if both forgot).
        assert!(ours.iter().any(|l| l.contains(r"query \u{9b}slow\x07")));
        assert!(
            ours.iter()
                .any(|l| l.contains(r#"client_id="billing \"quoted\"\u{1b}[2J""#))
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        let at = UNIX_EPOCH + std::time::Duration::new(1_796_131_608, 309_356_789);
        write_timestamp(&mut Writer::new(&mut s), at).unwrap_or_default();
        assert_eq!(s, "2026-12-01T13:26:48.309356Z ");
        // The cached second is reused, and a new second rendered.
        s.clear();
        write_timestamp(
            &mut Writer::new(&mut s),
            at + std::time::Duration::from_micros(7),
        )
        .unwrap_or_default();
        assert_eq!(s, "2026-12-01T13:26:48.309363Z ");
        s.clear();
        write_timestamp(
            &mut Writer::new(&mut s),
            at + std::time::Duration::from_secs(86_400),
        )
        .unwrap_or_default();
        assert_eq!(s, "2026-12-02T13:26:48.309356Z ");
        s.clear();
        write_timestamp(&mut Writer::new(&mut s), UNIX_EPOCH).unwrap_or_default();
        assert_eq!(s, "1970-01-01T00:00:00.000000Z ");
    }
}
