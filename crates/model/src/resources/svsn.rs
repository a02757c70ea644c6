//! `<serviceSubscribedNode>` (ty 20, TS-0004 clause 7.4.20, TS-0001 clause 9.6.20): one node
//! of a subscription. When it names a CSE (`csi`), its `rlk` links the
//! `<serviceSubscribedAppRule>`s that decide which AEs may register with that CSE.
//!
//! `nrq` (niddRequired) is defined but not supported (5001): it asks the IN-CSE to configure Non-IP Data
//! Delivery in the underlying network (TS-0026), which this CSE cannot do, so storing it
//! would promise something that never happens.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// Attribute table (TS-0004 table 7.4.20.1-3).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("ni", Kind::Uri, Mandatory, NotPresent),
    attr("csi", Kind::Uri, Optional, NotPresent),
    attr("di", Kind::UriList, Optional, NotPresent),
    attr("rlk", Kind::UriList, Optional, Optional),
    attr("nrq", Kind::Unsupported, Optional, Optional),
];

/// TS-0004 clause 7.4.20.2.1: rule links belong to a node that has a CSE, so a CREATE with
/// `rlk` and without `csi` is 4000.
pub fn check_create(attrs: &Map<String, Value>) -> Result<()> {
    if attrs.contains_key("rlk") && !attrs.contains_key("csi") {
        return Err(Error::bad_request(
            "rlk needs csi: rule links govern the registrations of the node's CSE",
        ));
    }
    Ok(())
}

/// TS-0004 clause 7.4.20.2.3: an UPDATE that sets `rlk` on a node without `csi` is 4000.
pub fn check_update(current: &Map<String, Value>, changes: &Map<String, Value>) -> Result<()> {
    let sets_links = changes.get("rlk").is_some_and(|v| !v.is_null());
    if sets_links && !current.contains_key("csi") {
        return Err(Error::bad_request(
            "rlk needs csi: this node has no CSE whose registrations rules could govern",
        ));
    }
    Ok(())
}

/// Whether a node's `csi` names the CSE whose CSE-ID is `cse_id` (`id-in`): the CSE-ID with
/// or without its leading `/` (TS-0001 clause 7.2 SP-relative form).
pub fn names_cse(attrs: &Map<String, Value>, cse_id: &str) -> bool {
    attrs
        .get("csi")
        .and_then(Value::as_str)
        .is_some_and(|csi| csi.strip_prefix('/').unwrap_or(csi) == cse_id.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn links_need_a_cse() {
        assert!(check_create(&map(json!({"ni": "n", "rlk": []}))).is_err());
        assert!(check_create(&map(json!({"ni": "n", "csi": "/id-in", "rlk": []}))).is_ok());
        assert!(check_create(&map(json!({"ni": "n"}))).is_ok());
        let bare = map(json!({"ni": "n"}));
        assert!(check_update(&bare, &map(json!({"rlk": ["x"]}))).is_err());
        assert!(check_update(&bare, &map(json!({"rlk": null}))).is_ok());
        assert!(check_update(&bare, &map(json!({"lbl": ["a"]}))).is_ok());
        let with_cse = map(json!({"ni": "n", "csi": "/id-in"}));
        assert!(check_update(&with_cse, &map(json!({"rlk": ["x"]}))).is_ok());
    }

    #[test]
    fn csi_in_either_form() {
        assert!(names_cse(&map(json!({"csi": "/id-in"})), "id-in"));
        assert!(names_cse(&map(json!({"csi": "id-in"})), "id-in"));
        assert!(!names_cse(&map(json!({"csi": "/id-mn"})), "id-in"));
        assert!(!names_cse(&map(json!({})), "id-in"));
    }
}
