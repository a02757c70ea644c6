//! `<role>` end to end (TS-0003 clause 7.4.3): the real `cse` binary and curl. The admin
//! assigns a role by creating a `<role>`; the holder naming it in `rids` gets what the
//! policies grant that role, across a SIGKILL; nobody else can create one; deleting it
//! revokes it; each change is in the audit log before the answer.
use crate::common;

use common::*;
use serde_json::json;

fn stamp(secs: i64) -> String {
    let by = std::time::Duration::from_secs(secs.unsigned_abs());
    let now = model::time::now();
    model::time::format(if secs < 0 { now - by } else { now + by })
}

/// Registers `owner` and `other`; the owner's container `data` is readable by holders of
/// the role `operator` only. Returns other's AE-ID.
fn setup(server: &Server) -> String {
    let mut ids = Vec::new();
    for rn in ["owner", "other"] {
        let ae = json!({"m2m:ae": {"rn": rn, "api": "Nrole", "rr": false, "srv": ["3"]}});
        let (rsc, r) = create(server, "cse-in", "C", 2, &ae);
        assert_eq!(rsc, 2001, "{r}");
        ids.push(r["m2m:ae"]["aei"].as_str().expect("aei").to_owned());
    }
    let owner = &ids[0];
    let acp = json!({"m2m:acp": {"rn": "roles",
        "pv": {"acr": [{"acor": ["operator"], "acop": 2}]},
        "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
    let (rsc, r) = create(server, "cse-in/owner", owner, 1, &acp);
    assert_eq!(rsc, 2001, "{r}");
    let cnt = json!({"m2m:cnt": {"rn": "data", "acpi": [r["m2m:acp"]["ri"]]}});
    let (rsc, r) = create(server, "cse-in/owner", owner, 3, &cnt);
    assert_eq!(rsc, 2001, "{r}");
    ids.swap_remove(1)
}

fn read(server: &Server, from: &str, query: &str) -> u16 {
    call(
        server,
        "GET",
        &format!("cse-in/owner/data{query}"),
        from,
        None,
    )
    .0
}

#[test]
fn a_role_resource_grants_its_holder_until_it_is_deleted() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let other = setup(&server);
    assert_eq!(read(&server, &other, "?rids=operator"), 4103);
    let role = json!({"m2m:rol": {"rn": "op", "rlid": "operator", "tkis": "/id-in",
        "tkhd": other, "tknb": stamp(-60), "tkna": stamp(3600), "rlnm": "Operator"}});
    // An AE cannot assign itself the role; nothing is created.
    let (rsc, _) = create(&server, "cse-in", &other, 31, &role);
    assert_eq!(rsc, 4103);
    assert_eq!(call(&server, "GET", "cse-in/op", "CAdmin", None).0, 4004);
    // A role for another issuer would never count: refused.
    let mut foreign = role.clone();
    foreign["m2m:rol"]["tkis"] = json!("/id-other");
    assert_eq!(create(&server, "cse-in", "CAdmin", 31, &foreign).0, 4102);
    // The admin assigns it.
    let (rsc, r) = create(&server, "cse-in", "CAdmin", 31, &role);
    assert_eq!(rsc, 2001, "{r}");
    assert_eq!(r["m2m:rol"]["rlid"], json!("operator"));
    assert_eq!(r["m2m:rol"]["tkhd"], json!(other));
    assert_eq!(r["m2m:rol"]["ty"], json!(31));
    let audit = dir.path().join("audit.log");
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(log.contains("rol-create"), "{log}");
    // The holder, naming the role: granted; without naming it: refused.
    assert_eq!(read(&server, &other, "?rids=operator"), 2000);
    assert_eq!(read(&server, &other, ""), 4103);
    // The role survives a SIGKILL.
    server.kill9();
    let server = Server::start(dir.path());
    assert_eq!(read(&server, &other, "?rids=operator"), 2000);
    // Deleting it revokes it.
    assert_eq!(call(&server, "DELETE", "cse-in/op", "CAdmin", None).0, 2002);
    assert_eq!(read(&server, &other, "?rids=operator"), 4103);
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(log.contains("rol-delete"), "{log}");
}

/// A `<role>` whose period has already ended, or whose `et` is past, could never count:
/// refused with 4000 BAD_REQUEST (TS-0004 clause 7.2.2.2 answers a past `expirationTime`
/// so; a past `tkna` is the same mistake), nothing created, nothing audited.
#[test]
fn a_role_that_has_already_ended_is_refused() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let other = setup(&server);
    let ended = json!({"m2m:rol": {"rn": "ended", "rlid": "operator", "tkis": "/id-in",
        "tkhd": other, "tknb": stamp(-7200), "tkna": stamp(-60)}});
    let (rsc, r) = create(&server, "cse-in", "CAdmin", 31, &ended);
    assert_eq!(rsc, 4000, "{r}");
    let expired = json!({"m2m:rol": {"rn": "ended", "rlid": "operator", "tkis": "/id-in",
        "tkhd": other, "tknb": stamp(-60), "tkna": stamp(3600), "et": stamp(-60)}});
    let (rsc, r) = create(&server, "cse-in", "CAdmin", 31, &expired);
    assert_eq!(rsc, 4000, "{r}");
    assert_eq!(call(&server, "GET", "cse-in/ended", "CAdmin", None).0, 4004);
    assert_eq!(read(&server, &other, "?rids=operator"), 4103);
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap_or_default();
    assert!(!log.contains("rol-create"), "{log}");
}
