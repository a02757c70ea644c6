//! Subscriptions: verification, events, notification content, counters, deletion.
use crate::common;

use common::*;
use model::{ResourceType as T, ResponseStatusCode as R};
use serde_json::json;
use std::time::Duration;

async fn setup() -> (TestCse, String) {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    t.create(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    (t, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_then_child_created_notifications() {
    let (t, id) = setup().await;
    let rx = Receiver::start(2000).await;
    let r = t
        .create(
            &id,
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [rx.url], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0]["m2m:sgn"]["vrq"], json!(true));
    assert_eq!(got[0]["m2m:sgn"]["sur"], json!("cse-in/ae/c/s"));
    t.create(
        &id,
        "cse-in/ae/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "42"}}),
    )
    .await;
    let got = rx.wait_for(2).await;
    let sgn = &got[1]["m2m:sgn"];
    assert_eq!(sgn["nev"]["net"], json!(3));
    assert_eq!(sgn["nev"]["rep"]["m2m:cin"]["con"], json!("42"));
    // An update of the container is not an event this subscription asked for: the next
    // event's notification follows the instance's on the target's ordered queue.
    t.update(&id, "cse-in/ae/c", json!({"m2m:cnt": {"lbl": ["x"]}}))
        .await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "43"}}),
    )
    .await;
    let got = rx.wait_for(3).await;
    assert_eq!(
        got[2]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("43")
    );
    assert_eq!(rx.count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verification_creates_nothing() {
    let (t, id) = setup().await;
    let refusing = Receiver::start(4103).await;
    let r = t
        .create(
            &id,
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [refusing.url]}}),
        )
        .await;
    assert_eq!(r.rsc, R::SubscriptionVerificationInitiationFailed);
    let closed = t
        .create(
            &id,
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": ["http://127.0.0.1:9/none"]}}),
        )
        .await;
    assert_eq!(closed.rsc, R::SubscriptionVerificationInitiationFailed);
    let unknown_ae = t
        .create(
            &id,
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": ["Cnobody"]}}),
        )
        .await;
    assert_eq!(unknown_ae.rsc, R::SubscriptionVerificationInitiationFailed);
    assert!(t
        .cse
        .store()
        .children(
            attr(&t.retrieve(&id, "cse-in/ae/c").await, "ri")
                .as_str()
                .unwrap_or(""),
            Some(T::Subscription)
        )
        .expect("q")
        .is_empty());
    for bad in [
        json!({"nu": []}),
        json!({"nu": ["x"], "nct": 9}),
        json!({"nu": ["x"], "enc": {"net": [7]}}),
        json!({"nu": ["x"], "enc": {"bogus": 1}}),
        json!({"nu": ["x"], "exc": 0}),
    ] {
        let r = t
            .create(
                &id,
                "cse-in/ae/c",
                T::Subscription,
                json!({ "m2m:sub": bad }),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_notifications_with_modified_attributes_and_resource_ids() {
    let (t, id) = setup().await;
    let rx = Receiver::start(2000).await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::Subscription,
        json!({"m2m:sub": {"nu": [rx.url], "nct": 2}}),
    )
    .await;
    t.update(&id, "cse-in/ae/c", json!({"m2m:cnt": {"lbl": ["a"]}}))
        .await;
    let got = rx.wait_for(2).await;
    let rep = &got[1]["m2m:sgn"]["nev"]["rep"]["m2m:cnt"];
    assert_eq!(rep["lbl"], json!(["a"]));
    assert!(rep.get("ri").is_none(), "only modified attributes: {rep}");
    let ids = Receiver::start(2000).await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::Subscription,
        json!({"m2m:sub": {"nu": [ids.url], "nct": 3, "enc": {"net": [3]}}}),
    )
    .await;
    let cin = t
        .create(
            &id,
            "cse-in/ae/c",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "1"}}),
        )
        .await;
    let got = ids.wait_for(2).await;
    // TS-0004 table 6.3.5.62-1: nct 3 carries an m2m:URI.
    assert_eq!(
        got[1]["m2m:sgn"]["nev"]["rep"],
        json!({ "m2m:uri": attr(&cin, "ri") })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiration_counter_and_deletion_notices() {
    let (t, id) = setup().await;
    let rx = Receiver::start(2000).await;
    let subscriber = Receiver::start(2000).await;
    t.create(&id, "cse-in/ae/c", T::Subscription, json!({"m2m:sub": {"rn": "twice", "nu": [rx.url], "enc": {"net": [3]}, "exc": 2, "su": subscriber.url}})).await;
    // The counter is counted down after each notification is queued; each instance waits
    // for the count of the one before.
    for (i, left) in [(0, Some(json!(1))), (1, None), (2, None)] {
        t.create(
            &id,
            "cse-in/ae/c",
            T::ContentInstance,
            json!({"m2m:cin": {"con": i.to_string()}}),
        )
        .await;
        let mut counted = false;
        for _ in 0..200 {
            let sub = t.retrieve(&id, "cse-in/ae/c/twice").await;
            counted = match &left {
                Some(exc) => attr(&sub, "exc") == *exc,
                None => sub.rsc == R::NotFound,
            };
            if counted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(counted, "exc after instance {i}");
    }
    let notice = subscriber.wait_for(1).await;
    assert_eq!(notice[0]["m2m:sgn"]["sud"], json!(true));
    // A later subscription to the same target marks the end of the queue: whatever the
    // ended one sent is ahead of the marker's notification.
    t.create(
        &id,
        "cse-in/ae/c",
        T::Subscription,
        json!({"m2m:sub": {"rn": "marker", "nu": [rx.url], "enc": {"net": [3]}}}),
    )
    .await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "marker"}}),
    )
    .await;
    let got = rx.wait_for(5).await;
    let reps: Vec<_> = got
        .iter()
        .map(|n| n["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"].clone())
        .collect();
    assert_eq!(
        reps,
        [
            json!(null),
            json!("0"),
            json!("1"),
            json!(null),
            json!("marker")
        ],
        "verification + exactly two notifications, then the marker's"
    );
    assert_eq!(rx.count(), 5);

    // Deleting a subscribed resource: net 2 to its subscribers.
    let del = Receiver::start(2000).await;
    t.create(
        &id,
        "cse-in/ae/c",
        T::Subscription,
        json!({"m2m:sub": {"nu": [del.url], "enc": {"net": [2]}}}),
    )
    .await;
    assert_eq!(t.delete(&id, "cse-in/ae/c").await.rsc, R::Deleted);
    let got = del.wait_for(2).await;
    assert_eq!(got[1]["m2m:sgn"]["nev"]["net"], json!(2));
    assert_eq!(got[1]["m2m:sgn"]["nev"]["rep"]["m2m:cnt"]["rn"], json!("c"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ae_targets_and_privileges() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let listener = t.register_with("listener", json!({"poa": [rx.url]})).await;
    let owner = t.register("owner").await;
    t.create(
        &owner,
        "cse-in/owner",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    // Without CREATE on the container the listener cannot subscribe; with CREATE but no
    // RETRIEVE it may not either (4103, TS-0004 clause 7.4.8.2.1 Recv-6.3).
    let r = t
        .create(
            &listener,
            "cse-in/owner/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [listener]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let acp = json!({"m2m:acp": {"rn": "p", "pv": {"acr": [{"acor": [listener], "acop": 1}, {"acor": [owner], "acop": 63}]}, "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
    let acp_ri = attr(
        &t.create(&owner, "cse-in/owner", T::AccessControlPolicy, acp)
            .await,
        "ri",
    );
    assert_eq!(
        t.update(
            &owner,
            "cse-in/owner/c",
            json!({"m2m:cnt": {"acpi": [acp_ri]}})
        )
        .await
        .rsc,
        R::Updated
    );
    let r = t
        .create(
            &listener,
            "cse-in/owner/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [listener]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{:?}", r.pc);
    // The owner subscribes the listener by AE-ID: verified through the listener's poa.
    let r = t
        .create(
            &owner,
            "cse-in/owner/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": [listener], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    t.create(
        &owner,
        "cse-in/owner/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "hi"}}),
    )
    .await;
    let got = rx.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("hi")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_is_relayed_to_an_ae() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let target = t.register_with("target", json!({"poa": [rx.url]})).await;
    let body = json!({"m2m:sgn": {"nev": {"rep": {"m2m:cin": {"con": "relayed"}}, "net": 3}}});
    // Only originators the AE's policy admits may notify it: the AE itself here.
    let sender = t.register("sender").await;
    let denied = t
        .op(
            model::Operation::Notify,
            &sender,
            "cse-in/target",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(denied.rsc, R::OriginatorHasNoPrivilege);
    let ok = t
        .op(
            model::Operation::Notify,
            &target,
            "cse-in/target",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(ok.rsc, R::Ok);
    assert_eq!(rx.wait_for(1).await[0], body);
    t.create(
        &target,
        "cse-in/target",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let wrong = t
        .op(
            model::Operation::Notify,
            &target,
            "cse-in/target/c",
            None,
            Some(body),
        )
        .await;
    assert_eq!(wrong.rsc, R::OperationNotAllowed);
    let no_poa = t.register("silent").await;
    let r = t
        .op(
            model::Operation::Notify,
            &no_poa,
            "cse-in/silent",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.rsc, R::TargetNotReachable);
}

// === a subscriber that loses access is not notified ===

/// How many notifications (verification requests excluded) `got` holds for subscription
/// `sur` about a content instance with content `con`.
fn about(got: &[serde_json::Value], sur: &str, con: &str) -> usize {
    got.iter()
        .filter(|n| n["m2m:sgn"]["sur"] == json!(sur))
        .filter(|n| n["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"] == json!(con))
        .count()
}

/// Creates a content instance `con` in `cse-in/owner/data` as `owner`.
async fn add(t: &TestCse, owner: &str, con: &str) {
    let r = t
        .create(
            owner,
            "cse-in/owner/data",
            T::ContentInstance,
            json!({"m2m:cin": {"con": con}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
}

/// Waits until the sentinel subscription `cse-in/owner/data/sentinel` was told about `con`.
/// Every subscription here notifies the one receiver, whose queue is delivered in order, so
/// whatever was sent before that notification has arrived by then.
async fn sentinel_saw(rx: &Receiver, con: &str) -> Vec<serde_json::Value> {
    for _ in 0..500 {
        let got = rx.got.lock().expect("lock").clone();
        if about(&got, "cse-in/owner/data/sentinel", con) == 1 {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the sentinel never got '{con}'");
}

/// The owner may do anything; the reader may RETRIEVE and create subscriptions.
fn reader_rules(owner: &str, reader: &str) -> serde_json::Value {
    json!([{"acor": [owner], "acop": 63}, {"acor": [reader], "acop": 2},
           {"acor": [reader], "acop": 1, "acod": [{"chty": [23]}]}])
}

/// An owner's container `cse-in/owner/data` readable by `reader` through the ACP `own`; a
/// sentinel subscription of the owner's and the `reader`'s subscription `watch` (created
/// over `ctx`), both notifying `rx`.
async fn watched(
    t: &TestCse,
    rx: &Receiver,
    reader_ctx: Option<&cse::SecurityContext>,
    reader: &str,
) -> String {
    let owner = t.register("owner").await;
    t.guarded_container(&owner, "cse-in/owner", "own", reader_rules(&owner, reader))
        .await;
    let sub = |rn: &str| json!({"m2m:sub": {"rn": rn, "nu": [rx.url], "enc": {"net": [3]}}});
    let r = t
        .create(
            &owner,
            "cse-in/owner/data",
            T::Subscription,
            sub("sentinel"),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    let mut req = model::Request::new(
        model::Operation::Create,
        "cse-in/owner/data",
        Some(reader.to_owned()),
    );
    req.ty = Some(T::Subscription);
    req.pc = Some(sub("watch"));
    let r = match reader_ctx {
        Some(ctx) => t.send_ctx(ctx, req).await,
        None => t.send(req).await,
    };
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    add(t, &owner, "before").await;
    for _ in 0..500 {
        if about(
            &rx.got.lock().expect("lock"),
            "cse-in/owner/data/watch",
            "before",
        ) == 1
        {
            return owner;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the reader's subscription was never notified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_removed_from_the_acp_is_not_notified() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let reader = t.register("reader").await;
    let owner = watched(&t, &rx, None, &reader).await;
    // The owner takes the reader out of the ACP.
    let r = t
        .update(
            &owner,
            "cse-in/owner/own",
            json!({"m2m:acp": {"pv": {"acr": [{"acor": [owner], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    add(&t, &owner, "after").await;
    add(&t, &owner, "later").await;
    let got = sentinel_saw(&rx, "later").await;
    assert_eq!(about(&got, "cse-in/owner/data/sentinel", "after"), 1);
    assert_eq!(about(&got, "cse-in/owner/data/watch", "after"), 0);
    assert_eq!(about(&got, "cse-in/owner/data/watch", "later"), 0);
    // The subscription stays; access given back, notifications resume.
    let r = t
        .update(
            &owner,
            "cse-in/owner/own",
            json!({"m2m:acp": {"pv": {"acr": reader_rules(&owner, &reader)}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    add(&t, &owner, "again").await;
    add(&t, &owner, "and again").await;
    let got = sentinel_saw(&rx, "and again").await;
    assert_eq!(about(&got, "cse-in/owner/data/watch", "again"), 1);
}

fn certificate_association(t: &TestCse, credential: &str, ae: &str) -> cse::SecurityContext {
    use security::association::{Framework, PeerIdentity};
    over(
        t.cse.associations(),
        cse::ListenerRole::Mca,
        established(
            Framework::Certificate,
            credential,
            PeerIdentity::Ae(format!("//secure-cse.example/id-in/{ae}")),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_whose_credential_is_withdrawn_is_not_notified() {
    for what in [
        cse::security_manager::withdrawal::Withdraw::Suspend,
        cse::security_manager::withdrawal::Withdraw::Revoke,
    ] {
        let t = TestCse::new().await;
        let rx = Receiver::start(2000).await;
        // The reader: a certificate-bound AE, registered and subscribing over its association.
        let ctx = certificate_association(&t, "33-reader-certificate", "Creader");
        let mut reg = model::Request::new(
            model::Operation::Create,
            "cse-in",
            Some("Creader".to_owned()),
        );
        reg.ty = Some(T::Ae);
        reg.pc =
            Some(json!({"m2m:ae": {"rn": "reader", "api": "Ntest", "rr": false, "srv": ["3"]}}));
        assert_eq!(t.send_ctx(&ctx, reg).await.rsc, R::Created);
        let owner = watched(&t, &rx, Some(&ctx), "Creader").await;
        // The reader keeps its RETRIEVE privilege; only its credential is withdrawn.
        let answer = t
            .cse
            .withdraw(ADMIN, what, "33-reader-certificate", "key compromise")
            .await
            .expect("withdrawn");
        assert_eq!(answer.content["associationsClosed"], json!(1));
        add(&t, &owner, "after").await;
        add(&t, &owner, "later").await;
        let got = sentinel_saw(&rx, "later").await;
        assert_eq!(
            about(&got, "cse-in/owner/data/watch", "after"),
            0,
            "{what:?}"
        );
        assert_eq!(
            about(&got, "cse-in/owner/data/watch", "later"),
            0,
            "{what:?}"
        );
        // Nothing else reached the reader's endpoint either (no deletion notice).
        assert!(
            !got.iter()
                .any(|n| n["m2m:sgn"]["sur"] == json!("cse-in/owner/data/watch")
                    && n["m2m:sgn"]["sud"] == json!(true)),
            "{what:?}"
        );
        let sub = t.retrieve(ADMIN, "cse-in/owner/data/watch").await.rsc;
        match what {
            // Revoked: the subscription is gone for good.
            cse::security_manager::withdrawal::Withdraw::Revoke => assert_eq!(sub, R::NotFound),
            // Suspended: it stays, silent, and speaks again once resumed.
            _ => {
                assert_eq!(sub, R::Ok);
                t.cse
                    .withdraw(
                        ADMIN,
                        cse::security_manager::withdrawal::Withdraw::Resume,
                        "33-reader-certificate",
                        "",
                    )
                    .await
                    .expect("resumed");
                add(&t, &owner, "resumed").await;
                add(&t, &owner, "resumed too").await;
                let got = sentinel_saw(&rx, "resumed too").await;
                assert_eq!(about(&got, "cse-in/owner/data/watch", "resumed"), 1);
            }
        }
    }
}

#[tokio::test]
async fn a_scheme_no_binding_serves_is_refused_not_sent() {
    let (t, id) = setup().await;
    // A notification URI no binding sends to: the verification request cannot leave.
    let r = t
        .create(
            &id,
            "cse-in/ae/c",
            T::Subscription,
            json!({"m2m:sub": {"nu": ["coap://127.0.0.1:5683/notify"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::SubscriptionVerificationInitiationFailed);
    let why = r.pc.as_ref().and_then(|pc| pc["m2m:dbg"].as_str());
    assert!(
        why.is_some_and(|w| w.contains("no binding sends to coap:// targets")),
        "{why:?}"
    );
    // An AE's points of access count only where a binding sends: a coap one is skipped...
    let rx = Receiver::start(2000).await;
    let both = t
        .register_with("both", json!({"poa": ["coap://127.0.0.1:5683/n", rx.url]}))
        .await;
    let mut notify =
        model::Request::new(model::Operation::Notify, "cse-in/both", Some(ADMIN.into()));
    notify.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
    let r = t.send(notify.clone()).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    assert_eq!(rx.wait_for(1).await.len(), 1);
    // ... and an AE reachable over coap only is not reachable.
    t.register_with("coaponly", json!({"poa": ["coap://127.0.0.1:5683/n"]}))
        .await;
    notify.to = "cse-in/coaponly".into();
    let r = t.send(notify).await;
    assert_eq!(r.rsc, R::TargetNotReachable, "{:?}", r.pc);
    drop(both);
}
