//! `<locationPolicy>` end to end, with the real binary and curl (TS-0004 clause 7.4.10;
//! TS-0001 clause 10.2.9): the admin creates a device-based policy, which makes its location
//! container; the device's AE reads its update period and writes position fixes over HTTP
//! (JSON and CBOR); a subscriber hears of them; what this CSE cannot do is refused with its
//! code; the pair survives SIGKILL and goes together on DELETE.
use crate::common;
use crate::notifications::Target;

use common::*;
use model::codec::{self, Format};
use serde_json::{json, Value};

const ADMIN: &str = "CAdmin";
const LCP: &str = "cse-in/devloc";
const CNT: &str = "cse-in/devpos";

/// The admin's policy letting `device` create (positions) and read, and the device's
/// location policy under it; returns the policy's answer.
fn setup(h: &Http, device: &str) -> Answer {
    let acp = json!({"m2m:acp": {"rn": "lcpAcp",
        "pv": {"acr": [{"acor": [device], "acop": 3}]},
        "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}});
    let a = h.create(ADMIN, "cse-in", 1, &acp.to_string());
    let acp = a.body["m2m:acp"]["ri"].as_str().expect("ri").to_owned();
    let lcp = json!({"m2m:lcp": {"rn": "devloc", "los": 2, "lou": ["PT30S"],
        "lon": "devpos", "acpi": [acp]}});
    h.create(ADMIN, "cse-in", 10, &lcp.to_string())
}

fn position(h: &Http, from: &str, con: &Value) -> Answer {
    let body = json!({"m2m:cin": {"con": con}}).to_string();
    h.send("POST", from, CNT, Some((4, &body)))
}

/// TS-0004 clause 7.4.10.2.1 (CREATE with its container), TS-0001 clause 10.2.9.7 (positions
/// in the container), 7.4.10.2.4 (DELETE of both), over HTTP, durable across SIGKILL.
#[test]
fn device_based_positions_over_http() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let h = Http { base: server.url() };
    let device = h.register("device");
    let other = h.register("other");
    let a = setup(&h, &device);
    let lcp = &a.body["m2m:lcp"];
    assert_eq!(lcp["ty"], json!(10));
    assert_eq!(lcp["lit"], json!(1));
    let c = h.get(ADMIN, CNT);
    assert_eq!(c.rsc, 2000, "{}", c.body);
    assert_eq!(c.body["m2m:cnt"]["li"], lcp["ri"]);
    assert_eq!(lcp["loi"], c.body["m2m:cnt"]["ri"]);

    // A subscriber of the location container hears of each position.
    let target = Target::start();
    let sub = json!({"m2m:sub": {"rn": "track", "nu": [target.url], "enc": {"net": [3]}}});
    h.create(ADMIN, CNT, 23, &sub.to_string());

    // The device reads its period and reports.
    let p = h.get(&device, LCP);
    assert_eq!(p.body["m2m:lcp"]["lou"], json!(["PT30S"]));
    let fix = json!({"typ": 1, "crd": [2.35, 48.85]});
    assert_eq!(position(&h, &device, &fix).rsc, 2001);
    let heard = target.wait_until(|n| n.json()["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"] == fix);
    assert!(heard.is_some(), "no notification of the position");
    // In CBOR too (short names, as in JSON).
    let cbor = dir.path().join("fix.cbor");
    let second = json!({"typ": 1, "crd": [2.36, 48.86]});
    std::fs::write(
        &cbor,
        codec::encode(&json!({"m2m:cin": {"con": second}}), Format::Cbor),
    )
    .expect("write");
    let head = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{}/{CNT}", server.url()),
        "-H",
        &format!("X-M2M-Origin: {device}"),
        "-H",
        "X-M2M-RI: cbor1",
        "-H",
        "X-M2M-RVI: 3",
        "-H",
        "Content-Type: application/cbor;ty=4",
        "--data-binary",
        &format!("@{}", cbor.display()),
    ]);
    assert!(head.contains("X-M2M-RSC: 2001"), "{head}");
    let la = h.get(&device, &format!("{CNT}/la"));
    assert_eq!(la.body["m2m:cin"]["con"], second);

    // Misuse: not a position (4000), not the device (4103), the device changing its
    // policy (4103), a read-only attribute (4000); nothing changes.
    assert_eq!(position(&h, &device, &json!("here")).rsc, 4000);
    assert_eq!(position(&h, &other, &fix).rsc, 4103);
    let a = h.update(&device, LCP, r#"{"m2m:lcp": {"lou": ["PT1S"]}}"#);
    assert_eq!(a.rsc, 4103, "{}", a.body);
    let a = h.update(ADMIN, LCP, r#"{"m2m:lcp": {"los": 2}}"#);
    assert_eq!(a.rsc, 4000, "{}", a.body);
    assert_eq!(h.get(ADMIN, CNT).body["m2m:cnt"]["cni"], json!(2));
    assert_eq!(h.get(ADMIN, LCP).body["m2m:lcp"]["lou"], json!(["PT30S"]));

    // Acknowledged means on disk: after SIGKILL, the pair and its positions are there.
    server.kill9();
    let server = Server::start(dir.path());
    let h = Http { base: server.url() };
    assert_eq!(h.get(ADMIN, LCP).body["m2m:lcp"]["loi"], lcp["loi"]);
    let la = h.get(&device, &format!("{CNT}/la"));
    assert_eq!(la.body["m2m:cin"]["con"], second);
    let a = h.update(ADMIN, LCP, r#"{"m2m:lcp": {"lou": ["PT10S", "PT1M"]}}"#);
    assert_eq!(a.rsc, 2004, "{}", a.body);
    assert_eq!(a.body["m2m:lcp"]["lou"], json!(["PT10S", "PT1M"]));

    // DELETE of the policy takes its container and positions with it.
    assert_eq!(h.send("DELETE", ADMIN, LCP, None).rsc, 2002);
    assert_eq!(h.get(ADMIN, LCP).rsc, 4004);
    assert_eq!(h.get(ADMIN, CNT).rsc, 4004);
    assert_eq!(h.get(ADMIN, &format!("{CNT}/la")).rsc, 4004);
}

/// The positioning methods this CSE cannot carry out, with the codes of TS-0004 clause
/// 7.4.10.2.1 (BAD_REQUEST when no target or Location Server) or 5001; `ty` 10 is in `srt`.
#[test]
fn unsupported_methods_are_refused_over_http() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let h = Http { base: server.url() };
    for (lcp, rsc) in [
        (json!({"los": 1, "lot": "tel:+33123"}), 4000),
        (
            json!({"los": 1, "lot": "tel:+33123", "lor": "http://ls.example"}),
            5001,
        ),
        (json!({"los": 3}), 4000),
        (json!({"los": 2, "lit": 2}), 5001),
        (json!({"los": 2, "gta": [[0, 0]]}), 5001),
        (json!({"los": 2, "lost": "x"}), 4000),
        (json!({"los": 4}), 4000),
        (json!({"lou": ["PT5S"]}), 4000),
    ] {
        let mut body = json!({"m2m:lcp": lcp});
        body["m2m:lcp"]["rn"] = json!("nope");
        let a = h.send("POST", ADMIN, "cse-in", Some((10, &body.to_string())));
        assert_eq!(a.rsc, rsc, "{body}: {}", a.body);
        assert_eq!(h.get(ADMIN, "cse-in/nope").rsc, 4004);
    }
    let cb = h.get(ADMIN, "cse-in");
    assert!(cb.body["m2m:cb"]["srt"]
        .as_array()
        .is_some_and(|s| s.contains(&json!(10))));
}
