//! `<subscription>`: checked, then verified with each notification target before it exists
//! (TS-0004 clause 7.3.8.2.1).

use crate::subscription::notification_urls;
use crate::{Caller, Cse};
use model::{AccessOperation, Error, Resource, ResponseStatusCode, Result};
use serde_json::{json, Value};

/// Validates the subscription, checks that its creator may read what it subscribes to, and
/// sends the verification request to every target that is not the creator itself.
pub(crate) async fn prepare(
    cse: &Cse,
    caller: &Caller<'_>,
    parent: &Resource,
    r: &mut Resource,
) -> Result<()> {
    model::resources::sub::validate(&r.attrs)?;
    model::resources::sub::check_child_types(&r.attrs, parent.ty)?;
    // TS-0004 clause 7.4.8.2.1 Recv-6.3: ORIGINATOR_HAS_NO_PRIVILEGE (4103), the code of
    // every access refusal; 4101 is for a subscription's creator at notification time.
    model::resources::sub::check_event_types(&r.attrs, parent.ty)?;
    cse.authorize(caller, parent, AccessOperation::RETRIEVE, None)
        .map_err(|_| {
            Error::no_privilege("the subscriber may not retrieve the subscribed-to resource")
        })?;
    if model::resources::sub::is_blocking(&r.attrs) {
        blocking_target(cse, parent, r)?;
    }
    let creator = caller.originator.id(&cse.config).to_owned();
    complete(r, &creator);
    verify(cse, &creator, &r.srn, &r.str_list("nu")).await
}

/// Sends the verification request (TS-0004 clause 7.3.8.2.1) for the subscription-like
/// resource `srn` to every target of `nus` that is not its creator; 5204 unless each
/// accepts. Shared with `<crossResourceSubscription>`.
pub(crate) async fn verify(cse: &Cse, creator: &str, srn: &str, nus: &[String]) -> Result<()> {
    for nu in nus {
        if nu == creator {
            continue;
        }
        verify_target(cse, nu, srn, creator).await?;
    }
    Ok(())
}

/// Sends the verification request (TS-0004 clause 7.5.1.2.3) for `sur`, made by `creator`,
/// to each endpoint of the notification target `nu`, and succeeds only when every one of
/// them answers with a success: a target that did not agree to be notified is never made
/// one (5204 otherwise, nothing created). Used for a subscription's `nu` and for the
/// result targets of a non-blocking request (`rtu`), which are the same kind of target.
pub(crate) async fn verify_target(cse: &Cse, nu: &str, sur: &str, creator: &str) -> Result<()> {
    let urls = notification_urls(cse, nu)?;
    if urls.is_empty() {
        return Err(verification_failed(nu, "no reachable point of access"));
    }
    let body = json!({ "m2m:sgn": { "vrq": true, "sur": sur, "cr": creator } });
    for to in urls {
        let body = cse
            .as_seen_by(&to.url, &body)
            .ok_or_else(|| verification_failed(nu, "no alias for the creator"))?;
        match cse.notifier.send_now(&to, &body).await {
            Ok(rsc) if rsc.is_success() => {}
            Ok(rsc) => {
                return Err(verification_failed(
                    nu,
                    &format!("target answered {}", rsc.code()),
                ))
            }
            Err(e) => return Err(verification_failed(nu, &e.message)),
        }
    }
    Ok(())
}

/// The checks a blocking-update subscription (`net` 7) adds at creation (TS-0004 clause
/// 7.4.8.2.1, TS-0001 table 10.2.10.2-1): no `nct` from the originator (the hosting CSE
/// sets modified attributes), and its one notification target is a registered AE that may
/// UPDATE the subscribed-to resource, since it decides on every UPDATE of it.
fn blocking_target(cse: &Cse, parent: &Resource, r: &Resource) -> Result<()> {
    if r.attrs.contains_key("nct") {
        return Err(Error::bad_request(
            "nct is set by the hosting CSE on a blocking-update subscription (net 7)",
        ));
    }
    let nu = r.str_list("nu").into_iter().next().unwrap_or_default();
    let Some(ae) = crate::subscription::target_ae(cse, &nu)? else {
        return Err(Error::bad_request(format!(
            "the notification target '{}' of a blocking-update subscription is not a registered AE",
            model::Untrusted(&nu)
        )));
    };
    let approver =
        crate::access::standing::originator_of_record(ae.ri(), &cse.config, cse.store.as_ref());
    let may_update = approver.is_some_and(|a| {
        cse.gate().permits(
            &a,
            &crate::access::RequestContext::standing(cse.config.clock.now()),
            parent,
            AccessOperation::UPDATE,
        )
    });
    if !may_update {
        return Err(Error::new(
            ResponseStatusCode::OriginatorHasNoPrivilege,
            "the notification target of a blocking-update subscription may not update the subscribed-to resource",
        ));
    }
    Ok(())
}

/// Sets what TS-0004 clause 7.4.8.2.1 has the hosting CSE set: the default `nct`, the
/// default `bn/dur`, and the creator when a notification target is not the originator.
fn complete(r: &mut Resource, creator: &str) {
    let nct = model::resources::sub::default_nct(&r.attrs);
    r.attrs.entry("nct").or_insert(json!(nct));
    if let Some(bn) = r.attrs.get_mut("bn").and_then(Value::as_object_mut) {
        bn.entry("dur")
            .or_insert(json!(crate::batch::DEFAULT_DURATION));
    }
    if r.str_list("nu").iter().any(|nu| nu != creator) {
        r.attrs.insert("cr".into(), json!(creator));
    }
}

fn verification_failed(nu: &str, why: &str) -> Error {
    Error::new(
        ResponseStatusCode::SubscriptionVerificationInitiationFailed,
        format!("verification of '{nu}' failed: {why}"),
    )
}
