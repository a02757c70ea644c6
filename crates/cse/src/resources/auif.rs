//! `<authorizationInformation>`: this CSE's Policy Information Point (TS-0003 clause 7.5.4,
//! TS-0004 clause 7.4.45.2.3). An UPDATE carrying an information request (`fr`, and
//! optionally `rids` and `tids`) is answered with the `<role>`s and `<token>`s this CSE
//! holds for that originator (as `m2m:rol` and `m2m:tk` lists inside the resource, the way
//! child resources are shown) and `sus`, found as `access::distributed::local_information`
//! says. TS-0004 has the PIP create them as children and delete them after the response;
//! this CSE never writes them, which leaves the same resource behind without a moment in
//! which another reader could see them. The answer (Role-IDs and Token-IDs, never a token)
//! goes to the audit trail.

use crate::access::distributed;
use crate::{Caller, Cse};
use model::resources::auds::Status;
use model::resources::auif::{MAX_IDS, REQUEST, REQUIRED};
use model::{Error, Request, Resource, Response, Result};
use serde_json::{json, Map, Value};

/// Whether an UPDATE of an `<authorizationInformation>` asks for information (it carries a
/// request attribute); one that changes only common attributes is an ordinary UPDATE.
pub(crate) fn asks_information(changes: &Map<String, Value>) -> bool {
    changes.keys().any(|k| REQUEST.contains(&k.as_str()))
}

/// An information request, checked (TS-0004 clause 7.4.45.2.3 step 1: 4000 otherwise).
#[derive(Debug, PartialEq)]
struct Question {
    from: String,
    rids: Vec<String>,
    tids: Vec<String>,
}

impl Question {
    fn parse(changes: &Map<String, Value>) -> Result<Self> {
        if let Some(other) = changes.keys().find(|k| !REQUEST.contains(&k.as_str())) {
            return Err(Error::bad_request(format!(
                "'{other}' cannot be updated with an information request"
            )));
        }
        if let Some(missing) = REQUIRED.iter().find(|k| !changes.contains_key(**k)) {
            return Err(Error::bad_request(format!(
                "an information request needs '{missing}'"
            )));
        }
        let from = match changes.get("fr").and_then(Value::as_str) {
            Some(f) if !f.trim().is_empty() => f.to_owned(),
            _ => return Err(Error::bad_request("fr must be a non-empty ID")),
        };
        let list = |k: &str| -> Result<Vec<String>> {
            match changes.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) if items.len() <= MAX_IDS => items
                    .iter()
                    .map(|i| match i.as_str() {
                        Some(s) if !s.is_empty() => Ok(s.to_owned()),
                        _ => Err(Error::bad_request(format!(
                            "{k} holds an empty or non-text ID"
                        ))),
                    })
                    .collect(),
                Some(Value::Array(_)) => Err(Error::bad_request(format!(
                    "{k} names more than {MAX_IDS} IDs"
                ))),
                Some(_) => Err(Error::bad_request(format!("{k} must be a list"))),
            }
        };
        Ok(Self {
            from,
            rids: list("rids")?,
            tids: list("tids")?,
        })
    }
}

/// Runs the PIP procedure for an UPDATE of `current` carrying `changes` (already checked
/// against the attribute table): 4000 for a malformed request, otherwise 2004 with the
/// roles and tokens found (only with `sus` OK) and `sus`. The caller was allowed to UPDATE
/// `current`.
pub(crate) async fn retrieve(
    cse: &Cse,
    caller: &Caller<'_>,
    req: &Request,
    current: &Resource,
    changes: &Map<String, Value>,
) -> Result<Response> {
    let q = Question::parse(changes)?;
    let answer =
        distributed::local_information(&cse.config, cse.store.as_ref(), &q.from, &q.rids, &q.tids);
    let ids = |items: &[Map<String, Value>], key: &str| -> String {
        items
            .iter()
            .filter_map(|m| m.get(key).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(",")
    };
    let detail = format!(
        "fr={} roles=[{}] tokens=[{}] sus={}",
        q.from,
        ids(&answer.roles, "rlid"),
        ids(&answer.tokens, "tkid"),
        answer.status.code()
    );
    let mut answered = Map::new();
    if answer.status == Status::Ok {
        if !answer.roles.is_empty() {
            answered.insert("m2m:rol".into(), json!(answer.roles));
        }
        if !answer.tokens.is_empty() {
            answered.insert("m2m:tk".into(), json!(answer.tokens));
        }
    }
    answered.insert("sus".into(), json!(answer.status.code()));
    super::authority::answer_procedure(cse, caller, req, current, "retrieve", &detail, answered)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_information_request_is_checked_before_anything_is_read() {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        let q = Question::parse(&map(json!({"fr": "/cse-a/Cx", "rids": ["r1"]}))).expect("ok");
        assert_eq!(q.rids, vec!["r1".to_owned()]);
        let many: Vec<String> = (0..=MAX_IDS).map(|i| format!("r{i}")).collect();
        for bad in [
            json!({"rids": ["r1"]}),
            json!({"fr": ""}),
            json!({"fr": "Cx", "lbl": ["a"]}),
            json!({"fr": "Cx", "rids": "r1"}),
            json!({"fr": "Cx", "tids": [""]}),
            json!({"fr": "Cx", "tids": [1]}),
            json!({"fr": "Cx", "rids": many}),
        ] {
            assert!(Question::parse(&map(bad.clone())).is_err(), "{bad}");
        }
    }
}
