//! `<crossResourceSubscription>` (TS-0004 clause 7.4.58.2): on CREATE, a `<subscription>`
//! is made under each regular target (`rrat`) and each named subscription (`srat`) is
//! told to notify this resource too; on DELETE (or expiry) both are undone in the same
//! write. The time window itself lives in [`crate::crs`].

use crate::records::TxnRecords;
use crate::resources::sub::verify;
use crate::{Caller, Cse};
use model::resources::crs;
use model::{time, AccessOperation, Error, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::{json, Value};
use store::Txn;

fn failure(why: String) -> Error {
    Error::new(ResponseStatusCode::CrossResourceOperationFailure, why)
}

/// Checks a new cross-resource subscription and returns the resources to write with it:
/// a new `<subscription>` per regular target, each named subscription target with this
/// resource added to its `nu` and `acrs`. The originator must be allowed to RETRIEVE
/// every target (4103); a target that is missing, not subscribable, or on which the
/// originator may not make (or change) the subscription is 5221. Every `nu` that is not
/// the originator is verified as for a `<subscription>` (5204).
pub(crate) async fn prepare(
    cse: &Cse,
    caller: &Caller<'_>,
    r: &mut Resource,
) -> Result<Vec<Resource>> {
    crs::validate(&r.attrs, true)?;
    let creator = caller.originator.id(&cse.config).to_owned();
    let criteria = crs::criteria(&r.attrs)?;
    let now = cse.config.clock.now();
    let et = r.attrs.get("et").cloned().unwrap_or(Value::Null);
    let mut companions = Vec::new();
    let mut rrats = Vec::new();
    for (i, uri) in r.str_list("rrat").iter().enumerate() {
        let target = lookup(cse, uri)?;
        readable(cse, caller, &target)?;
        if !target
            .ty
            .allowed_children()
            .contains(&ResourceType::Subscription)
        {
            return Err(failure(format!(
                "rrat target '{}' cannot be subscribed to",
                model::Untrusted(uri)
            )));
        }
        cse.authorize(
            caller,
            &target,
            AccessOperation::CREATE,
            Some(ResourceType::Subscription),
        )
        .map_err(|_| {
            failure(format!(
                "the originator may not subscribe to '{}'",
                model::Untrusted(uri)
            ))
        })?;
        let ri = model::id::new_resource_id("sub");
        let mut attrs = serde_json::Map::new();
        attrs.insert("enc".into(), Value::Object(crs::criteria_for(&criteria, i)));
        model::resources::sub::validate(&attrs)?;
        model::resources::sub::check_child_types(&attrs, target.ty)?;
        model::resources::sub::check_event_types(&attrs, target.ty)?;
        let stamp = time::format(now);
        let nct = model::resources::sub::default_nct(&attrs);
        for (k, v) in [
            ("ri", json!(ri)),
            ("rn", json!(ri)),
            ("pi", json!(target.ri())),
            ("ty", json!(ResourceType::Subscription.code())),
            ("ct", json!(stamp)),
            ("lt", json!(stamp)),
            ("et", et.clone()),
            ("nu", json!([r.ri()])),
            ("acrs", json!([r.ri()])),
            ("nct", json!(nct)),
            ("cr", json!(creator)),
        ] {
            attrs.insert(k.into(), v);
        }
        rrats.push(json!(ri));
        companions.push(Resource {
            ty: ResourceType::Subscription,
            srn: format!("{}/{ri}", target.srn),
            attrs,
        });
    }
    if !rrats.is_empty() {
        r.attrs.insert("rrats".into(), Value::Array(rrats));
    }
    let mut srat = Vec::new();
    for uri in r.str_list("srat") {
        let mut sub = lookup(cse, &uri)?;
        if srat.contains(&json!(sub.ri())) {
            return Err(Error::bad_request("a subscription is named twice in srat"));
        }
        srat.push(json!(sub.ri()));
        if sub.ty != ResourceType::Subscription {
            return Err(failure(format!(
                "srat target '{}' is not a subscription",
                model::Untrusted(&uri)
            )));
        }
        readable(cse, caller, &sub)?;
        cse.authorize(caller, &sub, AccessOperation::UPDATE, None)
            .map_err(|_| {
                failure(format!(
                    "the originator may not update '{}'",
                    model::Untrusted(&uri)
                ))
            })?;
        if sub.attrs.get("bn").is_some_and(|v| !v.is_null())
            || model::resources::sub::is_blocking(&sub.attrs)
        {
            return Err(failure(format!(
                "srat target '{}' batches or blocks its notifications",
                model::Untrusted(&uri)
            )));
        }
        for k in ["nu", "acrs"] {
            let mut list = sub.str_list(k);
            list.push(r.ri().to_owned());
            sub.attrs.insert(k.into(), json!(list));
        }
        companions.push(sub);
    }
    if !srat.is_empty() {
        // Kept as resource IDs, as `rrats` is: what the windows and the deletion compare.
        r.attrs.insert("srat".into(), Value::Array(srat));
    }
    if r.attrs.contains_key("cr") || r.str_list("nu").iter().any(|nu| *nu != creator) {
        r.attrs.insert("cr".into(), json!(creator));
    }
    verify(cse, &creator, &r.srn, &r.str_list("nu")).await?;
    Ok(companions)
}

fn lookup(cse: &Cse, uri: &str) -> Result<Resource> {
    crate::addressing::resolve(uri, &cse.config, cse.store.as_ref())
        .and_then(crate::real_target)
        .map_err(|_| failure(format!("target '{}' does not exist", model::Untrusted(uri))))
}

/// TS-0001 table 10.2.10.22-1: the originator must be allowed to retrieve each target.
fn readable(cse: &Cse, caller: &Caller<'_>, target: &Resource) -> Result<()> {
    cse.authorize(caller, target, AccessOperation::RETRIEVE, None)
        .map_err(|_| {
            Error::no_privilege(
                "the originator may not retrieve a target of the cross-resource subscription",
            )
        })
}

/// Writes what [`prepare`] returned, in the CREATE's write.
pub(crate) fn write_companions(t: &mut dyn Txn, companions: &[Resource]) -> Result<()> {
    for c in companions {
        let creator = c.attrs.get("cr").and_then(Value::as_str).map(str::to_owned);
        if t.get(c.ri())?.is_some() {
            t.update(c)?;
        } else {
            t.insert(c)?;
            if let Some(creator) = creator {
                t.remember_creator(c.ri(), &creator)?;
            }
        }
    }
    Ok(())
}

/// Completes a deletion in its own write (TS-0004 clause 7.4.58.2.4): a deleted
/// cross-resource subscription takes its regular targets' subscriptions with it and is
/// taken out of its subscription targets' `nu` and `acrs`; a deleted subscription that
/// served cross-resource subscriptions (`acrs`) takes them with it, since they can never
/// see all their targets again. Whatever goes is added to `gone`.
pub(crate) fn cascade(t: &mut dyn Txn, gone: &mut Vec<Resource>) -> Result<()> {
    let mut i = 0;
    while i < gone.len() {
        let g = gone[i].clone();
        i += 1;
        let follow = match g.ty {
            ResourceType::CrossResourceSubscription => {
                for ri in g.str_list("srat") {
                    if let Some(mut sub) = t.get(&ri)? {
                        for k in ["nu", "acrs"] {
                            let list: Vec<String> = sub
                                .str_list(k)
                                .into_iter()
                                .filter(|x| x != g.ri())
                                .collect();
                            if list.is_empty() && k == "acrs" {
                                sub.attrs.remove(k);
                            } else {
                                sub.attrs.insert(k.into(), json!(list));
                            }
                        }
                        t.update(&sub)?;
                    }
                }
                g.str_list("rrats")
            }
            ResourceType::Subscription => g.str_list("acrs"),
            _ => continue,
        };
        for ri in follow {
            if !gone.iter().any(|x| x.ri() == ri) && t.get(&ri)?.is_some() {
                let more = t.delete_subtree(&ri)?;
                gone.extend(more);
            }
        }
    }
    Ok(())
}
