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
