//! `<locationPolicy>` (ty 10, TS-0004 clause 7.4.10; TS-0001 clauses 9.6.10 and 10.2.9):
//! how the location of a node is obtained, and the `<container>` its positions go into.
//!
//! This CSE positions by the device itself (`los` 2): the device's AE writes each position
//! fix into the location container. Network-based positioning needs a Location Server over
//! Mcn, which this CSE has no client for; sharing-based positioning is the MN-CSE's
//! (TS-0001 table 10.2.9.2-1), and this CSE is an IN-CSE. Geo-fencing needs a Geo-fence
//! server. The checks below refuse each of them with the code the clause gives, or 5001.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use crate::location::{Geo, GeometryType};
use serde_json::{Map, Value};

/// `los` 1 (`m2m:locationSource`, TS-0004 table 6.3.4.2.3-1): a Location Server in the
/// Underlying Network positions the target.
pub const NETWORK_BASED: u64 = 1;
/// `los` 2: the device positions itself (GPS, ...).
pub const DEVICE_BASED: u64 = 2;
/// `los` 3: an MN-CSE lends the location of the nearest node that has one.
pub const SHARING_BASED: u64 = 3;

/// `lit` 1 (`m2m:locationInformationType`, table 6.3.4.2.46-1): a position fix.
pub const POSITION_FIX: u64 = 1;
/// `lit` 2: geo-fence events (entering, leaving, ...), decided by a Geo-fence server.
pub const GEOFENCE_EVENT: u64 = 2;

/// Attribute table (TS-0004 tables 7.4.10.1-2 and 7.4.10.1-3). `lit` has multiplicity 1
/// (TS-0001 table 9.6.10-2): the CSE sets position fix when it is not given. `gta` and
/// `gec` (geo-fencing) and `at`/`aa` (announcement) are defined but not supported (5001).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr(
        "los",
        Kind::OneOf(&[NETWORK_BASED, DEVICE_BASED, SHARING_BASED]),
        Mandatory,
        NotPresent,
    ),
    attr(
        "lit",
        Kind::OneOf(&[POSITION_FIX, GEOFENCE_EVENT]),
        Optional,
        Optional,
    )
    .single(),
    attr("lou", Kind::StrList, Optional, Optional),
    attr("lot", Kind::Str, Optional, NotPresent),
    attr("lor", Kind::Uri, Optional, NotPresent),
    attr("loi", Kind::Uri, NotPresent, NotPresent),
    attr("lon", Kind::Str, Optional, NotPresent),
    attr("lost", Kind::Str, NotPresent, NotPresent),
    attr("gta", Kind::Unsupported, Optional, Optional),
    attr("gec", Kind::Unsupported, Optional, Optional),
    attr("aid", Kind::Str, Optional, NotPresent),
    attr("rlkl", Kind::Bool, Optional, Optional),
    attr("luec", Kind::OneOf(&[0]), Optional, Optional),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
];

/// The attributes that only a network-based policy uses (TS-0001 table 9.6.10-2: the
/// Location Server's target, its address, the requester's identity, the fallback to the
/// last known location, the location-change trigger).
const NETWORK_ONLY: [&str; 5] = ["lot", "lor", "aid", "rlkl", "luec"];

/// The checks the generic table cannot make, on a CREATE's content or on a policy as an
/// UPDATE would leave it: the positioning method this CSE can carry out, the attributes
/// that belong to another method, and the update periods.
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    match attrs.get("los").and_then(Value::as_u64) {
        Some(NETWORK_BASED) => {
            // TS-0004 clause 7.4.10.2.1: a target or a Location Server that cannot be
            // obtained is BAD_REQUEST (no Location Server is pre-provisioned here).
            if !attrs.contains_key("lot") {
                return Err(Error::bad_request(
                    "network-based positioning needs locationTargetID (lot)",
                ));
            }
            if !attrs.contains_key("lor") {
                return Err(Error::bad_request(
                    "network-based positioning needs locationServer (lor): none is provisioned",
                ));
            }
            return Err(Error::not_implemented(
                "network-based positioning (a Location Server over Mcn) is not supported",
            ));
        }
        Some(SHARING_BASED) => return Err(Error::bad_request(
            "sharing-based positioning applies to an MN-CSE (TS-0001 10.2.9.2); this is an IN-CSE",
        )),
        _ => {}
    }
    if let Some(name) = NETWORK_ONLY.iter().find(|n| attrs.contains_key(**n)) {
        return Err(Error::bad_request(format!(
            "attribute '{name}' applies to network-based positioning only"
        )));
    }
    if attrs.get("lit").and_then(Value::as_u64) == Some(GEOFENCE_EVENT) {
        return Err(Error::not_implemented(
            "geo-fence events need a Geo-fence server, which this CSE does not use",
        ));
    }
    if let Some(lon) = attrs.get("lon").and_then(Value::as_str) {
        crate::id::validate_resource_name(lon)?;
    }
    update_periods(attrs)?;
    Ok(())
}

/// The update periods of `lou` (a list of `xs:duration`), in order; the first is the one in
/// force (TS-0001 table 9.6.10-2). Empty when `lou` is absent. A list that is empty, holds
/// something else than a duration, or mixes zero with other values is 4000.
pub fn update_periods(attrs: &Map<String, Value>) -> Result<Vec<std::time::Duration>> {
    let Some(lou) = attrs.get("lou") else {
        return Ok(Vec::new());
    };
    let list = lou
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::bad_request("lou must list at least one duration (or be null)"))?;
    let periods = list
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| Error::bad_request("each lou entry must be a duration"))
                .and_then(crate::time::parse_duration)
        })
        .collect::<Result<Vec<_>>>()?;
    if periods.len() > 1 && periods.iter().any(|d| d.is_zero()) {
        return Err(Error::bad_request(
            "lou cannot hold zero together with other periods",
        ));
    }
    Ok(periods)
}

/// Checks the content of a `<contentInstance>` written into a location container: one
/// position fix, an `m2m:geoCoordinates` Point (`{"typ": 1, "crd": [lon, lat]}`), given as
/// the JSON object itself or as a string holding it.
pub fn check_position(con: &Value) -> Result<()> {
    let parsed;
    let value = match con {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|_| {
                Error::bad_request("a position is an m2m:geoCoordinates object in JSON")
            })?;
            &parsed
        }
        other => other,
    };
    let typ = value.get("typ").and_then(Value::as_u64);
    if typ.map(GeometryType::from_code).and_then(Result::ok) != Some(GeometryType::Point) {
        return Err(Error::bad_request(
            "a position fix is an m2m:geoCoordinates Point (typ 1)",
        ));
    }
    Geo::from_geo_coordinates(value)
        .map(|_| ())
        .map_err(|e| Error::bad_request(format!("position: {}", e.message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsc::ResponseStatusCode as R;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn code(v: Value) -> Option<R> {
        validate(&attrs(v)).err().map(|e| e.rsc)
    }

    #[test]
    fn positioning_methods() {
        assert_eq!(code(json!({"los": 2, "lou": ["PT10S", "PT1M"]})), None);
        assert_eq!(code(json!({"los": 1})), Some(R::BadRequest));
        assert_eq!(
            code(json!({"los": 1, "lot": "tel:+331"})),
            Some(R::BadRequest)
        );
        assert_eq!(
            code(json!({"los": 1, "lot": "tel:+331", "lor": "http://ls"})),
            Some(R::NotImplemented)
        );
        assert_eq!(code(json!({"los": 3})), Some(R::BadRequest));
        assert_eq!(code(json!({"los": 2, "lit": 2})), Some(R::NotImplemented));
        for k in NETWORK_ONLY {
            assert_eq!(code(json!({"los": 2, k: "x"})), Some(R::BadRequest), "{k}");
        }
    }

    #[test]
    fn update_periods_are_durations() {
        for bad in [
            json!([]),
            json!(["soon"]),
            json!([5]),
            json!(["PT0S", "PT1S"]),
        ] {
            assert_eq!(code(json!({"los": 2, "lou": bad})), Some(R::BadRequest));
        }
        let p = update_periods(&attrs(json!({"lou": ["PT0S"]}))).ok();
        assert_eq!(p, Some(vec![std::time::Duration::ZERO]));
        assert_eq!(code(json!({"los": 2, "lon": "a/b"})), Some(R::BadRequest));
    }

    #[test]
    fn positions_are_points() {
        assert!(check_position(&json!({"typ": 1, "crd": [2.35, 48.85]})).is_ok());
        assert!(check_position(&json!("{\"typ\": 1, \"crd\": \"[2.35, 48.85]\"}")).is_ok());
        for bad in [
            json!("near Paris"),
            json!(42),
            json!({"typ": 1, "crd": [200, 48]}),
            json!({"typ": 2, "crd": [[0, 0], [1, 1]]}),
            json!({"typ": 1}),
        ] {
            assert!(check_position(&bad).is_err(), "{bad}");
        }
    }
}
