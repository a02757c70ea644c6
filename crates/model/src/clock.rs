//! The clock the CSE decides by: expiry, token and certificate validity, key lifetimes,
//! supervision windows and rate limits all ask it for the time, so a test can move time
//! forward instead of sleeping for it to pass.
//!
//! Durations of I/O (timeouts) are not decisions about time and keep `Instant` directly.

use crate::time::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A cheap, cloneable handle on the time. The default is the system clock; a
/// [`ManualClock`] hands out handles that run ahead of it by what a test advanced.
///
/// Reading it is the system clock plus, for a manual clock, one relaxed atomic load: no lock
/// on the request path.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Nanoseconds a test has advanced this clock by; none: the system clock.
    advanced: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock, which production always uses.
    pub fn system() -> Self {
        Self::default()
    }

    /// How far a test has moved this clock ahead of the system clock.
    fn ahead(&self) -> Duration {
        self.advanced.as_ref().map_or(Duration::ZERO, |a| {
            Duration::from_nanos(a.load(Ordering::Relaxed))
        })
    }

    /// The current time, as the CSE stores and compares it.
    pub fn now(&self) -> Timestamp {
        Timestamp::from(self.system_time())
    }

    /// The current time as a `SystemTime` (certificate and key validity).
    pub fn system_time(&self) -> SystemTime {
        let now = SystemTime::now();
        now.checked_add(self.ahead()).unwrap_or(now)
    }

    /// The current time in whole seconds since the Unix epoch (journals' expiry fields).
    pub fn unix(&self) -> u64 {
        self.system_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The current monotonic instant, for windows (refusal counts, rate limits,
    /// supervision) that must not jump when the wall clock is set.
    pub fn instant(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.ahead()).unwrap_or(now)
    }
}

/// Two handles are the same clock when both are the system clock or both come from the
/// same [`ManualClock`] (so a configuration holding one still compares by its settings).
impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        match (&self.advanced, &other.advanced) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

/// A clock for tests: it follows the system clock, plus whatever it has been advanced by,
/// so what the CSE records still orders by creation while expiry can be reached at once.
#[derive(Debug, Default)]
pub struct ManualClock {
    advanced: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock that reads as the system clock until it is advanced.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle to give to the components under test.
    pub fn clock(&self) -> Clock {
        Clock {
            advanced: Some(self.advanced.clone()),
        }
    }

    /// Moves every handle of this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.advanced.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_its_own_handles() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let system = Clock::system();
        let before = clock.now();
        manual.advance(Duration::from_secs(3600));
        let ahead = clock.now() - system.now();
        assert!(ahead >= chrono::Duration::seconds(3599), "{ahead}");
        assert!(clock.now() - before >= chrono::Duration::seconds(3600));
        assert!(clock.unix() >= system.unix() + 3599);
        assert!(clock.instant() >= Instant::now() + Duration::from_secs(3599));
    }

    #[test]
    fn handles_compare_by_their_source() {
        let manual = ManualClock::new();
        assert_eq!(Clock::system(), Clock::default());
        assert_eq!(manual.clock(), manual.clock());
        assert_ne!(manual.clock(), Clock::system());
        assert_ne!(manual.clock(), ManualClock::new().clock());
    }
}
