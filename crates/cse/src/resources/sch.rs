//! `<schedule>`: checked on CREATE and UPDATE, and read where a schedule has an effect this
//! CSE can honour (TS-0004 clause 7.5.1.2.2 step 3.0):
//!
//! - a `notificationSchedule` under a `<subscription>`: its notifications are sent only
//!   within the windows ([`notification_allowed`]); outside them they are discarded, as
//!   step 4.0 says when no `pn` (pendingNotification, not supported) is set;
//! - `<schedule>`s under a `<node>`: the reachability of the AEs on that node (their `nl`);
//!   a notification or a forwarded NOTIFY to such an AE goes out only when one of the node's
//!   schedules holds ([`reachable`]).
//!
//! A `<schedule>` under the `<CSEBase>` announces when this CSE expects to be available: it
//! is for other entities to read, and this CSE processes requests at all times.

use crate::Cse;
use model::resources::sch::{self, NOTIFICATION_SCHEDULE};
use model::{Error, Resource, ResourceType, Result};
use serde_json::{json, Value};

/// Checks a new schedule against its parent: `se` well formed, `nco` only under a `<node>`
/// (4102), and under a `<subscription>` the fixed name `notificationSchedule` (given by the
/// CSE when the originator names none; another name is 4000).
pub(crate) fn prepare(parent: &Resource, r: &mut Resource) -> Result<()> {
    sch::validate(&r.attrs)?;
    sch::check_nco(&r.attrs, parent.ty == ResourceType::Node)?;
    if parent.ty == ResourceType::Subscription {
        // The CSE gave the resource its `ri` as `rn` when the originator named none.
        let named = r.attrs.get("rn").and_then(Value::as_str);
        if named.is_some_and(|rn| rn != NOTIFICATION_SCHEDULE && rn != r.ri()) {
            return Err(Error::bad_request(format!(
                "the schedule of a subscription is named '{NOTIFICATION_SCHEDULE}'"
            )));
        }
        r.attrs.insert("rn".into(), json!(NOTIFICATION_SCHEDULE));
        r.srn = format!("{}/{NOTIFICATION_SCHEDULE}", parent.srn);
    }
    Ok(())
}

/// Checks an UPDATE of a schedule: `se` well formed, `nco` only under a `<node>`.
pub(crate) fn check_update(
    cse: &Cse,
    current: &Resource,
    changes: &serde_json::Map<String, Value>,
) -> Result<()> {
    sch::validate(changes)?;
    let parent = cse.store.resource_type(current.pi())?;
    sch::check_nco(changes, parent == Some(ResourceType::Node))
}

/// Inside the creating write: a `<CSEBase>` and a `<subscription>` have at most one
/// schedule (TS-0004 tables 7.4.3.1-4 and 7.4.8.1-4); a second is 4105 CONFLICT. A
/// `<node>` may have one per underlying network.
pub(crate) fn at_most_one(t: &mut dyn store::Txn, r: &Resource) -> Result<()> {
    let Some(parent) = t.get(r.pi())? else {
        return Ok(());
    };
    if parent.ty == ResourceType::Node {
        return Ok(());
    }
    match t.oldest_child(r.pi(), ResourceType::Schedule)? {
        Some(_) => Err(Error::conflict(format!(
            "a {} has at most one schedule",
            parent.ty.short_name()
        ))),
        None => Ok(()),
    }
}

/// Whether `sub` may notify now: it has no `notificationSchedule`, or the schedule holds.
/// A store failure counts as "may": a read error must not silently drop notifications
/// that no schedule restricts.
pub(crate) fn notification_allowed(cse: &Cse, sub: &Resource) -> bool {
    match cse.store.oldest_child(sub.ri(), ResourceType::Schedule) {
        Ok(Some(s)) => allows_now(cse, &s),
        Ok(None) => true,
        Err(e) => {
            tracing::error!(error = %e, sub = sub.ri(), "cannot read the notification schedule");
            true
        }
    }
}

/// [`notification_allowed`] for a subscription deleted with its subscribed-to resource,
/// whose schedule (if any) is among the deleted resources `gone`.
pub(crate) fn notification_allowed_in(cse: &Cse, sub: &Resource, gone: &[Resource]) -> bool {
    gone.iter()
        .find(|s| s.ty == ResourceType::Schedule && s.pi() == sub.ri())
        .is_none_or(|s| allows_now(cse, s))
}

/// Whether the `<AE>` `ae` can be reached now: when its `nl` names a `<node>` that has
/// schedules, one of them must hold; without a node or without schedules it always can
/// (TS-0004 clause 7.5.1.2.2 step 3.0: no reachability schedule, always reachable).
pub(crate) fn reachable(cse: &Cse, ae: &Resource) -> Result<bool> {
    let Some(nl) = ae.attrs.get("nl").and_then(Value::as_str) else {
        return Ok(true);
    };
    let node = match crate::addressing::resolve(nl, &cse.config, cse.store.as_ref()) {
        Ok(t) => crate::real_target(t).ok(),
        Err(_) => None,
    };
    let Some(node) = node.filter(|n| n.ty == ResourceType::Node) else {
        return Ok(true);
    };
    let schedules = cse
        .store
        .children(node.ri(), Some(ResourceType::Schedule))?;
    Ok(schedules.is_empty() || schedules.iter().any(|s| allows_now(cse, s)))
}

fn allows_now(cse: &Cse, schedule: &Resource) -> bool {
    sch::allows(&schedule.attrs, cse.config.clock.now())
}
