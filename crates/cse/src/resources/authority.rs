//! What `<role>` and `<token>` share: this CSE is their Authorization Authority (TS-0003
//! clause 7.4.1), so only its administrator creates them, and every change to one is a
//! change of who may do what, audited like any other security administration
//! (`security_manager::administration`).

use crate::originator::Originator;
use crate::{Caller, Cse};
use model::{time, Error, ResourceType, Result};
use serde_json::{Map, Value};

/// Only the administrator creates a `<role>` or a `<token>` (4103 for anyone else, whatever
/// the `<CSEBase>`'s policies grant): creating one grants privileges, and granting is the
/// Authorization Authority's act. Reading, updating and deleting one are decided by its
/// policies as for any resource (by default: nobody but the administrator).
pub(crate) fn only_admin(cse: &Cse, caller: &Caller<'_>, ty: ResourceType) -> Result<()> {
    if matches!(caller.originator, Originator::Admin) {
        return Ok(());
    }
    tracing::info!(
        originator = caller.originator.id(&cse.config),
        ty = ty.code(),
        "creation refused: only the administrator creates authorization resources"
    );
    Err(Error::no_privilege(format!(
        "only the administrator creates a {}",
        ty.short_name()
    )))
}

/// The `et` a `<role>` or `<token>` gets instead of the one it would have (the CSE's
/// default, or the originator's hint: TS-0001 clause 9.6.1.3 lets the hosting CSE set it)
/// when that one is after its end of validity `tkna`: `tkna` itself. Past `tkna` the
/// resource grants nothing, so it should not outlive it; TS-0004 clauses 7.4.40 and 7.4.41
/// say nothing more. `None` when `et` is within the validity or there is no `tkna` (a
/// token may have none).
pub(crate) fn lifetime_within_validity(attrs: &Map<String, Value>) -> Result<Option<Value>> {
    let (Some(et), Some(tkna)) = (
        attrs.get("et").and_then(Value::as_str),
        attrs.get("tkna").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    Ok((time::parse(tkna)? < time::parse(et)?).then(|| Value::from(tkna)))
}

/// The answer of a procedure bound to an authorization resource (the PDP of an
/// `<authorizationDecision>`, the PRP of an `<authorizationPolicy>`, the PIP of an
/// `<authorizationInformation>`; TS-0003 clause 7.5): the request and the answer are never
/// stored (the write only moves `lt`), the answer goes to the audit trail as
/// `<short name>-<verb>` with `detail` (never a token), durably before the response, and
/// the response carries `answered` as the resource's attributes.
pub(crate) async fn answer_procedure(
    cse: &Cse,
    caller: &Caller<'_>,
    req: &model::Request,
    current: &model::Resource,
    verb: &str,
    detail: &str,
    answered: Map<String, Value>,
) -> Result<model::Response> {
    use model::{Response, ResponseStatusCode, ResultContent};
    let ri = current.ri().to_owned();
    let clock = cse.config.clock.clone();
    let updated = store::write(cse.store.as_ref(), move |t| {
        let mut r = t
            .get(&ri)?
            .ok_or_else(|| Error::not_found("the resource was deleted"))?;
        r.attrs
            .insert("lt".into(), Value::from(time::format(clock.now())));
        t.update(&r)?;
        Ok(r)
    })
    .await?;
    let actor = caller.originator.id(&cse.config);
    crate::security_manager::administration::record_procedure(cse, actor, &updated, verb, detail)
        .await?;
    let pc = match req.rcn.unwrap_or(ResultContent::Attributes) {
        ResultContent::Nothing => None,
        ResultContent::ModifiedAttributes => {
            let mut m = Map::new();
            m.insert(updated.wrapper().to_owned(), Value::Object(answered));
            Some(Value::Object(m))
        }
        _ => {
            let mut shown = updated.clone();
            shown.attrs.extend(answered);
            Some(shown.wrapped())
        }
    };
    Ok(Response::new(ResponseStatusCode::Updated, &req.rqi, pc))
}
