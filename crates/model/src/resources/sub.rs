//! `<subscription>` (ty 23): who to notify (`nu`) about which events (`enc`), and how.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::Value;

/// Attribute table (TS-0004 tables 7.4.8.1-2 and 7.4.8.1-3). The notification policies
/// this CSE does not enforce (`gpi`, `nfu`, `rl`, `psn`, `pn`, `nsp`, `nec`) and `acrs`
/// (set by a `<crossResourceSubscription>`, a type this CSE does not host) are defined but
/// not supported, so a request that sets one is refused with 5001 rather than silently
/// ignored.
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
    attr("gpi", Kind::Unsupported, Optional, Optional),
    attr("nfu", Kind::Unsupported, Optional, Optional),
    attr("rl", Kind::Unsupported, Optional, Optional),
    attr("psn", Kind::Unsupported, Optional, NotPresent),
    attr("pn", Kind::Unsupported, Optional, Optional),
    attr("nsp", Kind::Unsupported, Optional, Optional),
    attr("nec", Kind::Unsupported, Optional, Optional),
    // Set only by this CSE for the `<crossResourceSubscription>`s the subscription serves.
    attr("acrs", Kind::UriList, NotPresent, NotPresent),
];

/// Notification event types (`net`, TS-0004 table 6.3.4.2.19-1, Release 3 numbering).
pub mod net {
    /// 1: the subscribed-to resource was updated.
    pub const UPDATE: u64 = 1;
    /// 2: the subscribed-to resource was deleted.
    pub const DELETE: u64 = 2;
    /// 3: a direct child was created.
    pub const CREATE_CHILD: u64 = 3;
    /// 4: a direct child was deleted.
    pub const DELETE_CHILD: u64 = 4;
    /// 5: a RETRIEVE of the subscribed-to `<container>` asked for its children while it had
    /// no content instance.
    pub const RETRIEVE_EMPTY_CONTAINER: u64 = 5;
    /// 6: a trigger was received for the subscribed-to `<AE>` (needs device triggering).
    pub const TRIGGER_FOR_AE: u64 = 6;
    /// 7: an UPDATE of the subscribed-to resource waits for the notification target's
    /// approval (blocking update).
    pub const BLOCKING_UPDATE: u64 = 7;
    /// 8: missing data points of a `<timeSeries>` were detected.
    pub const MISSING_DATA: u64 = 8;
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
                                .all(|n| n.as_u64().is_some_and(|n| (1..=8).contains(&n)))
                    });
                    if !ok {
                        return Err(Error::bad_request(
                            "enc/net must be a list of event types 1-8",
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
                "md" => missing_data_condition(v)?,
                other => {
                    return Err(Error::bad_request(format!(
                        "unsupported enc member '{other}'"
                    )))
                }
            }
        }
    }
    let types = event_types(attrs);
    if types.contains(&net::MISSING_DATA) {
        // TS-0004 clause 7.4.8.2.1: net 8 needs `enc/md`; TS-0001 table 9.6.8-2: alone.
        if types.len() != 1 {
            return Err(Error::bad_request(
                "enc/net 8 (missing data points) cannot be combined with other event types",
            ));
        }
        if missing_data(attrs).is_none() {
            return Err(Error::bad_request(
                "enc/net 8 (missing data points) needs enc/md",
            ));
        }
    }
    if types.contains(&net::BLOCKING_UPDATE) {
        blocking_update(attrs, &types)?;
    }
    if let Some(nct) = attrs.get("nct").and_then(Value::as_u64) {
        if !matches!(nct, 1 | 2 | 3 | 5) {
            return Err(Error::bad_request("nct must be 1, 2, 3 or 5"));
        }
        // TS-0001 table 9.6.8-4: which content each event type allows.
        if let Some(n) = types.iter().find(|n| !content_allowed(nct, **n)) {
            return Err(Error::bad_request(format!(
                "nct {nct} is not allowed with net {n} (TS-0001 table 9.6.8-4)"
            )));
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

/// The default `nct` for a subscription's event types (TS-0001 table 9.6.8-4): modified
/// attributes for a blocking update (7), the time series notification for missing data
/// (8), all attributes for every other type this CSE raises.
pub fn default_nct(attrs: &serde_json::Map<String, Value>) -> u64 {
    let types = event_types(attrs);
    if types.contains(&net::BLOCKING_UPDATE) {
        2
    } else if types.contains(&net::MISSING_DATA) {
        5
    } else {
        1
    }
}

/// The `enc/md` condition (`m2m:missingData`, TS-0004 table 6.3.5.40-1) of a subscription:
/// how many missing data points (`num`) within which window (`dur`) make a notification.
pub fn missing_data(attrs: &serde_json::Map<String, Value>) -> Option<(u64, std::time::Duration)> {
    let md = attrs.get("enc")?.get("md")?;
    let num = md.get("num")?.as_u64().filter(|n| *n >= 1)?;
    let dur = crate::time::parse_duration(md.get("dur")?.as_str()?).ok()?;
    Some((num, dur))
}

/// Checks `enc/md`: exactly `num`, a positive integer, and `dur`, an `xs:duration` longer
/// than zero (both multiplicity 1).
fn missing_data_condition(md: &Value) -> Result<()> {
    let obj = md
        .as_object()
        .ok_or_else(|| Error::bad_request("enc/md must be an object"))?;
    if let Some(other) = obj.keys().find(|k| *k != "num" && *k != "dur") {
        return Err(Error::bad_request(format!(
            "unsupported enc/md member '{other}'"
        )));
    }
    if obj
        .get("num")
        .and_then(Value::as_u64)
        .is_none_or(|n| n == 0)
    {
        return Err(Error::bad_request("enc/md/num must be a positive integer"));
    }
    let dur = obj
        .get("dur")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("enc/md/dur must be a duration"))?;
    if crate::time::parse_duration(dur)?.is_zero() {
        return Err(Error::bad_request("enc/md/dur must be longer than zero"));
    }
    Ok(())
}

/// Whether TS-0001 table 9.6.8-4 allows content `nct` with event type `net`: all attributes
/// (1) and the resource ID (3) with 1-5, modified attributes (2) with 1 and 7, the time
/// series notification (5) with 8.
fn content_allowed(nct: u64, event: u64) -> bool {
    match nct {
        1 | 3 => (net::UPDATE..=net::RETRIEVE_EMPTY_CONTAINER).contains(&event),
        2 => event == net::UPDATE || event == net::BLOCKING_UPDATE,
        5 => event == net::MISSING_DATA,
        _ => false,
    }
}

/// Whether an UPDATE that changed the attributes `modified` concerns the subscription: with
/// `enc/atr`, only a change of one of those attributes does (TS-0001 table 9.6.8-2).
pub fn concerns_update(
    attrs: &serde_json::Map<String, Value>,
    modified: &serde_json::Map<String, Value>,
) -> bool {
    let atr = attrs
        .get("enc")
        .and_then(|e| e.get("atr"))
        .and_then(Value::as_array);
    atr.is_none_or(|atr| {
        atr.iter()
            .filter_map(Value::as_str)
            .any(|a| modified.contains_key(a))
    })
}

/// Whether the subscription is a blocking-update one (`net` 7).
pub fn is_blocking(attrs: &serde_json::Map<String, Value>) -> bool {
    event_types(attrs).contains(&net::BLOCKING_UPDATE)
}

/// The rules of a blocking-update subscription (TS-0004 clause 7.4.8.2.1, TS-0001 table
/// 9.6.8-2): `net` 7 alone, no condition but `atr`, exactly one notification target, and it
/// a resource ID (an AE), not a URL; no other notification policy (`exc`, `bn`, `ln`, `su`),
/// and the content is modified attributes (`nct` 2, which the hosting CSE sets).
fn blocking_update(attrs: &serde_json::Map<String, Value>, types: &[u64]) -> Result<()> {
    if types.len() != 1 {
        return Err(Error::bad_request(
            "enc/net 7 (blocking update) cannot be combined with other event types",
        ));
    }
    let conditions = attrs.get("enc").and_then(Value::as_object);
    if let Some(other) = conditions
        .into_iter()
        .flat_map(|c| c.keys())
        .find(|k| *k != "net" && *k != "atr")
    {
        return Err(Error::bad_request(format!(
            "enc/{other} is not allowed with net 7 (blocking update): only atr is"
        )));
    }
    if let Some(other) = ["exc", "bn", "ln", "su"]
        .into_iter()
        .find(|k| attrs.get(*k).is_some_and(|v| !v.is_null()))
    {
        return Err(Error::bad_request(format!(
            "{other} is not allowed on a blocking-update subscription (net 7)"
        )));
    }
    if attrs
        .get("nct")
        .and_then(Value::as_u64)
        .is_some_and(|n| n != 2)
    {
        return Err(Error::bad_request(
            "a blocking-update subscription (net 7) notifies modified attributes (nct 2) only",
        ));
    }
    let nu: Vec<&str> = attrs
        .get("nu")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match nu.as_slice() {
        [target] if !target.contains("://") => Ok(()),
        [_] => Err(Error::bad_request(
            "the notification target of a blocking-update subscription (net 7) must be a resource ID, not a URL",
        )),
        _ => Err(Error::bad_request(
            "a blocking-update subscription (net 7) has exactly one notification target",
        )),
    }
}

/// Refuses what an UPDATE of a `<subscription>` may not set (TS-0004 clause 7.4.8.2.3):
/// `net` 7 (blocking update) is chosen at creation only.
pub fn check_update(changes: &serde_json::Map<String, Value>) -> Result<()> {
    if is_blocking(changes) {
        return Err(Error::bad_request(
            "enc/net 7 (blocking update) cannot be set by an UPDATE",
        ));
    }
    Ok(())
}

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

/// Refuses an event type that cannot happen to the subscribed-to resource (TS-0001 table
/// 9.6.8-2): 5 needs a `<container>`; 6 an `<AE>`, and then device triggering, which this
/// CSE does not implement (5001), so the subscription could never fire.
pub fn check_event_types(
    attrs: &serde_json::Map<String, Value>,
    parent: crate::ResourceType,
) -> Result<()> {
    let types = event_types(attrs);
    let md = attrs.get("enc").and_then(|e| e.get("md")).is_some();
    if (types.contains(&net::MISSING_DATA) || md) && parent != crate::ResourceType::TimeSeries {
        // TS-0004 clause 7.4.8.2.1: missing data is watched on a <timeSeries> only.
        return Err(Error::bad_request(
            "enc/md and enc/net 8 (missing data points) need a subscribed-to <timeSeries>",
        ));
    }
    if types.contains(&net::RETRIEVE_EMPTY_CONTAINER) && parent != crate::ResourceType::Container {
        return Err(Error::bad_request(
            "enc/net 5 (retrieve of a container without content instance) needs a subscribed-to <container>",
        ));
    }
    if types.contains(&net::TRIGGER_FOR_AE) {
        return Err(if parent == crate::ResourceType::Ae {
            Error::new(
                crate::ResponseStatusCode::NotImplemented,
                "enc/net 6 (trigger received) needs device triggering, which this CSE does not implement",
            )
        } else {
            Error::bad_request("enc/net 6 (trigger received) needs a subscribed-to <AE>")
        });
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

    /// TS-0001 table 9.6.8-2: `atr` narrows the UPDATEs a subscription hears of.
    /// TS-0004 table 6.3.5.40-1 and clause 7.4.8.2.1: `md` is `num` and `dur`; `net` 8
    /// needs it, alone, and the time series notification (`nct` 5) is its content.
    #[test]
    fn missing_data_conditions() {
        let attrs = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let ok = attrs(
            serde_json::json!({"nu": ["x"], "enc": {"net": [8], "md": {"num": 2, "dur": "PT1M"}}}),
        );
        assert!(validate(&ok).is_ok());
        assert_eq!(default_nct(&ok), 5);
        assert_eq!(
            missing_data(&ok),
            Some((2, std::time::Duration::from_secs(60)))
        );
        for bad in [
            serde_json::json!({"net": [8]}),
            serde_json::json!({"net": [8, 3], "md": {"num": 2, "dur": "PT1M"}}),
            serde_json::json!({"net": [8], "md": {"num": 0, "dur": "PT1M"}}),
            serde_json::json!({"net": [8], "md": {"num": 2}}),
            serde_json::json!({"net": [8], "md": {"num": 2, "dur": "P1Y"}}),
            serde_json::json!({"net": [8], "md": [2, "PT1M"]}),
        ] {
            let a = attrs(serde_json::json!({"nu": ["x"], "enc": bad}));
            assert!(validate(&a).is_err(), "{bad}");
        }
        let mut with_nct = ok.clone();
        with_nct.insert("nct".into(), serde_json::json!(1));
        assert!(validate(&with_nct).is_err());
        assert!(check_event_types(&ok, crate::ResourceType::Container).is_err());
        assert!(check_event_types(&ok, crate::ResourceType::TimeSeries).is_ok());
    }

    #[test]
    fn an_update_concerns_a_subscription_through_its_attributes() {
        let changed = |names: &[&str]| {
            names
                .iter()
                .map(|n| ((*n).to_owned(), json!(1)))
                .collect::<serde_json::Map<_, _>>()
        };
        let any = json!({"nu": ["Cae"]});
        let some = json!({"nu": ["Cae"], "enc": {"atr": ["lbl", "mni"]}});
        let (any, some) = (
            any.as_object().expect("object"),
            some.as_object().expect("object"),
        );
        assert!(concerns_update(any, &changed(&["et"])));
        assert!(concerns_update(some, &changed(&["et", "mni"])));
        assert!(!concerns_update(some, &changed(&["et", "mbs"])));
    }

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
