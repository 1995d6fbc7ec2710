//! A log context without a `tracing` span: what a request's lines carry (`request{method=…
//! path=… request_id=… client_id=…}:`), kept as the text the plain format prints, and made
//! current on this thread only while the request's future is polled.
//!
//! A registry span costs a request a slab entry, its fields formatted into an extension, and a
//! reference count taken and dropped on every poll of the response and its body; for a JWKS
//! answer that was most of the logging cost. A [`LogContext`] is one allocation of text and a
//! thread-local swap per poll. Only the plain format (`telemetry::plain`) renders it, so
//! it is used only under that format ([`rendered`]); JSON and terminal output keep the span.
//! Fields are written as the default field format writes a span's: the first ones with
//! [`record_display`](LogContext::record_display), later ones appended in the order they are
//! recorded, strings quoted.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::rc::Rc;

/// A named set of fields (see the module docs).
#[derive(Debug)]
pub struct LogContext {
    name: &'static str,
    fields: RefCell<String>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<LogContext>>> = const { RefCell::new(None) };
}

impl LogContext {
    /// A context named `name`, without fields yet.
    pub fn new(name: &'static str) -> Rc<LogContext> {
        Rc::new(LogContext {
            name,
            fields: RefCell::new(String::with_capacity(160)),
        })
    }

    /// Add `field=value`, the value as `Display` shows it.
    pub fn record_display(&self, field: &str, value: &dyn fmt::Display) {
        let mut f = self.fields.borrow_mut();
        if !f.is_empty() {
            f.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(f, "{field}={value}");
    }

    /// Add `field=value`, the value as it is (a method, a path: text the request line
    /// already restricted to visible ASCII).
    pub fn record_raw(&self, field: &str, value: &str) {
        let mut f = self.fields.borrow_mut();
        if !f.is_empty() {
            f.push(' ');
        }
        f.push_str(field);
        f.push('=');
        f.push_str(value);
    }

    /// Add `field="value"` (quoted and escaped as `Debug` shows a string).
    pub fn record_str(&self, field: &str, value: &str) {
        let mut f = self.fields.borrow_mut();
        if !f.is_empty() {
            f.push(' ');
        }
        let _ = write!(f, "{field}={value:?}");
    }

    /// Make this the thread's current context until the guard is dropped (which restores the
    /// previous one).
    pub fn enter(self: &Rc<Self>) -> Entered {
        Entered(CURRENT.with(|c| c.replace(Some(self.clone()))))
    }

    /// `name{fields}:` as the plain format prints a span.
    pub(super) fn write_prefix(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        w.write_str(self.name)?;
        let f = self.fields.borrow();
        if !f.is_empty() {
            w.write_char('{')?;
            w.write_str(&f)?;
            w.write_char('}')?;
        }
        w.write_char(':')
    }
}

/// The thread's context while entered (see [`LogContext::enter`]).
#[must_use = "the context is current only while the guard lives"]
#[derive(Debug)]
pub struct Entered(Option<Rc<LogContext>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The thread's current context.
pub fn current() -> Option<Rc<LogContext>> {
    CURRENT.with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
}

/// Call `f` with the thread's current context, if there is one; returns whether there was.
pub fn with_current(f: impl FnOnce(&LogContext)) -> bool {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(current) => match current.as_deref() {
            Some(ctx) => {
                f(ctx);
                true
            }
            None => false,
        },
        Err(_) => false,
    })
}

/// Whether the current subscriber prints contexts: it formats with the plain format. Under
/// any other subscriber (JSON, a terminal, none at all) spans carry the fields instead.
pub fn rendered() -> bool {
    tracing::dispatcher::get_default(|d| d.downcast_ref::<super::plain::PlainFormat>().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(ctx: &LogContext) -> String {
        let mut s = String::new();
        ctx.write_prefix(&mut s).unwrap_or_default();
        s
    }

    #[test]
    fn fields_render_like_a_span_and_the_context_is_current_only_while_entered() {
        let ctx = LogContext::new("request");
        assert_eq!(prefix(&ctx), "request:");
        ctx.record_raw("method", "POST");
        ctx.record_display("path", &"/token");
        ctx.record_str("client_id", "billing \"x\"\u{1b}");
        assert_eq!(
            prefix(&ctx),
            r#"request{method=POST path=/token client_id="billing \"x\"\u{1b}"}:"#
        );
        assert!(!with_current(|_| {}));
        {
            let _outer = ctx.enter();
            let inner = LogContext::new("inner");
            {
                let _g = inner.enter();
                with_current(|c| assert_eq!(c.name, "inner"));
            }
            let mut seen = "";
            assert!(with_current(|c| seen = c.name));
            assert_eq!(seen, "request");
            assert!(current().is_some_and(|c| Rc::ptr_eq(&c, &ctx)));
        }
        assert!(!with_current(|_| {}));
        assert!(current().is_none());
    }
}
