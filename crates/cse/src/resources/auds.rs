//! `<authorizationDecision>`: this CSE's Policy Decision Point (TS-0003 clause 7.5.2,
//! TS-0004 clause 7.4.43.2.3). An UPDATE carrying a decision request (`to`, `fr`, `op`, and
//! optionally `rrt`, `fu`, `rids`, `tids`, `tkns`, `rtm`, `oip`, `olo`) is answered with
//! `dec` and `sus`, decided against the policies this CSE holds for `to`, exactly as a
//! request of `fr` would be decided here (roles of this CSE's `<role>`s, verified tokens;
//! no DAS is consulted). The request and the answer are never stored: the write only
//! moves `lt`, and the decision goes to the audit trail.

use crate::access::{distributed, standing::originator_of_record, Check, RequestContext};
use crate::addressing::{self, Target};
use crate::{Caller, Cse};
use model::resources::auds::{Status, DENY, PERMIT, REQUEST, REQUIRED};
use model::{time, AccessOperation, Error, Request, Resource, ResourceType, Response, Result};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// Whether an UPDATE of an `<authorizationDecision>` asks for a decision (it carries a
/// request attribute); one that changes only common attributes is an ordinary UPDATE.
pub(crate) fn asks_decision(changes: &Map<String, Value>) -> bool {
    changes.keys().any(|k| REQUEST.contains(&k.as_str()))
}

/// A decision request, checked (TS-0004 clause 7.4.43.2.3 step 1: 4000 otherwise).
struct Question {
    to: String,
    from: String,
    op: AccessOperation,
    create_ty: Option<ResourceType>,
    rids: Vec<String>,
    tids: Vec<String>,
    tkns: Vec<String>,
    time: time::Timestamp,
    ip: Option<IpAddr>,
}

impl Question {
    fn parse(changes: &Map<String, Value>, now: time::Timestamp) -> Result<Self> {
        if let Some(other) = changes.keys().find(|k| !REQUEST.contains(&k.as_str())) {
            return Err(Error::bad_request(format!(
                "'{other}' cannot be updated with a decision request"
            )));
        }
        if let Some(null) = changes.iter().find(|(_, v)| v.is_null()) {
            return Err(Error::bad_request(format!(
                "'{}' of a decision request cannot be null",
                null.0
            )));
        }
        if let Some(missing) = REQUIRED.iter().find(|k| !changes.contains_key(**k)) {
            return Err(Error::bad_request(format!(
                "a decision request needs '{missing}'"
            )));
        }
        let text = |k: &str| {
            changes
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let list = |k: &str| -> Vec<String> {
            changes
                .get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let op = match changes.get("op").and_then(Value::as_u64) {
            Some(1) => AccessOperation::CREATE,
            Some(2) => AccessOperation::RETRIEVE,
            Some(3) => AccessOperation::UPDATE,
            Some(4) => AccessOperation::DELETE,
            Some(5) => AccessOperation::NOTIFY,
            _ => return Err(Error::bad_request("op is not an operation")),
        };
        // A RETRIEVE with discovery filter usage is a DISCOVERY (TS-0003 clause 7.1.3).
        let discovery = changes
            .get("fu")
            .and_then(|fu| fu.get("fu"))
            .and_then(Value::as_u64)
            == Some(1);
        let op = if op == AccessOperation::RETRIEVE && discovery {
            AccessOperation::DISCOVERY
        } else {
            op
        };
        let create_ty = changes
            .get("rrt")
            .and_then(Value::as_u64)
            .map(ResourceType::from_code)
            .transpose()?;
        let time = match changes.get("rtm").and_then(Value::as_str) {
            Some(t) => time::parse(t)?,
            None => now,
        };
        let ip = match changes.get("oip") {
            Some(oip) => Some(ip_of(oip)?),
            None => None,
        };
        let from = text("fr");
        if from.trim().is_empty() {
            return Err(Error::bad_request("fr must not be empty"));
        }
        Ok(Self {
            to: text("to"),
            from,
            op,
            create_ty,
            rids: list("rids"),
            tids: list("tids"),
            tkns: list("tkns"),
            time,
            ip,
        })
    }
}

/// The address in an `m2m:ipAddress` (exactly one of `ipv4Address`, `ipv6Address`).
fn ip_of(oip: &Value) -> Result<IpAddr> {
    let bad = || Error::bad_request("oip must hold one ipv4Address or ipv6Address");
    let obj = oip.as_object().ok_or_else(bad)?;
    let (v4, v6) = (obj.get("ipv4Address"), obj.get("ipv6Address"));
    let (text, want_v4) = match (v4, v6, obj.len()) {
        (Some(a), None, 1) => (a.as_str().ok_or_else(bad)?, true),
        (None, Some(a), 1) => (a.as_str().ok_or_else(bad)?, false),
        _ => return Err(bad()),
    };
    let ip: IpAddr = text.parse().map_err(|_| bad())?;
    if ip.is_ipv4() != want_v4 {
        return Err(bad());
    }
    Ok(ip)
}

/// The PDP's answer: `dec` (only with `sus` OK) and `sus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    dec: Option<u64>,
    sus: Status,
}

impl Answer {
    fn status(sus: Status) -> Self {
        Self { dec: None, sus }
    }
}

/// Runs the PDP procedure for an UPDATE of `current` carrying `changes` (already checked
/// against the attribute table): 4000 for a malformed request, otherwise 2004 with `dec`
/// and `sus`. The caller was allowed to UPDATE `current`.
pub(crate) async fn decide(
    cse: &Cse,
    caller: &Caller<'_>,
    req: &Request,
    current: &Resource,
    changes: &Map<String, Value>,
) -> Result<Response> {
    let question = Question::parse(changes, cse.config.clock.now())?;
    let answer = evaluate(cse, &question).await;
    let detail = format!(
        "to={} fr={} op={} dec={} sus={}",
        question.to,
        question.from,
        question.op.0,
        answer.dec.map_or("-".to_owned(), |d| d.to_string()),
        answer.sus.code()
    );
    let mut answered = Map::new();
    if let Some(dec) = answer.dec {
        answered.insert("dec".into(), json!(dec));
    }
    answered.insert("sus".into(), json!(answer.sus.code()));
    super::authority::answer_procedure(cse, caller, req, current, "decide", &detail, answered).await
}

/// Decides `q` against this CSE's policies and, when they refuse, those of the PRPs and the
/// roles and tokens of the PIPs they name (`apri`, `airi`: TS-0003 clause 7.5.2 steps 2 and
/// 3). Whatever cannot be established ends in a status other than OK, never in PERMIT.
async fn evaluate(cse: &Cse, q: &Question) -> Answer {
    let store = cse.store.as_ref();
    let config = &cse.config;
    let target = match addressing::resolve(&q.to, config, store) {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(to = %model::Untrusted(&q.to), error = %e, "PDP: not a target of this CSE; asking its policy repository");
            return foreign(cse, q);
        }
    };
    let (target, check) = match target {
        Target::Resource(r)
        | Target::PollingChannelUri(r)
        | Target::NotificationTargetSelfReference(r) => (r, Check::Operation),
        Target::Edge { container, .. } => (container, Check::Operation),
        Target::FanOut { group, .. } => (group, Check::FanOut),
    };
    let Some(originator) = originator_of_record(&q.from, config, store) else {
        tracing::info!(fr = %model::Untrusted(&q.from), "PDP: originator unknown here");
        return Answer::status(Status::NotApplicable);
    };
    if q.op == AccessOperation::CREATE && q.create_ty.is_none() {
        return Answer::status(Status::MissingAttribute);
    }
    let mut tokens = match crate::access::dynamic::verify_token_list(config, &originator, &q.tkns) {
        Ok(t) => t,
        Err(_) => return Answer::status(Status::SyntaxError),
    };
    match crate::access::repository::named_tokens(store, config, &originator, &q.tids) {
        Ok(t) => tokens.extend(t),
        Err(_) => return Answer::status(Status::SyntaxError),
    }
    let mut ctx = RequestContext::standing(q.time);
    ctx.ip = q.ip;
    ctx.roles =
        match crate::access::repository::held_roles(store, config, &originator, &q.rids, q.time) {
            Ok(r) => r,
            Err(_) => return Answer::status(Status::ProcessingError),
        };
    let gate = cse.gate().with_tokens(&tokens, &q.rids);
    let mut decided = gate.check(&originator, &ctx, &target, q.op, q.create_ty, check, None);
    if matches!(decided, Ok(Err(_))) {
        let retrieved = match gate.owner(&target) {
            Ok(owner) => {
                let (prps, pips) = distributed::named_points(store, &owner);
                let asked = distributed::Question {
                    originator: &originator,
                    target: &target,
                    rids: &q.rids,
                    time: q.time,
                };
                let outbound = cse.consultant.outbound();
                distributed::retrieve(config, store, outbound, &prps, &pips, &asked).await
            }
            Err(_) => distributed::Retrieved::default(),
        };
        if !retrieved.is_empty() {
            tokens.extend(retrieved.tokens);
            decided = cse.gate().with_tokens(&tokens, &q.rids).check(
                &originator,
                &ctx,
                &target,
                q.op,
                q.create_ty,
                check,
                Some(&retrieved.grant),
            );
        }
    }
    match decided {
        Ok(Ok(())) => Answer {
            dec: Some(PERMIT),
            sus: Status::Ok,
        },
        Ok(Err(refusal)) => {
            tracing::debug!(refusal = ?refusal, "PDP: denied");
            Answer {
                dec: Some(DENY),
                sus: Status::Ok,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "PDP: evaluation failed");
            Answer::status(Status::ProcessingError)
        }
    }
}

/// Decides `q` for a target this CSE does not host (TS-0003 clause 7.5.2 step 2: the
/// policies retrieved locally): by the policies its PRP repository files for `to`
/// (`access::distributed::local_policies`) with the roles this CSE assigns to `fr` among
/// those `rids` names. Without the target resource, a CREATE (whose `acod` needs the
/// parent's type) is NOT_APPLICABLE, and `fr`'s tokens, addressed to the target's CSE, are
/// not evaluated; the originator counts as unauthenticated (fail closed).
fn foreign(cse: &Cse, q: &Question) -> Answer {
    let (config, store) = (&cse.config, cse.store.as_ref());
    if !q.to.starts_with('/') || q.op == AccessOperation::CREATE {
        return Answer::status(Status::NotApplicable);
    }
    let found = distributed::local_policies(config, store, &q.to);
    if found.status != Status::Ok {
        return Answer::status(found.status);
    }
    let domain = crate::access::Domain::of(config);
    let policies: Vec<std::sync::Arc<crate::access::Policy>> = found
        .privileges
        .iter()
        .enumerate()
        .map(|(i, pv)| {
            std::sync::Arc::new(crate::access::Policy::compile(
                &format!("repository#{}", i + 1),
                crate::access::RuleSet::Privileges,
                Some(pv),
                &domain,
            ))
        })
        .collect();
    let roles = if q.rids.is_empty() {
        Vec::new()
    } else {
        distributed::local_information(config, store, &q.from, &q.rids, &[])
            .roles
            .iter()
            .filter_map(|r| r.get("rlid").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    let request = crate::access::AccessRequest {
        originator: crate::access::Principal::remote(&q.from, &domain),
        op: q.op,
        // Read by `acod` only, which applies to CREATE, refused above.
        target_ty: ResourceType::CseBase,
        create: None,
        authenticated: false,
        time: q.time,
        ip: q.ip,
        location: None,
        credential_level: None,
        roles,
        groups: Vec::new(),
    };
    let dec = if crate::access::decide(&policies, &request) {
        PERMIT
    } else {
        DENY
    };
    Answer {
        dec: Some(dec),
        sus: Status::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_decision_request_is_checked_before_anything_is_decided() {
        let now = time::parse("20261207T120000").expect("time");
        let ok = map(json!({"to": "cse-in/x", "fr": "Cx", "op": 2}));
        assert!(Question::parse(&ok, now).is_ok());
        for bad in [
            json!({"to": "cse-in/x", "fr": "Cx"}),
            json!({"to": "cse-in/x", "op": 2}),
            json!({"fr": "Cx", "op": 2}),
            json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "lbl": ["a"]}),
            json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "rids": null}),
            json!({"to": "cse-in/x", "fr": " ", "op": 2}),
            json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "rrt": 99}),
            json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "oip": {"ipv4Address": "::1"}}),
            json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "oip": {"ipv4Address": "1.2.3.4",
                "ipv6Address": "::1"}}),
        ] {
            assert!(Question::parse(&map(bad.clone()), now).is_err(), "{bad}");
        }
        let disc = map(json!({"to": "cse-in/x", "fr": "Cx", "op": 2, "fu": {"fu": 1}}));
        let q = Question::parse(&disc, now).expect("parse");
        assert_eq!(q.op, AccessOperation::DISCOVERY);
        let v6 = map(json!({"to": "a", "fr": "Cx", "op": 2, "oip": {"ipv6Address": "::1"}}));
        assert!(Question::parse(&v6, now)
            .expect("parse")
            .ip
            .is_some_and(|ip| ip.is_ipv6()));
    }
}
