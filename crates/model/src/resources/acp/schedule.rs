//! `m2m:scheduleEntry` (TS-0004 clause 7.4.9.1): the 7-field UTC cron string of an ACP time
//! window (`actw`): second, minute, hour, day of month, month, day of week (0 = Sunday), year.
//!
//! A field is `*`, or a comma-separated list of elements; an element is a number, a range
//! `a-b`, or a range or `*` followed by a step `/n`. Anything else is refused, so a window
//! that was accepted at creation means exactly one thing at decision time.
//!
//! NOTE(acp): classic cron ORs day-of-month and day-of-week when both are restricted; the
//! oneM2M text does not say so, and here every field must match (AND), which never grants
//! more than the stricter reading.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::fmt;

/// The inclusive value range of each field, in order.
const BOUNDS: [(u32, u32); 7] = [
    (0, 59),
    (0, 59),
    (0, 23),
    (1, 31),
    (1, 12),
    (0, 6),
    (2000, 9999),
];

/// Field names, for error messages.
const NAMES: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
    "year",
];

/// A parsed schedule entry: one set of allowed values per field. The first six fields are
/// bit sets (every bound is below 64); years are kept as stepped ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    bits: [u64; 6],
    years: Vec<Stepped>,
    text: String,
}

/// `lo..=hi` every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stepped {
    lo: u32,
    hi: u32,
    step: u32,
}

impl Stepped {
    // `is_multiple_of` needs Rust 1.87; the workspace supports 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    fn contains(self, v: u32) -> bool {
        v >= self.lo && v <= self.hi && (v - self.lo) % self.step == 0
    }
}

impl Schedule {
    /// Parses a schedule entry; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 7 {
            return Err(format!(
                "schedule '{text}' has {} fields, needs 7 (second minute hour day-of-month month day-of-week year)",
                fields.len()
            ));
        }
        let mut bits = [0u64; 6];
        let mut years = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            let ranges = parse_field(field, BOUNDS[i])
                .map_err(|why| format!("schedule '{text}': {} field '{field}': {why}", NAMES[i]))?;
            if i < 6 {
                for r in ranges {
                    for v in (r.lo..=r.hi).step_by(r.step as usize) {
                        bits[i] |= 1u64 << v;
                    }
                }
            } else {
                years = ranges;
            }
        }
        Ok(Self {
            bits,
            years,
            text: text.to_owned(),
        })
    }

    /// Whether the instant (UTC, to the second) falls in the schedule.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let values = [
            t.second(),
            t.minute(),
            t.hour(),
            t.day(),
            t.month(),
            t.weekday().num_days_from_sunday(),
        ];
        let year = u32::try_from(t.year()).unwrap_or(0);
        values
            .iter()
            .zip(self.bits)
            .all(|(v, bits)| *v < 64 && bits & (1u64 << v) != 0)
            && self.years.iter().any(|r| r.contains(year))
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_field(field: &str, (min, max): (u32, u32)) -> Result<Vec<Stepped>, String> {
    field
        .split(',')
        .map(|element| parse_element(element, min, max))
        .collect()
}

fn parse_element(element: &str, min: u32, max: u32) -> Result<Stepped, String> {
    let (range, step) = match element.split_once('/') {
        Some((range, step)) => {
            let step = number(step)?;
            if step == 0 {
                return Err("a step must be at least 1".to_owned());
            }
            (range, Some(step))
        }
        None => (element, None),
    };
    let (lo, hi) = if range == "*" {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        (number(a)?, number(b)?)
    } else {
        if step.is_some() {
            return Err(format!(
                "a step needs a range or '*' before it, not '{range}'"
            ));
        }
        let v = number(range)?;
        (v, v)
    };
    if lo < min || hi > max {
        return Err(format!("values must be within {min}-{max}"));
    }
    if lo > hi {
        return Err(format!("range {lo}-{hi} is backwards"));
    }
    Ok(Stepped {
        lo,
        hi,
        step: step.unwrap_or(1),
    })
}

/// A plain decimal number: digits only (no sign, no spaces), at most 4 of them.
fn number(s: &str) -> Result<u32, String> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not a number"));
    }
    s.parse().map_err(|_| format!("'{s}' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid test date")
    }

    fn sched(s: &str) -> Schedule {
        Schedule::parse(s).expect("valid schedule")
    }

    #[test]
    fn star_matches_everything() {
        let s = sched("* * * * * * *");
        assert!(s.matches(at(2000, 1, 1, 0, 0, 0)));
        assert!(s.matches(at(2026, 12, 31, 23, 59, 59)));
        assert!(s.matches(at(9999, 6, 15, 12, 30, 30)));
        assert!(!s.matches(at(1999, 12, 31, 23, 59, 59)), "year below range");
    }

    #[test]
    fn the_spec_example_windows() {
        // 2:00-2:05, 6:00-6:05 and 10:00-10:05 every day.
        let s = sched("* 0-5 2,6,10 * * * *");
        assert!(s.matches(at(2026, 3, 4, 2, 0, 0)));
        assert!(s.matches(at(2026, 3, 4, 6, 5, 59)));
        assert!(s.matches(at(2026, 3, 4, 10, 3, 17)));
        assert!(!s.matches(at(2026, 3, 4, 2, 6, 0)));
        assert!(!s.matches(at(2026, 3, 4, 3, 0, 0)));
        let office = sched("* * 8-20 * * * *");
        assert!(office.matches(at(2026, 3, 4, 8, 0, 0)));
        assert!(office.matches(at(2026, 3, 4, 20, 59, 59)));
        assert!(!office.matches(at(2026, 3, 4, 21, 0, 0)));
        assert!(!office.matches(at(2026, 3, 4, 7, 59, 59)));
    }

    #[test]
    fn steps_lists_and_ranges() {
        let s = sched("*/15 * 0-23/2 * * * *");
        assert!(s.matches(at(2026, 1, 1, 4, 2, 45)));
        assert!(!s.matches(at(2026, 1, 1, 4, 2, 44)));
        assert!(!s.matches(at(2026, 1, 1, 5, 2, 45)), "odd hour");
        assert!(!s.matches(at(2026, 1, 1, 4, 2, 46)));
        let s = sched("0 0 12 1,15 1-3 * 2026-2030/2");
        assert!(s.matches(at(2026, 2, 15, 12, 0, 0)));
        assert!(s.matches(at(2030, 3, 1, 12, 0, 0)));
        assert!(!s.matches(at(2027, 2, 15, 12, 0, 0)), "odd year");
        assert!(!s.matches(at(2026, 4, 1, 12, 0, 0)), "April");
        assert!(!s.matches(at(2026, 2, 14, 12, 0, 0)));
        assert!(!s.matches(at(2026, 2, 15, 12, 0, 1)));
    }

    #[test]
    fn day_of_week_zero_is_sunday_and_both_days_must_match() {
        // 2026-03-01 is a Sunday, 2026-03-02 a Monday.
        let sunday = sched("* * * * * 0 *");
        assert!(sunday.matches(at(2026, 3, 1, 9, 0, 0)));
        assert!(!sunday.matches(at(2026, 3, 2, 9, 0, 0)));
        let weekdays = sched("* * * * * 1-5 *");
        assert!(weekdays.matches(at(2026, 3, 2, 9, 0, 0)));
        assert!(!weekdays.matches(at(2026, 3, 7, 9, 0, 0)), "Saturday");
        // The 1st of a month AND a Monday: 2026-03-01 is a Sunday, so no match there.
        let both = sched("* * * 1 * 1 *");
        assert!(!both.matches(at(2026, 3, 1, 9, 0, 0)));
        assert!(
            both.matches(at(2026, 6, 1, 9, 0, 0)),
            "2026-06-01 is a Monday"
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        let bad = [
            "",
            "* * * * * *",
            "* * * * * * * *",
            "60 * * * * * *",
            "* 60 * * * * *",
            "* * 24 * * * *",
            "* * * 0 * * *",
            "* * * 32 * * *",
            "* * * * 0 * *",
            "* * * * 13 * *",
            "* * * * * 7 *",
            "* * * * * * 1999",
            "* * * * * * 10000",
            "* * 5-2 * * * *",
            "*/0 * * * * * *",
            "5/2 * * * * * *",
            "a * * * * * *",
            "-1 * * * * * *",
            "+1 * * * * * *",
            "1,,2 * * * * * *",
            "1, * * * * * *",
            "1-2-3 * * * * * *",
            "1-2/3/4 * * * * * *",
            "** * * * * * *",
            "99999 * * * * * *",
            "* * * * * * 2000-",
            "*/ * * * * * *",
        ];
        for s in bad {
            assert!(Schedule::parse(s).is_err(), "{s:?} should be refused");
        }
        let why = Schedule::parse("* * 25 * * * *").expect_err("bad hour");
        assert!(why.contains("hour"), "{why}");
    }

    #[test]
    fn round_trips_its_text() {
        let s = sched("0 30 9 * * 1-5 *");
        assert_eq!(s.as_str(), "0 30 9 * * 1-5 *");
        assert_eq!(s.to_string(), "0 30 9 * * 1-5 *");
    }
}
