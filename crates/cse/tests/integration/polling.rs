//! Polling channels (TS-0004 clauses 7.4.21, 7.4.22; TS-0001 clauses 10.2.5.13-10.2.5.19):
//! the channel's life and owner rule, notifications for a request-unreachable AE queued on
//! it, long polls, answers correlated by `rqi`, redelivery, the queue bound, restarts.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A CSE with an AE `dev` (`rr` false) that owns the channel `cse-in/dev/pch`, and a
/// container `cse-in/dev/c` that `dev` subscribed to itself (child created).
async fn setup_with(config: cse::CseConfig) -> (TestCse, String) {
    let t = TestCse::with_config(config).await;
    let dev = t.register_with("dev", json!({"rr": false})).await;
    let r = t
        .create(
            &dev,
            "cse-in/dev",
            T::PollingChannel,
            json!({"m2m:pch": {"rn": "pch"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let r = t
        .create(
            &dev,
            "cse-in/dev",
            T::Container,
            json!({"m2m:cnt": {"rn": "c"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let r = t
        .create(
            &dev,
            "cse-in/dev/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [dev], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (t, dev)
}

async fn setup() -> (TestCse, String) {
    setup_with(cse::CseConfig::default()).await
}

/// A long poll by `fr` on `to`, waiting at most `rqet` (relative, in milliseconds).
async fn poll(t: &TestCse, fr: &str, to: &str, rqet_ms: u64) -> Response {
    let mut req = Request::new(Operation::Retrieve, to, Some(fr.to_owned()));
    req.rqet = Some(rqet_ms.to_string());
    t.send(req).await
}

/// The request primitive a poll delivered.
fn rqp(r: &Response) -> Value {
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    r.pc.as_ref().expect("pc")["m2m:rqp"].clone()
}

/// The owner's answer to a delivered request.
async fn answer(t: &TestCse, fr: &str, rqi: &Value, rsc: u16) -> Response {
    let mut req = Request::new(Operation::Notify, "cse-in/dev/pch/pcu", Some(fr.to_owned()));
    req.pc = Some(json!({"m2m:rsp": {"rsc": rsc, "rqi": rqi}}));
    t.send(req).await
}

async fn add_instance(t: &TestCse, dev: &str, con: &str) {
    let r = t
        .create(
            dev,
            "cse-in/dev/c",
            T::ContentInstance,
            json!({"m2m:cin": {"con": con}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
}

#[tokio::test]
async fn only_its_ae_creates_retrieves_updates_and_deletes_a_channel() {
    let t = TestCse::new().await;
    let dev = t.register_with("dev", json!({"rr": false})).await;
    let other = t.register("other").await;
    let pch = json!({"m2m:pch": {"rn": "pch", "lbl": ["a"]}});
    // TS-0004 7.4.21.2.1: the originator must be the parent AE.
    for fr in [ADMIN, other.as_str()] {
        let r = t
            .create(fr, "cse-in/dev", T::PollingChannel, pch.clone())
            .await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{fr}: {:?}", r.pc);
    }
    let r = t
        .create(&dev, "cse-in/dev", T::PollingChannel, pch.clone())
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(attr(&r, "ty"), json!(15));
    assert_eq!(attr(&r, "pi"), json!(dev));
    assert!(attr(&r, "acpi").is_null() && attr(&r, "cr").is_null());
    // At most one per AE (TS-0004 table 7.4.5.1-4).
    let again = json!({"m2m:pch": {"rn": "second"}});
    let r = t.create(&dev, "cse-in/dev", T::PollingChannel, again).await;
    assert_eq!(r.rsc, R::Conflict, "{:?}", r.pc);
    // Not under the CSEBase or a container; only universal attributes.
    let r = t
        .create(ADMIN, "cse-in", T::PollingChannel, json!({"m2m:pch": {}}))
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    t.create(
        &dev,
        "cse-in/dev",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let r = t
        .create(
            &dev,
            "cse-in/dev/c",
            T::PollingChannel,
            json!({"m2m:pch": {}}),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    for bad in [
        json!({"acpi": ["x"]}),
        json!({"ri": "x"}),
        json!({"lbl": "x"}),
    ] {
        let mut body = bad.clone();
        body["rn"] = json!("bad");
        let r = t
            .create(
                &dev,
                "cse-in/dev",
                T::PollingChannel,
                json!({"m2m:pch": body}),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
    }
    // Retrieve, update, delete: the AE alone (TS-0004 7.4.21.2.2-7.4.21.2.4).
    for fr in [ADMIN, other.as_str()] {
        assert_eq!(
            t.retrieve(fr, "cse-in/dev/pch").await.rsc,
            R::OriginatorHasNoPrivilege
        );
        let r = t
            .update(fr, "cse-in/dev/pch", json!({"m2m:pch": {"lbl": ["b"]}}))
            .await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
        assert_eq!(
            t.delete(fr, "cse-in/dev/pch").await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }
    let r = t.retrieve(&dev, "cse-in/dev/pch").await;
    assert_eq!((r.rsc, attr(&r, "lbl")), (R::Ok, json!(["a"])));
    let r = t
        .update(&dev, "cse-in/dev/pch", json!({"m2m:pch": {"lbl": ["b"]}}))
        .await;
    assert_eq!((r.rsc, attr(&r, "lbl")), (R::Updated, json!(["b"])));
    let r = t
        .update(&dev, "cse-in/dev/pch", json!({"m2m:pch": {"rn": "x"}}))
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    // Short names in discovery by the AE.
    let mut req = Request::new(Operation::Retrieve, "cse-in/dev", Some(dev.clone()));
    req.fc.fu = Some(1);
    req.fc.ty = vec![T::PollingChannel];
    let r = t.send(req).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    assert_eq!(
        r.pc.as_ref().expect("pc")["m2m:uril"],
        json!(["cse-in/dev/pch"])
    );
    assert_eq!(t.delete(&dev, "cse-in/dev/pch").await.rsc, R::Deleted);
    assert_eq!(t.retrieve(&dev, "cse-in/dev/pch").await.rsc, R::NotFound);
}

#[tokio::test]
async fn pcu_is_only_polled_and_answered_and_by_its_owner_only() {
    let (t, dev) = setup().await;
    let other = t.register("other").await;
    let pcu = "cse-in/dev/pch/pcu";
    // TS-0004 7.4.22.2.1, 7.4.22.2.3, 7.4.22.2.4: 4005, whoever asks.
    for fr in [dev.as_str(), other.as_str()] {
        let r = t.update(fr, pcu, json!({"m2m:pch": {"lbl": ["b"]}})).await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{fr}");
        assert_eq!(t.delete(fr, pcu).await.rsc, R::OperationNotAllowed, "{fr}");
        let r = t
            .create(fr, pcu, T::Container, json!({"m2m:cnt": {}}))
            .await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{fr}");
    }
    // TS-0004 7.4.22.2.2 and 7.4.22.2.5, Recv-6.3: only the channel's AE.
    for fr in [ADMIN, other.as_str()] {
        assert_eq!(
            poll(&t, fr, pcu, 100).await.rsc,
            R::OriginatorHasNoPrivilege
        );
        let mut req = Request::new(Operation::Notify, pcu, Some(fr.to_owned()));
        req.pc = Some(json!({"m2m:rsp": {"rsc": 2000, "rqi": "x"}}));
        assert_eq!(t.send(req).await.rsc, R::OriginatorHasNoPrivilege);
    }
    // By its unstructured address too.
    let pch_ri = attr(&t.retrieve(&dev, "cse-in/dev/pch").await, "ri");
    let by_ri = format!("{}/pcu", pch_ri.as_str().expect("ri"));
    assert_eq!(
        poll(&t, &other, &by_ri, 100).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(poll(&t, &dev, &by_ri, 100).await.rsc, R::RequestTimeout);
    // Nothing queued: the poll ends with 4008 (TS-0004 7.4.22.2.2 Recv-6.5).
    assert_eq!(poll(&t, &dev, pcu, 100).await.rsc, R::RequestTimeout);
    // A poll already expired is refused as any request would be.
    let mut req = Request::new(Operation::Retrieve, pcu, Some(dev.clone()));
    req.rqet = Some("-1000".into());
    assert_eq!(t.send(req).await.rsc, R::RequestTimeout);
    // Discovery below pcu is not a long poll.
    let mut req = Request::new(Operation::Retrieve, pcu, Some(dev.clone()));
    req.fc.fu = Some(1);
    assert_eq!(t.send(req).await.rsc, R::OperationNotAllowed);
    // `pcu` is only the channel's child.
    assert_eq!(t.retrieve(&dev, "cse-in/dev/c/pcu").await.rsc, R::NotFound);
}

#[tokio::test]
async fn a_notification_for_an_unreachable_ae_is_polled_and_answered() {
    let (t, dev) = setup().await;
    add_instance(&t, &dev, "21.5").await;
    let got = rqp(&poll(&t, &dev, "cse-in/dev/pch/pcu", 5000).await);
    assert_eq!(got["op"], json!(5));
    assert_eq!(got["to"], json!(dev));
    assert_eq!(got["fr"], json!("/id-in"));
    assert!(got["rqet"].is_string());
    let sgn = &got["pc"]["m2m:sgn"];
    assert_eq!(sgn["nev"]["net"], json!(3));
    assert_eq!(sgn["nev"]["rep"]["m2m:cin"]["con"], json!("21.5"));
    assert_eq!(sgn["sur"], json!("cse-in/dev/c/s"));
    // The answer names the request by its rqi (TS-0001 10.2.5.19); it is then gone.
    assert_eq!(answer(&t, &dev, &got["rqi"], 2000).await.rsc, R::Ok);
    assert_eq!(answer(&t, &dev, &got["rqi"], 2000).await.rsc, R::BadRequest);
    assert_eq!(
        poll(&t, &dev, "cse-in/dev/pch/pcu", 100).await.rsc,
        R::RequestTimeout
    );
    // Bad answers change nothing.
    add_instance(&t, &dev, "22").await;
    for bad in [
        json!({"m2m:rsp": {"rqi": "x"}}),
        json!({"m2m:rsp": {"rsc": 2000}}),
        json!({"m2m:rsp": {"rsc": 9999, "rqi": "x"}}),
        json!({"m2m:sgn": {}}),
        json!("x"),
    ] {
        let mut req = Request::new(Operation::Notify, "cse-in/dev/pch/pcu", Some(dev.clone()));
        req.pc = Some(bad.clone());
        assert_eq!(t.send(req).await.rsc, R::BadRequest, "{bad}");
    }
    let got = rqp(&poll(&t, &dev, "cse-in/dev/pch/pcu", 5000).await);
    assert_eq!(
        got["pc"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("22")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_poll_is_answered_when_a_notification_arrives() {
    let (t, dev) = setup().await;
    let t = Arc::new(t);
    let waiting = {
        let (t, dev) = (t.clone(), dev.clone());
        tokio::spawn(async move { poll(&t, &dev, "cse-in/dev/pch/pcu", 20_000).await })
    };
    add_instance(&t, &dev, "woke").await;
    let r = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("answered before its expiry")
        .expect("poll task");
    assert_eq!(
        rqp(&r)["pc"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("woke")
    );
}

#[tokio::test]
async fn notifications_keep_their_order_and_an_unanswered_one_comes_again() {
    let config = cse::CseConfig {
        polling: cse::config::Polling {
            redelivery: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, dev) = setup_with(config).await;
    for con in ["1", "2"] {
        add_instance(&t, &dev, con).await;
    }
    let pcu = "cse-in/dev/pch/pcu";
    // Wait for both to be queued (notifications leave asynchronously).
    let first = rqp(&poll(&t, &dev, pcu, 5000).await);
    let second = rqp(&poll(&t, &dev, pcu, 5000).await);
    let con = |v: &Value| v["pc"]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone();
    assert_eq!((con(&first), con(&second)), (json!("1"), json!("2")));
    assert_ne!(first["rqi"], second["rqi"]);
    assert_eq!(answer(&t, &dev, &second["rqi"], 2000).await.rsc, R::Ok);
    // The first was not answered: after the redelivery time it is delivered again.
    let again = rqp(&poll(&t, &dev, pcu, 5000).await);
    assert_eq!(again["rqi"], first["rqi"]);
    assert_eq!(answer(&t, &dev, &first["rqi"], 2000).await.rsc, R::Ok);
    assert_eq!(poll(&t, &dev, pcu, 300).await.rsc, R::RequestTimeout);
}

#[tokio::test]
async fn a_full_channel_refuses_new_requests() {
    let config = cse::CseConfig {
        polling: cse::config::Polling {
            queue_limit: 2,
            ..Default::default()
        },
        notification_attempts: 1,
        ..Default::default()
    };
    let (t, dev) = setup_with(config).await;
    let pcu = "cse-in/dev/pch/pcu";
    add_instance(&t, &dev, "1").await;
    add_instance(&t, &dev, "2").await;
    // Both queued (the notifier delivers in order); a third request finds the channel full.
    let first = rqp(&poll(&t, &dev, pcu, 5000).await);
    let second = rqp(&poll(&t, &dev, pcu, 5000).await);
    // NOTIFY to the AE waits for the channel's verdict: full, so not reachable.
    let mut req = Request::new(Operation::Notify, "cse-in/dev", Some(dev.clone()));
    req.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
    assert_eq!(t.send(req).await.rsc, R::TargetNotReachable);
    for got in [&first, &second] {
        assert_eq!(answer(&t, &dev, &got["rqi"], 2000).await.rsc, R::Ok);
    }
    // The third was refused, not kept: nothing is left.
    assert_eq!(poll(&t, &dev, pcu, 300).await.rsc, R::RequestTimeout);
}

#[tokio::test]
async fn queued_requests_survive_a_restart_and_go_with_the_channel() {
    let (mut t, dev) = setup().await;
    add_instance(&t, &dev, "kept").await;
    let pcu = "cse-in/dev/pch/pcu";
    // Delivered once, not answered: after a restart it comes again (at least once).
    let before = rqp(&poll(&t, &dev, pcu, 5000).await);
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(cse::CseConfig::default(), Arc::new(store)).await;
    let after = rqp(&poll(&t, &dev, pcu, 5000).await);
    assert_eq!(after, before);
    // Deleting the channel deletes its queue; a new channel starts empty.
    assert_eq!(t.delete(&dev, "cse-in/dev/pch").await.rsc, R::Deleted);
    let r = t
        .create(
            &dev,
            "cse-in/dev",
            T::PollingChannel,
            json!({"m2m:pch": {"rn": "pch"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(poll(&t, &dev, pcu, 200).await.rsc, R::RequestTimeout);
}

#[tokio::test]
async fn an_unreachable_ae_without_a_channel_is_not_sent_anything() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    // Points of access, but `rr` false: not used (TS-0001 9.6.5, issue 12 group 5).
    let dev = t
        .register_with("dev", json!({"rr": false, "poa": [rx.url]}))
        .await;
    let mut req = Request::new(Operation::Notify, "cse-in/dev", Some(ADMIN.to_owned()));
    req.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
    assert_eq!(t.send(req.clone()).await.rsc, R::TargetNotReachable);
    // With a channel, the NOTIFY is queued on it (answered once on disk).
    let r = t
        .create(
            &dev,
            "cse-in/dev",
            T::PollingChannel,
            json!({"m2m:pch": {"rn": "pch"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    req.rqi = "n2".into();
    assert_eq!(t.send(req).await.rsc, R::Ok);
    let got = rqp(&poll(&t, &dev, "cse-in/dev/pch/pcu", 5000).await);
    assert_eq!(got["pc"], json!({"m2m:sgn": {"sur": "x"}}));
    assert_eq!(rx.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_for_an_unreachable_ae_is_verified_through_its_channel() {
    let (t, dev) = setup().await;
    let t = Arc::new(t);
    let other = t.register("other").await;
    t.create(
        &other,
        "cse-in/other",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let subscribe = |rn: &'static str| {
        let (t, other, dev) = (t.clone(), other.clone(), dev.clone());
        tokio::spawn(async move {
            t.create(
                &other,
                "cse-in/other/c",
                T::Subscription,
                json!({"m2m:sub": {"rn": rn, "nu": [dev], "enc": {"net": [3]}}}),
            )
            .await
        })
    };
    // The AE consents: the subscription is created.
    let creating = subscribe("yes");
    let vrq = rqp(&poll(&t, &dev, "cse-in/dev/pch/pcu", 5000).await);
    assert_eq!(vrq["pc"]["m2m:sgn"]["vrq"], json!(true));
    assert_eq!(vrq["pc"]["m2m:sgn"]["cr"], json!(other));
    assert_eq!(answer(&t, &dev, &vrq["rqi"], 2000).await.rsc, R::Ok);
    let r = creating.await.expect("task");
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    // The AE refuses: it is not.
    let creating = subscribe("no");
    let vrq = rqp(&poll(&t, &dev, "cse-in/dev/pch/pcu", 5000).await);
    assert_eq!(answer(&t, &dev, &vrq["rqi"], 4103).await.rsc, R::Ok);
    let r = creating.await.expect("task");
    assert_eq!(
        r.rsc,
        R::SubscriptionVerificationInitiationFailed,
        "{:?}",
        r.pc
    );
}

#[tokio::test]
async fn a_channel_address_cannot_be_named_from_outside() {
    let (t, dev) = setup().await;
    let other = t.register("other").await;
    t.create(
        &other,
        "cse-in/other",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let pch_ri = attr(&t.retrieve(&dev, "cse-in/dev/pch").await, "ri");
    let forged = format!("x-polling-channel://{}", pch_ri.as_str().expect("ri"));
    let r = t
        .create(
            &other,
            "cse-in/other/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [forged], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(
        r.rsc,
        R::SubscriptionVerificationInitiationFailed,
        "{:?}",
        r.pc
    );
    // Nor as a point of access.
    let sneaky = t.register_with("sneaky", json!({"poa": [forged]})).await;
    let mut req = Request::new(Operation::Notify, "cse-in/sneaky", Some(ADMIN.to_owned()));
    req.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
    assert_eq!(t.send(req).await.rsc, R::TargetNotReachable, "{sneaky}");
    assert_eq!(
        poll(&t, &dev, "cse-in/dev/pch/pcu", 200).await.rsc,
        R::RequestTimeout
    );
}

#[tokio::test]
async fn channels_and_queued_requests_expire() {
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        polling: cse::config::Polling {
            lifetime: Duration::from_secs(60),
            ..Default::default()
        },
        ..Default::default()
    };
    let (t, dev) = setup_with(config).await;
    let pcu = "cse-in/dev/pch/pcu";
    add_instance(&t, &dev, "old").await;
    // Queued (seen by a poll, left unanswered), then its lifetime passes: dropped.
    rqp(&poll(&t, &dev, pcu, 5000).await);
    clock.advance(Duration::from_secs(61));
    assert_eq!(poll(&t, &dev, pcu, 200).await.rsc, R::RequestTimeout);
    // The channel's own `et`.
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    let r = t
        .update(&dev, "cse-in/dev/pch", json!({"m2m:pch": {"et": soon}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    clock.advance(Duration::from_secs(61));
    assert_eq!(t.retrieve(&dev, "cse-in/dev/pch").await.rsc, R::NotFound);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(poll(&t, &dev, pcu, 200).await.rsc, R::NotFound);
}
