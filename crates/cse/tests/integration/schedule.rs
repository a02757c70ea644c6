//! `<schedule>` (ty 18, TS-0004 clause 7.4.9; TS-0001 clause 9.6.9): its checks, its
//! parents, and its effects: a subscription's `notificationSchedule` gates its
//! notifications and a node's schedules are the reachability of the AEs on the node
//! (TS-0004 clause 7.5.1.2.2 steps 3.0 and 4.0). The windows themselves are the ACP's
//! schedule parser, tested in `model`; here a schedule is either one that never holds (a
//! past year) or one that always does, so nothing depends on the time of day.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};

const NEVER: &str = "* * * * * * 2001";
const ALWAYS: &str = "* * * * * * *";

fn sch(entries: &[&str]) -> Value {
    json!({"m2m:sch": {"se": {"sce": entries}}})
}

/// The `con` of the content instance a notification reports.
fn con(n: &Value) -> Value {
    n["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone()
}

async fn cin(t: &TestCse, who: &str, to: &str, con: &str) {
    let r = t
        .create(
            who,
            to,
            T::ContentInstance,
            json!({"m2m:cin": {"con": con}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

/// TS-0004 clause 7.4.9.2.1 and table 7.4.8.1-4: under a `<subscription>` the schedule is
/// the one `notificationSchedule`; malformed entries are 4000, `nco` is 4102, announcement
/// 5001, a second schedule 4105, and none of them creates anything. Clause 7.5.1.2.2 step
/// 3.0/4.0: outside the schedule a notification is discarded (no `pn`), inside it is sent.
#[tokio::test]
async fn a_notification_schedule_gates_the_notifications() {
    let t = TestCse::new().await;
    let me = t.register("me").await;
    let r = t
        .create(
            &me,
            "cse-in/me",
            T::Container,
            json!({"m2m:cnt": {"rn": "box"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let rx = Receiver::start(2000).await;
    let sub = json!({"m2m:sub": {"rn": "w", "nu": [rx.url.clone()], "enc": {"net": [3]}}});
    assert_eq!(
        t.create(&me, "cse-in/me/box", T::Subscription, sub)
            .await
            .rsc,
        R::Created
    );
    assert_eq!(rx.wait_for(1).await.len(), 1, "verification request");
    let under = "cse-in/me/box/w";
    for (body, want) in [
        (json!({"m2m:sch": {}}), R::BadRequest),
        (json!({"m2m:sch": {"se": {"sce": []}}}), R::BadRequest),
        (
            json!({"m2m:sch": {"se": {"sce": ["* * 24 * * * *"]}}}),
            R::BadRequest,
        ),
        (json!({"m2m:sch": {"se": ["* * * * * * *"]}}), R::BadRequest),
        (
            json!({"m2m:sch": {"se": {"sce": [ALWAYS]}, "rn": "other"}}),
            R::BadRequest,
        ),
        (
            json!({"m2m:sch": {"se": {"sce": [ALWAYS]}, "nco": true}}),
            R::ContentsUnacceptable,
        ),
        (
            json!({"m2m:sch": {"se": {"sce": [ALWAYS]}, "at": ["/id-mn"]}}),
            R::NotImplemented,
        ),
    ] {
        let r = t.create(&me, under, T::Schedule, body.clone()).await;
        assert_eq!(r.rsc, want, "{body}: {:?}", r.pc);
    }
    let path = "cse-in/me/box/w/notificationSchedule";
    assert_eq!(t.retrieve(&me, path).await.rsc, R::NotFound);

    let r = t.create(&me, under, T::Schedule, sch(&[NEVER])).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(attr(&r, "rn"), json!("notificationSchedule"));
    assert_eq!(attr(&r, "ty"), json!(18));
    assert_eq!(attr(&r, "se"), json!({"sce": [NEVER]}));
    let again = t.create(&me, under, T::Schedule, sch(&[ALWAYS])).await;
    assert_eq!(again.rsc, R::Conflict, "{:?}", again.pc);

    // Outside the schedule: discarded.
    cin(&t, &me, "cse-in/me/box", "1").await;
    // Bad updates change nothing.
    for (body, want) in [
        (json!({"m2m:sch": {"se": {"sce": ["x"]}}}), R::BadRequest),
        (json!({"m2m:sch": {"se": null}}), R::BadRequest),
        (json!({"m2m:sch": {"nco": false}}), R::ContentsUnacceptable),
    ] {
        let r = t.update(&me, path, body.clone()).await;
        assert_eq!(r.rsc, want, "{body}: {:?}", r.pc);
    }
    assert_eq!(
        attr(&t.retrieve(&me, path).await, "se"),
        json!({"sce": [NEVER]})
    );
    let r = t.update(&me, path, sch(&[NEVER, ALWAYS])).await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    // Inside: sent. The queue to one target keeps its order, so had "1" been sent it
    // would have come before "2".
    cin(&t, &me, "cse-in/me/box", "2").await;
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(con(&got[1]), json!("2"), "{got:?}");

    // Without a schedule there is no time constraint (clause 7.4.9.1).
    let r = t.update(&me, path, sch(&[NEVER])).await;
    assert_eq!(r.rsc, R::Updated);
    cin(&t, &me, "cse-in/me/box", "3").await;
    assert_eq!(t.delete(&me, path).await.rsc, R::Deleted);
    cin(&t, &me, "cse-in/me/box", "4").await;
    let got = rx.wait_for(3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(con(&got[2]), json!("4"), "{got:?}");
}

/// TS-0001 clause 9.6.9 and TS-0004 clause 7.5.1.2.2 step 3.0: the schedules of a
/// `<node>` say when the AEs on it (`nl`) can be reached; a notification to such an AE
/// outside all of them is discarded, and a NOTIFY forwarded to it is 5103 (clause 7.4.9.1
/// example 1). `nco` is accepted under a node, and a node may have several schedules.
#[tokio::test]
async fn a_node_schedule_is_the_reachability_of_its_aes() {
    let t = TestCse::new().await;
    let node = json!({"m2m:nod": {"rn": "n1", "ni": "urn:dev:ops:n1"}});
    let r = t.create(ADMIN, "cse-in", T::Node, node).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let node_ri = attr(&r, "ri");
    let mut body = sch(&[NEVER]);
    body["m2m:sch"]["nco"] = json!(true);
    body["m2m:sch"]["rn"] = json!("cellular");
    let r = t.create(ADMIN, "cse-in/n1", T::Schedule, body).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(attr(&r, "nco"), json!(true));
    let mut body = sch(&[NEVER]);
    body["m2m:sch"]["rn"] = json!("wifi");
    assert_eq!(
        t.create(ADMIN, "cse-in/n1", T::Schedule, body).await.rsc,
        R::Created
    );

    let rx = Receiver::start(2000).await;
    let dev = t
        .register_with("dev", json!({"nl": node_ri, "poa": [rx.url.clone()]}))
        .await;
    let r = t
        .create(
            &dev,
            "cse-in/dev",
            T::Container,
            json!({"m2m:cnt": {"rn": "box"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let sub = json!({"m2m:sub": {"rn": "w", "nu": [dev.clone()], "enc": {"net": [3]}}});
    // The AE subscribes for itself: no verification request (TS-0004 clause 7.4.8.2.1).
    let r = t.create(&dev, "cse-in/dev/box", T::Subscription, sub).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);

    // Unreachable: discarded, and a NOTIFY is not forwarded.
    cin(&t, &dev, "cse-in/dev/box", "1").await;
    let notify = |pc: Value| {
        let mut req = Request::new(Operation::Notify, "cse-in/dev", Some(ADMIN.to_owned()));
        req.pc = Some(pc);
        req
    };
    let ping = json!({"m2m:sgn": {"sur": "cse-in/x", "vrq": true}});
    let r = t.send(notify(ping.clone())).await;
    assert_eq!(r.rsc, R::TargetNotReachable, "{:?}", r.pc);

    // One of the node's schedules holds: reachable.
    let r = t.update(ADMIN, "cse-in/n1/wifi", sch(&[ALWAYS])).await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    cin(&t, &dev, "cse-in/dev/box", "2").await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(con(&got[0]), json!("2"), "{got:?}");
    let r = t.send(notify(ping.clone())).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    let got = rx.wait_for(2).await;
    assert_eq!(got.get(1), Some(&ping), "{got:?}");
}

/// TS-0004 table 7.4.3.1-4: the `<CSEBase>` has at most one schedule (4105 for another),
/// `nco` there is 4102, only who may create under the `<CSEBase>` may create it (4103),
/// and it is found by discovery on its type and read back with its short names.
#[tokio::test]
async fn the_cse_base_has_one_schedule() {
    let t = TestCse::new().await;
    let ae = t.register("ae").await;
    let r = t.create(&ae, "cse-in", T::Schedule, sch(&[ALWAYS])).await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{:?}", r.pc);
    let mut body = sch(&["* * 8-17 * * 1-5 *"]);
    body["m2m:sch"]["nco"] = json!(false);
    let r = t.create(ADMIN, "cse-in", T::Schedule, body).await;
    assert_eq!(r.rsc, R::ContentsUnacceptable, "{:?}", r.pc);
    let mut body = sch(&["* * 8-17 * * 1-5 *"]);
    body["m2m:sch"]["rn"] = json!("hours");
    body["m2m:sch"]["lbl"] = json!(["office"]);
    let r = t.create(ADMIN, "cse-in", T::Schedule, body).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let mut body = sch(&[ALWAYS]);
    body["m2m:sch"]["rn"] = json!("more");
    let r = t.create(ADMIN, "cse-in", T::Schedule, body).await;
    assert_eq!(r.rsc, R::Conflict, "{:?}", r.pc);

    let mut req = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.to_owned()));
    req.fc.add("fu", "1").expect("fu");
    req.fc.add("ty", "18").expect("ty");
    let r = t.send(req).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    assert_eq!(
        r.pc.as_ref().map(|pc| pc["m2m:uril"].clone()),
        Some(json!(["cse-in/hours"]))
    );
    let r = t.retrieve(ADMIN, "cse-in/hours").await;
    assert_eq!(r.rsc, R::Ok);
    let pc = r.pc.clone().unwrap_or_default();
    assert_eq!(pc["m2m:sch"]["se"], json!({"sce": ["* * 8-17 * * 1-5 *"]}));
    assert_eq!(pc["m2m:sch"]["lbl"], json!(["office"]));
    // Not a child of the other types.
    let r = t
        .create(&ae, "cse-in/ae", T::Schedule, sch(&[ALWAYS]))
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType, "{:?}", r.pc);
}
