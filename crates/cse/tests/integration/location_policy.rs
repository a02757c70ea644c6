//! `<locationPolicy>` (ty 10, TS-0004 clause 7.4.10; TS-0001 clauses 9.6.10, 10.2.9): the
//! location container made with it, device-based positions written into that container,
//! the positioning methods and attributes refused with their codes, UPDATE rules, the pair
//! deleted together (DELETE of either, expiry), discovery, subscriptions and durability.

use super::common::{attr, open_cse, Receiver, TestCse, ADMIN};
use model::clock::ManualClock;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const LCP: &str = "cse-in/devloc";
const CNT: &str = "cse-in/devpos";

/// A CSE on a manual clock, a registered device AE and another AE, and the admin's policy
/// `cse-in/lcpAcp` letting the device create (its positions) and read.
async fn setup() -> (TestCse, ManualClock, String, String, String) {
    let clock = ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let t = TestCse::with_config(config).await;
    let device = t.register("device").await;
    let other = t.register("other").await;
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "lcpAcp",
                "pv": {"acr": [{"acor": [device], "acop": 3}]},
                "pvs": {"acr": [{"acor": [ADMIN], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp = attr(&r, "ri").as_str().expect("ri").to_owned();
    (t, clock, device, other, acp)
}

fn lcp(acp: &str, extra: Value) -> Value {
    let mut body = json!({"rn": "devloc", "los": 2, "lou": ["PT30S", "PT5M"],
        "lon": "devpos", "acpi": [acp]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    json!({ "m2m:lcp": body })
}

async fn position(t: &TestCse, from: &str, con: Value) -> R {
    t.create(
        from,
        CNT,
        T::ContentInstance,
        json!({"m2m:cin": {"con": con}}),
    )
    .await
    .rsc
}

/// TS-0004 clause 7.4.10.2.1 and TS-0001 clause 10.2.9.6: the container is created with
/// the policy, named by `lon`, linked both ways; the device writes position fixes into it
/// (TS-0001 clause 10.2.9.7), which must be `m2m:geoCoordinates` Points.
#[tokio::test]
async fn create_makes_the_location_container() {
    let (t, _clock, device, other, acp) = setup().await;
    let r = t
        .create(ADMIN, "cse-in", T::LocationPolicy, lcp(&acp, json!({})))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let ri = attr(&r, "ri");
    assert_eq!(attr(&r, "ty"), json!(10));
    assert_eq!(attr(&r, "lit"), json!(1));
    assert_eq!(attr(&r, "lost"), json!(""));
    assert_eq!(attr(&r, "lou"), json!(["PT30S", "PT5M"]));
    let c = t.retrieve(ADMIN, CNT).await;
    assert_eq!(c.rsc, R::Ok);
    assert_eq!(attr(&r, "loi"), attr(&c, "ri"));
    assert_eq!(attr(&c, "li"), ri);
    assert_eq!(attr(&c, "acpi"), json!([acp]));
    assert_eq!(attr(&c, "et"), attr(&r, "et"));
    assert_eq!(attr(&c, "cni"), json!(0));

    // The device reads its policy (the period in force first) and reports positions.
    let p = t.retrieve(&device, LCP).await;
    assert_eq!(attr(&p, "lou")[0], json!("PT30S"));
    let fix = json!({"typ": 1, "crd": [2.35, 48.85]});
    assert_eq!(position(&t, &device, fix.clone()).await, R::Created);
    let text = json!("{\"typ\": 1, \"crd\": \"[2.36, 48.86]\"}");
    assert_eq!(position(&t, &device, text.clone()).await, R::Created);
    let la = t.retrieve(&device, &format!("{CNT}/la")).await;
    assert_eq!(attr(&la, "con"), text);
    // Not a position fix: 4000, nothing written.
    for bad in [
        json!("somewhere"),
        json!({"typ": 1, "crd": [2.35, 95]}),
        json!({"typ": 3, "crd": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}),
    ] {
        assert_eq!(
            position(&t, &device, bad.clone()).await,
            R::BadRequest,
            "{bad}"
        );
    }
    // An originator the policy does not name writes nothing.
    assert_eq!(position(&t, &other, fix).await, R::OriginatorHasNoPrivilege);
    assert_eq!(
        t.retrieve(&other, LCP).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(attr(&t.retrieve(ADMIN, CNT).await, "cni"), json!(2));
    // Without `lon`, the CSE names the container; the policy holds its resource ID.
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::LocationPolicy,
            json!({"m2m:lcp": {"los": 2}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let loi = attr(&r, "loi");
    let c = t.retrieve(ADMIN, loi.as_str().expect("loi")).await;
    assert_eq!(c.rsc, R::Ok);
    assert_eq!(attr(&c, "li"), attr(&r, "ri"));
    assert!(attr(&r, "lou").is_null());
}

/// What this CSE cannot do is refused with the code the clauses give (TS-0004 clause
/// 7.4.10.2.1: BAD_REQUEST when no target or Location Server can be obtained), 5001 for
/// what it does not implement, 4000 for malformed input; nothing is created.
#[tokio::test]
async fn refused_creates_leave_nothing() {
    let (t, _clock, device, _other, acp) = setup().await;
    let cases = [
        (json!({"los": 1}), R::BadRequest),
        (json!({"los": 1, "lot": "tel:+33123"}), R::BadRequest),
        (
            json!({"los": 1, "lot": "tel:+33123", "lor": "http://ls.example/loc"}),
            R::NotImplemented,
        ),
        (json!({"los": 3}), R::BadRequest),
        (json!({"los": 9}), R::BadRequest),
        (json!({"los": "2"}), R::BadRequest),
        (json!({"los": null}), R::BadRequest),
        (json!({"lit": 2}), R::NotImplemented),
        (json!({"lit": 3}), R::BadRequest),
        (json!({"gta": [[0, 0], [1, 1]]}), R::NotImplemented),
        (json!({"gec": 1}), R::NotImplemented),
        (json!({"at": ["/x"]}), R::NotImplemented),
        (json!({"lot": "tel:+33123"}), R::BadRequest),
        (json!({"lor": "http://ls"}), R::BadRequest),
        (json!({"aid": "app"}), R::BadRequest),
        (json!({"rlkl": true}), R::BadRequest),
        (json!({"luec": 0}), R::BadRequest),
        (json!({"luec": 1}), R::BadRequest),
        (json!({"lou": []}), R::BadRequest),
        (json!({"lou": ["soon"]}), R::BadRequest),
        (json!({"lou": "PT5S"}), R::BadRequest),
        (json!({"lou": ["PT0S", "PT5S"]}), R::BadRequest),
        (json!({"loi": "cnt1"}), R::BadRequest),
        (json!({"lost": "ok"}), R::BadRequest),
        (json!({"lon": "a/b"}), R::BadRequest),
        (json!({"lon": "devloc"}), R::Conflict),
        (json!({"lon": "device"}), R::Conflict),
        (json!({"li": "x"}), R::BadRequest),
        (json!({"acpi": ["cse-in/nothing"]}), R::BadRequest),
    ];
    for (extra, code) in cases {
        let r = t
            .create(ADMIN, "cse-in", T::LocationPolicy, lcp(&acp, extra.clone()))
            .await;
        assert_eq!(r.rsc, code, "{extra}: {:?}", r.pc);
        assert_eq!(t.retrieve(ADMIN, LCP).await.rsc, R::NotFound, "{extra}");
        assert_eq!(t.retrieve(ADMIN, CNT).await.rsc, R::NotFound, "{extra}");
    }
    // Only under the <CSEBase> (TS-0001 table 9.6.1.1-1), and only with CREATE there.
    let r = t
        .create(
            &device,
            "cse-in/device",
            T::LocationPolicy,
            lcp(&acp, json!({})),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let r = t
        .create(&device, "cse-in", T::LocationPolicy, lcp(&acp, json!({})))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(t.retrieve(ADMIN, CNT).await.rsc, R::NotFound);
}

/// TS-0004 table 7.4.10.1-3: the NP attributes are 4000 on UPDATE, `lit` cannot be removed;
/// `lou` changes; a new `et` is the container's too (TS-0001 clause 10.2.9.4).
#[tokio::test]
async fn update_rules() {
    let (t, clock, device, _other, acp) = setup().await;
    let r = t
        .create(ADMIN, "cse-in", T::LocationPolicy, lcp(&acp, json!({})))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let before = t.retrieve(ADMIN, LCP).await;
    for (change, code) in [
        (json!({"los": 2}), R::BadRequest),
        (json!({"lot": "tel:+1"}), R::BadRequest),
        (json!({"lor": "http://ls"}), R::BadRequest),
        (json!({"lon": "x"}), R::BadRequest),
        (json!({"aid": "x"}), R::BadRequest),
        (json!({"loi": "x"}), R::BadRequest),
        (json!({"lost": "x"}), R::BadRequest),
        (json!({"lit": null}), R::BadRequest),
        (json!({"lit": 2}), R::NotImplemented),
        (json!({"rlkl": false}), R::BadRequest),
        (json!({"luec": 0}), R::BadRequest),
        (json!({"lou": ["PT1S", "PT0S"]}), R::BadRequest),
        (json!({"gta": "x"}), R::NotImplemented),
        (json!({"nope": 1}), R::BadRequest),
    ] {
        let r = t.update(ADMIN, LCP, json!({ "m2m:lcp": change })).await;
        assert_eq!(r.rsc, code, "{change}: {:?}", r.pc);
    }
    assert_eq!(t.retrieve(ADMIN, LCP).await.pc, before.pc);
    // The device may read but not change its policy.
    let r = t
        .update(&device, LCP, json!({"m2m:lcp": {"lou": ["PT1S"]}}))
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .update(ADMIN, LCP, json!({"m2m:lcp": {"lou": ["PT10S"], "lit": 1}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&r, "lou"), json!(["PT10S"]));
    let r = t
        .update(ADMIN, LCP, json!({"m2m:lcp": {"lou": null}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert!(attr(&r, "lou").is_null());
    let later = model::time::format(clock.clock().now() + chrono::Duration::days(30));
    let r = t
        .update(ADMIN, LCP, json!({"m2m:lcp": {"et": later}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(attr(&t.retrieve(ADMIN, CNT).await, "et"), json!(later));
    // The container's link is the CSE's (NP on the container too).
    let r = t.update(ADMIN, CNT, json!({"m2m:cnt": {"li": "x"}})).await;
    assert_eq!(r.rsc, R::BadRequest);
}

/// TS-0004 clause 7.4.10.2.4: deleting the policy deletes its container and the positions
/// in it; deleting the container deletes its policy (no dangling link); the subscribers of
/// the <CSEBase> hear of both, those of the policy of its deletion.
#[tokio::test]
async fn the_pair_is_deleted_together() {
    let (t, _clock, device, _other, acp) = setup().await;
    let rx = Receiver::start(2000).await;
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::Subscription,
            json!({"m2m:sub": {"rn": "children", "nu": [rx.url], "enc": {"net": [3, 4]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    for first in [LCP, CNT] {
        let base = rx.count();
        let r = t
            .create(ADMIN, "cse-in", T::LocationPolicy, lcp(&acp, json!({})))
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        let r = t
            .create(
                ADMIN,
                LCP,
                T::Subscription,
                json!({"m2m:sub": {"rn": "s", "nu": [rx.url], "enc": {"net": [1, 2]}}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        let fix = json!({"typ": 1, "crd": [2.35, 48.85]});
        assert_eq!(position(&t, &device, fix).await, R::Created);
        let created = [(json!(3), json!("m2m:lcp")), (json!(3), json!("m2m:cnt"))];
        assert!(events_arrive(&rx, base, &created).await, "{first}");
        let start = rx.count();
        assert_eq!(t.delete(ADMIN, first).await.rsc, R::Deleted);
        assert_eq!(t.retrieve(ADMIN, LCP).await.rsc, R::NotFound);
        assert_eq!(t.retrieve(ADMIN, CNT).await.rsc, R::NotFound);
        let deleted = [
            (json!(4), json!("m2m:lcp")),
            (json!(4), json!("m2m:cnt")),
            (json!(2), json!("m2m:lcp")),
        ];
        assert!(events_arrive(&rx, start, &deleted).await, "{first}");
    }
}

/// Waits (bounded) until the notifications from the `from`-th on hold each `(net, key of
/// the representation)` wanted.
async fn events_arrive(rx: &Receiver, from: usize, wanted: &[(Value, Value)]) -> bool {
    for _ in 0..300 {
        let got = rx.got.lock().expect("lock").clone();
        let events: Vec<(Value, Value)> = got
            .iter()
            .skip(from)
            .map(|n| {
                let nev = &n["m2m:sgn"]["nev"];
                let key = nev["rep"]
                    .as_object()
                    .and_then(|m| m.keys().next().cloned());
                (nev["net"].clone(), json!(key))
            })
            .collect();
        if wanted.iter().all(|w| events.contains(w)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Expiration (TS-0001 clause 9.6.1.3.2) of the policy takes the container with it.
#[tokio::test]
async fn expiry_removes_the_pair() {
    let (t, clock, _device, _other, acp) = setup().await;
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    let r = t
        .create(
            ADMIN,
            "cse-in",
            T::LocationPolicy,
            lcp(&acp, json!({"et": soon})),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert_eq!(attr(&t.retrieve(ADMIN, CNT).await, "et"), json!(soon));
    clock.advance(Duration::from_secs(61));
    assert_eq!(cse::expiry::sweep(&t.cse).await, 2);
    assert_eq!(t.retrieve(ADMIN, LCP).await.rsc, R::NotFound);
    assert_eq!(t.retrieve(ADMIN, CNT).await.rsc, R::NotFound);
}

/// Discovery by type and by the policy's attributes; the pair survives a restart.
#[tokio::test]
async fn discovery_and_durability() {
    let (mut t, clock, device, _other, acp) = setup().await;
    let r = t
        .create(ADMIN, "cse-in", T::LocationPolicy, lcp(&acp, json!({})))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let fix = json!({"typ": 1, "crd": [2.35, 48.85]});
    assert_eq!(position(&t, &device, fix.clone()).await, R::Created);
    let discover = |q: &[(&str, &str)]| {
        let mut req = Request::new(Operation::Retrieve, "cse-in", Some(ADMIN.to_owned()));
        for (k, v) in [("fu", "1")].iter().chain(q) {
            req.fc.add(k, v).expect("criterion");
        }
        req
    };
    for (q, want) in [
        (vec![("ty", "10")], vec![LCP]),
        (vec![("los", "2")], vec![LCP]),
        (vec![("lon", "devpos")], vec![LCP]),
        (
            vec![("ty", "3"), ("li", attr(&r, "ri").as_str().unwrap_or(""))],
            vec![CNT],
        ),
    ] {
        let a = t.send(discover(&q)).await;
        assert_eq!(a.rsc, R::Ok, "{q:?}");
        let got = a.pc.as_ref().map(|pc| pc["m2m:uril"].clone());
        assert_eq!(got, Some(json!(want)), "{q:?}");
    }
    // The device's discovery without DISCOVERY privilege finds nothing of it.
    let mut req = discover(&[("ty", "10")]);
    req.fr = Some(device.clone());
    let a = t.send(req).await;
    let found = a.pc.as_ref().map(|pc| pc["m2m:uril"].clone());
    assert!(
        found
            .as_ref()
            .is_none_or(|f| *f == json!([]) || f.is_null()),
        "{found:?}"
    );

    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    t.cse = open_cse(config, Arc::new(store)).await;
    let p = t.retrieve(ADMIN, LCP).await;
    assert_eq!(attr(&p, "loi"), attr(&t.retrieve(ADMIN, CNT).await, "ri"));
    let la = t.retrieve(&device, &format!("{CNT}/la")).await;
    assert_eq!(attr(&la, "con"), fix);
    let cb = t.retrieve(ADMIN, "cse-in").await;
    assert!(attr(&cb, "srt")
        .as_array()
        .is_some_and(|s| s.contains(&json!(10))));
}
