//! `<mgmtObj>`: the specialisation comes from the JSON key (`m2m:bat`) and must agree with
//! `mgd`; the CSE fills in what is not asked yet; some specialisations are at most one per
//! `<node>`. Setting an executable attribute to `true` in an UPDATE is an execution request:
//! it is allowed by the access control policies like any UPDATE, written to the audit log
//! before it is written to the store, and reaches the managed device through the
//! notifications of the subscriptions on the `<mgmtObj>` (TS-0004 clause 7.4.15.2.4: this
//! CSE hosts the resources and has no technology-specific management session of its own).

use crate::{Caller, Cse};
use model::resources::mgo::Specialisation;
use model::{Error, Request, Resource, Result};
use serde_json::Value;

/// The record that makes a specialisation of multiplicity 0..1 unique under its node:
/// `<node ri>/<mgd>` -> the `<mgmtObj>`'s `ri`; tied to the `<mgmtObj>`, so it goes with it.
pub(crate) const ONE_PER_NODE: &str = "mgmt-obj-per-node";

/// The specialisation a CREATE names by its content's single key (`{"m2m:bat": {...}}`);
/// a key that is no specialisation this CSE hosts does not match ty 13 (4000).
pub(crate) fn specialisation_of(req: &Request) -> Result<&'static Specialisation> {
    let key = req
        .pc
        .as_ref()
        .and_then(Value::as_object)
        .filter(|o| o.len() == 1)
        .and_then(|o| o.keys().next())
        .ok_or_else(|| Error::bad_request("content must hold exactly one management object"))?;
    Specialisation::of_wrapper(key).ok_or_else(|| {
        Error::bad_request(format!(
            "content '{key}' is not a management object specialisation this CSE hosts \
             (m2m:fwr, m2m:swr, m2m:mem, m2m:ani, m2m:andi, m2m:bat, m2m:dvi, m2m:dvc, \
             m2m:rbo, m2m:evl)"
        ))
    })
}

/// The specialisation of a stored `<mgmtObj>`; a stored one without a known `mgd` is an
/// internal error (it could not have been created).
pub(crate) fn stored(r: &Resource) -> Result<&'static Specialisation> {
    Specialisation::of_attrs(&r.attrs)
        .ok_or_else(|| Error::internal("a stored mgmtObj has no known mgd"))
}

/// Completes a new `<mgmtObj>` after the table check: `mgd` agrees with the key, no action
/// is asked for, and what the CREATE left out gets its starting value.
pub(crate) fn prepare(s: &Specialisation, r: &mut Resource) -> Result<()> {
    s.check_create(&r.attrs)?;
    for (k, v) in s.defaults() {
        r.attrs.entry(k).or_insert(v);
    }
    Ok(())
}

/// Inside the creating write: a specialisation of multiplicity 0..1 (memory, reboot,
/// eventLog) that the node already has is 4105.
pub(crate) fn one_per_node(t: &mut dyn store::Txn, r: &Resource) -> Result<()> {
    let s = stored(r)?;
    if !s.one_per_node {
        return Ok(());
    }
    let key = format!("{}/{}", r.pi(), s.mgd);
    if t.record(ONE_PER_NODE, &key)?.is_some() {
        return Err(Error::conflict(format!(
            "the node already has a {}",
            s.name
        )));
    }
    t.put_record(ONE_PER_NODE, &key, r.ri().as_bytes(), Some(r.ri()))
}

/// For an UPDATE of a `<mgmtObj>` already allowed by the policies: the actions it asks for
/// (two exclusive ones together are 4000). When there are any, the request is written to
/// the audit log and the call returns only once it is on disk, so that an execution request
/// is never stored, nor notified, without its audit entry; an audit log that cannot be
/// written refuses the request (5000) with nothing changed.
pub(crate) async fn audit_actions(
    cse: &Cse,
    caller: &Caller<'_>,
    current: &Resource,
    changes: &serde_json::Map<String, Value>,
) -> Result<()> {
    let s = stored(current)?;
    let actions = s.requested_actions(changes)?;
    if actions.is_empty() {
        return Ok(());
    }
    let actor = caller.originator.id(&cse.config).to_owned();
    let action = format!("{}: {}", s.name, actions.join(", "));
    if let Some(audit) = cse.audit() {
        audit
            .record_durably(manager::audit::Event::ManagementRequested {
                actor: actor.clone(),
                target: current.srn.clone(),
                action: action.clone(),
            })
            .await?;
    }
    tracing::info!(
        originator = actor,
        target = current.ri(),
        action,
        "device management action requested (see the audit log)"
    );
    Ok(())
}
