//! The clock every time-based rule reads (lockout, session expiry, temporary passwords),
//! passed in so tests can pin and advance time instead of sleeping; and how a time or a
//! length of time reads on a page or in a message.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the one time representation stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(secs(d)))
    }

    pub fn minus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(secs(d)))
    }

    /// Time from `self` until `later`, zero when `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_secs(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

/// "2027-01-15 08:00" for a timestamp: how pages and mail show a time (UTC, to the
/// minute).
pub fn utc(t: Timestamp) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(t.0).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(at).to_string();
    s.get(..16).map(|d| d.replace('T', " ")).unwrap_or(s)
}

/// "1 hour", "15 minutes", "30 seconds".
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s.is_multiple_of(3600) && s >= 3600 {
        (s / 3600, "hour")
    } else if s.is_multiple_of(60) && s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to; tests share it with the server they start.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(secs(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_naturally() {
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human(Duration::from_secs(3)), "3 seconds");
        assert_eq!(utc(Timestamp(0)), "1970-01-01 00:00");
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), Timestamp(1_090));
    }

    #[test]
    fn until_is_zero_for_the_past() {
        assert_eq!(Timestamp(10).until(Timestamp(5)), Duration::ZERO);
        assert_eq!(Timestamp(5).until(Timestamp(65)), Duration::from_secs(60));
    }
}
