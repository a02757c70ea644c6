//! `<notificationTargetPolicy>` (ty 26, TS-0004 clause 7.4.31; TS-0001 clause 9.6.32): what
//! the hosting CSE does when a notification target asks to be taken off a subscription's
//! `nu` (TS-0001 clause 10.2.10.8): `acn` accept, reject, ask the subscription's creator, or
//! only tell the creator. Its `<policyDeletionRules>` children (at most two, combined by
//! `rrs`) say when the action applies. The policy labelled `default` applies to every
//! subscription no `<notificationTargetMgmtPolicyRef>` ties to another.
//!
//! NOTE(ntp): TS-0004 lets `acn` and `plbl` be left out on CREATE ("no default"), while
//! TS-0001 gives both multiplicity 1. A policy without an action or a label could never be
//! applied nor found, so both are mandatory here (4000 when missing).

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// `m2m:notificationTargetPolicyAction` (TS-0004 table 6.3.4.2.32-1).
pub mod action {
    /// 1: the target is removed from `nu`.
    pub const ACCEPT: u64 = 1;
    /// 2: the request is refused (4103), nothing changes.
    pub const REJECT: u64 = 2;
    /// 3: the subscription's creator decides (a NOTIFY with `trr`); removed when it allows.
    pub const SEEK_AUTHORIZATION: u64 = 3;
    /// 4: the creator is told (a NOTIFY with `trr`); the target is refused (4103).
    pub const INFORM: u64 = 4;
}

/// `m2m:logicalOperator` (TS-0004 table 6.3.4.2.33-1).
pub mod logical {
    /// 1: every operand must hold.
    pub const AND: u64 = 1;
    /// 2: one operand is enough.
    pub const OR: u64 = 2;
}

/// The label of the policy that applies when no other is named (TS-0001 clause 9.6.32
/// writes it `default` and `Default`; compared without case).
pub const DEFAULT_LABEL: &str = "default";

/// Attribute table (TS-0004 table 7.4.31.1-3 with the common attributes of table
/// 7.4.31.1-2).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("acn", Kind::OneOf(&[1, 2, 3, 4]), Mandatory, NotPresent),
    attr("plbl", Kind::Str, Mandatory, Optional).single(),
    attr("rrs", Kind::OneOf(&[1, 2]), Optional, Optional),
];

/// What the table cannot check: `plbl` is an `xs:token` (not empty, no tab or line break,
/// no space at either end nor two in a row).
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    if let Some(l) = attrs.get("plbl").and_then(Value::as_str) {
        let token = !l.is_empty()
            && !l.contains(['\t', '\r', '\n'])
            && !l.starts_with(' ')
            && !l.ends_with(' ')
            && !l.contains("  ");
        if !token {
            return Err(Error::bad_request("plbl must be a non-empty xs:token"));
        }
    }
    Ok(())
}

/// Whether a stored policy is a default one.
pub fn is_default(attrs: &Map<String, Value>) -> bool {
    attrs
        .get("plbl")
        .and_then(Value::as_str)
        .is_some_and(|l| l.eq_ignore_ascii_case(DEFAULT_LABEL))
}
