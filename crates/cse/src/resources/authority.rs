//! What `<role>` and `<token>` share: this CSE is their Authorization Authority (TS-0003
//! clause 7.4.1), so only its administrator creates them, and every change to one is a
//! change of who may do what, audited like any other security administration
//! (`security_manager::administration`).

use crate::originator::Originator;
use crate::{Caller, Cse};
use model::{Error, ResourceType, Result};

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
        "creation refused: only the administrator assigns roles and tokens"
    );
    Err(Error::no_privilege(format!(
        "only the administrator creates a {}",
        ty.short_name()
    )))
}
