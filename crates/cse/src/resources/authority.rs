//! What `<role>` and `<token>` share: this CSE is their Authorization Authority (TS-0003
//! clause 7.4.1), so only its administrator creates them, and every change to one is a
//! change of who may do what, audited like any other security administration.

use crate::originator::Originator;
use crate::{Caller, Cse};
use manager::audit::Event;
use model::{Error, Resource, ResourceType, Result};
use serde_json::Value;

/// Whether resources of `ty` assign or decide privileges (their changes are audited).
pub(crate) fn assigns_privileges(ty: ResourceType) -> bool {
    matches!(
        ty,
        ResourceType::Role | ResourceType::Token | ResourceType::AuthorizationDecision
    )
}

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

/// Writes `action` (`created`, `updated`, `deleted`, `expired`) on `r` by `actor` to the
/// audit trail and returns once it is on disk, so an acknowledged change is always in the
/// log. The audit entry names the resource, its Role-ID or Token-ID and its holder, never
/// the token itself.
pub(crate) async fn audited(cse: &Cse, actor: &str, action: &str, r: &Resource) -> Result<()> {
    let text = |name: &str| r.attrs.get(name).and_then(Value::as_str).unwrap_or("-");
    let detail = match r.ty {
        ResourceType::Role => format!("rlid={} holder={}", text("rlid"), text("tkhd")),
        ResourceType::Token => format!("tkid={} holder={}", text("tkid"), text("tkhd")),
        _ => format!("acpi={}", r.str_list("acpi").join(",")),
    };
    audited_detail(cse, actor, action, r, &detail).await
}

/// [`audited`] with the words that say what changed (`detail`, e.g. a decision's request
/// and answer, never a token).
pub(crate) async fn audited_detail(
    cse: &Cse,
    actor: &str,
    action: &str,
    r: &Resource,
    detail: &str,
) -> Result<()> {
    let kind = match r.ty {
        ResourceType::Role => "role",
        ResourceType::Token => "token",
        _ => "authorization-decision",
    };
    let target = format!("{} {detail}", r.ri());
    tracing::info!(actor, action, %kind, target = %model::Untrusted(&target), "authorization resource changed");
    let Some(trail) = cse.audit() else {
        return Ok(());
    };
    trail
        .record_durably(Event::AdminAction {
            actor: actor.to_owned(),
            action: format!("{kind}-{action}"),
            target: Some(target),
        })
        .await
        .inspect_err(|e| tracing::error!(error = %e, "authorization change not audited"))
}

/// [`audited`] for each `<role>` or `<token>` among `gone` (a deletion or an expiry).
pub(crate) async fn audited_removals(
    cse: &Cse,
    actor: &str,
    action: &str,
    gone: &[Resource],
) -> Result<()> {
    for r in gone.iter().filter(|r| assigns_privileges(r.ty)) {
        audited(cse, actor, action, r).await?;
    }
    Ok(())
}
