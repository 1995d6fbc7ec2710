//! Time. [`sigil_verify::Clock`] is the only source of "now" in `oauth`, `keys` and the jobs;
//! tests inject their own (the API tests: real time plus an offset they can advance).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

pub use sigil_verify::{Clock, SystemClock};

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Unix seconds of the clock's now.
pub fn unix_now(clock: &dyn Clock) -> i64 {
    match clock.now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Unix milliseconds of the clock's now.
pub fn unix_now_ms(clock: &dyn Clock) -> i64 {
    match clock.now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Seconds of a duration, saturating.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// RFC 3339 text of a Unix time (None if out of range).
pub fn rfc3339(t: i64) -> Option<String> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t).ok()?;
    dt.format(&time::format_description::well_known::Rfc3339)
        .ok()
}
