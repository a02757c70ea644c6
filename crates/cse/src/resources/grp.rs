//! `<group>`: members fit `mnm`; duplicates are dropped; unless `mt` is MIXED, each member's
//! type is read as the originator may and members whose type is not `mt` are handled as
//! `csy` says (TS-0001 9.6.13, TS-0004 7.4.13.2.1 and 7.4.13.2.3).

use crate::{Caller, Cse};
use model::resources::grp::{ConsistencyStrategy, MIXED};
use model::{AccessOperation, Error, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::json;

/// Validates a new group: `mt` defaults to MIXED, then as [`check_members`].
pub(crate) fn prepare(cse: &Cse, caller: &Caller<'_>, r: &mut Resource) -> Result<()> {
    r.attrs.entry("mt").or_insert(json!(MIXED));
    check_members(cse, caller, r, true)
}

/// Shared by create and update (with the merged resource): drops duplicate members (the
/// first occurrence stays), checks that `cnm <= mnm` (6010), and, when the request sets
/// `mid` (`members_given`) and `mt` is not MIXED, reads each member's type with the
/// originator's RETRIEVE privilege (TS-0004 7.4.13.2.1 and 7.4.13.2.3: a type that cannot
/// be read, because the member is missing or not readable, is RECEIVER_HAS_NO_PRIVILEGE)
/// and applies `csy` to members whose type is not `mt`; then sets the derived `cnm` and
/// `mtv`. `mid` and `mt` may change, so callers store them back.
pub(crate) fn check_members(
    cse: &Cse,
    caller: &Caller<'_>,
    r: &mut Resource,
    members_given: bool,
) -> Result<()> {
    let mt = r.u64_attr("mt").unwrap_or(MIXED);
    if mt != MIXED && ResourceType::from_code(mt).is_err() {
        return Err(Error::bad_request(format!(
            "mt {mt} is not a resource type this CSE hosts"
        )));
    }
    let csy = match r.u64_attr("csy") {
        None => ConsistencyStrategy::AbandonMember,
        Some(n) => ConsistencyStrategy::from_code(n)
            .ok_or_else(|| Error::bad_request(format!("csy {n} is not defined")))?,
    };
    let mnm = r.u64_attr("mnm").unwrap_or(u64::MAX);
    if mnm == 0 {
        return Err(Error::bad_request("mnm must be a positive integer"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut mid = r.str_list("mid");
    mid.retain(|m| seen.insert(m.clone()));
    if mid.len() as u64 > mnm {
        return Err(Error::new(
            ResponseStatusCode::MaxNumberOfMemberExceeded,
            format!("{} members exceed mnm {mnm}", mid.len()),
        ));
    }
    let mut inconsistent = Vec::new();
    for m in &mid {
        // Sub-group fan-out members would let fan-outs nest without a bound.
        if m.split('/').any(|segment| segment == "fopt") {
            return Err(Error::bad_request(format!(
                "member '{m}': sub-group fan-out members (.../fopt) are not supported"
            )));
        }
        if mt == MIXED || !members_given {
            continue;
        }
        let ty = member_type(cse, caller, m).ok_or_else(|| {
            // NOTE(probe): one answer for a member that does not exist and one the
            // originator may not read, so that a group cannot probe for resources.
            Error::new(
                ResponseStatusCode::ReceiverHasNoPrivilege,
                format!("the type of member '{m}' cannot be read"),
            )
        })?;
        if u64::from(ty.code()) != mt {
            inconsistent.push(m.clone());
        }
    }
    let mut mt = mt;
    if let Some(first) = inconsistent.first() {
        match csy {
            ConsistencyStrategy::AbandonGroup => {
                return Err(Error::new(
                    ResponseStatusCode::GroupMemberTypeInconsistent,
                    format!("member '{first}' is not of the group's type {mt}"),
                ))
            }
            ConsistencyStrategy::AbandonMember => mid.retain(|m| !inconsistent.contains(m)),
            ConsistencyStrategy::SetMixed => mt = MIXED,
        }
    }
    r.attrs.insert("mt".into(), json!(mt));
    r.attrs.insert("cnm".into(), json!(mid.len()));
    r.attrs.insert("mid".into(), json!(mid));
    r.attrs.insert("mtv".into(), json!(true));
    Ok(())
}

/// The type of member `m`, if it is a resource here that the originator may RETRIEVE; none
/// alike for a member that does not exist and one it may not read.
fn member_type(cse: &Cse, caller: &Caller<'_>, m: &str) -> Option<ResourceType> {
    let target = crate::addressing::resolve(m, &cse.config, cse.store.as_ref()).ok()?;
    let member = crate::real_target(target).ok()?;
    cse.gate()
        .permits(
            &caller.originator,
            &cse.request_context(caller),
            &member,
            AccessOperation::RETRIEVE,
        )
        .then_some(member.ty)
}
