//! Access control, first cut (TS-0003 clause 7.1): the permit-overrides evaluation of
//! `<accessControlPolicy>` rules and the default policy for resources without `acpi`.
//!
//! [`decide`] is a pure function over policy data; [`authorize`] gathers the policies that
//! apply to a target from the store and calls it. Contexts (`acco`) are not evaluated yet:
//! a rule that has them never matches, so an unsupported condition fails closed.

use crate::config::CseConfig;
use crate::originator::{normalize, Claimed, Originator};
use model::{AccessOperation, Error, Resource, ResourceType, Result};
use serde_json::Value;
use store::Store;

/// The facts about a request that access rules look at.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The originator's identifier, normalized (AE-ID stem, admin or CSE-ID).
    pub originator: &'a str,
    /// The operation bit asked for.
    pub op: AccessOperation,
    /// Whether the originator was authenticated by a security association (`rq_authn`).
    pub authenticated: bool,
    /// The type being created, for CREATE.
    pub create_ty: Option<ResourceType>,
    /// The type of the target resource.
    pub target_ty: ResourceType,
}

/// Permit-overrides over every rule of every `m2m:setOfAcrs` given: true as soon as one
/// rule grants the request.
pub fn decide(rule_sets: &[&Value], req: &AccessRequest<'_>, config: &CseConfig) -> bool {
    rule_sets
        .iter()
        .filter_map(|set| set.get("acr").and_then(Value::as_array))
        .flatten()
        .any(|rule| rule_grants(rule, req, config))
}

fn rule_grants(rule: &Value, req: &AccessRequest<'_>, config: &CseConfig) -> bool {
    let ops_ok = rule
        .get("acop")
        .and_then(Value::as_u64)
        .is_some_and(|acop| req.op.granted_by(acop));
    let authn_ok = !rule.get("acaf").and_then(Value::as_bool).unwrap_or(false) || req.authenticated;
    let contexts_ok = rule
        .get("acco")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    let object_ok = match (req.create_ty, rule.get("acod").and_then(Value::as_array)) {
        (Some(ty), Some(details)) if req.op == AccessOperation::CREATE => details.iter().any(|d| {
            let ty_ok = d
                .get("ty")
                .and_then(Value::as_u64)
                .is_none_or(|t| t == u64::from(req.target_ty.code()));
            let chty_ok = d
                .get("chty")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|t| t.as_u64() == Some(u64::from(ty.code()))));
            ty_ok && chty_ok
        }),
        _ => true,
    };
    let origs_ok = rule
        .get("acor")
        .and_then(Value::as_array)
        .is_some_and(|acor| {
            acor.iter()
                .filter_map(Value::as_str)
                .any(|p| originator_matches(p, req.originator, config))
        });
    ops_ok && authn_ok && contexts_ok && object_ok && origs_ok
}

/// Whether one `acor` entry admits the originator: `all`, or an (SP-relative or absolute)
/// ID of ours, with `*` matching within one path segment.
pub fn originator_matches(pattern: &str, originator: &str, config: &CseConfig) -> bool {
    if pattern == "all" {
        return true;
    }
    let pattern = match normalize(pattern, config) {
        Ok(Claimed::AeId(id)) => id,
        Ok(Claimed::CseOrRemote(id)) => id,
        Err(_) => pattern.to_owned(),
    };
    model::id::glob(&pattern, originator)
}

/// Decides whether `originator` may perform `op` on `target`, gathering the applicable
/// policies: the target's `acpi` (the parent's for types without one), an ACP's own `pvs`,
/// or the default policy (creator only) when no `acpi` is set.
pub fn authorize(
    store: &dyn Store,
    config: &CseConfig,
    originator: &Originator,
    authenticated: bool,
    target: &Resource,
    op: AccessOperation,
    create_ty: Option<ResourceType>,
) -> Result<()> {
    if originator.is_privileged() {
        return Ok(());
    }
    let id = originator.id(config);
    let req = AccessRequest {
        originator: id,
        op,
        authenticated,
        create_ty,
        target_ty: target.ty,
    };
    let denied = || Error::no_privilege(format!("{id} has no {op:?} privilege on {}", target.ri()));
    if target.ty == ResourceType::AccessControlPolicy {
        let pvs = target.attrs.get("pvs").cloned().unwrap_or(Value::Null);
        return if decide(&[&pvs], &req, config) {
            Ok(())
        } else {
            Err(denied())
        };
    }
    let parent;
    let owner = if target.ty.has_acpi() {
        target
    } else {
        parent = store.get_shared(target.pi())?.ok_or_else(denied)?;
        &*parent
    };
    let acpi = owner.str_list("acpi");
    if acpi.is_empty() {
        return if default_policy(owner, id, op) {
            Ok(())
        } else {
            Err(denied())
        };
    }
    let policies = load_policies(store, &acpi)?;
    let sets: Vec<&Value> = policies.iter().filter_map(|p| p.attrs.get("pv")).collect();
    if decide(&sets, &req, config) {
        Ok(())
    } else {
        Err(denied())
    }
}

/// Checks an UPDATE of `acpi` against `pvs` of the ACPs the resource references now.
pub fn authorize_acpi_update(
    store: &dyn Store,
    config: &CseConfig,
    originator: &Originator,
    authenticated: bool,
    target: &Resource,
) -> Result<()> {
    if originator.is_privileged() {
        return Ok(());
    }
    let id = originator.id(config);
    let acpi = target.str_list("acpi");
    let denied = || {
        Error::no_privilege(format!(
            "{id} may not change the access control policies of {}",
            target.ri()
        ))
    };
    if acpi.is_empty() {
        return if default_policy(target, id, AccessOperation::UPDATE) {
            Ok(())
        } else {
            Err(denied())
        };
    }
    let policies = load_policies(store, &acpi)?;
    let sets: Vec<&Value> = policies.iter().filter_map(|p| p.attrs.get("pvs")).collect();
    let req = AccessRequest {
        originator: id,
        op: AccessOperation::UPDATE,
        authenticated,
        create_ty: None,
        target_ty: target.ty,
    };
    if decide(&sets, &req, config) {
        Ok(())
    } else {
        Err(denied())
    }
}

/// The ACP resources named in an `acpi` list (by resource ID or structured name). Names that
/// do not resolve to an ACP contribute nothing, so they can only narrow access.
pub fn load_policies(store: &dyn Store, acpi: &[String]) -> Result<Vec<Resource>> {
    let mut out = Vec::with_capacity(acpi.len());
    for id in acpi {
        let found = match store.get(id)? {
            Some(r) => Some(r),
            None => store.get_by_srn(id.trim_start_matches('/'))?,
        };
        if let Some(r) = found.filter(|r| r.ty == ResourceType::AccessControlPolicy) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Default policy for a resource without `acpi`: its creator (for an AE: the AE itself) has
/// every privilege; registered AEs may read the CSEBase; nobody else gets anything.
fn default_policy(owner: &Resource, originator: &str, op: AccessOperation) -> bool {
    match owner.ty {
        ResourceType::Ae => owner.ri() == originator,
        ResourceType::CseBase => op == AccessOperation::RETRIEVE,
        _ => owner.creator() == Some(originator),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req<'a>(originator: &'a str, op: AccessOperation) -> AccessRequest<'a> {
        AccessRequest {
            originator,
            op,
            authenticated: false,
            create_ty: None,
            target_ty: ResourceType::Container,
        }
    }

    #[test]
    fn permit_overrides_and_bits() {
        let c = CseConfig::default();
        let pv = json!({"acr": [
            {"acor": ["Creader"], "acop": 2},
            {"acor": ["Cw*"], "acop": 3, "acaf": true},
            {"acor": ["all"], "acop": 32, "acco": [{"actw": ["* * * * * * *"]}]}
        ]});
        assert!(decide(
            &[&pv],
            &req("Creader", AccessOperation::RETRIEVE),
            &c
        ));
        assert!(!decide(
            &[&pv],
            &req("Creader", AccessOperation::UPDATE),
            &c
        ));
        assert!(
            !decide(&[&pv], &req("Cwriter", AccessOperation::CREATE), &c),
            "acaf needs rq_authn"
        );
        let mut authn = req("Cwriter", AccessOperation::CREATE);
        authn.authenticated = true;
        assert!(decide(&[&pv], &authn, &c));
        assert!(
            !decide(&[&pv], &req("Cx", AccessOperation::DISCOVERY), &c),
            "contexts fail closed"
        );
        assert!(decide(
            &[&pv, &json!({"acr": [{"acor": ["/id-in/Cx"], "acop": 32}]})],
            &req("Cx", AccessOperation::DISCOVERY),
            &c
        ));
        assert!(!decide(
            &[&json!({})],
            &req("Cx", AccessOperation::RETRIEVE),
            &c
        ));
    }

    #[test]
    fn object_details_limit_create() {
        let c = CseConfig::default();
        let pv = json!({"acr": [{"acor": ["all"], "acop": 1, "acod": [{"chty": [4]}]}]});
        let mut r = req("Cx", AccessOperation::CREATE);
        r.create_ty = Some(ResourceType::ContentInstance);
        assert!(decide(&[&pv], &r, &c));
        r.create_ty = Some(ResourceType::Container);
        assert!(!decide(&[&pv], &r, &c));
    }
}
