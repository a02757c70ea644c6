//! `<authorizationDecision>` end to end (TS-0003 clause 7.5.2): the real `cse` binary as PDP
//! and curl as the PEP. The admin creates the PDP resource; a PEP allowed to UPDATE it asks
//! whether an originator may read a container and gets the decision the policies give,
//! across a SIGKILL; nothing of the question is kept; every decision is in the audit log.
use crate::common;

use common::*;
use serde_json::{json, Value};

/// One request over HTTP with curl (`common::Http`), with optional JSON content.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    from: &str,
    content: Option<(&str, &str)>,
) -> (u16, Value) {
    let a = Http { base: server.url() }.send_as(method, from, path, content);
    (a.rsc, a.body)
}

fn create(server: &Server, path: &str, from: &str, ty: u16, body: &Value) -> (u16, Value) {
    let ct = format!("application/json;ty={ty}");
    call(server, "POST", path, from, Some((&ct, &body.to_string())))
}

fn ask(server: &Server, from: &str, question: Value) -> (u16, Value) {
    let body = json!({ "m2m:auds": question }).to_string();
    call(
        server,
        "PUT",
        "cse-in/pdp",
        from,
        Some(("application/json", &body)),
    )
}

/// Registers `owner`, `other` and `pep`; the owner's container `data` is readable by
/// `other`; the admin's `cse-in/pdp` may be asked by `pep`. Returns (other, pep).
fn setup(server: &Server) -> (String, String) {
    let mut ids = Vec::new();
    for rn in ["owner", "other", "pep"] {
        let ae = json!({"m2m:ae": {"rn": rn, "api": "Npdp", "rr": false, "srv": ["3"]}});
        let (rsc, r) = create(server, "cse-in", "C", 2, &ae);
        assert_eq!(rsc, 2001, "{r}");
        ids.push(r["m2m:ae"]["aei"].as_str().expect("aei").to_owned());
    }
    let (owner, other, pep) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let acp = json!({"m2m:acp": {"rn": "readers",
        "pv": {"acr": [{"acor": [other], "acop": 2}]},
        "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
    let (rsc, r) = create(server, "cse-in/owner", &owner, 1, &acp);
    assert_eq!(rsc, 2001, "{r}");
    let cnt = json!({"m2m:cnt": {"rn": "data", "acpi": [r["m2m:acp"]["ri"]]}});
    let (rsc, r) = create(server, "cse-in/owner", &owner, 3, &cnt);
    assert_eq!(rsc, 2001, "{r}");
    let acp = json!({"m2m:acp": {"rn": "peps",
        "pv": {"acr": [{"acor": [pep], "acop": 4}]},
        "pvs": {"acr": [{"acor": ["CAdmin"], "acop": 63}]}}});
    let (rsc, r) = create(server, "cse-in", "CAdmin", 1, &acp);
    assert_eq!(rsc, 2001, "{r}");
    let auds = json!({"m2m:auds": {"rn": "pdp", "acpi": [r["m2m:acp"]["ri"]]}});
    // Only the admin creates a PDP.
    assert_eq!(create(server, "cse-in", &pep, 35, &auds).0, 4103);
    let (rsc, r) = create(server, "cse-in", "CAdmin", 35, &auds);
    assert_eq!(rsc, 2001, "{r}");
    assert_eq!(r["m2m:auds"]["ty"], json!(35));
    (other, pep)
}

#[test]
fn a_pep_asks_the_pdp_over_http_and_gets_the_policies_decision() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let (other, pep) = setup(&server);
    let data = "cse-in/owner/data";
    let (rsc, r) = ask(&server, &pep, json!({"to": data, "fr": other, "op": 2}));
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(
        (&r["m2m:auds"]["dec"], &r["m2m:auds"]["sus"]),
        (&json!(1), &json!(1))
    );
    let (rsc, r) = ask(&server, &pep, json!({"to": data, "fr": pep, "op": 2}));
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(
        (&r["m2m:auds"]["dec"], &r["m2m:auds"]["sus"]),
        (&json!(2), &json!(1))
    );
    // Who may not UPDATE the PDP may not ask it; a malformed question is 4000.
    assert_eq!(
        ask(&server, &other, json!({"to": data, "fr": other, "op": 2})).0,
        4103
    );
    assert_eq!(ask(&server, &pep, json!({"to": data, "op": 2})).0, 4000);
    // Nothing of the questions is kept.
    let (rsc, r) = call(&server, "GET", "cse-in/pdp", "CAdmin", None);
    assert_eq!(rsc, 2000, "{r}");
    for name in ["to", "fr", "op", "dec", "sus"] {
        assert!(r["m2m:auds"].get(name).is_none(), "{name}: {r}");
    }
    let audit = dir.path().join("audit.log");
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(log.contains("auds-create"), "{log}");
    assert_eq!(log.matches("auds-decide").count(), 2, "{log}");
    // The PDP survives a SIGKILL.
    server.kill9();
    let server = Server::start(dir.path());
    let (rsc, r) = ask(&server, &pep, json!({"to": data, "fr": other, "op": 2}));
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(r["m2m:auds"]["dec"], json!(1));
}
