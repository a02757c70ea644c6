//! `<node>`: no rules of its own beyond its table (TS-0004 clause 7.4.18.2); what links to
//! it is checked here: an `<AE>`'s `nl` (nodeLink) must name a `<node>`.

use crate::Cse;
use model::{Error, ResourceType, Result};
use serde_json::{Map, Value};

/// When `attrs` (an `<AE>`'s CREATE or UPDATE) set `nl`, it must resolve to a `<node>` of
/// this CSE (4000 otherwise), so that a link cannot be parked now and filled later. Deleting
/// the node later leaves the link as it is (TS-0001 gives no rule to clear it).
pub(crate) fn check_node_link(cse: &Cse, attrs: &Map<String, Value>) -> Result<()> {
    let Some(nl) = attrs.get("nl").and_then(Value::as_str) else {
        return Ok(());
    };
    let node = crate::addressing::resolve(nl, &cse.config, cse.store.as_ref())
        .and_then(crate::real_target)
        .ok()
        .filter(|r| r.ty == ResourceType::Node);
    match node {
        Some(_) => Ok(()),
        None => Err(Error::bad_request(format!(
            "nl '{nl}' does not name a <node> of this CSE"
        ))),
    }
}
