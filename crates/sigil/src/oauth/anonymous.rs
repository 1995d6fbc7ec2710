//! How failed logins of unknown names reach the audit trail: aggregated, so a flood of them
//! cannot grow it without bound. Per window ([`WINDOW`]) and client network ([`bucket`]: an
//! IPv4 /24 or an IPv6 /64), the first failure is recorded as usual and then one summary at
//! 10, 100, 1000, ... failures; across all networks at most [`RECORDED_CAP`] failures per window
//! are recorded or summarised that way, after which only summaries of the overall count at
//! each power of ten are. So one window adds at most `RECORDED_CAP + log10(failures)` rows.
//! Failures of known accounts are always recorded (the lockout bounds them).

use std::net::IpAddr;

/// Length of an aggregation window, seconds.
pub const WINDOW: i64 = 600;
/// Most events per window for anonymous failures before only overall summaries are written.
pub const RECORDED_CAP: u64 = 1000;

/// What to write for one anonymous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// The usual `login.failure` event.
    Event,
    /// `login.failure.summary` for the failure's network: `count` failures this window.
    NetworkSummary {
        /// Failures from the network this window.
        count: u64,
    },
    /// `login.failure.summary` for all networks: `count` failures this window.
    OverallSummary {
        /// Failures from everywhere this window.
        count: u64,
    },
    /// Nothing: counted only.
    Nothing,
}

fn power_of_ten(n: u64) -> bool {
    let mut p = 10;
    while p < n {
        match p.checked_mul(10) {
            Some(next) => p = next,
            None => return false,
        }
    }
    p == n
}

/// Decide from this failure's position in its network's count and in the overall count (both
/// from 1, within the current window).
pub fn decide(from_network: u64, overall: u64) -> Record {
    if overall <= RECORDED_CAP {
        if from_network <= 1 {
            Record::Event
        } else if power_of_ten(from_network) {
            Record::NetworkSummary {
                count: from_network,
            }
        } else {
            Record::Nothing
        }
    } else if power_of_ten(overall) {
        Record::OverallSummary { count: overall }
    } else {
        Record::Nothing
    }
}

/// The network an address is counted under: IPv4 /24, IPv6 /64; anything else as written.
pub fn bucket(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => ip.to_owned(),
    }
}

/// The start of the window `now` falls in.
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_and_powers_of_ten_are_recorded() {
        let recorded: Vec<u64> = (1..=1000)
            .filter(|n| decide(*n, *n) != Record::Nothing)
            .collect();
        assert_eq!(recorded, [1, 10, 100, 1000]);
        assert_eq!(decide(10, 10), Record::NetworkSummary { count: 10 });
    }

    #[test]
    fn a_window_writes_a_bounded_number_of_rows() {
        // A million failures, each from a new network.
        let rows = (1..=1_000_000u64)
            .filter(|n| decide(1, *n) != Record::Nothing)
            .count() as u64;
        assert_eq!(rows, RECORDED_CAP + 3, "the cap, then 10^4, 10^5, 10^6");
    }

    #[test]
    fn networks() {
        assert_eq!(bucket("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(bucket("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(bucket("unknown"), "unknown");
        assert_eq!(window_start(1_200), 1_200);
        assert_eq!(window_start(1_799), 1_200);
    }
}
