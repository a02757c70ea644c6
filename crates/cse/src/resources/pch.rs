//! `<pollingChannel>`: created only by the AE it belongs to, at most one per AE. What the
//! channel carries, and its owner rule for the other operations, are in `polling`.

use crate::{Caller, Cse};
use model::{Error, Resource, ResourceType, Result};

/// Only the AE itself creates its channel (TS-0004 clause 7.4.21.2.1: the originator must be
/// the parent `<AE>`'s AE-ID, else 4103). A `<remoteCSE>` parent is not hosted by this CSE.
pub(crate) fn prepare(cse: &Cse, caller: &Caller<'_>, parent: &Resource) -> Result<()> {
    crate::polling::owned_by_originator(caller, parent.ri()).inspect_err(|_| {
        tracing::info!(
            originator = caller.originator.id(&cse.config),
            ae = parent.ri(),
            "polling channel refused: only the AE itself creates its channel"
        )
    })
}

/// Inside the creating write: an AE has at most one polling channel (TS-0004 table
/// 7.4.5.1-4, multiplicity 0..1); a second is 4105.
pub(crate) fn only_one(t: &mut dyn store::Txn, parent: &str) -> Result<()> {
    match t.oldest_child(parent, ResourceType::PollingChannel)? {
        Some(_) => Err(Error::conflict("the AE already has a polling channel")),
        None => Ok(()),
    }
}
