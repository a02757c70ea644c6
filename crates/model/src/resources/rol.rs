//! `<role>` (ty 31, TS-0004 clause 7.4.40; TS-0001 clause 9.6.38): a Role-ID that an
//! Authorization Authority assigns to one AE or CSE (the holder) for a period. The hosting
//! CSE honours the role in access control decisions (TS-0003 clause 7.4.3) when the
//! request names it in `rids`, the originator is the holder, and now is within the period.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::time::{self, Timestamp};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.40.1-3 with the common attributes of table
/// 7.4.40.1-2). Everything that says what is assigned to whom is fixed at creation.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("rlid", Kind::Str, Mandatory, NotPresent),
    attr("tkis", Kind::Str, Mandatory, NotPresent),
    attr("tkhd", Kind::Str, Mandatory, NotPresent),
    attr("tknb", Kind::Time, Mandatory, NotPresent),
    attr("tkna", Kind::Time, Mandatory, NotPresent),
    attr("rlnm", Kind::Str, Optional, NotPresent),
    attr("rltl", Kind::Uri, Optional, Optional),
];

/// Checks what the table cannot: the Role-ID, issuer and holder are not empty (an empty
/// Role-ID could never be named in `rids`, an empty holder could never match), and the
/// period starts before it ends.
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    for name in ["rlid", "tkis", "tkhd"] {
        if attrs
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(Error::bad_request(format!("{name} must not be empty")));
        }
    }
    if let (Some(nb), Some(na)) = (period_bound(attrs, "tknb")?, period_bound(attrs, "tkna")?) {
        if nb >= na {
            return Err(Error::bad_request("tknb must be before tkna"));
        }
    }
    Ok(())
}

/// Whether the role's period (`tknb` to `tkna`, the end excluded) holds `now`.
pub fn in_period(attrs: &Map<String, Value>, now: Timestamp) -> bool {
    match (period_bound(attrs, "tknb"), period_bound(attrs, "tkna")) {
        (Ok(Some(nb)), Ok(Some(na))) => nb <= now && now < na,
        _ => false,
    }
}

fn period_bound(attrs: &Map<String, Value>, name: &str) -> Result<Option<Timestamp>> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .map(time::parse)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_period_must_start_before_it_ends() {
        let ok = map(json!({"rlid": "operator", "tkis": "/id-in", "tkhd": "Cx",
            "tknb": "20260101T000000", "tkna": "20270101T000000"}));
        assert!(validate(&ok).is_ok());
        let now = time::parse("20261207T120000").expect("time");
        assert!(in_period(&ok, now));
        assert!(!in_period(
            &ok,
            time::parse("20270101T000000").expect("time")
        ));
        assert!(!in_period(
            &ok,
            time::parse("20251231T235959").expect("time")
        ));
        let mut reversed = ok.clone();
        reversed.insert("tknb".into(), json!("20270101T000000"));
        assert!(validate(&reversed).is_err());
        for name in ["rlid", "tkis", "tkhd"] {
            let mut empty = ok.clone();
            empty.insert(name.into(), json!(" "));
            assert!(validate(&empty).is_err(), "{name}");
        }
    }
}
