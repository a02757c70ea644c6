//! Building response content for the result content (`rcn`) asked for.

use model::{Error, Resource, Result, ResultContent};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// `{"m2m:xxx": {attributes}}`, limited to `atrl` when a partial retrieve names attributes.
pub(crate) fn representation(r: &Resource, atrl: &[String]) -> Result<Value> {
    if atrl.is_empty() {
        return Ok(r.wrapped());
    }
    let mut attrs = Map::new();
    for name in atrl {
        if model::attributes::find(r.ty, name).is_none() {
            return Err(Error::bad_request(format!(
                "unknown attribute '{name}' in partial retrieve"
            )));
        }
        if let Some(v) = r.attrs.get(name) {
            attrs.insert(name.clone(), v.clone());
        }
    }
    Ok(json!({ r.wrapper(): attrs }))
}

/// A child resource reference (`m2m:childResourceRef`).
pub(crate) fn child_ref(r: &Resource) -> Value {
    json!({ "nm": r.rn(), "typ": r.ty.code(), "val": r.srn })
}

/// Adds descendants of `top` into its wrapped representation, each nested inside the
/// nearest of its ancestors the result holds (TS-0004 clause 8.4.2 example 3), and inside
/// `top` itself when none is: a filter may leave out a resource's parent. `found` lists
/// parents before their children, as a scan in structured-name order does. Built without
/// recursion, so a deep tree cannot exhaust the stack.
pub(crate) fn embed(mut parent: Value, top: &Resource, found: &[Resource]) -> Value {
    let index: HashMap<&str, usize> = found
        .iter()
        .enumerate()
        .map(|(i, r)| (r.srn.as_str(), i))
        .collect();
    let owner = |r: &Resource| {
        let mut srn = r.srn.as_str();
        while let Some((up, _)) = srn.rsplit_once('/') {
            if up.len() <= top.srn.len() {
                break;
            }
            if let Some(j) = index.get(up) {
                return Some(*j);
            }
            srn = up;
        }
        None
    };
    // Children come after their parents: finished in reverse, each node moves into its owner.
    let mut pending: Vec<Vec<(usize, Map<String, Value>)>> = vec![Vec::new(); found.len()];
    let mut outer = Vec::new();
    for (i, r) in found.iter().enumerate().rev() {
        let mut attrs = r.attrs.clone();
        put(&mut attrs, found, std::mem::take(&mut pending[i]));
        match owner(r) {
            Some(j) => pending[j].push((i, attrs)),
            None => outer.push((i, attrs)),
        }
    }
    if let Some(obj) = parent
        .as_object_mut()
        .and_then(|m| m.values_mut().next())
        .and_then(Value::as_object_mut)
    {
        put(obj, found, outer);
    }
    parent
}

/// Puts finished nodes (collected in reverse) under their wrapper keys, in scan order.
fn put(into: &mut Map<String, Value>, found: &[Resource], nodes: Vec<(usize, Map<String, Value>)>) {
    for (i, attrs) in nodes.into_iter().rev() {
        let list = into
            .entry(found[i].wrapper())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            a.push(Value::Object(attrs));
        }
    }
}

/// Content for a CREATE response; `sent` is the attributes the originator gave, which
/// `rcn` = 9 leaves out when the CSE kept them as they were (TS-0004 clause 7.3.3.16).
pub(crate) fn for_create(
    r: &Resource,
    rcn: Option<ResultContent>,
    sent: &Map<String, Value>,
) -> Option<Value> {
    match rcn.unwrap_or(ResultContent::Attributes) {
        ResultContent::Nothing => None,
        ResultContent::HierarchicalAddress => Some(json!({ "m2m:uri": r.srn })),
        ResultContent::HierarchicalAddressAndAttributes => {
            Some(json!({ "m2m:rce": { r.wrapper(): r.attrs, "uri": r.srn } }))
        }
        ResultContent::ModifiedAttributes => {
            let modified: Map<String, Value> = r
                .attrs
                .iter()
                .filter(|(k, v)| sent.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!modified.is_empty()).then(|| json!({ r.wrapper(): modified }))
        }
        _ => Some(r.wrapped()),
    }
}
