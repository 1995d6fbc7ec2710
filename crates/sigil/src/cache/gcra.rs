//! The generic cell rate algorithm (GCRA), as every backend runs it: `governor` in process, a
//! Lua script on Redis, one SQL statement on PostgreSQL.
//!
//! A quota of `limit` requests per `period` spaces requests `t = period / limit` apart (the
//! emission interval) and tolerates a burst of `limit` at once (`tau = t * (limit - 1)`). The
//! state of a key is one number, its theoretical arrival time (TAT): a request at `now` passes
//! when `TAT - tau <= now`, and then moves the TAT to `max(TAT, now) + t`; a refused request
//! changes nothing. A key whose TAT is in the past is the same as a fresh one, so its state can
//! be dropped then. These are governor's `Gcra` rules; Redis and PostgreSQL run them in
//! microseconds (the emission interval rounded up, never more permissive).

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A limit: `limit` requests per `period`, all of them allowed at once (burst `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    limit: NonZeroU32,
    period: Duration,
}

impl RateQuota {
    /// `limit` requests per `period`; `None` for a zero limit or period.
    pub fn new(limit: u32, period: Duration) -> Option<RateQuota> {
        let limit = NonZeroU32::new(limit)?;
        (!period.is_zero()).then_some(RateQuota { limit, period })
    }

    /// `limit` requests per minute.
    pub fn per_minute(limit: u32) -> Option<RateQuota> {
        RateQuota::new(limit, Duration::from_secs(60))
    }

    /// Requests allowed per period.
    pub fn limit(&self) -> u32 {
        self.limit.get()
    }

    /// The emission interval `t` (governor's `replenish_1_per`, at least 1 ns).
    pub fn emission(&self) -> Duration {
        (self.period / self.limit.get()).max(Duration::from_nanos(1))
    }

    /// The burst tolerance `tau = t * (limit - 1)`.
    pub fn tolerance(&self) -> Duration {
        self.emission() * (self.limit.get() - 1)
    }

    /// The same quota for governor.
    pub fn governor(&self) -> Option<governor::Quota> {
        governor::Quota::with_period(self.emission()).map(|q| q.allow_burst(self.limit))
    }

    /// `(t, tau)` in whole microseconds, `t` rounded up (for Redis and PostgreSQL).
    pub fn micros(&self) -> (i64, i64) {
        let t = i64::try_from(self.emission().as_nanos().div_ceil(1000)).unwrap_or(i64::MAX);
        (t, t.saturating_mul(i64::from(self.limit.get() - 1)))
    }
}

/// The outcome of one request against a limit: what `X-RateLimit-Limit`, `-Remaining`, `-Reset`
/// and `Retry-After` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Requests that would pass right after this one (0 when refused).
    pub remaining: u32,
    /// Unix seconds (rounded up) when the whole limit is available again.
    pub reset_at: i64,
    /// How long until a request would pass (zero when this one passed).
    pub retry_after: Duration,
}

impl RateDecision {
    /// `Retry-After` in whole seconds, rounded up (at least 1 when refused).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        if d.is_zero() {
            0
        } else {
            d.as_secs() + u64::from(d.subsec_nanos() > 0)
        }
    }

    /// The decision a backend that keeps the TAT in microseconds reached at `now_us`:
    /// `allowed` with the new TAT, or refused with the TAT it left unchanged.
    pub fn from_micros(quota: RateQuota, now_us: i64, tat_us: i64, allowed: bool) -> Self {
        let (t, tau) = quota.micros();
        let reset_at = ceil_secs(tat_us);
        if allowed {
            let room = (now_us + tau + t - tat_us).clamp(0, tau + t);
            RateDecision {
                allowed,
                limit: quota.limit(),
                remaining: u32::try_from(room / t.max(1)).unwrap_or(u32::MAX),
                reset_at,
                retry_after: Duration::ZERO,
            }
        } else {
            let wait = u64::try_from(tat_us - tau - now_us).unwrap_or(0);
            RateDecision {
                allowed,
                limit: quota.limit(),
                remaining: 0,
                reset_at,
                retry_after: Duration::from_micros(wait.max(1)),
            }
        }
    }
}

/// Unix microseconds of `t` (0 before the epoch).
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix nanoseconds of `t` (0 before the epoch).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Unix seconds, rounded up, of a time in microseconds.
pub fn ceil_secs(us: i64) -> i64 {
    us.div_euclid(1_000_000) + i64::from(us.rem_euclid(1_000_000) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_spaces_requests_and_tolerates_a_burst_of_its_limit() {
        let q = RateQuota::per_minute(30).unwrap_or_else(|| panic!("quota"));
        assert_eq!(q.emission(), Duration::from_secs(2));
        assert_eq!(q.tolerance(), Duration::from_secs(58));
        assert_eq!(q.micros(), (2_000_000, 58_000_000));
        let g = q.governor().unwrap_or_else(|| panic!("governor quota"));
        assert_eq!(g.burst_size().get(), 30);
        assert_eq!(g.replenish_interval(), Duration::from_secs(2));
        assert!(RateQuota::new(0, Duration::from_secs(1)).is_none());
        assert!(RateQuota::new(1, Duration::ZERO).is_none());
        // An interval that is not a whole number of microseconds rounds up (stricter).
        let odd = RateQuota::new(3, Duration::from_micros(10)).unwrap_or_else(|| panic!("q"));
        assert_eq!(odd.micros(), (4, 8));
    }

    #[test]
    fn figures_from_a_tat() {
        let q = RateQuota::new(3, Duration::from_secs(3)).unwrap_or_else(|| panic!("quota"));
        let now = 10_000_000;
        // First request of a fresh key: TAT now + t, two more may follow at once.
        let d = RateDecision::from_micros(q, now, now + 1_000_000, true);
        assert_eq!((d.allowed, d.remaining, d.reset_at), (true, 2, 11));
        assert_eq!(d.retry_after_secs(), 0);
        // The third: TAT now + 3t, none left; full again at TAT.
        let d = RateDecision::from_micros(q, now, now + 3_000_000, true);
        assert_eq!((d.remaining, d.reset_at), (0, 13));
        // Refused with TAT now + 3t: the next passes at TAT - tau = now + 1 s.
        let d = RateDecision::from_micros(q, now, now + 3_000_000, false);
        assert_eq!((d.allowed, d.remaining), (false, 0));
        assert_eq!(d.retry_after, Duration::from_secs(1));
        assert_eq!(d.retry_after_secs(), 1);
        let d = RateDecision::from_micros(q, now, now + 3_000_001, false);
        assert_eq!(d.retry_after_secs(), 2, "rounded up");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(1_000_000), 1);
        assert_eq!(ceil_secs(1_000_001), 2);
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(ceil_secs(-1), 0);
    }
}
