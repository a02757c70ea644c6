//! `<notificationTargetPolicy>` and `<policyDeletionRules>`: the checks of CREATE and
//! UPDATE. How a policy is chosen and applied is `target_removal`.

use crate::Cse;
use model::resources::{ntp, pdr};
use model::{Error, Resource, ResourceType, Result};
use serde_json::{Map, Value};

/// Record table: `ri` of each `<policyDeletionRules>` -> `ri` of its policy, tied to the
/// rules resource, so that the CREATE's write counts a policy's groups (at most two: the
/// records tied below the policy) inside the same transaction.
pub(crate) const RULE_GROUPS: &str = "pdr-groups";

/// A new or updated policy: its label is a token.
pub(crate) fn check_policy(attrs: &Map<String, Value>) -> Result<()> {
    ntp::validate(attrs)
}

/// An UPDATE of a policy that removes `rrs` while it has two groups of rules would leave
/// them uncombinable (TS-0004 table 7.4.31.1-3): 4000.
pub(crate) fn check_policy_update(cse: &Cse, current: &Resource, preview: &Resource) -> Result<()> {
    check_policy(&preview.attrs)?;
    if !preview.attrs.contains_key("rrs")
        && cse
            .store
            .children(current.ri(), Some(ResourceType::PolicyDeletionRules))?
            .len()
            > 1
    {
        return Err(Error::bad_request(
            "rrs is needed while the policy has two <policyDeletionRules>",
        ));
    }
    Ok(())
}

/// A new or updated group of rules: `dr` parses (schedules, regions).
pub(crate) fn check_rules(attrs: &Map<String, Value>) -> Result<()> {
    pdr::Rules::of(attrs).map(|_| ())
}

/// Inside the creating write: a policy has at most two groups of rules (TS-0004 clause
/// 7.4.32.2.1: 4105 for a third), and two need its `rrs` to combine them (4000).
pub(crate) fn claim_group(t: &mut dyn store::Txn, r: &Resource) -> Result<()> {
    let groups = t.tied_records(RULE_GROUPS, r.pi())?.len();
    if groups >= 2 {
        return Err(Error::conflict(
            "the policy already has two <policyDeletionRules>",
        ));
    }
    if groups == 1
        && !t
            .get(r.pi())?
            .is_some_and(|policy| policy.attrs.contains_key("rrs"))
    {
        return Err(Error::bad_request(
            "a second <policyDeletionRules> needs the policy's rrs (AND or OR) first",
        ));
    }
    t.put_record(RULE_GROUPS, r.ri(), r.pi().as_bytes(), Some(r.ri()))
}
