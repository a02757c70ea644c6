//! `<crossResourceSubscription>` (ty 48, TS-0004 clause 7.4.58): its subscriptions on the
//! targets, its time windows (on a manual clock: no waiting for time to pass), update,
//! deletion and what goes with it, access checks and refused input.

use super::common::{attr, clocked, merged, open_cse, Receiver, TestCse};
use model::clock::ManualClock;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const C1: &str = "cse-in/ae/c1";
const C2: &str = "cse-in/ae/c2";
const CRS: &str = "cse-in/ae/x";

/// A CSE on a manual clock with an AE `ae` owning containers `c1` and `c2`.
async fn setup() -> (TestCse, ManualClock, String) {
    let clock = ManualClock::new();
    let t = TestCse::with_config(clocked(&clock)).await;
    let id = t.register("ae").await;
    for rn in ["c1", "c2"] {
        t.created(
            &id,
            "cse-in/ae",
            T::Container,
            json!({"m2m:cnt": {"rn": rn}}),
        )
        .await;
    }
    (t, clock, id)
}

fn crs(extra: Value) -> Value {
    let body = json!({"rn": "x", "rrat": [C1, C2], "encs": {"encn": [{"net": [3]}]},
        "twt": 1, "tws": "PT10S"});
    json!({ "m2m:crs": merged(body, extra) })
}

async fn cin(t: &TestCse, id: &str, to: &str) {
    t.created(id, to, T::ContentInstance, json!({"m2m:cin": {"con": "v"}}))
        .await;
}

/// The subscriptions directly under `to` (discovery of `ty` 23, one level).
async fn subs_under(t: &TestCse, id: &str, to: &str) -> Vec<String> {
    t.discover(id, to, &[("ty", "23"), ("lvl", "1")]).await
}

const PROBE: &str = "cse-in/ae/c3/probe";

/// Adds a probe to `rx`: a plain subscription on a third container, whose notifications go
/// to the same target, on the same ordered queue, as the cross-resource notifications.
async fn probe(t: &TestCse, id: &str, rx: &Receiver) {
    t.created(
        id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c3"}}),
    )
    .await;
    let sub = json!({"m2m:sub": {"rn": "probe", "nu": [rx.url], "enc": {"net": [3]}}});
    t.created(id, "cse-in/ae/c3", T::Subscription, sub).await;
}

/// How many cross-resource notifications `rx` got before the events so far were handled:
/// a probe event is sent and awaited; what the earlier events caused arrived before it.
async fn crs_notified(t: &TestCse, id: &str, rx: &Receiver) -> usize {
    let is = |g: &Value, sur: &str| {
        g["m2m:sgn"]["sur"] == json!(sur) && g["m2m:sgn"].get("vrq").is_none()
    };
    let before = rx
        .got
        .lock()
        .expect("lock")
        .iter()
        .filter(|g| is(g, PROBE))
        .count();
    cin(t, id, "cse-in/ae/c3").await;
    for _ in 0..200 {
        let got = rx.got.lock().expect("lock").clone();
        if got.iter().filter(|g| is(g, PROBE)).count() > before {
            return got.iter().filter(|g| is(g, CRS)).count();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the probe's notification did not arrive");
}

/// Each regular target gets a subscription that notifies the new resource and names it in
/// `acrs`; `rrats` lists them in the order of `rrat`; the resource is found by discovery.
#[tokio::test]
async fn create_subscribes_to_every_regular_target() {
    let (t, _clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    let r = t
        .created(
            &id,
            "cse-in/ae",
            T::CrossResourceSubscription,
            crs(json!({"nu": [rx.url]})),
        )
        .await;
    let ri = attr(&r, "ri").as_str().expect("ri").to_owned();
    assert_eq!(attr(&r, "ty"), json!(48));
    // The notification target was asked first (verification, as for a <subscription>).
    let got = rx.wait_for(1).await;
    assert_eq!(got[0]["m2m:sgn"]["vrq"], json!(true));
    assert_eq!(got[0]["m2m:sgn"]["sur"], json!(CRS));
    let rrats = attr(&r, "rrats");
    let rrats: Vec<&str> = rrats
        .as_array()
        .expect("rrats")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(rrats.len(), 2);
    for (target, sub) in [C1, C2].iter().zip(&rrats) {
        let s = t.retrieve(&id, sub).await;
        assert_eq!(s.rsc, R::Ok);
        assert_eq!(attr(&s, "nu"), json!([ri]));
        assert_eq!(attr(&s, "acrs"), json!([ri]));
        assert_eq!(attr(&s, "enc"), json!({"net": [3]}));
        assert_eq!(subs_under(&t, &id, target).await.len(), 1);
    }
    let mut req = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
    req.fc.add("fu", "1").expect("fu");
    req.fc.add("ty", "48").expect("ty");
    let found = t.send(req).await;
    assert_eq!(found.pc, Some(json!({"m2m:uril": [CRS]})));
    // The type is claimed on the CSEBase.
    let cb = t.retrieve(&id, "cse-in").await;
    assert!(attr(&cb, "srt")
        .as_array()
        .expect("srt")
        .contains(&json!(48)));
}

/// Periodic windows: events in different windows do not combine; all targets in one
/// window give exactly one notification, and the window starts anew after it.
#[tokio::test]
async fn periodic_window_notifies_when_all_targets_change_within_it() {
    let (t, clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    t.created(
        &id,
        "cse-in/ae",
        T::CrossResourceSubscription,
        crs(json!({"nu": [rx.url]})),
    )
    .await;
    probe(&t, &id, &rx).await;
    cin(&t, &id, C1).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 0);
    clock.advance(Duration::from_secs(11));
    // c2 falls in the next window: c1's event of the first window does not count.
    cin(&t, &id, C2).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 0);
    clock.advance(Duration::from_secs(2));
    cin(&t, &id, C1).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 1);
    // After a notification the targets must all change again.
    cin(&t, &id, C1).await;
    cin(&t, &id, C1).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 1);
    cin(&t, &id, C2).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 2);
    let sgn = rx
        .got
        .lock()
        .expect("lock")
        .iter()
        .find(|g| g["m2m:sgn"]["sur"] == json!(CRS) && g["m2m:sgn"].get("vrq").is_none())
        .cloned()
        .expect("a cross-resource notification");
    assert_eq!(sgn["m2m:sgn"]["cr"], json!(id));
}

/// A sliding window starts with the first event and restarts once it is over.
#[tokio::test]
async fn sliding_window_starts_with_the_first_event() {
    let (t, clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    t.created(
        &id,
        "cse-in/ae",
        T::CrossResourceSubscription,
        crs(json!({"nu": [rx.url], "twt": 2})),
    )
    .await;
    probe(&t, &id, &rx).await;
    // Long after creation, off any periodic boundary: this window starts now.
    clock.advance(Duration::from_secs(95));
    cin(&t, &id, C1).await;
    clock.advance(Duration::from_secs(11));
    cin(&t, &id, C2).await; // too late for c1's window: starts a new one
    assert_eq!(crs_notified(&t, &id, &rx).await, 0);
    clock.advance(Duration::from_secs(9));
    cin(&t, &id, C1).await; // within c2's window
    assert_eq!(crs_notified(&t, &id, &rx).await, 1);
    clock.advance(Duration::from_secs(1));
    cin(&t, &id, C2).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 1);
    clock.advance(Duration::from_secs(1));
    cin(&t, &id, C1).await;
    assert_eq!(crs_notified(&t, &id, &rx).await, 2);
}

/// An existing subscription joins (`srat`): it notifies the new resource as well as its
/// own targets; DELETE gives it back as it was, removes the subscriptions made on the
/// regular targets and tells the subscriber (`su`).
#[tokio::test]
async fn subscription_targets_are_joined_and_released() {
    let (t, _clock, id) = setup().await;
    let own = Receiver::start(2000).await;
    let rx = Receiver::start(2000).await;
    let su = Receiver::start(2000).await;
    let s = t
        .created(
            &id,
            C1,
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [own.url], "enc": {"net": [3]}}}),
        )
        .await;
    own.wait_for(1).await;
    let body =
        crs(json!({"rrat": [C2], "srat": [format!("{C1}/s")], "nu": [rx.url], "su": su.url}));
    let r = t
        .created(&id, "cse-in/ae", T::CrossResourceSubscription, body)
        .await;
    let ri = attr(&r, "ri").as_str().expect("ri").to_owned();
    let sri = attr(&s, "ri");
    assert_eq!(attr(&r, "srat"), json!([sri]));
    let joined = t.retrieve(&id, &format!("{C1}/s")).await;
    assert_eq!(attr(&joined, "nu"), json!([own.url, ri]));
    assert_eq!(attr(&joined, "acrs"), json!([ri]));
    cin(&t, &id, C1).await;
    // The subscription still notifies its own target.
    let got = own.wait_for(2).await;
    assert_eq!(got[1]["m2m:sgn"]["nev"]["net"], json!(3));
    cin(&t, &id, C2).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1]["m2m:sgn"]["sur"], json!(CRS));
    let rrats = attr(&r, "rrats")[0].as_str().expect("rrats").to_owned();
    assert_eq!(t.delete(&id, CRS).await.rsc, R::Deleted);
    let released = t.retrieve(&id, &format!("{C1}/s")).await;
    assert_eq!(attr(&released, "nu"), json!([own.url]));
    assert_eq!(attr(&released, "acrs"), Value::Null);
    assert_eq!(t.retrieve(&id, &rrats).await.rsc, R::NotFound);
    let got = su.wait_for(1).await;
    assert_eq!(got[0]["m2m:sgn"]["sud"], json!(true));
    assert_eq!(got[0]["m2m:sgn"]["sur"], json!(CRS));
}

/// A target that goes takes the cross-resource subscription with it (it could never see
/// all its targets again), and the subscriber is told.
#[tokio::test]
async fn a_deleted_target_deletes_the_cross_resource_subscription() {
    let (t, _clock, id) = setup().await;
    let su = Receiver::start(2000).await;
    let r = t
        .created(
            &id,
            "cse-in/ae",
            T::CrossResourceSubscription,
            crs(json!({"nu": [id], "su": su.url})),
        )
        .await;
    let other = attr(&r, "rrats")[1].as_str().expect("rrats").to_owned();
    assert_eq!(t.delete(&id, C1).await.rsc, R::Deleted);
    assert_eq!(t.retrieve(&id, CRS).await.rsc, R::NotFound);
    assert_eq!(t.retrieve(&id, &other).await.rsc, R::NotFound);
    let got = su.wait_for(1).await;
    assert_eq!(got[0]["m2m:sgn"]["sud"], json!(true));
}

/// `exc`: the resource is deleted after that many notifications.
#[tokio::test]
async fn the_expiration_counter_deletes_it() {
    let (t, _clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    t.created(
        &id,
        "cse-in/ae",
        T::CrossResourceSubscription,
        crs(json!({"nu": [rx.url], "exc": 1})),
    )
    .await;
    cin(&t, &id, C1).await;
    cin(&t, &id, C2).await;
    rx.wait_for(2).await;
    let mut gone = false;
    for _ in 0..200 {
        if t.retrieve(&id, CRS).await.rsc == R::NotFound {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "still there after its last notification");
    assert!(subs_under(&t, &id, C1).await.is_empty());
}

/// Expiration (`et`) removes it with its subscriptions.
#[tokio::test]
async fn expiry_removes_it_with_its_subscriptions() {
    let (t, clock, id) = setup().await;
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    t.created(
        &id,
        "cse-in/ae",
        T::CrossResourceSubscription,
        crs(json!({"nu": [id], "et": soon})),
    )
    .await;
    clock.advance(Duration::from_secs(61));
    assert!(cse::expiry::sweep(&t.cse).await >= 1);
    assert_eq!(t.retrieve(&id, CRS).await.rsc, R::NotFound);
    assert!(subs_under(&t, &id, C1).await.is_empty());
    assert!(subs_under(&t, &id, C2).await.is_empty());
}

/// UPDATE: the window attributes restart the window; the targets cannot change (NP).
#[tokio::test]
async fn update_restarts_the_window() {
    let (t, clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    t.created(
        &id,
        "cse-in/ae",
        T::CrossResourceSubscription,
        crs(json!({"nu": [rx.url]})),
    )
    .await;
    probe(&t, &id, &rx).await;
    cin(&t, &id, C1).await;
    clock.advance(Duration::from_secs(1));
    let u = t
        .update(&id, CRS, json!({"m2m:crs": {"tws": "PT20S"}}))
        .await;
    assert_eq!(u.rsc, R::Updated, "{:?}", u.pc);
    assert_eq!(attr(&u, "tws"), json!("PT20S"));
    cin(&t, &id, C2).await; // c1's event was in the window that was dropped
    assert_eq!(crs_notified(&t, &id, &rx).await, 0);
    clock.advance(Duration::from_secs(15));
    cin(&t, &id, C1).await; // within the new 20 s window
    assert_eq!(crs_notified(&t, &id, &rx).await, 1);
    for bad in [
        json!({"m2m:crs": {"rrat": [C1]}}),
        json!({"m2m:crs": {"srat": [C1]}}),
        json!({"m2m:crs": {"encs": {"encn": [{}]}}}),
        json!({"m2m:crs": {"tws": "PT0S"}}),
        json!({"m2m:crs": {"twt": 7}}),
        json!({"m2m:crs": {"rrats": []}}),
    ] {
        assert_eq!(
            t.update(&id, CRS, bad.clone()).await.rsc,
            R::BadRequest,
            "{bad}"
        );
    }
    let refusing = Receiver::start(4103).await;
    let u = t
        .update(&id, CRS, json!({"m2m:crs": {"nu": [refusing.url]}}))
        .await;
    assert_eq!(u.rsc, R::SubscriptionVerificationInitiationFailed);
    let now = t.retrieve(&id, CRS).await;
    assert_eq!(attr(&now, "tws"), json!("PT20S"));
    assert_eq!(attr(&now, "nu"), json!([rx.url]));
}

/// Each misuse gets its precise code and leaves nothing behind.
#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_created() {
    let (t, _clock, id) = setup().await;
    cin(&t, &id, C1).await;
    let refusing = Receiver::start(4103).await;
    let cases = [
        (json!({"rrat": null, "encs": null}), R::BadRequest),
        (json!({"encs": null}), R::BadRequest),
        (
            json!({"encs": {"encn": [{"net": [3]}, {"net": [1]}, {"net": [1]}]}}),
            R::BadRequest,
        ),
        (json!({"encs": {"encn": [{"net": [9]}]}}), R::BadRequest),
        (json!({"rrat": [C1, C1]}), R::BadRequest),
        (json!({"twt": null}), R::BadRequest),
        (json!({"twt": 3}), R::BadRequest),
        (json!({"tws": null}), R::BadRequest),
        (json!({"tws": "P2D"}), R::BadRequest),
        (json!({"nu": null}), R::BadRequest),
        (json!({"rrats": ["x"]}), R::BadRequest),
        (
            json!({"rrat": [C1, "cse-in/ae/none"]}),
            R::CrossResourceOperationFailure,
        ),
        (
            json!({"rrat": [C1, "cse-in/ae/c1/la"]}),
            R::CrossResourceOperationFailure,
        ),
        (
            json!({"rrat": null, "encs": null, "srat": [C2]}),
            R::CrossResourceOperationFailure,
        ),
        (
            json!({"nu": [refusing.url]}),
            R::SubscriptionVerificationInitiationFailed,
        ),
    ];
    for (extra, code) in cases {
        let mut body = crs(json!({"nu": [id]}));
        if let (Some(b), Some(e)) = (body["m2m:crs"].as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(k);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        let r = t
            .create(&id, "cse-in/ae", T::CrossResourceSubscription, body)
            .await;
        assert_eq!(r.rsc, code, "{extra}: {:?}", r.pc);
        assert_eq!(t.retrieve(&id, CRS).await.rsc, R::NotFound, "{extra}");
        assert!(subs_under(&t, &id, C1).await.is_empty(), "{extra}");
        assert!(subs_under(&t, &id, C2).await.is_empty(), "{extra}");
    }
    // Not under a container.
    let r = t
        .create(
            &id,
            C1,
            T::CrossResourceSubscription,
            crs(json!({"nu": [id]})),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
}

/// The originator must be allowed to retrieve every target (4103); may it retrieve but not
/// subscribe, making the subscription fails (5221). Nothing is left behind.
#[tokio::test]
async fn every_target_is_access_checked() {
    let (t, _clock, owner) = setup().await;
    let other = t.register("other").await;
    let body = crs(json!({"rn": "y", "nu": [other]}));
    let r = t
        .create(&other, "cse-in/other", T::CrossResourceSubscription, body)
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{:?}", r.pc);
    // RETRIEVE only (acop 2) for the other AE on c2.
    let acp = json!({"m2m:acp": {"rn": "read", "pv": {"acr": [{"acor": [other], "acop": 2}, {"acor": [owner], "acop": 63}]},
        "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
    let a = t
        .created(&owner, "cse-in/ae", T::AccessControlPolicy, acp)
        .await;
    let acpi = attr(&a, "ri");
    let all = json!({"m2m:acp": {"rn": "all", "pv": {"acr": [{"acor": [other, owner], "acop": 63}]},
        "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}});
    let b = t
        .create(&owner, "cse-in/ae", T::AccessControlPolicy, all)
        .await;
    let all = attr(&b, "ri");
    t.update(&owner, C1, json!({"m2m:cnt": {"acpi": [all]}}))
        .await;
    t.update(&owner, C2, json!({"m2m:cnt": {"acpi": [acpi]}}))
        .await;
    let body = crs(json!({"rn": "y", "nu": [other]}));
    let r = t
        .create(&other, "cse-in/other", T::CrossResourceSubscription, body)
        .await;
    assert_eq!(r.rsc, R::CrossResourceOperationFailure, "{:?}", r.pc);
    assert!(subs_under(&t, &owner, C1).await.is_empty());
    // With the right to subscribe everywhere, it works.
    t.update(&owner, C2, json!({"m2m:cnt": {"acpi": [all]}}))
        .await;
    let body = crs(json!({"rn": "y", "nu": [other]}));
    t.created(&other, "cse-in/other", T::CrossResourceSubscription, body)
        .await;
}

/// The resource and its subscriptions survive a restart, and still work.
#[tokio::test]
async fn it_is_durable() {
    let (mut t, clock, id) = setup().await;
    let rx = Receiver::start(2000).await;
    let r = t
        .created(
            &id,
            "cse-in/ae",
            T::CrossResourceSubscription,
            crs(json!({"nu": [rx.url]})),
        )
        .await;
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    t.cse = open_cse(config, Arc::new(store)).await;
    let after = t.retrieve(&id, CRS).await;
    assert_eq!(attr(&after, "rrats"), attr(&r, "rrats"));
    cin(&t, &id, C1).await;
    cin(&t, &id, C2).await;
    let got = rx.wait_for(2).await;
    assert_eq!(got[1]["m2m:sgn"]["sur"], json!(CRS));
}
