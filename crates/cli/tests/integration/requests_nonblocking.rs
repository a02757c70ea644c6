//! Non-blocking requests against the real binary, with curl (issue 13 item 2; TS-0004
//! clauses 7.3.2.2 to 7.3.2.5, 7.4.12, 7.5.1.2.5; TS-0009 clause 6.4.11): the
//! acknowledgement (1001/1002, HTTP 202) with the `<request>` reference, the result fetched
//! by polling the `<request>` (rt=1) or notified (rt=2, to the originator's point of access,
//! to `X-M2M-RTU`, or to nobody), the `<request>` closed to other originators, and a
//! `kill -9` after the acknowledgement.
use crate::common;
use crate::notifications::Arrived;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The answer to one curl request: status line, `X-M2M-RSC` and the body as JSON.
struct Reply {
    http: u16,
    rsc: String,
    body: Value,
}

fn send(
    base: &str,
    method: &str,
    from: &str,
    path: &str,
    headers: &[&str],
    content: Option<(u8, &str)>,
) -> Reply {
    let ct = content.map(|(ty, b)| (format!("application/json;ty={ty}"), b));
    let out = m2m_curl(
        &format!("{base}/{path}"),
        method,
        from,
        headers,
        ct.as_ref().map(|(c, b)| (c.as_str(), *b)),
    )
    .replace("\r\n", "\n");
    let (head, body) = out.split_once("\n\n").unwrap_or((out.as_str(), ""));
    let http = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let rsc = head
        .lines()
        .find_map(|l| l.strip_prefix("X-M2M-RSC: "))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    Reply {
        http,
        rsc,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

/// Registers an AE (`extra`: more attributes as JSON members) and returns its AE-ID.
fn register(base: &str, rn: &str, extra: &str) -> String {
    let body = format!(
        r#"{{"m2m:ae": {{"rn": "{rn}", "api": "Nnonblocking", "rr": true, "srv": ["3"]{extra}}}}}"#
    );
    let r = send(base, "POST", "C", "cse-in", &[], Some((2, &body)));
    assert_eq!(r.rsc, "2001", "{}", r.body);
    r.body["m2m:ae"]["aei"].as_str().expect("aei").to_owned()
}

/// The `<request>` reference of an acknowledgement.
fn reference(r: &Reply) -> String {
    r.body["m2m:uri"].as_str().expect("m2m:uri").to_owned()
}

/// Polls the `<request>` as `from` until it is no longer PENDING (bounded).
fn poll_until_done(base: &str, from: &str, ri: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = send(base, "GET", from, ri, &[], None);
        assert_eq!(r.rsc, "2000", "{}", r.body);
        if r.body["m2m:req"]["rs"] != json!(3) {
            return r.body["m2m:req"].clone();
        }
        assert!(Instant::now() < deadline, "still pending: {}", r.body);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn started() -> Option<(tempfile::TempDir, Server, String)> {
    skip_unless(have_curl(), "curl")?;
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let base = server.url();
    Some((dir, server, base))
}

#[test]
fn a_synchronous_request_is_fetched_by_polling_its_request_and_closed_to_others() {
    let Some((_dir, _server, base)) = started() else {
        return;
    };
    let me = register(&base, "me", "");
    let other = register(&base, "other", "");
    let ack = send(
        &base,
        "POST",
        &me,
        "cse-in/me?rt=1&rp=PT5M",
        &[],
        Some((3, r#"{"m2m:cnt": {"rn": "nb"}}"#)),
    );
    // TS-0009 table 6.3.2-1: 1001 travels as HTTP 202.
    assert_eq!((ack.http, ack.rsc.as_str()), (202, "1001"), "{}", ack.body);
    let ri = reference(&ack);
    let done = poll_until_done(&base, &me, &ri);
    assert_eq!(done["rs"], json!(1), "{done}");
    assert_eq!(done["ors"]["rsc"], json!(2001));
    assert_eq!(done["ors"]["rqi"], json!("r"));
    assert_eq!(done["ors"]["pc"]["m2m:cnt"]["rn"], json!("nb"));
    assert_eq!(done["mi"]["rp"], json!("PT5M"));
    assert_eq!(
        send(&base, "GET", &me, "cse-in/me/nb", &[], None).rsc,
        "2000"
    );
    // Another originator: 4103, whatever it tries.
    for method in ["GET", "DELETE"] {
        let r = send(&base, method, &other, &ri, &[], None);
        assert_eq!(r.rsc, "4103", "{method}: {}", r.body);
    }
    // Nobody creates one (4005); the originator deletes its own.
    let r = send(
        &base,
        "POST",
        &me,
        "cse-in",
        &[],
        Some((17, r#"{"m2m:req": {}}"#)),
    );
    assert_eq!(r.rsc, "4005", "{}", r.body);
    assert_eq!(send(&base, "DELETE", &me, &ri, &[], None).rsc, "2002");
    assert_eq!(send(&base, "GET", &me, &ri, &[], None).rsc, "4004");
}

#[test]
fn an_asynchronous_result_is_notified_to_the_originator_or_to_x_m2m_rtu() {
    let Some((_dir, _server, base)) = started() else {
        return;
    };
    let at_poa = crate::notifications::Target::start();
    let named = crate::notifications::Target::start();
    let me = register(&base, "me", &format!(r#", "poa": ["{}"]"#, at_poa.url));
    // An empty X-M2M-RTU: no notification at all (TS-0004 clause 7.5.1.2.5).
    let quiet = send(&base, "GET", &me, "cse-in/me?rt=2", &["X-M2M-RTU;"], None);
    assert_eq!(
        (quiet.http, quiet.rsc.as_str()),
        (202, "1002"),
        "{}",
        quiet.body
    );
    let done = poll_until_done(&base, &me, &reference(&quiet));
    assert_eq!(done["mi"]["rt"], json!({"rtv": 2, "nu": []}));
    // Named targets (TS-0009 clause 6.4.11).
    let rtu = format!("X-M2M-RTU: {}", named.url);
    let ack = send(&base, "GET", &me, "cse-in/me?rt=2", &[rtu.as_str()], None);
    assert_eq!(ack.rsc, "1002", "{}", ack.body);
    // Verified first, as a subscription's target is, then notified.
    let got = Arrived::bodies(&named.wait_for(2));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["m2m:sgn"]["vrq"], json!(true), "{got:?}");
    assert_eq!(got[1]["m2m:rsp"]["rsc"], json!(2000));
    assert_eq!(got[1]["m2m:rsp"]["pc"]["m2m:ae"]["aei"], json!(me));
    // A target that cannot agree (nothing listens there): 5204, nothing accepted.
    let forged = send(
        &base,
        "GET",
        &me,
        "cse-in/me?rt=2",
        &["X-M2M-RTU: http://127.0.0.1:9/n"],
        None,
    );
    assert_eq!(forged.rsc, "5204", "{}", forged.body);
    // No target named: the originator, at its point of access.
    let ack = send(
        &base,
        "POST",
        &me,
        "cse-in/me?rt=2",
        &[],
        Some((3, r#"{"m2m:cnt": {"rn": "c"}}"#)),
    );
    assert_eq!(ack.rsc, "1002", "{}", ack.body);
    let got = Arrived::bodies(&at_poa.wait_for(1));
    assert_eq!(got.len(), 1, "only this result reached the AE: {got:?}");
    assert_eq!(got[0]["m2m:rsp"]["rsc"], json!(2001));
    assert_eq!(got[0]["m2m:rsp"]["pc"]["m2m:cnt"]["rn"], json!("c"));
}

#[test]
fn an_acknowledged_request_survives_kill_9_as_a_failed_one() {
    let Some((dir, mut server, base)) = started() else {
        return;
    };
    let me = register(&base, "me", "");
    let ack = send(
        &base,
        "POST",
        &me,
        "cse-in/me?rt=1",
        &["X-M2M-OET: 3600000"],
        Some((3, r#"{"m2m:cnt": {"rn": "later"}}"#)),
    );
    assert_eq!(ack.rsc, "1001", "{}", ack.body);
    let ri = reference(&ack);
    server.kill9();
    let server = Server::start(&dir.path().join("data"));
    let base = server.url();
    // The <request> was on disk; its task was not: FAILED, with the reason, not re-run.
    let r = send(&base, "GET", &me, &ri, &[], None);
    assert_eq!(r.rsc, "2000", "{}", r.body);
    assert_eq!(r.body["m2m:req"]["rs"], json!(2), "{}", r.body);
    assert_eq!(r.body["m2m:req"]["ors"]["rsc"], json!(5000));
    assert_eq!(
        send(&base, "GET", &me, "cse-in/me/later", &[], None).rsc,
        "4004"
    );
}
