//! Latency percentiles from the raw samples.
//!
//! A run records at most a few million samples, so keeping them all (8 bytes each) and sorting
//! once is cheaper and exact, compared with a histogram.

use std::time::Duration;

/// Summary of one scenario's latencies.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latency {
    /// Median.
    pub(crate) p50: Duration,
    /// 99th percentile.
    pub(crate) p99: Duration,
    /// Slowest request.
    pub(crate) max: Duration,
}

impl Latency {
    /// Summarises samples in nanoseconds (sorts them in place).
    pub(crate) fn from_nanos(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        Latency {
            p50: percentile(samples, 0.50),
            p99: percentile(samples, 0.99),
            max: Duration::from_nanos(samples.last().copied().unwrap_or(0)),
        }
    }
}

/// Nearest-rank percentile of sorted samples; zero when there are none.
fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank: the smallest value with at least p of the samples at or below it.
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    Duration::from_nanos(sorted[idx])
}

/// A latency for a table cell: microseconds below 1 ms, milliseconds above.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=100).rev().collect();
        let l = Latency::from_nanos(&mut s);
        assert_eq!(l.p50, Duration::from_nanos(50));
        assert_eq!(l.p99, Duration::from_nanos(99));
        assert_eq!(l.max, Duration::from_nanos(100));
        assert_eq!(Latency::from_nanos(&mut []).p99, Duration::ZERO);
        assert_eq!(Latency::from_nanos(&mut [7]).p50, Duration::from_nanos(7));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_micros(42)), "42 µs");
        assert_eq!(fmt_duration(Duration::from_micros(1500)), "1.50 ms");
    }
}
