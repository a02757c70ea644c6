//! `<timeSeries>` (ty 29): holds time series instances within limits (`mni`, `mbs`, `mia`,
//! as a `<container>` does) and, when the data is periodic (`pei`), can watch for missing
//! data points (`mdd`, `mdt`) and keep the last of them (`mdlt`, `mdc`, bounded by `mdn`).

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.38.1-3). Left out, so that a request setting one is
/// refused (4000) rather than stored and ignored: `at`/`aa` (this CSE announces nothing).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    // Geo-location, searched by the geo-query of discovery.
    attr("loc", Kind::GeoCoordinates, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("mni", Kind::Int, Optional, Optional),
    attr("mbs", Kind::Int, Optional, Optional),
    attr("mia", Kind::Int, Optional, Optional),
    attr("cni", Kind::Int, NotPresent, NotPresent),
    attr("cbs", Kind::Int, NotPresent, NotPresent),
    attr("pei", Kind::PositiveInt, Optional, Optional),
    attr("peid", Kind::Int, Optional, Optional),
    attr("mdd", Kind::Bool, Optional, Optional),
    attr("mdn", Kind::PositiveInt, Optional, Optional),
    attr("mdlt", Kind::StrList, NotPresent, NotPresent),
    attr("mdc", Kind::Int, NotPresent, NotPresent),
    attr("mdt", Kind::PositiveInt, Optional, Optional),
    attr("or", Kind::Uri, Optional, Optional),
    attr("cnf", Kind::ContentInfo, Optional, NotPresent),
    attr("daci", Kind::UriList, Optional, Optional),
];

/// The attributes of the detection that an UPDATE may not change while it runs, nor
/// together with `mdd` (TS-0004 clause 7.4.38.2.3).
const DETECTION_SETTINGS: [&str; 4] = ["mdt", "mdn", "peid", "pei"];

/// The `peid` this CSE chooses when the originator sets `pei` without one (TS-0004 clause
/// 7.4.38.2.1 leaves it to local policy): a tenth of the interval, so a data point may come
/// that much early or late and still count.
pub fn default_peid(pei: u64) -> u64 {
    pei / 10
}

/// Whether missing data detection is on: `mdd` true and a periodic interval to expect
/// data points by.
pub fn monitored(attrs: &Map<String, Value>) -> bool {
    attrs.get("mdd") == Some(&Value::Bool(true)) && attrs.get("pei").is_some_and(Value::is_u64)
}

/// Fills in what the CSE chooses when the originator left it out: `peid` when `pei` is set
/// (on CREATE, or on an UPDATE that sets `pei` without `peid`: the current one is kept if it
/// still fits, TS-0004 clauses 7.4.38.2.1 and 7.4.38.2.3).
pub fn complete(current: Option<&Map<String, Value>>, changes: &mut Map<String, Value>) {
    let Some(pei) = changes.get("pei").and_then(Value::as_u64) else {
        return;
    };
    if changes.contains_key("peid") {
        return;
    }
    let kept = current
        .and_then(|c| c.get("peid"))
        .and_then(Value::as_u64)
        .filter(|peid| *peid <= pei / 2);
    changes.insert("peid".into(), kept.unwrap_or(default_peid(pei)).into());
}

/// The checks of an UPDATE (TS-0004 clause 7.4.38.2.3): the detection's settings are not
/// changed together with `mdd`, nor while detection is on (4000).
pub fn check_update(current: &Map<String, Value>, changes: &Map<String, Value>) -> Result<()> {
    let setting = DETECTION_SETTINGS
        .into_iter()
        .find(|k| changes.contains_key(*k));
    if let Some(k) = setting {
        if changes.contains_key("mdd") {
            return Err(Error::bad_request(format!(
                "{k} cannot be updated together with mdd"
            )));
        }
        if current.get("mdd") == Some(&Value::Bool(true)) {
            return Err(Error::bad_request(format!(
                "{k} cannot be updated while missing data detection is on (set mdd to false first)"
            )));
        }
    }
    Ok(())
}

/// The rules a `<timeSeries>` always keeps, checked on the resource as it would be after a
/// CREATE or UPDATE (TS-0004 clauses 7.4.38.2.1 and 7.4.38.2.3; TS-0001 table 9.6.36-2):
/// `peid` at most half of `pei`; with `mdd` true, an `mdt` longer than `peid` (4000).
pub fn check(attrs: &Map<String, Value>) -> Result<()> {
    let peid = attrs.get("peid").and_then(Value::as_u64);
    if let (Some(pei), Some(peid)) = (attrs.get("pei").and_then(Value::as_u64), peid) {
        if peid > pei / 2 {
            return Err(Error::bad_request(format!(
                "peid {peid} is more than half of pei {pei}"
            )));
        }
    }
    if attrs.get("mdd") == Some(&Value::Bool(true)) {
        match attrs.get("mdt").and_then(Value::as_u64) {
            None => {
                return Err(Error::bad_request(
                    "missing data detection (mdd true) needs mdt",
                ))
            }
            Some(mdt) if mdt <= peid.unwrap_or(0) => {
                return Err(Error::bad_request(format!(
                    "mdt {mdt} must be longer than peid {}",
                    peid.unwrap_or(0)
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn peid_defaults_and_bounds() {
        let mut c = map(json!({"pei": 1000}));
        complete(None, &mut c);
        assert_eq!(c["peid"], json!(100));
        assert!(check(&c).is_ok());
        assert!(check(&map(json!({"pei": 1000, "peid": 500}))).is_ok());
        assert!(check(&map(json!({"pei": 1000, "peid": 501}))).is_err());
        // An UPDATE of pei keeps a peid that still fits, else takes the default.
        let current = map(json!({"pei": 1000, "peid": 300}));
        let mut u = map(json!({"pei": 800}));
        complete(Some(&current), &mut u);
        assert_eq!(u["peid"], json!(300));
        let mut u = map(json!({"pei": 400}));
        complete(Some(&current), &mut u);
        assert_eq!(u["peid"], json!(40));
    }

    #[test]
    fn detection_needs_a_timer_longer_than_the_delta() {
        assert!(check(&map(json!({"mdd": true}))).is_err());
        assert!(check(&map(
            json!({"mdd": true, "pei": 1000, "peid": 100, "mdt": 100})
        ))
        .is_err());
        assert!(check(&map(
            json!({"mdd": true, "pei": 1000, "peid": 100, "mdt": 101})
        ))
        .is_ok());
        assert!(check(&map(json!({"mdd": false, "mdt": 1}))).is_ok());
    }

    #[test]
    fn settings_are_frozen_while_detecting_and_alongside_mdd() {
        let on = map(json!({"mdd": true}));
        let off = map(json!({"mdd": false}));
        for k in DETECTION_SETTINGS {
            assert!(check_update(&on, &map(json!({ k: 5 }))).is_err(), "{k}");
            assert!(
                check_update(&off, &map(json!({ k: 5, "mdd": true }))).is_err(),
                "{k}"
            );
            assert!(check_update(&off, &map(json!({ k: 5 }))).is_ok(), "{k}");
        }
        assert!(check_update(&on, &map(json!({"mdd": false}))).is_ok());
        assert!(check_update(&on, &map(json!({"mni": 3}))).is_ok());
    }

    #[test]
    fn monitored_needs_mdd_and_pei() {
        assert!(monitored(&map(json!({"mdd": true, "pei": 10}))));
        assert!(!monitored(&map(json!({"mdd": true}))));
        assert!(!monitored(&map(json!({"mdd": false, "pei": 10}))));
    }
}
