//! `<authorizationPolicy>`: this CSE's Policy Retrieval Point (TS-0003 clause 7.5.3,
//! TS-0004 clause 7.4.44.2.3). An UPDATE carrying a policy request (`to`, and nothing else)
//! is answered with the policies that apply to `to` (`ps`), their combining algorithm
//! (`ca`, PERMIT_OVERRIDES) and `sus`, found as `access::distributed::local_policies` says.
//! The request and the answer are never stored: the write only moves `lt`, and the answer
//! (how many policies, never their rules) goes to the audit trail.

use crate::access::distributed;
use crate::{Caller, Cse};
use model::resources::auds::Status;
use model::resources::aupy::{PERMIT_OVERRIDES, REQUEST};
use model::{Error, Request, Resource, Response, Result};
use serde_json::{json, Map, Value};

/// Whether an UPDATE of an `<authorizationPolicy>` asks for policies (it carries `to`);
/// one that changes only common attributes is an ordinary UPDATE.
pub(crate) fn asks_policies(changes: &Map<String, Value>) -> bool {
    changes.keys().any(|k| REQUEST.contains(&k.as_str()))
}

/// The `to` of a policy request (TS-0004 clause 7.4.44.2.3 step 1: only `to`, well formed;
/// 4000 otherwise).
fn parse(changes: &Map<String, Value>) -> Result<&str> {
    if let Some(other) = changes.keys().find(|k| !REQUEST.contains(&k.as_str())) {
        return Err(Error::bad_request(format!(
            "'{other}' cannot be updated with a policy request: only 'to' may be sent"
        )));
    }
    match changes.get("to").and_then(Value::as_str) {
        Some(to) if !to.trim().is_empty() => Ok(to),
        _ => Err(Error::bad_request(
            "a policy request needs a non-empty 'to'",
        )),
    }
}

/// Runs the PRP procedure for an UPDATE of `current` carrying `changes` (already checked
/// against the attribute table): 4000 for a malformed request, otherwise 2004 with `ps`
/// (only with `sus` OK), `ca` and `sus`. The caller was allowed to UPDATE `current`.
pub(crate) async fn retrieve(
    cse: &Cse,
    caller: &Caller<'_>,
    req: &Request,
    current: &Resource,
    changes: &Map<String, Value>,
) -> Result<Response> {
    let to = parse(changes)?;
    let answer = distributed::local_policies(&cse.config, cse.store.as_ref(), to);
    let detail = format!(
        "to={to} policies={} sus={}",
        answer.privileges.len(),
        answer.status.code()
    );
    let mut answered = Map::new();
    if answer.status == Status::Ok {
        answered.insert("ps".into(), json!({ "pv": answer.privileges }));
        answered.insert("ca".into(), json!(PERMIT_OVERRIDES));
    }
    answered.insert("sus".into(), json!(answer.status.code()));
    super::authority::answer_procedure(cse, caller, req, current, "retrieve", &detail, answered)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_request_carries_to_and_nothing_else() {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            parse(&map(json!({"to": "/cse-a/x"}))).ok(),
            Some("/cse-a/x")
        );
        assert!(parse(&map(json!({"to": "/cse-a/x", "lbl": ["a"]}))).is_err());
        assert!(parse(&map(json!({"to": " "}))).is_err());
        assert!(parse(&map(json!({"to": null}))).is_err());
    }
}
