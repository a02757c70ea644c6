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
    cse.authorize(caller, parent, AccessOperation::RETRIEVE, None)
        .map_err(|_| {
            Error::no_privilege("the subscriber may not retrieve the subscribed-to resource")
        })?;
    let creator = caller.originator.id(&cse.config).to_owned();
    complete(r, &creator);
    for nu in r.str_list("nu") {
        if nu == creator {
            continue;
        }
        let urls = notification_urls(cse, &nu)?;
        if urls.is_empty() {
            return Err(verification_failed(&nu, "no reachable point of access"));
        }
        let body = json!({ "m2m:sgn": { "vrq": true, "sur": r.srn, "cr": creator } });
        for url in urls {
            let body = cse
                .as_seen_by(&url, &body)
                .ok_or_else(|| verification_failed(&nu, "no alias for the creator"))?;
            match cse.notifier.send_now(&url, &body).await {
                Ok(rsc) if rsc.is_success() => {}
                Ok(rsc) => {
                    return Err(verification_failed(
                        &nu,
                        &format!("target answered {}", rsc.code()),
                    ))
                }
                Err(e) => return Err(verification_failed(&nu, &e.message)),
            }
        }
    }
    Ok(())
}

/// Sets what TS-0004 clause 7.4.8.2.1 has the hosting CSE set: the default `nct`, the
/// default `bn/dur`, and the creator when a notification target is not the originator.
fn complete(r: &mut Resource, creator: &str) {
    r.attrs
        .entry("nct")
        .or_insert(json!(model::resources::sub::DEFAULT_NCT));
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
