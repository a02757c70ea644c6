//! The access control decision of TS-0003 clause 7.1.5, as one pure function: no store, no
//! clock, no configuration. The caller gathers the policies and every fact (time, peer
//! address, location, credential level, verified roles, group memberships) up front.
//!
//! Permit-overrides: the request is granted as soon as one rule of one policy holds. A rule
//! holds when all of these do: the operation is in `acop`; `acaf` is unset or the
//! originator was authenticated; an `acor` entry admits the originator; for CREATE, one
//! `acod` element (if any) allows the type under the target; one `acco` context (if any)
//! holds. Anything that cannot be decided (an unreadable rule, a missing fact) does not
//! hold, so the decision fails closed.

use super::context;
use super::explain::{Condition, Failure, PolicyTrace, RuleTrace};
use super::rule::{AccessRule, OriginatorEntry, Policy, Principal};
use model::resources::acp::region::Location;
use model::time::Timestamp;
use model::{AccessOperation, ResourceType};
use std::net::IpAddr;
use std::sync::Arc;

/// The facts about one request that rules look at.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    /// Who asks, in the forms `acor` entries match.
    pub originator: Principal,
    /// The operation bit asked for.
    pub op: AccessOperation,
    /// The type of the target resource (for `acod` `ty`).
    pub target_ty: ResourceType,
    /// For CREATE: what is being created.
    pub create: Option<Creation>,
    /// `rq_authn`: the originator was authenticated by a security association.
    pub authenticated: bool,
    /// When the request was received (UTC), for `actw`.
    pub time: Timestamp,
    /// The peer's address, for `acip`.
    pub ip: Option<IpAddr>,
    /// Where the originator is, if the CSE knows; for `aclr`.
    pub location: Option<Location>,
    /// Key-store level (1-3) of the credential behind the security association, for the
    /// secure-cse `scl` context condition.
    pub credential_level: Option<u8>,
    /// Role-IDs the originator was verified to hold (TS-0003 clause 7.4).
    pub roles: Vec<String>,
    /// What the caller found out about `acor` entries that name `<group>` resources.
    pub groups: Vec<GroupFact>,
}

/// What a CREATE creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    /// The type of the new resource (`chty`).
    pub ty: ResourceType,
    /// Its specialization (container or mgmt definition), if the type has one (`spty`).
    pub spty: Option<String>,
}

/// One `acor` entry that names a `<group>`, and whether the originator is a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFact {
    /// The entry as written in `acor`.
    pub entry: String,
    /// Whether the originator is in the group's `mid`.
    pub member: bool,
}

/// Permit-overrides over every rule of every policy: true as soon as one rule holds.
pub fn decide(policies: &[Arc<Policy>], req: &AccessRequest) -> bool {
    policies
        .iter()
        .flat_map(|p| &p.rules)
        .any(|rule| rule.as_ref().is_ok_and(|r| rule_holds(r, req)))
}

/// The same decision with a trace: every policy, every rule, and for each rule either that
/// it holds or every condition that fails.
pub fn explain(policies: &[Arc<Policy>], req: &AccessRequest) -> (bool, Vec<PolicyTrace>) {
    let traces: Vec<PolicyTrace> = policies
        .iter()
        .map(|p| PolicyTrace {
            ri: p.ri.clone(),
            set: p.set,
            rules: p
                .rules
                .iter()
                .enumerate()
                .map(|(i, rule)| trace_rule(i + 1, rule, req))
                .collect(),
        })
        .collect();
    let granted = decide(policies, req);
    debug_assert_eq!(
        granted,
        traces.iter().flat_map(|t| &t.rules).any(|r| r.holds),
        "the trace must agree with the decision"
    );
    (granted, traces)
}

/// One condition of a rule: does it hold for the request?
type Test = fn(&AccessRule, &AccessRequest) -> bool;

/// A rule's conditions, cheapest first; a rule holds when every one does.
const CONDITIONS: [(Condition, Test); 5] = [
    (Condition::Operation, operation_ok),
    (Condition::Authentication, authentication_ok),
    (Condition::Originator, originator_ok),
    (Condition::ObjectDetails, object_details_ok),
    (Condition::Context, contexts_ok),
];

/// Whether one rule grants the request.
pub fn rule_holds(rule: &AccessRule, req: &AccessRequest) -> bool {
    CONDITIONS.iter().all(|(_, holds)| holds(rule, req))
}

fn operation_ok(rule: &AccessRule, req: &AccessRequest) -> bool {
    req.op.granted_by(u64::from(rule.operations))
}

fn authentication_ok(rule: &AccessRule, req: &AccessRequest) -> bool {
    !rule.authentication || req.authenticated
}

fn originator_ok(rule: &AccessRule, req: &AccessRequest) -> bool {
    rule.originators
        .iter()
        .any(|(written, entry)| admits(written, entry, req))
}

/// Whether one `acor` entry admits the originator. A verified role admits under its exact
/// name; a group admits its members; an ID pattern is matched against the originator's
/// absolute forms, `*` staying within one path segment.
fn admits(written: &str, entry: &OriginatorEntry, req: &AccessRequest) -> bool {
    if req.roles.iter().any(|r| r == written) {
        return true;
    }
    match entry {
        OriginatorEntry::All => true,
        OriginatorEntry::SpDomain(sp) => sp.eq_ignore_ascii_case(req.originator.sp()),
        OriginatorEntry::Id(id) => req.originator.absolute.iter().any(|form| form == id),
        OriginatorEntry::Pattern(pattern) => {
            // The text before the first `*` must match literally: a cheap first filter.
            let literal = pattern
                .find('*')
                .map_or(pattern.as_str(), |i| &pattern[..i]);
            req.originator
                .absolute
                .iter()
                .any(|form| form.starts_with(literal) && model::id::glob(pattern, form))
        }
        OriginatorEntry::Named(name) => req.groups.iter().any(|g| g.member && g.entry == *name),
    }
}

fn object_details_ok(rule: &AccessRule, req: &AccessRequest) -> bool {
    if req.op != AccessOperation::CREATE || rule.object_details.is_empty() {
        return true;
    }
    let Some(create) = &req.create else {
        return false;
    };
    rule.object_details.iter().any(|d| {
        d.ty.is_none_or(|t| t == req.target_ty.code())
            && d.spty
                .as_deref()
                .is_none_or(|s| create.spty.as_deref() == Some(s))
            && d.chty.contains(&create.ty.code())
    })
}

fn contexts_ok(rule: &AccessRule, req: &AccessRequest) -> bool {
    rule.contexts.is_empty() || rule.contexts.iter().any(|c| context::context_ok(c, req))
}

fn trace_rule(n: usize, rule: &super::rule::CompiledRule, req: &AccessRequest) -> RuleTrace {
    let rule = match rule {
        Ok(rule) => rule,
        Err(why) => {
            return RuleTrace {
                number: n,
                holds: false,
                failures: vec![Failure::new(Condition::Unreadable, why.clone())],
            }
        }
    };
    let mut failures = Vec::new();
    for (condition, holds) in CONDITIONS {
        if holds(rule, req) {
            continue;
        }
        match condition {
            Condition::Context => {
                for (i, ctx) in rule.contexts.iter().enumerate() {
                    context::failures(ctx, i + 1, req, &mut failures);
                }
            }
            other => failures.push(Failure::new(other, describe(other, rule, req))),
        }
    }
    RuleTrace {
        number: n,
        holds: failures.is_empty(),
        failures,
    }
}

/// Why a (non-context) condition fails, in words.
fn describe(condition: Condition, rule: &AccessRule, req: &AccessRequest) -> String {
    match condition {
        Condition::Operation => format!(
            "acop {} does not include {}",
            rule.operations,
            super::explain::op_name(req.op)
        ),
        Condition::Authentication => {
            "acaf needs an originator authenticated by a security association".to_owned()
        }
        Condition::Originator => {
            let written: Vec<&str> = rule.originators.iter().map(|(w, _)| w.as_str()).collect();
            let named: Vec<&str> = rule
                .originators
                .iter()
                .filter_map(|(w, e)| matches!(e, OriginatorEntry::Named(_)).then_some(w.as_str()))
                .collect();
            let mut s = format!(
                "acor [{}] does not admit {}",
                written.join(", "),
                req.originator.id
            );
            if !named.is_empty() {
                s.push_str(&format!(
                    " (not a member of, or not holding the role, {})",
                    named.join(", ")
                ));
            }
            s
        }
        Condition::ObjectDetails => match &req.create {
            Some(c) => format!(
                "acod does not allow creating type {} under type {}",
                c.ty.code(),
                req.target_ty.code()
            ),
            None => "acod: the type to create is unknown".to_owned(),
        },
        Condition::Context
        | Condition::TimeWindow
        | Condition::IpAddress
        | Condition::Location
        | Condition::Level
        | Condition::Unreadable => String::new(),
    }
}
