//! `<subscription>` (ty 23): who to notify (`nu`) about which events (`enc`), and how.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::Value;

/// Attribute table. The notification policies this CSE does not enforce (`gpi`, `nfu`,
/// `rl`, `pn`, `nsp`, `nec`) are left out, so a request that sets one is refused rather than
/// silently ignored.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("enc", Kind::Object, Optional, Optional),
    attr("exc", Kind::PositiveInt, Optional, Optional),
    attr("nu", Kind::UriList, Mandatory, Optional),
    attr("bn", Kind::Object, Optional, Optional),
    attr("ln", Kind::Bool, Optional, Optional),
    attr("nct", Kind::Int, Optional, Optional).single(),
    attr("su", Kind::Uri, Optional, NotPresent),
    attr("daci", Kind::UriList, Optional, Optional),
];

/// Notification event types (`net`, TS-0004 clause 6.3.4.2.19) this CSE raises.
pub mod net {
    /// 1: the subscribed-to resource was updated.
    pub const UPDATE: u64 = 1;
    /// 2: the subscribed-to resource was deleted.
    pub const DELETE: u64 = 2;
    /// 3: a direct child was created.
    pub const CREATE_CHILD: u64 = 3;
    /// 4: a direct child was deleted.
    pub const DELETE_CHILD: u64 = 4;
}

/// Checks the parts of a subscription the generic table cannot: `enc`, `nct`, `nu`.
pub fn validate(attrs: &serde_json::Map<String, Value>) -> Result<()> {
    if let Some(enc) = attrs.get("enc").filter(|v| !v.is_null()) {
        let obj = enc
            .as_object()
            .ok_or_else(|| Error::bad_request("enc must be an object"))?;
        for (k, v) in obj {
            match k.as_str() {
                "net" => {
                    let ok = v.as_array().is_some_and(|a| {
                        !a.is_empty()
                            && a.iter()
                                .all(|n| n.as_u64().is_some_and(|n| (1..=4).contains(&n)))
                    });
                    if !ok {
                        return Err(Error::bad_request(
                            "enc/net must be a list of event types 1-4",
                        ));
                    }
                }
                "chty" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_u64)) {
                        return Err(Error::bad_request(
                            "enc/chty must be a list of resource types",
                        ));
                    }
                }
                "atr" => {
                    if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                        return Err(Error::bad_request(
                            "enc/atr must be a list of attribute names",
                        ));
                    }
                }
                other => {
                    return Err(Error::bad_request(format!(
                        "unsupported enc member '{other}'"
                    )))
                }
            }
        }
    }
    if let Some(nct) = attrs.get("nct").and_then(Value::as_u64) {
        if !(1..=3).contains(&nct) {
            return Err(Error::bad_request("nct must be 1, 2 or 3"));
        }
        // TS-0001 table 9.6.8-4: modified attributes only make sense for an update.
        if nct == 2 && event_types(attrs).iter().any(|n| *n != net::UPDATE) {
            return Err(Error::bad_request(
                "nct 2 (modified attributes) is allowed with net 1 (update) only",
            ));
        }
    }
    if let Some(bn) = attrs.get("bn").filter(|v| !v.is_null()) {
        batch_notify(bn)?;
    }
    if let Some(nu) = attrs.get("nu").and_then(Value::as_array) {
        if nu.is_empty() || nu.iter().any(|u| u.as_str().is_some_and(str::is_empty)) {
            return Err(Error::bad_request("nu must list at least one target"));
        }
    }
    if attrs.get("exc").and_then(Value::as_u64) == Some(0) {
        return Err(Error::bad_request("exc must be at least 1"));
    }
    Ok(())
}

/// The notification event types a subscription asks for: `enc/net`, by default update.
pub fn event_types(attrs: &serde_json::Map<String, Value>) -> Vec<u64> {
    attrs
        .get("enc")
        .and_then(|e| e.get("net"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_else(|| vec![net::UPDATE])
}

/// The default `nct` for a subscription's event types (TS-0001 table 9.6.8-4): all
/// attributes for every type this CSE raises.
pub const DEFAULT_NCT: u64 = 1;

/// Checks `bn` (m2m:batchNotify): `num` a positive integer, `dur` an `xs:duration`.
fn batch_notify(bn: &Value) -> Result<()> {
    let obj = bn
        .as_object()
        .ok_or_else(|| Error::bad_request("bn must be an object"))?;
    for (k, v) in obj {
        match k.as_str() {
            "num" if v.as_u64().is_some_and(|n| n >= 1) => {}
            "num" => return Err(Error::bad_request("bn/num must be a positive integer")),
            "dur" => {
                let d = v
                    .as_str()
                    .ok_or_else(|| Error::bad_request("bn/dur must be a duration"))?;
                if crate::time::parse_duration(d)?.is_zero() {
                    return Err(Error::bad_request("bn/dur must be longer than zero"));
                }
            }
            other => {
                return Err(Error::bad_request(format!(
                    "unsupported bn member '{other}'"
                )))
            }
        }
    }
    Ok(())
}

/// Refuses an `enc/chty` naming a type that cannot be a child of the subscribed-to resource
/// (TS-0004 clause 7.4.8.2.1), so the condition could never match.
pub fn check_child_types(
    attrs: &serde_json::Map<String, Value>,
    parent: crate::ResourceType,
) -> Result<()> {
    let chty = attrs
        .get("enc")
        .and_then(|e| e.get("chty"))
        .and_then(Value::as_array);
    for t in chty.into_iter().flatten() {
        let ok = t
            .as_u64()
            .and_then(|t| crate::ResourceType::from_code(t).ok())
            .is_some_and(|t| parent.allowed_children().contains(&t));
        if !ok {
            return Err(Error::bad_request(format!(
                "enc/chty {t} is not a child type of the subscribed-to resource"
            )));
        }
    }
    Ok(())
}

/// Checks that the content of a NOTIFY is a notification (TS-0004 clause 7.5.1.1): one
/// `m2m:sgn` (`m2m:notification`, Table 6.3.5.13-1) or one `m2m:agn` holding a non-empty
/// list of them (Table 6.3.5.12-1). Each has its subscription reference (`sur`, multiplicity
/// 1) and only the members the table defines, each of its type. Anything else is 4000.
pub fn validate_notification(pc: Option<&Value>) -> Result<()> {
    let bad = |why: &str| Error::bad_request(format!("not a notification: {why}"));
    let obj = pc
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad("the content must be one m2m:sgn or m2m:agn"))?;
    match obj.iter().next() {
        Some((k, v)) if k == "m2m:sgn" => notification(v).map_err(|why| bad(&why)),
        Some((k, v)) if k == "m2m:agn" => {
            let list = v
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.get("m2m:sgn"))
                .ok_or_else(|| bad("m2m:agn must hold m2m:sgn"))?;
            let list = match list {
                Value::Array(a) if !a.is_empty() => a.as_slice(),
                Value::Array(_) => return Err(bad("m2m:agn holds no notification")),
                one => std::slice::from_ref(one),
            };
            list.iter()
                .try_for_each(notification)
                .map_err(|why| bad(&why))
        }
        _ => Err(bad("the content must be one m2m:sgn or m2m:agn")),
    }
}

/// One `m2m:notification`; the error names the member that is wrong.
fn notification(v: &Value) -> std::result::Result<(), String> {
    let obj = v.as_object().ok_or("m2m:sgn must be an object")?;
    if obj
        .get("sur")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("sur (the subscription reference) is missing".to_owned());
    }
    for (k, v) in obj {
        let ok = match k.as_str() {
            "sur" | "cr" | "nfu" | "ntt" | "tid1" | "tid2" => v.is_string(),
            "vrq" | "sud" | "trr" | "tra" | "aerp" | "aerid" => v.is_boolean(),
            "nev" | "idr" => v.is_object(),
            _ => return Err(format!("unknown member '{k}'")),
        };
        if !ok {
            return Err(format!("member '{k}' has the wrong type"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// TS-0004 clause 7.5.1.1, Tables 6.3.5.12-1 and 6.3.5.13-1.
    #[test]
    fn only_notifications_are_notifications() {
        let sgn = json!({"nev": {"rep": {}, "net": 1}, "sur": "cse-in/ae/sub", "cr": "Cae"});
        for good in [
            json!({ "m2m:sgn": sgn }),
            json!({"m2m:sgn": {"vrq": true, "sur": "cse-in/x", "cr": "C1"}}),
            json!({"m2m:sgn": {"sud": true, "sur": "cse-in/x"}}),
            json!({"m2m:agn": {"m2m:sgn": [sgn, sgn]}}),
            json!({"m2m:agn": {"m2m:sgn": sgn}}),
        ] {
            assert!(validate_notification(Some(&good)).is_ok(), "{good}");
        }
        for bad in [
            json!({"m2m:cnt": {"rn": "x"}}),
            json!({"m2m:sgn": {"nev": {"net": 1}}}),
            json!({"m2m:sgn": {"sur": ""}}),
            json!({"m2m:sgn": {"sur": "x", "zzz": 1}}),
            json!({"m2m:sgn": {"sur": "x", "vrq": "yes"}}),
            json!({"m2m:sgn": "x"}),
            json!({"m2m:sgn": { "sur": "x" }, "m2m:cnt": {}}),
            json!({"m2m:agn": {"m2m:sgn": []}}),
            json!({"m2m:agn": {}}),
            json!("hello"),
            json!({}),
        ] {
            let err = validate_notification(Some(&bad)).expect_err("refused");
            assert_eq!(err.rsc, crate::ResponseStatusCode::BadRequest, "{bad}");
        }
        assert!(validate_notification(None).is_err());
    }
}
