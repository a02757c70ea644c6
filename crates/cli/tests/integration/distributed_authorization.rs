//! `<authorizationDecision>` end to end (TS-0003 clause 7.5.2): the real `cse` binary as PDP
//! and curl as the PEP. The admin creates the PDP resource; a PEP allowed to UPDATE it asks
//! whether an originator may read a container and gets the decision the policies give,
//! across a SIGKILL; nothing of the question is kept; every decision is in the audit log.
//! Then the PRP and PIP (TS-0003 clauses 7.5.3, 7.5.4) over HTTP, and a second `cse` process
//! naming them in `apri`/`airi`.
use crate::common;

use common::*;
use serde_json::{json, Value};

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

fn update(server: &Server, path: &str, from: &str, body: &Value) -> (u16, Value) {
    call(
        server,
        "PUT",
        path,
        from,
        Some(("application/json", &body.to_string())),
    )
}

/// An admin `<accessControlPolicy>` of the `<CSEBase>` with `pv` rules `rules`; its ri.
fn admin_policy(server: &Server, rn: &str, extra: Value, rules: Value) -> String {
    let mut acp = json!({"rn": rn, "pv": {"acr": rules},
        "pvs": {"acr": [{"acor": ["CAdmin"], "acop": 63}]}});
    if let (Some(acp), Some(extra)) = (acp.as_object_mut(), extra.as_object()) {
        acp.extend(extra.clone());
    }
    let (rsc, r) = create(server, "cse-in", "CAdmin", 1, &json!({ "m2m:acp": acp }));
    assert_eq!(rsc, 2001, "{r}");
    r["m2m:acp"]["ri"].as_str().expect("ri").to_owned()
}

/// The owner's container `cse-in/owner/<rn>` under a policy whose `pv` grants nothing and
/// that names `points` (`apri`, `airi`).
fn far_container(server: &Server, owner: &str, rn: &str, points: Value) {
    let mut acp = json!({"rn": format!("{rn}-acp"), "pv": {"acr": []},
        "pvs": {"acr": [{"acor": [owner], "acop": 63}]}});
    if let (Some(acp), Some(points)) = (acp.as_object_mut(), points.as_object()) {
        acp.extend(points.clone());
    }
    let (rsc, r) = create(server, "cse-in/owner", owner, 1, &json!({ "m2m:acp": acp }));
    assert_eq!(rsc, 2001, "{r}");
    let cnt = json!({"m2m:cnt": {"rn": rn, "acpi": [r["m2m:acp"]["ri"]]}});
    let (rsc, r) = create(server, "cse-in/owner", owner, 3, &cnt);
    assert_eq!(rsc, 2001, "{r}");
}

/// TS-0003 clauses 7.5.3 and 7.5.4 with the real binary: a CSE answers as PRP and PIP over
/// HTTP; another CSE (`id-mn`, a second process) names them in `apri`/`airi` and, since
/// the first refuses its unauthenticated CSE-ID (4107), refuses the request (fail-safe) and
/// logs why, and again once the first is gone; with its own PRP it grants what the filed
/// policy grants, to a request and to its PDP, across a SIGKILL.
#[test]
fn prp_and_pip_over_http_and_a_second_cse_that_names_them() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    // The PRP/PIP CSE: its points, a policy filed for every resource of `id-mn` (holders of
    // the role `reader` may read) and that role, held by an AE of `id-mn`.
    let mut points = Server::start(&dir.path().join("points"));
    let asker = Http { base: points.url() }.register("asker");
    let askers = admin_policy(
        &points,
        "askers",
        json!({}),
        json!([{"acor": [asker.clone()], "acop": 4}]),
    );
    for (ty, wrapper, rn) in [(36, "m2m:aupy", "prp"), (37, "m2m:auif", "pip")] {
        let body = json!({ wrapper: {"rn": rn, "acpi": [askers]} });
        assert_eq!(create(&points, "cse-in", &asker, ty, &body).0, 4103);
        let (rsc, r) = create(&points, "cse-in", "CAdmin", ty, &body);
        assert_eq!(rsc, 2001, "{r}");
        assert_eq!(r[wrapper]["ty"], json!(ty));
    }
    admin_policy(
        &points,
        "mn",
        json!({"lbl": ["prp-target=/id-mn"]}),
        json!([{"acor": ["reader"], "acop": 2}]),
    );
    let role = json!({"m2m:rol": {"rlid": "reader", "tkis": "/id-in", "tkhd": "/id-mn/Cfar",
        "tknb": "20200101T000000", "tkna": "20990101T000000"}});
    assert_eq!(create(&points, "cse-in", "CAdmin", 31, &role).0, 2001);
    let (rsc, r) = update(
        &points,
        "cse-in/prp",
        &asker,
        &json!({"m2m:aupy": {"to": "/id-mn/x"}}),
    );
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(
        (&r["m2m:aupy"]["sus"], &r["m2m:aupy"]["ca"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(
        r["m2m:aupy"]["ps"]["pv"][0]["acr"][0]["acor"],
        json!(["reader"])
    );
    let (rsc, r) = update(
        &points,
        "cse-in/prp",
        &asker,
        &json!({"m2m:aupy": {"to": "/id-x/y"}}),
    );
    assert_eq!((rsc, &r["m2m:aupy"]["sus"]), (2004, &json!(2)), "{r}");
    let (rsc, r) = update(
        &points,
        "cse-in/pip",
        &asker,
        &json!({"m2m:auif": {"fr": "/id-mn/Cfar"}}),
    );
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(r["m2m:auif"]["sus"], json!(1));
    assert_eq!(r["m2m:auif"]["m2m:rol"][0]["rlid"], json!("reader"));
    let (rsc, _) = update(
        &points,
        "cse-in/pip",
        &asker,
        &json!({"m2m:auif": {"rids": ["reader"]}}),
    );
    assert_eq!(rsc, 4000);
    let (rsc, r) = call(&points, "GET", "cse-in/prp", "CAdmin", None);
    assert_eq!(rsc, 2000, "{r}");
    for name in ["to", "ps", "ca", "sus"] {
        assert!(r["m2m:aupy"].get(name).is_none(), "{name}: {r}");
    }
    let log = std::fs::read_to_string(dir.path().join("points/audit.log")).unwrap_or_default();
    for (action, n) in [
        ("aupy-create", 1),
        ("aupy-retrieve", 2),
        ("auif-retrieve", 1),
    ] {
        assert_eq!(log.matches(action).count(), n, "{action}: {log}");
    }

    // The hosting CSE `id-mn` lists them and names them for its container `far`.
    let host_dir = dir.path().join("host");
    std::fs::create_dir_all(&host_dir).expect("dir");
    let config = host_dir.join("cse.toml");
    std::fs::write(
        &config,
        format!(
            "[cse]\ncse_id = \"id-mn\"\n[dynamic_authorization]\ntimeout_ms = 2000\n\
             prp_urls = [\"{0}/cse-in/prp\"]\npip_urls = [\"{0}/cse-in/pip\"]\n",
            points.url()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("utf-8 path");
    let data = host_dir.join("data");
    let mut host = Server::start_with(&data, &["--config", cfg]);
    let http = Http { base: host.url() };
    let owner = http.register("owner");
    let other = http.register("other");
    let pep = http.register("pep");
    let remote = json!({"apri": [format!("{}/cse-in/prp", points.url())],
        "airi": [format!("{}/cse-in/pip", points.url())]});
    far_container(&host, &owner, "far", remote);
    // The unlisted and the wrong kind are refused when written.
    let bad = json!({"m2m:acp": {"rn": "bad", "pv": {"acr": []}, "apri": ["http://192.0.2.1/prp"],
        "pvs": {"acr": [{"acor": [owner.clone()], "acop": 63}]}}});
    assert_eq!(create(&host, "cse-in/owner", &owner, 1, &bad).0, 4000);
    let (rsc, _) = call(&host, "GET", "cse-in/owner/far", &other, None);
    assert_eq!(rsc, 4103);
    let log = host.log_with("PRP: no usable answer");
    assert!(log.contains("4107"), "{log}");
    // Its own PRP, with a policy filed for one container, grants what that policy grants.
    let (rsc, r) = create(
        &host,
        "cse-in",
        "CAdmin",
        36,
        &json!({"m2m:aupy": {"rn": "prp"}}),
    );
    assert_eq!(rsc, 2001, "{r}");
    admin_policy(
        &host,
        "filed",
        json!({"lbl": ["prp-target=/id-mn/cse-in/owner/near"]}),
        json!([{"acor": [other.clone()], "acop": 2}]),
    );
    far_container(&host, &owner, "near", json!({"apri": ["cse-in/prp"]}));
    assert_eq!(
        call(&host, "GET", "cse-in/owner/near", &other, None).0,
        2000
    );
    assert_eq!(call(&host, "GET", "cse-in/owner/near", &pep, None).0, 4103);
    // Its PDP decides with it too.
    let peps = admin_policy(
        &host,
        "peps",
        json!({}),
        json!([{"acor": [pep.clone()], "acop": 4}]),
    );
    let (rsc, r) = create(
        &host,
        "cse-in",
        "CAdmin",
        35,
        &json!({"m2m:auds": {"rn": "pdp", "acpi": [peps]}}),
    );
    assert_eq!(rsc, 2001, "{r}");
    let (rsc, r) = ask(
        &host,
        &pep,
        json!({"to": "cse-in/owner/near", "fr": other, "op": 2}),
    );
    assert_eq!(rsc, 2004, "{r}");
    assert_eq!(
        (&r["m2m:auds"]["dec"], &r["m2m:auds"]["sus"]),
        (&json!(1), &json!(1))
    );
    // Across a SIGKILL; and with the PRP/PIP CSE gone, `far` is still refused, with a log line.
    host.kill9();
    let host = Server::start_with(&data, &["--config", cfg]);
    assert_eq!(
        call(&host, "GET", "cse-in/owner/near", &other, None).0,
        2000
    );
    points.kill9();
    assert_eq!(call(&host, "GET", "cse-in/owner/far", &other, None).0, 4103);
    let log = host.log_with_count("PIP: no usable answer", 2);
    assert_eq!(log.matches("PRP: no usable answer").count(), 2, "{log}");
    assert_eq!(log.matches("PIP: no usable answer").count(), 2, "{log}");
}
