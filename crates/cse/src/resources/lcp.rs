//! `<locationPolicy>` (ty 10, TS-0004 clause 7.4.10; TS-0001 clauses 10.2.9.2-10.2.9.7): the
//! policy and its location `<container>` are created in one durable write, linked both ways
//! (`loi` on the policy, `li` on the container), live as long as each other and go together.
//!
//! Positioning is device based: the policy's creator (the device's AE) holds the container
//! as its creator and writes each position fix into it as a `<contentInstance>`, at the
//! period `lou` gives it; every instance must be an `m2m:geoCoordinates` Point
//! (`model::resources::lcp::check_position`).

use crate::records::TxnRecords;
use crate::Cse;
use model::{Error, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::{json, Map, Value};
use store::Txn;

/// Completes a policy about to be created under `parent` (always the `<CSEBase>`): checks
/// what the table cannot, sets `lit` (position fix) when absent and `lost`, and returns
/// the location container to be written with it. Its name is `lon` when given, else the
/// CSE's; a name already taken under `parent` is 4105 CONFLICT (TS-0001 clause 10.2.9.6).
pub(crate) fn prepare(cse: &Cse, parent: &Resource, r: &mut Resource) -> Result<Resource> {
    model::resources::lcp::validate(&r.attrs)?;
    r.attrs
        .entry("lit")
        .or_insert(json!(model::resources::lcp::POSITION_FIX));
    // No Location Server is asked, so no request can have failed (TS-0004 clause
    // 7.4.10.2.1 step 6 stores a failure's code here).
    r.attrs.insert("lost".into(), json!(""));
    let ri = model::id::new_resource_id(ResourceType::Container.short_name());
    let rn = r
        .attrs
        .get("lon")
        .and_then(Value::as_str)
        .map_or_else(|| ri.clone(), str::to_owned);
    let srn = format!("{}/{rn}", parent.srn);
    if rn == r.rn() || cse.store.get_by_srn(&srn)?.is_some() {
        return Err(Error::new(
            ResponseStatusCode::Conflict,
            format!("a resource named '{rn}' already exists"),
        ));
    }
    let mut attrs = Map::new();
    for (k, v) in [
        ("ri", json!(ri)),
        ("rn", json!(rn)),
        ("pi", json!(parent.ri())),
        ("ty", json!(ResourceType::Container.code())),
        ("li", json!(r.ri())),
    ] {
        attrs.insert(k.to_owned(), v);
    }
    // Same times as the policy; the same policies govern who may read the positions.
    for k in ["ct", "lt", "et", "acpi", "daci"] {
        if let Some(v) = r.attrs.get(k) {
            attrs.insert(k.to_owned(), v.clone());
        }
    }
    let mut container = Resource {
        ty: ResourceType::Container,
        srn,
        attrs,
    };
    super::cnt::prepare(&mut container);
    r.attrs.insert("loi".into(), json!(ri));
    Ok(container)
}

/// Inside the creating write, before the policy itself: writes its location container with
/// the policy's (possibly shortened) lifetime, its creator being the policy's.
pub(crate) fn insert_container(
    t: &mut dyn Txn,
    policy: &Resource,
    mut container: Resource,
    creator: Option<&str>,
) -> Result<()> {
    if let Some(et) = policy.attrs.get("et") {
        container.attrs.insert("et".into(), et.clone());
    }
    t.insert(&container)?;
    if let Some(creator) = creator {
        t.remember_creator(container.ri(), creator)?;
    }
    Ok(())
}

/// Inside an UPDATE's write of a policy: a new lifetime is its container's too, so that
/// neither expires first and takes the other with it.
pub(crate) fn follow_lifetime(
    t: &mut dyn Txn,
    policy: &Resource,
    changes: &Map<String, Value>,
) -> Result<Option<Resource>> {
    let (Some(et), Some(loi)) = (
        changes.get("et").and(policy.attrs.get("et")),
        policy.attrs.get("loi").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    let Some(mut container) = t.get(loi)? else {
        return Ok(None);
    };
    if container.attrs.get("et") == Some(et) {
        return Ok(None);
    }
    container.attrs.insert("et".into(), et.clone());
    t.update(&container)?;
    Ok(Some(container))
}

/// Completes a deletion in its own write (TS-0004 clause 7.4.10.2.4): a deleted policy takes
/// its location container (and the positions in it) with it, and a deleted location
/// container its policy, so that neither link is ever left dangling. Whatever goes is added
/// to `gone`, the records of what goes to `credentials` and `creators` (for the deletion
/// notices); returns the resources deleted this way whose parent stays (their parent's
/// subscribers are told of a deleted child).
pub(crate) fn cascade(
    t: &mut dyn Txn,
    gone: &mut Vec<Resource>,
    credentials: &mut crate::records::SubscriberCredentials,
    creators: &mut crate::records::Creators,
) -> Result<Vec<Resource>> {
    let mut roots = Vec::new();
    let mut i = 0;
    while i < gone.len() {
        let g = gone[i].clone();
        i += 1;
        let partner = match g.ty {
            ResourceType::LocationPolicy => g.attrs.get("loi"),
            ResourceType::Container => g.attrs.get("li"),
            _ => None,
        };
        let Some(partner) = partner.and_then(Value::as_str) else {
            continue;
        };
        if gone.iter().any(|x| x.ri() == partner) || t.get(partner)?.is_none() {
            continue;
        }
        credentials.extend(t.subscriber_credentials_below(partner)?);
        creators.extend(t.creators_below(partner)?);
        let more = t.delete_subtree(partner)?;
        if let Some(root) = more.first() {
            roots.push(root.clone());
        }
        gone.extend(more);
    }
    Ok(roots)
}
