//! `<schedule>` (ty 18, TS-0004 clause 7.4.9) over HTTP against the real binary with curl: a
//! subscription's `notificationSchedule` holds back its notifications outside its windows
//! and lets them through inside (TS-0004 clause 7.5.1.2.2 steps 3.0 and 4.0), malformed
//! input is answered with its code, and the schedule is durable and discoverable.
use crate::common;
use crate::notifications::Target;

use common::*;
use serde_json::{json, Value};

/// A window that never holds (a past year) and one that always does.
const NEVER: &str = "* * * * * * 2001";
const ALWAYS: &str = "* * * * * * *";

fn sch(entries: &[&str]) -> String {
    json!({"m2m:sch": {"se": {"sce": entries}}}).to_string()
}

fn con(a: &crate::notifications::Arrived) -> Value {
    a.json()["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone()
}

#[test]
fn notification_schedule_over_http() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let http = Http { base: server.url() };
    let me = http.register("me");
    http.create(&me, "cse-in/me", 3, r#"{"m2m:cnt": {"rn": "box"}}"#);
    let target = Target::start();
    let sub = json!({"m2m:sub": {"rn": "w", "nu": [target.url], "enc": {"net": [3]}}});
    http.create(&me, "cse-in/me/box", 23, &sub.to_string());
    assert_eq!(target.wait_for(1).len(), 1, "verification request");

    // Refused: a malformed entry (4000), nco outside a node (4102); nothing is created.
    let a = http.send(
        "POST",
        &me,
        "cse-in/me/box/w",
        Some((18, &sch(&["* * 25 * * * *"]))),
    );
    assert_eq!(a.rsc, 4000, "{}", a.body);
    let nco = json!({"m2m:sch": {"se": {"sce": [ALWAYS]}, "nco": true}}).to_string();
    let a = http.send("POST", &me, "cse-in/me/box/w", Some((18, &nco)));
    assert_eq!(a.rsc, 4102, "{}", a.body);
    assert!(a.head.starts_with("HTTP/1.1 400"), "{}", a.head);
    let path = "cse-in/me/box/w/notificationSchedule";
    assert_eq!(http.get(&me, path).rsc, 4004);

    let a = http.create(&me, "cse-in/me/box/w", 18, &sch(&[NEVER]));
    assert_eq!(
        a.body["m2m:sch"]["rn"],
        json!("notificationSchedule"),
        "{}",
        a.body
    );
    // Outside the schedule: discarded.
    http.create(&me, "cse-in/me/box", 4, r#"{"m2m:cin": {"con": "1"}}"#);
    // Durable: the schedule outlives a SIGKILL.
    server.kill9();
    let server = Server::start(&data);
    let http = Http { base: server.url() };
    assert_eq!(
        http.get(&me, path).body["m2m:sch"]["se"],
        json!({"sce": [NEVER]})
    );
    http.create(&me, "cse-in/me/box", 4, r#"{"m2m:cin": {"con": "2"}}"#);
    let a = http.update(&me, path, &sch(&[ALWAYS]));
    assert_eq!(
        a.body["m2m:sch"]["se"],
        json!({"sce": [ALWAYS]}),
        "{}",
        a.body
    );
    // Inside: sent. One target's queue keeps its order, so "1" or "2" would have come first.
    http.create(&me, "cse-in/me/box", 4, r#"{"m2m:cin": {"con": "3"}}"#);
    let got = target.wait_for(2);
    assert_eq!(got.len(), 2);
    assert_eq!(con(&got[1]), json!("3"));

    // Discovery by type finds it.
    let a = http.get(&me, "cse-in/me?fu=1&ty=18");
    assert_eq!(a.body["m2m:uril"], json!([path]), "{}", a.body);
}
