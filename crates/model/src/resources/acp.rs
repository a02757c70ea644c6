//! `<accessControlPolicy>` (ty 1): privileges for other resources (`pv`) and for itself (`pvs`).

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::Value;

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("pv", Kind::Acrs, Mandatory, Optional),
    attr("pvs", Kind::Acrs, Mandatory, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
];

/// Checks an `m2m:setOfAcrs`: `{"acr": [{"acor": [..], "acop": n, ...}]}`.
pub fn validate_acrs(name: &str, v: &Value) -> Result<()> {
    let bad = |why: &str| Err(Error::bad_request(format!("invalid '{name}': {why}")));
    let Some(obj) = v.as_object() else {
        return bad("not an object");
    };
    if let Some(k) = obj.keys().find(|k| *k != "acr") {
        return bad(&format!("unknown member '{k}'"));
    }
    let Some(rules) = obj.get("acr").and_then(Value::as_array) else {
        return bad("acr must be a list");
    };
    for rule in rules {
        let Some(rule) = rule.as_object() else {
            return bad("a rule must be an object");
        };
        for (k, val) in rule {
            match k.as_str() {
                "acor" => {
                    let ok = val.as_array().is_some_and(|a| {
                        !a.is_empty() && a.iter().all(|o| o.as_str().is_some_and(|s| !s.is_empty()))
                    });
                    if !ok {
                        return bad("acor must be a non-empty list of strings");
                    }
                }
                "acop" => {
                    if !val.as_u64().is_some_and(|n| (1..=63).contains(&n)) {
                        return bad("acop must be an integer from 1 to 63");
                    }
                }
                "acco" => {
                    if !val
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_object))
                    {
                        return bad("acco must be a list of objects");
                    }
                }
                "acaf" => {
                    if !val.is_boolean() {
                        return bad("acaf must be a boolean");
                    }
                }
                "acod" => {
                    if !val
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_object))
                    {
                        return bad("acod must be a list of objects");
                    }
                }
                other => return bad(&format!("unknown rule member '{other}'")),
            }
        }
        if !rule.contains_key("acor") || !rule.contains_key("acop") {
            return bad("each rule needs acor and acop");
        }
    }
    if name == "pvs" && rules.is_empty() {
        return bad("pvs needs at least one rule");
    }
    Ok(())
}
