//! Polling channels end to end, with the real binary and curl: a request-unreachable AE
//! long-polls its `<pollingChannelURI>` and is answered when a notification is produced; a
//! queued notification survives SIGKILL; nobody else may poll; bad input gets its code; a
//! waiting poll gives its request place back.
use crate::common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// `curl -s -i` against the server, with the oneM2M headers every request needs.
fn call(server: &Server, method: &str, path: &str, from: &str, extra: &[&str]) -> (u16, Value) {
    let url = format!("{}/{path}", server.url());
    let mut args = vec![
        "-X",
        method,
        &url,
        "-H",
        "X-M2M-RI: r",
        "-H",
        "X-M2M-RVI: 3",
        "--max-time",
        "30",
    ];
    let origin = format!("X-M2M-Origin: {from}");
    if !from.is_empty() {
        args.extend(["-H", &origin]);
    }
    args.extend(extra);
    let out = curl(&args);
    let rsc = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-M2M-RSC: ")
                .or_else(|| l.strip_prefix("x-m2m-rsc: "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
    (rsc, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn create(server: &Server, path: &str, from: &str, ty: u16, body: &Value) -> (u16, Value) {
    let ct = format!("Content-Type: application/json;ty={ty}");
    let body = body.to_string();
    call(server, "POST", path, from, &["-H", &ct, "-d", &body])
}

fn notify(server: &Server, path: &str, from: &str, body: &str) -> (u16, Value) {
    call(
        server,
        "POST",
        path,
        from,
        &["-H", "Content-Type: application/json", "-d", body],
    )
}

/// A long poll on the channel of `dev`, waiting at most `ret_ms`.
fn poll(server: &Server, from: &str, ret_ms: u64) -> (u16, Value) {
    let ret = format!("X-M2M-RET: {ret_ms}");
    call(server, "GET", "cse-in/dev/pch/pcu", from, &["-H", &ret])
}

/// Registers `dev` (`rr` false) with its polling channel, a container it subscribed to
/// (child created, notifications to itself); returns its AE-ID.
fn setup(server: &Server) -> String {
    let ae = json!({"m2m:ae": {"rn": "dev", "api": "Ndev", "rr": false, "srv": ["3"]}});
    let (rsc, r) = create(server, "cse-in", "C", 2, &ae);
    assert_eq!(rsc, 2001, "{r}");
    let dev = r["m2m:ae"]["aei"].as_str().expect("aei").to_owned();
    let (rsc, r) = create(
        server,
        "cse-in/dev",
        &dev,
        15,
        &json!({"m2m:pch": {"rn": "pch"}}),
    );
    assert_eq!(rsc, 2001, "{r}");
    assert_eq!(r["m2m:pch"]["ty"], json!(15));
    let (rsc, _) = create(
        server,
        "cse-in/dev",
        &dev,
        3,
        &json!({"m2m:cnt": {"rn": "c"}}),
    );
    assert_eq!(rsc, 2001);
    let sub = json!({"m2m:sub": {"rn": "s", "nu": [dev], "enc": {"net": [3]}}});
    let (rsc, r) = create(server, "cse-in/dev/c", &dev, 23, &sub);
    assert_eq!(rsc, 2001, "{r}");
    dev
}

fn add_instance(server: &Server, dev: &str, con: &str) {
    let (rsc, r) = create(
        server,
        "cse-in/dev/c",
        dev,
        4,
        &json!({"m2m:cin": {"con": con}}),
    );
    assert_eq!(rsc, 2001, "{r}");
}

fn con_of(rqp: &Value) -> Value {
    rqp["pc"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone()
}

#[test]
fn a_long_poll_is_answered_when_a_notification_is_produced() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let dev = setup(&server);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| poll(&server, &dev, 20_000));
        add_instance(&server, &dev, "21.5");
        let (rsc, body) = waiting.join().expect("poll thread");
        assert_eq!(rsc, 2000, "{body}");
        let rqp = &body["m2m:rqp"];
        assert_eq!(
            (rqp["op"].clone(), rqp["to"].clone()),
            (json!(5), json!(dev))
        );
        assert_eq!(con_of(rqp), json!("21.5"));
        // The AE's answer, correlated by the request's rqi.
        let answer = json!({"m2m:rsp": {"rsc": 2000, "rqi": rqp["rqi"]}}).to_string();
        assert_eq!(notify(&server, "cse-in/dev/pch/pcu", &dev, &answer).0, 2000);
        assert_eq!(notify(&server, "cse-in/dev/pch/pcu", &dev, &answer).0, 4000);
    });
    // Nothing left: the next poll ends with REQUEST_TIMEOUT.
    assert_eq!(poll(&server, &dev, 200).0, 4008);
}

#[test]
fn only_the_owner_polls_and_bad_input_gets_its_code() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let dev = setup(&server);
    let other = json!({"m2m:ae": {"rn": "other", "api": "Nother", "rr": true, "srv": ["3"]}});
    let (rsc, r) = create(&server, "cse-in", "C", 2, &other);
    assert_eq!(rsc, 2001);
    let other = r["m2m:ae"]["aei"].as_str().expect("aei").to_owned();
    add_instance(&server, &dev, "secret");
    for fr in [other.as_str(), "CAdmin"] {
        assert_eq!(poll(&server, fr, 200).0, 4103, "{fr}");
        assert_eq!(
            call(&server, "GET", "cse-in/dev/pch", fr, &[]).0,
            4103,
            "{fr}"
        );
    }
    // The refused pollers took nothing: the owner gets the notification.
    let (rsc, body) = poll(&server, &dev, 10_000);
    assert_eq!((rsc, con_of(&body["m2m:rqp"])), (2000, json!("secret")));
    let upd = [
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"m2m:pch": {"lbl": ["x"]}}"#,
    ];
    assert_eq!(
        call(&server, "PUT", "cse-in/dev/pch/pcu", &dev, &upd).0,
        4005
    );
    assert_eq!(
        call(&server, "DELETE", "cse-in/dev/pch/pcu", &dev, &[]).0,
        4005
    );
    let (rsc, _) = create(&server, "cse-in/dev", &dev, 15, &json!({"m2m:pch": {}}));
    assert_eq!(rsc, 4105, "one channel per AE");
    let (rsc, _) = create(
        &server,
        "cse-in/dev",
        &dev,
        15,
        &json!({"m2m:pch": {"acpi": []}}),
    );
    assert_eq!(rsc, 4000);
    for bad in [
        r#"{"m2m:rsp": {"rsc": 2000}}"#,
        r#"{"m2m:rsp": {"rsc": 1, "rqi": "x"}}"#,
        "[]",
    ] {
        assert_eq!(
            notify(&server, "cse-in/dev/pch/pcu", &dev, bad).0,
            4000,
            "{bad}"
        );
    }
    assert_eq!(poll_with_ret(&server, &dev, "soon").0, 4000);
}

fn poll_with_ret(server: &Server, from: &str, ret: &str) -> (u16, Value) {
    let ret = format!("X-M2M-RET: {ret}");
    call(server, "GET", "cse-in/dev/pch/pcu", from, &["-H", &ret])
}

#[test]
fn a_queued_notification_survives_kill_9() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut server = Server::start(dir.path());
    let dev = setup(&server);
    add_instance(&server, &dev, "kept");
    // Delivered (so it is on disk) but not answered.
    let (rsc, before) = poll(&server, &dev, 10_000);
    assert_eq!(rsc, 2000, "{before}");
    server.kill9();
    let server = Server::start(dir.path());
    let (rsc, after) = poll(&server, &dev, 10_000);
    assert_eq!(rsc, 2000, "{after}");
    assert_eq!(after["m2m:rqp"]["rqi"], before["m2m:rqp"]["rqi"]);
    assert_eq!(con_of(&after["m2m:rqp"]), json!("kept"));
}

fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("cse.toml");
    std::fs::write(&path, text).expect("config");
    path.to_string_lossy().into_owned()
}

#[test]
fn a_waiting_poll_gives_its_request_place_back() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    // One request place: a poll that kept it would hold every other request up.
    let config = config_file(
        dir.path(),
        "[http]\nmax_requests = 1\n[log]\nlevel = \"info,cse::polling=debug\"\n",
    );
    let server = Server::start_with(&data, &["--config", &config]);
    let dev = setup(&server);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| poll(&server, &dev, 20_000));
        let log = server.log_with("long poll waiting");
        assert!(log.contains("long poll waiting"), "{log}");
        // Answered while the poll waits: had the poll kept the one place, this retrieve
        // would wait for the poll to end, and the poll would end with 4008, not with the
        // instance created after the retrieve.
        assert_eq!(call(&server, "GET", "cse-in/dev", &dev, &[]).0, 2000);
        add_instance(&server, &dev, "go");
        let (rsc, body) = waiting.join().expect("poll thread");
        assert_eq!((rsc, con_of(&body["m2m:rqp"])), (2000, json!("go")));
    });
}

#[test]
fn a_poll_is_answered_in_cbor_with_short_names_when_asked() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(dir.path());
    let dev = setup(&server);
    add_instance(&server, &dev, "cbor");
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "30", "-D", "-", "-o"])
        .arg(dir.path().join("body.cbor"))
        .arg(format!("{}/cse-in/dev/pch/pcu", server.url()))
        .args([
            "-H",
            "X-M2M-RI: r",
            "-H",
            "X-M2M-RVI: 3",
            "-H",
            "X-M2M-RET: 10000",
        ])
        .args([
            "-H",
            &format!("X-M2M-Origin: {dev}"),
            "-H",
            "Accept: application/cbor",
        ])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.contains("x-m2m-rsc: 2000"), "{head}");
    assert!(head.contains("content-type: application/cbor"), "{head}");
    let body = std::fs::read(dir.path().join("body.cbor")).expect("body");
    let pc = model::codec::decode(&body, model::codec::Format::Cbor).expect("CBOR");
    assert_eq!(pc["m2m:rqp"]["op"], json!(5));
    assert_eq!(con_of(&pc["m2m:rqp"]), json!("cbor"));
}
