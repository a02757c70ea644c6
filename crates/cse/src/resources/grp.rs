//! `<group>`: members must exist, be unique and match the member type (TS-0001 9.6.13).

use crate::Cse;
use model::{Error, Resource, ResponseStatusCode, Result};
use serde_json::json;

/// Validates `mid` against `mt` and `mnm` and sets the derived `cnm` and `mtv`.
pub(crate) fn prepare(cse: &Cse, r: &mut Resource) -> Result<()> {
    check_members(cse, r)?;
    Ok(())
}

/// Shared by create and update: members exist here, no duplicates, `cnm <= mnm`, and each
/// member's type is `mt` unless the group is mixed.
pub(crate) fn check_members(cse: &Cse, r: &mut Resource) -> Result<()> {
    let mid = r.str_list("mid");
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = mid.iter().find(|m| !seen.insert(m.as_str())) {
        return Err(Error::bad_request(format!(
            "member '{dup}' is listed twice"
        )));
    }
    let mnm = r.u64_attr("mnm").unwrap_or(u64::MAX);
    if mnm == 0 || mid.len() as u64 > mnm {
        return Err(Error::new(
            ResponseStatusCode::BadRequest,
            format!("{} members exceed mnm {mnm}", mid.len()),
        ));
    }
    let mt = r.u64_attr("mt").unwrap_or(model::resources::grp::MIXED);
    for m in &mid {
        let member = crate::addressing::resolve(m, &cse.config, cse.store.as_ref())
            .ok()
            .and_then(|t| crate::real_target(t).ok())
            .ok_or_else(|| Error::bad_request(format!("member '{m}' does not exist")))?;
        if mt != model::resources::grp::MIXED && u64::from(member.ty.code()) != mt {
            return Err(Error::new(
                ResponseStatusCode::GroupMemberTypeInconsistent,
                format!(
                    "member '{m}' is a {}, the group holds type {mt}",
                    member.ty.short_name()
                ),
            ));
        }
    }
    r.attrs.insert("cnm".into(), json!(mid.len()));
    r.attrs.insert("mtv".into(), json!(true));
    Ok(())
}
