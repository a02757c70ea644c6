//! `<serviceSubscribedNode>`: its rule links need a CSE (`csi`) and must name rules of this
//! CSE. `<m2mServiceSubscriptionProfile>` and `<serviceSubscribedAppRule>` need nothing
//! beyond their tables and `model::resources::asar::validate`; what the rules decide is in
//! `service_subscription`.

use crate::Cse;
use model::Result;
use serde_json::{Map, Value};

/// CREATE: `rlk` only with `csi` (TS-0004 clause 7.4.20.2.1), each link a rule.
pub(crate) fn prepare(cse: &Cse, attrs: &Map<String, Value>) -> Result<()> {
    model::resources::svsn::check_create(attrs)?;
    crate::service_subscription::check_links(cse, attrs)
}

/// UPDATE: `rlk` only on a node with `csi` (TS-0004 clause 7.4.20.2.3), each link a rule.
pub(crate) fn check_update(
    cse: &Cse,
    current: &Map<String, Value>,
    changes: &Map<String, Value>,
) -> Result<()> {
    model::resources::svsn::check_update(current, changes)?;
    crate::service_subscription::check_links(cse, changes)
}
