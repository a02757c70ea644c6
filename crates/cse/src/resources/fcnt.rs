//! `<flexContainer>`: every representation is checked against the schema of the
//! specialisation its `cnd` names (`model::resources::fcnt`); the wrapper key of a request
//! must be that specialisation's; a device class takes only its module classes as
//! flexContainer children; `cs` follows the custom attributes on every write.

use crate::config::CseConfig;
use model::resources::fcnt::{self, Specialisation};
use model::{Error, Operation, Request, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::{json, Map, Value};

/// The one `{key: {...}}` entry of a request's content.
fn entry(req: &Request) -> Result<(&str, Map<String, Value>)> {
    let obj = req
        .pc
        .as_ref()
        .ok_or_else(|| Error::bad_request("missing content"))?
        .as_object()
        .ok_or_else(|| Error::bad_request("content must be an object"))?;
    let mut entries = obj.iter();
    match (entries.next(), entries.next()) {
        (Some((key, Value::Object(attrs))), None) => Ok((key.as_str(), attrs.clone())),
        (Some((key, _)), None) => Err(Error::bad_request(format!("{key} must be an object"))),
        _ => Err(Error::bad_request(
            "content must hold exactly one flexContainer specialisation",
        )),
    }
}

/// The attributes of a CREATE, validated: the key must name a specialisation with a schema
/// (else 4125; another resource type's key is 4000), `cnd` must name the same one, and the
/// attributes must fit its schema (4000).
pub(crate) fn create_content(req: &Request) -> Result<Map<String, Value>> {
    let (key, attrs) = entry(req)?;
    let Some((name, spec)) = fcnt::by_wrapper(key) else {
        if ResourceType::from_wrapper(key).is_some() {
            return Err(Error::bad_request(format!(
                "content '{key}' does not match resource type 28"
            )));
        }
        return Err(Error::new(
            ResponseStatusCode::SpecializationSchemaNotFound,
            format!("no schema for the flexContainer specialisation '{key}'"),
        ));
    };
    fcnt::validate(spec, Operation::Create, &attrs)?;
    fcnt::check_cnd(name, &attrs)?;
    Ok(attrs)
}

/// The attributes of an UPDATE of `current`, validated against its schema; the content
/// must be wrapped in the resource's own key (4000 otherwise).
pub(crate) fn update_content(req: &Request, current: &Resource) -> Result<Map<String, Value>> {
    let (key, attrs) = entry(req)?;
    let spec = specialisation(current)?;
    if key != current.wrapper() {
        return Err(Error::bad_request(format!(
            "content '{key}' does not match the resource's specialisation '{}'",
            current.wrapper()
        )));
    }
    fcnt::validate(spec, Operation::Update, &attrs)?;
    Ok(attrs)
}

fn specialisation(r: &Resource) -> Result<&'static Specialisation> {
    fcnt::of(&r.attrs)
        .map(|(_, s)| s)
        .ok_or_else(|| Error::internal(format!("flexContainer {} has no known cnd", r.ri())))
}

/// Before the insert: a flexContainer below another takes only the specialisations its
/// parent's schema lists (4108 otherwise); `st` starts at 0 and `cs` is computed.
pub(crate) fn prepare(config: &CseConfig, parent: &Resource, r: &mut Resource) -> Result<()> {
    let spec = specialisation(r)?;
    if parent.ty == ResourceType::FlexContainer {
        let parent_spec = specialisation(parent)?;
        if !parent_spec.children.contains(&spec.id) {
            return Err(Error::invalid_child_type(format!(
                "a {} cannot be created under a {}",
                spec.id, parent_spec.id
            )));
        }
    }
    r.attrs.insert("st".into(), json!(0));
    refresh_size(r, config.max_content_size)
}

/// Recomputes `cs` from the custom attributes the resource holds now (inside the write of
/// an UPDATE, so it always matches what is stored). Custom attributes are content like a
/// content instance's, held to the same `max_content_size`: more is 4000 and nothing is
/// written.
pub(crate) fn refresh_size(r: &mut Resource, max_content_size: u64) -> Result<()> {
    if let Some((_, spec)) = fcnt::of(&r.attrs) {
        let cs = fcnt::content_size(spec, &r.attrs);
        if cs > max_content_size {
            return Err(Error::bad_request(format!(
                "custom attributes of {cs} bytes exceed the limit of {max_content_size}"
            )));
        }
        r.attrs.insert("cs".into(), json!(cs));
    }
    Ok(())
}
