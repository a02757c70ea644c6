//! oneM2M timestamps: ISO 8601 basic format `YYYYMMDDTHHMMSS[,ffffff]`, always UTC.

use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// A point in time as the CSE stores and compares it.
pub type Timestamp = DateTime<Utc>;

/// The current time by the system clock; what decides by time asks a
/// [`crate::clock::Clock`] instead, so that tests can move it.
pub fn now() -> Timestamp {
    Utc::now()
}

/// Formats a timestamp the way it goes on the wire, with microseconds so that
/// resources created in the same second still order correctly.
pub fn format(t: Timestamp) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    // Written field by field: this runs several times per request, and strftime-style
    // formatting re-parses its pattern every time.
    let mut out = String::with_capacity(22);
    let _ = write!(
        out,
        "{:04}{:02}{:02}T{:02}{:02}{:02},{:06}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() % 1_000_000_000 / 1000
    );
    out
}

/// Parses `YYYYMMDDTHHMMSS` with an optional `,fraction` (or `.fraction`) and optional `Z`.
pub fn parse(s: &str) -> Result<Timestamp> {
    let bad = || Error::bad_request(format!("invalid timestamp '{s}'"));
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (main, frac) = match s.find([',', '.']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if main.len() != 15 {
        return Err(bad());
    }
    let naive = NaiveDateTime::parse_from_str(main, "%Y%m%dT%H%M%S").map_err(|_| bad())?;
    let mut t = Utc.from_utc_datetime(&naive);
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let nanos: u32 = format!("{f:0<9}").parse().map_err(|_| bad())?;
        t += chrono::Duration::nanoseconds(i64::from(nanos));
    }
    Ok(t)
}

/// Parses an `m2m:absRelTimestamp` (TS-0004 Table 6.3.3-1): either an absolute timestamp or
/// a relative time in milliseconds (an `xs:long`, possibly negative), counted from `now`.
/// A relative value outside the representable range is 4000, never a panic.
pub fn parse_abs_rel(s: &str, now: Timestamp) -> Result<Timestamp> {
    if s.contains('T') {
        return parse(s);
    }
    let ms: i64 = s
        .parse()
        .map_err(|_| Error::bad_request(format!("invalid absolute or relative time '{s}'")))?;
    chrono::TimeDelta::try_milliseconds(ms)
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| Error::bad_request(format!("relative time '{s}' is out of range")))
}

/// Parses an `xs:duration` without years or months (`PnDTnHnMnS`, fractional seconds
/// allowed): the form durations such as `batchNotify/duration` take. Years and months have
/// no fixed length, so they are refused rather than guessed.
pub fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || Error::bad_request(format!("invalid duration '{s}'"));
    let rest = s.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return Err(bad()),
        None => (rest, ""),
    };
    if days.is_empty() && time.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    for (part, units) in [
        (days, &[('D', 86_400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut part = part;
        let mut units = units.iter();
        while !part.is_empty() {
            let end = part
                .find(|c: char| c.is_ascii_alphabetic())
                .ok_or_else(bad)?;
            let (number, unit) = (&part[..end], part.as_bytes()[end] as char);
            let seconds = units
                .by_ref()
                .find(|(u, _)| *u == unit)
                .map(|(_, s)| *s)
                .ok_or_else(bad)?;
            let fraction_ok = unit == 'S' || !number.contains('.');
            if number.is_empty()
                || !fraction_ok
                || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            {
                return Err(bad());
            }
            let value: f64 = number.parse().map_err(|_| bad())?;
            nanos += (value * seconds * 1e9) as u128;
            part = &part[end + 1..];
        }
    }
    let nanos = u64::try_from(nanos).map_err(|_| bad())?;
    Ok(std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = parse("20261127T101112,5").expect("valid");
        assert_eq!(format(t), "20261127T101112,500000");
        assert_eq!(parse(&format(t)).ok(), Some(t));
        assert!(parse("20261127T1011").is_err());
        assert!(parse("2026-11-27T10:11:12").is_err());
        assert!(parse("20261327T101112").is_err());
        assert!(parse("20261127T101112,x").is_err());
        assert!(parse("20261127T101112Z").is_ok());
        let early = parse("00010102T030405,000007").expect("valid");
        assert_eq!(format(early), "00010102T030405,000007");
    }

    #[test]
    fn absolute_or_relative() {
        let now = parse("20261127T101112").expect("valid");
        assert_eq!(
            parse_abs_rel("20261127T101113", now).ok(),
            parse("20261127T101113").ok()
        );
        assert_eq!(
            parse_abs_rel("3600000", now).ok(),
            Some(now + chrono::Duration::hours(1))
        );
        assert_eq!(
            parse_abs_rel("-1000", now).ok(),
            Some(now - chrono::Duration::seconds(1))
        );
        for bad in [
            "",
            "1h",
            "9223372036854775807",
            "-9223372036854775808",
            "+",
            "1.5",
        ] {
            assert!(parse_abs_rel(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("PT5S").ok(), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("PT0.25S").ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("P1DT1H2M3S").ok(),
            Some(Duration::from_secs(86_400 + 3723))
        );
        assert_eq!(parse_duration("PT1M").ok(), Some(Duration::from_secs(60)));
        for bad in [
            "", "P", "PT", "5", "PT5", "P1Y", "P1M", "PT1S2M", "PT1.5M", "PT-1S", "PTS",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
