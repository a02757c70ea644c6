//! `<timeSeriesInstance>` (ty 30): one data point of a `<timeSeries>`, named by the time it
//! was generated (`dgt`), which no other data point of the same series may share.

use crate::attributes::{abs_rel_time, attr, Attr, Kind, Presence::*};
use crate::error::Result;
use crate::time::{self, Timestamp};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.39.1-3). A time series instance cannot be updated.
/// Its content information is the parent's (`cnf` of the `<timeSeries>`).
pub const ATTRIBUTES: &[Attr] = &[
    attr("dgt", Kind::AbsRelTime, Mandatory, NotPresent),
    attr("con", Kind::Any, Mandatory, NotPresent),
    attr("snr", Kind::Int, Optional, NotPresent),
    attr("cs", Kind::Int, NotPresent, NotPresent),
];

/// The data generation time of a new instance, made absolute (a relative `dgt` counts from
/// `now`), so that the uniqueness check and missing data detection compare like with like.
pub fn generation_time(attrs: &Map<String, Value>, now: Timestamp) -> Result<Timestamp> {
    abs_rel_time(attrs.get("dgt").unwrap_or(&Value::Null), now)
}

/// A data generation time as stored and compared: the CSE's timestamp format, to the
/// microsecond.
pub fn format_generation_time(t: Timestamp) -> String {
    time::format(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absolute_and_relative_generation_times() {
        let now = time::parse("20260101T000000").expect("now");
        let abs = |v: Value| {
            let attrs = json!({ "dgt": v }).as_object().cloned().unwrap_or_default();
            generation_time(&attrs, now).map(format_generation_time)
        };
        assert_eq!(
            abs(json!("20250101T120000")).ok().as_deref(),
            Some("20250101T120000,000000")
        );
        assert_eq!(
            abs(json!(-1500)).ok().as_deref(),
            Some("20251231T235958,500000")
        );
        assert_eq!(
            abs(json!("2000")).ok().as_deref(),
            Some("20260101T000002,000000")
        );
        assert!(abs(json!("yesterday")).is_err());
        assert!(abs(json!(true)).is_err());
        assert!(abs(json!(1.5)).is_err());
        assert!(abs(json!(i64::MAX)).is_err());
    }
}
