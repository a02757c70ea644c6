//! `<timeSeries>` and `<timeSeriesInstance>` end to end, with the real binary and curl:
//! create, retrieve, `la`/`ol`, a taken data generation time (4105), an instance that
//! cannot be updated (4005), CBOR with short names, and acknowledged instances surviving
//! SIGKILL.
use crate::common;

use common::*;
use serde_json::{json, Value};

fn http(server: &Server) -> Http {
    Http { base: server.url() }
}

/// Registers `ae` and creates its series `ts` (`mni` 10, one data point a minute).
fn setup(h: &Http) -> String {
    let ae = h.register("ae");
    let ts = json!({"m2m:ts": {"rn": "ts", "mni": 10, "pei": 60000, "cnf": "text/plain:0"}});
    let a = h.create(&ae, "cse-in/ae", 29, &ts.to_string());
    assert_eq!(a.body["m2m:ts"]["peid"], json!(6000), "{}", a.body);
    ae
}

fn tsi(dgt: &str, con: &str) -> String {
    json!({"m2m:tsi": {"dgt": dgt, "con": con, "snr": 1}}).to_string()
}

#[test]
fn instances_are_created_and_read_through_la_and_ol() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let h = http(&server);
    let ae = setup(&h);
    let a = h.get(&ae, "cse-in/ae/ts/la");
    assert_eq!(a.rsc, 4004, "no instance yet");
    let first = h.create(&ae, "cse-in/ae/ts", 30, &tsi("20260101T000000", "21.5"));
    assert_eq!(
        first.body["m2m:tsi"]["dgt"],
        json!("20260101T000000,000000")
    );
    assert_eq!(first.body["m2m:tsi"]["cs"], json!(4));
    h.create(&ae, "cse-in/ae/ts", 30, &tsi("20260101T000100", "22.0"));
    let ts = h.get(&ae, "cse-in/ae/ts");
    assert_eq!(ts.rsc, 2000);
    assert_eq!(
        (
            ts.body["m2m:ts"]["ty"].clone(),
            ts.body["m2m:ts"]["cni"].clone(),
            ts.body["m2m:ts"]["cbs"].clone()
        ),
        (json!(29), json!(2), json!(8))
    );
    assert_eq!(
        h.get(&ae, "cse-in/ae/ts/la").body["m2m:tsi"]["con"],
        json!("22.0")
    );
    assert_eq!(
        h.get(&ae, "cse-in/ae/ts/ol").body["m2m:tsi"]["con"],
        json!("21.5")
    );
    // The same generation time again: 4105, nothing added.
    let dup = h.send(
        "POST",
        &ae,
        "cse-in/ae/ts",
        Some((30, &tsi("20260101T000000", "x"))),
    );
    assert_eq!(dup.rsc, 4105, "{}", dup.body);
    // Never updated.
    let up = h.update(&ae, "cse-in/ae/ts/la", r#"{"m2m:tsi": {"lbl": ["x"]}}"#);
    assert_eq!(up.rsc, 4005);
    // Missing dgt: 4000.
    let bad = h.send(
        "POST",
        &ae,
        "cse-in/ae/ts",
        Some((30, r#"{"m2m:tsi": {"con": "x"}}"#)),
    );
    assert_eq!(bad.rsc, 4000);
    assert_eq!(h.get(&ae, "cse-in/ae/ts").body["m2m:ts"]["cni"], json!(2));
}

/// CBOR in and out, with the same short names as JSON.
#[test]
fn cbor_carries_the_short_names() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let h = http(&server);
    let ae = setup(&h);
    let body = json!({"m2m:tsi": {"dgt": "20260101T000000", "con": "7"}});
    let file = dir.path().join("tsi.cbor");
    std::fs::write(
        &file,
        model::codec::encode(&body, model::codec::Format::Cbor),
    )
    .expect("write");
    let out = dir.path().join("answer.cbor");
    let url = format!("{}/cse-in/ae/ts", server.url());
    let from = format!("X-M2M-Origin: {ae}");
    let data = format!("@{}", file.display());
    let out_arg = out.display().to_string();
    let head = curl(&[
        "-X",
        "POST",
        &url,
        "-H",
        &from,
        "-H",
        "X-M2M-RI: r",
        "-H",
        "X-M2M-RVI: 3",
        "-H",
        "Content-Type: application/cbor;ty=30",
        "-H",
        "Accept: application/cbor",
        "--data-binary",
        &data,
        "-o",
        &out_arg,
        "-D",
        "-",
    ]);
    assert!(head.contains("X-M2M-RSC: 2001"), "{head}");
    // `curl` (the common helper) writes the head with the body (`-i`).
    let written = std::fs::read(&out).expect("answer");
    let body_at = written
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    let bytes = &written[body_at..];
    let answer: Value =
        model::codec::decode(bytes, model::codec::Format::Cbor).expect("a CBOR answer");
    assert_eq!(
        answer["m2m:tsi"]["dgt"],
        json!("20260101T000000,000000"),
        "{answer}"
    );
    assert_eq!(answer["m2m:tsi"]["ty"], json!(30));
}

/// An acknowledged data point is durable: after SIGKILL it is still the latest, and its
/// generation time still taken.
#[test]
fn acknowledged_instances_survive_sigkill() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let ae = setup(&http(&server));
    http(&server).create(&ae, "cse-in/ae/ts", 30, &tsi("20260101T000000", "kept"));
    server.kill9();
    let server = Server::start(dir.path());
    let h = http(&server);
    assert_eq!(
        h.get(&ae, "cse-in/ae/ts/la").body["m2m:tsi"]["con"],
        json!("kept")
    );
    let dup = h.send(
        "POST",
        &ae,
        "cse-in/ae/ts",
        Some((30, &tsi("20260101T000000", "x"))),
    );
    assert_eq!(dup.rsc, 4105);
}
