//! `<subscription>` (ty 23): who to notify (`nu`) about which events (`enc`), and how.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::Value;

/// Attribute table.
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::StrList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("enc", Kind::Object, Optional, Optional),
    attr("exc", Kind::Int, Optional, Optional),
    attr("nu", Kind::StrList, Mandatory, Optional),
    attr("gpi", Kind::Str, Optional, Optional),
    attr("nfu", Kind::Str, Optional, Optional),
    attr("bn", Kind::Object, Optional, Optional),
    attr("rl", Kind::Object, Optional, Optional),
    attr("pn", Kind::Int, Optional, Optional),
    attr("nsp", Kind::Int, Optional, Optional),
    attr("ln", Kind::Bool, Optional, Optional),
    attr("nct", Kind::Int, Optional, Optional),
    attr("nec", Kind::Int, Optional, Optional),
    attr("su", Kind::Str, Optional, NotPresent),
    attr("daci", Kind::StrList, Optional, Optional),
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
