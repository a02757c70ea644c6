//! Building response content for the result content (`rcn`) asked for.

use model::{Error, Resource, Result, ResultContent};
use serde_json::{json, Map, Value};

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
    Ok(json!({ r.ty.wrapper(): attrs }))
}

/// A child resource reference (`m2m:childResourceRef`).
pub(crate) fn child_ref(r: &Resource) -> Value {
    json!({ "nm": r.rn(), "typ": r.ty.code(), "val": r.srn })
}

/// Adds resources into a wrapped representation as lists under their own wrapper keys.
pub(crate) fn embed(mut parent: Value, children: &[Resource]) -> Value {
    if let Some(obj) = parent
        .as_object_mut()
        .and_then(|m| m.values_mut().next())
        .and_then(Value::as_object_mut)
    {
        for c in children {
            let list = obj
                .entry(c.ty.wrapper())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(Value::Object(c.attrs.clone()));
            }
        }
    }
    parent
}

/// Content for a CREATE response.
pub(crate) fn for_create(r: &Resource, rcn: Option<ResultContent>) -> Option<Value> {
    match rcn.unwrap_or(ResultContent::Attributes) {
        ResultContent::Nothing => None,
        ResultContent::HierarchicalAddress => Some(json!({ "m2m:uri": r.srn })),
        ResultContent::HierarchicalAddressAndAttributes => {
            Some(json!({ "m2m:rce": { r.ty.wrapper(): r.attrs, "uri": r.srn } }))
        }
        _ => Some(r.wrapped()),
    }
}
