//! `<schedule>` (ty 18, TS-0004 clause 7.4.9; TS-0001 clause 9.6.9): time windows in the
//! context of the parent. Under a `<subscription>` (named `notificationSchedule`) it says
//! when notifications may be sent; under a `<node>`, when the node (and the AEs on it) can
//! be reached; under the `<CSEBase>`, when the CSE expects to be available.
//!
//! Each entry of `se` is an `m2m:scheduleEntry`, the 7-field UTC cron string that an ACP's
//! `actw` uses too: both are parsed by [`crate::resources::acp::schedule::Schedule`], so a
//! window means the same thing wherever it appears.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::resources::acp::schedule::Schedule;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 tables 7.4.9.1-2 and 7.4.9.1-3). Announcement (`at`, `aa`) is
/// defined but not supported (5001): this CSE announces nothing. `nco` is accepted only
/// under a `<node>` ([`check_nco`]).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr("se", Kind::Object, Mandatory, Optional),
    attr("nco", Kind::Bool, Optional, Optional),
];

/// The only name a `<schedule>` child of a `<subscription>` has (TS-0004 table 7.4.8.1-4).
pub const NOTIFICATION_SCHEDULE: &str = "notificationSchedule";

/// The parsed entries of an `m2m:scheduleEntries` value: `{"sce": ["<entry>", ...]}` with at
/// least one entry ("shall not be blank"), each a valid schedule entry. Any other member,
/// an empty list or a malformed entry is a 4000 that names the entry.
pub fn entries(se: &Value) -> Result<Vec<Schedule>> {
    let obj = se
        .as_object()
        .ok_or_else(|| Error::bad_request("se must be an object {\"sce\": [...]}"))?;
    if let Some(k) = obj.keys().find(|k| *k != "sce") {
        return Err(Error::bad_request(format!("unknown member '{k}' in se")));
    }
    let list = obj
        .get("sce")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::bad_request("se needs a list 'sce' of schedule entries"))?;
    if list.is_empty() {
        return Err(Error::bad_request(
            "se must hold at least one schedule entry",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let text = e
                .as_str()
                .ok_or_else(|| Error::bad_request(format!("se entry {} is not a string", i + 1)))?;
            Schedule::parse(text)
                .map_err(|why| Error::bad_request(format!("se entry {}: {why}", i + 1)))
        })
        .collect()
}

/// Checks what the table cannot: `se`, when present, is a well-formed list of entries.
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    match attrs.get("se") {
        Some(se) => entries(se).map(|_| ()),
        None => Ok(()),
    }
}

/// TS-0004 clauses 7.4.9.2.1 and 7.4.9.2.3 (Recv-6.5): `nco` (networkCoordinated) belongs
/// to a schedule under a `<node>` only; elsewhere it is 4102 CONTENTS_UNACCEPTABLE.
pub fn check_nco(attrs: &Map<String, Value>, under_node: bool) -> Result<()> {
    if attrs.contains_key("nco") && !under_node {
        return Err(Error::contents_unacceptable(
            "nco (networkCoordinated) applies to a schedule under a node only",
        ));
    }
    Ok(())
}

/// Whether the stored schedule allows `t`: some entry of its `se` matches. A stored
/// schedule whose `se` no longer parses (it was checked when written) allows nothing,
/// which never sends more than its writer asked for.
pub fn allows(attrs: &Map<String, Value>, t: DateTime<Utc>) -> bool {
    attrs
        .get("se")
        .and_then(|se| entries(se).ok())
        .is_some_and(|list| list.iter().any(|s| s.matches(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn entries_are_the_acp_syntax() {
        let ok = json!({"sce": ["* 0-5 2,6,10 * * * *", "* * 8-20 * * * *"]});
        assert_eq!(entries(&ok).expect("valid").len(), 2);
        for bad in [
            json!({}),
            json!({"sce": []}),
            json!({"sce": "* * * * * * *"}),
            json!({"sce": [5]}),
            json!({"sce": ["* * * * * *"]}),
            json!({"sce": ["* * 24 * * * *"]}),
            json!({"sce": ["* * * * * * *"], "x": 1}),
            json!(["* * * * * * *"]),
        ] {
            let err = entries(&bad).expect_err("refused");
            assert_eq!(err.rsc, crate::rsc::ResponseStatusCode::BadRequest, "{bad}");
        }
    }

    #[test]
    fn any_entry_allows() {
        let attrs = map(json!({"se": {"sce": ["* * 8-9 * * * *", "* * 20 * * * *"]}}));
        let at = |h| {
            Utc.with_ymd_and_hms(2026, 12, 8, h, 30, 0)
                .single()
                .expect("t")
        };
        assert!(allows(&attrs, at(8)));
        assert!(allows(&attrs, at(20)));
        assert!(!allows(&attrs, at(12)));
        assert!(!allows(&map(json!({"se": {"sce": ["bad"]}})), at(8)));
        assert!(!allows(&map(json!({})), at(8)));
    }

    #[test]
    fn nco_only_under_a_node() {
        let with = map(json!({"nco": true}));
        assert!(check_nco(&with, true).is_ok());
        let err = check_nco(&with, false).expect_err("refused");
        assert_eq!(
            err.rsc,
            crate::rsc::ResponseStatusCode::ContentsUnacceptable
        );
        assert!(check_nco(&map(json!({})), false).is_ok());
    }
}
