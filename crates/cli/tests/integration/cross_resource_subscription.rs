//! `<crossResourceSubscription>` (ty 48) over HTTP against the real binary with curl: the
//! per-target subscriptions, the cross-resource notification to a real HTTP target, and
//! the deletion notice, and refused input answered with its status code.
use crate::common;
use crate::notifications::Target;

use common::*;
use serde_json::{json, Value};

fn sgn(a: &crate::notifications::Arrived) -> Value {
    a.json()["m2m:sgn"].clone()
}

#[test]
fn cross_resource_notification_over_http() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let http = Http { base: server.url() };
    let me = http.register("me");
    for rn in ["c1", "c2"] {
        http.create(
            &me,
            "cse-in/me",
            3,
            &format!(r#"{{"m2m:cnt": {{"rn": "{rn}"}}}}"#),
        );
    }
    let target = Target::start();
    let su = Target::start();
    // Refused input: no target at all (4000), a target that does not exist (5221).
    let bad = json!({"m2m:crs": {"rn": "x", "twt": 2, "tws": "PT60S", "nu": [target.url]}});
    let a = http.send("POST", &me, "cse-in/me", Some((48, &bad.to_string())));
    assert_eq!(a.rsc, 4000, "{}", a.body);
    let missing = json!({"m2m:crs": {"rn": "x", "rrat": ["cse-in/me/none"],
        "encs": {"encn": [{"net": [3]}]}, "twt": 2, "tws": "PT60S", "nu": [target.url]}});
    let a = http.send("POST", &me, "cse-in/me", Some((48, &missing.to_string())));
    assert_eq!(a.rsc, 5221, "{}", a.body);
    assert!(a.head.starts_with("HTTP/1.1 500"), "{}", a.head);
    assert_eq!(http.get(&me, "cse-in/me/x").rsc, 4004);
    // A sliding window of a minute: the two events below fall in it.
    let body = json!({"m2m:crs": {"rn": "x", "rrat": ["cse-in/me/c1", "cse-in/me/c2"],
        "encs": {"encn": [{"net": [3]}]}, "twt": 2, "tws": "PT60S",
        "nu": [target.url], "su": su.url}});
    let a = http.create(&me, "cse-in/me", 48, &body.to_string());
    let rrats = a.body["m2m:crs"]["rrats"].clone();
    assert_eq!(rrats.as_array().map(Vec::len), Some(2), "{}", a.body);
    let vrq = target
        .wait_until(|a| sgn(a)["vrq"] == json!(true))
        .expect("verification request");
    assert_eq!(sgn(&vrq)["sur"], json!("cse-in/me/x"));
    http.create(&me, "cse-in/me/c1", 4, r#"{"m2m:cin": {"con": "1"}}"#);
    http.create(&me, "cse-in/me/c2", 4, r#"{"m2m:cin": {"con": "2"}}"#);
    let crossed = target
        .wait_until(|a| sgn(a)["sur"] == json!("cse-in/me/x") && sgn(a).get("vrq").is_none())
        .expect("cross-resource notification");
    assert_eq!(crossed.header("x-m2m-origin").as_deref(), Some("/id-in"));
    assert_eq!(sgn(&crossed)["cr"], json!(me));
    // DELETE: the subscriptions on the targets go, the subscriber is told.
    assert_eq!(http.send("DELETE", &me, "cse-in/me/x", None).rsc, 2002);
    for sub in rrats.as_array().into_iter().flatten() {
        assert_eq!(http.get(&me, sub.as_str().expect("ri")).rsc, 4004);
    }
    let gone = su
        .wait_until(|a| sgn(a)["sud"] == json!(true))
        .expect("deletion notification");
    assert_eq!(sgn(&gone)["sur"], json!("cse-in/me/x"));
}

/// Where a time window stands survives a restart (TS-0004 clause 7.4.58: the notification
/// goes out when every target has notified within one window, and a restart of the CSE is
/// no exception): one target's event before a `kill -9`, the other's after the restart,
/// both within the window, give the cross-resource notification.
#[test]
fn a_time_window_survives_a_restart() {
    if skip_unless(have_curl(), "curl").is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let http = Http { base: server.url() };
    let me = http.register("me");
    for rn in ["c1", "c2"] {
        http.create(
            &me,
            "cse-in/me",
            3,
            &format!(r#"{{"m2m:cnt": {{"rn": "{rn}"}}}}"#),
        );
    }
    let target = Target::start();
    // A sliding window of an hour: both events fall in it, whatever the machine's load.
    let body = json!({"m2m:crs": {"rn": "x", "rrat": ["cse-in/me/c1", "cse-in/me/c2"],
        "encs": {"encn": [{"net": [3]}]}, "twt": 2, "tws": "PT3600S", "nu": [target.url]}});
    http.create(&me, "cse-in/me", 48, &body.to_string());
    target
        .wait_until(|a| sgn(a)["vrq"] == json!(true))
        .expect("verification request");
    // The first target's event is acknowledged, then the CSE dies.
    http.create(&me, "cse-in/me/c1", 4, r#"{"m2m:cin": {"con": "1"}}"#);
    server.kill9();
    let server = Server::start(&data);
    let http = Http { base: server.url() };
    http.create(&me, "cse-in/me/c2", 4, r#"{"m2m:cin": {"con": "2"}}"#);
    let crossed = target
        .wait_until(|a| sgn(a)["sur"] == json!("cse-in/me/x") && sgn(a).get("vrq").is_none())
        .expect("cross-resource notification after the restart");
    assert_eq!(sgn(&crossed)["cr"], json!(me));
}
