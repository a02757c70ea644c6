//! Containers and content instances: limits, counters, virtual resources, concurrency.
use crate::common;

use common::*;
use model::{ResourceType as T, ResponseStatusCode as R};
use serde_json::json;
use std::sync::Arc;

async fn setup(cnt: serde_json::Value) -> (TestCse, String) {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    let r = t
        .create(&id, "cse-in/ae", T::Container, json!({ "m2m:cnt": cnt }))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (t, id)
}

async fn cin(t: &TestCse, id: &str, con: &str) -> model::Response {
    t.create(
        id,
        "cse-in/ae/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": con, "cnf": "text/plain:0"}}),
    )
    .await
}

#[tokio::test]
async fn counters_and_state_tags() {
    let (t, id) = setup(json!({"rn": "c"})).await;
    let first = cin(&t, &id, "abc").await;
    assert_eq!(
        (attr(&first, "cs"), attr(&first, "st")),
        (json!(3), json!(1))
    );
    // No `cr` unless the CREATE asked for it (TS-0004 clause 7.3.3.5).
    assert_eq!(attr(&first, "cr"), serde_json::Value::Null);
    cin(&t, &id, "defgh").await;
    let c = t.retrieve(&id, "cse-in/ae/c").await;
    assert_eq!(
        (attr(&c, "cni"), attr(&c, "cbs"), attr(&c, "st")),
        (json!(2), json!(8), json!(2))
    );
    assert_eq!(t.delete(&id, "cse-in/ae/c/ol").await.rsc, R::Deleted);
    let c = t.retrieve(&id, "cse-in/ae/c").await;
    assert_eq!((attr(&c, "cni"), attr(&c, "cbs")), (json!(1), json!(5)));
    let la = t.retrieve(&id, "cse-in/ae/c/la").await;
    assert_eq!(attr(&la, "con"), json!("defgh"));
    let upd = t
        .update(
            &id,
            &format!("cse-in/ae/c/{}", attr(&la, "rn").as_str().unwrap_or("")),
            json!({"m2m:cin": {"con": "x"}}),
        )
        .await;
    assert_eq!(upd.rsc, R::OperationNotAllowed);
}

#[tokio::test]
async fn mni_and_mbs_evict_the_oldest() {
    let (t, id) = setup(json!({"rn": "c", "mni": 2, "mbs": 10})).await;
    for v in ["1111", "2222", "3333"] {
        assert_eq!(cin(&t, &id, v).await.rsc, R::Created);
    }
    let c = t.retrieve(&id, "cse-in/ae/c").await;
    assert_eq!((attr(&c, "cni"), attr(&c, "cbs")), (json!(2), json!(8)));
    assert_eq!(
        attr(&t.retrieve(&id, "cse-in/ae/c/ol").await, "con"),
        json!("2222")
    );
    // Bytes: a 6-byte instance pushes out the two 4-byte ones until cbs <= 10.
    cin(&t, &id, "666666").await;
    let c = t.retrieve(&id, "cse-in/ae/c").await;
    assert_eq!((attr(&c, "cni"), attr(&c, "cbs")), (json!(2), json!(10)));
    // Larger than mbs on its own: refused, nothing changes.
    let big = cin(&t, &id, "01234567890").await;
    assert_eq!(big.rsc, R::NotAcceptable);
    assert_eq!(attr(&t.retrieve(&id, "cse-in/ae/c").await, "cni"), json!(2));
    // Lowering mni evicts at once.
    let u = t
        .update(&id, "cse-in/ae/c", json!({"m2m:cnt": {"mni": 1}}))
        .await;
    assert_eq!((u.rsc, attr(&u, "cni")), (R::Updated, json!(1)));
    assert_eq!(
        attr(&t.retrieve(&id, "cse-in/ae/c/la").await, "con"),
        json!("666666")
    );
}

#[tokio::test]
async fn mia_limits_the_age_and_la_on_empty_is_not_found() {
    let (t, id) = setup(json!({"rn": "c", "mia": 60})).await;
    assert_eq!(t.retrieve(&id, "cse-in/ae/c/la").await.rsc, R::NotFound);
    let r = cin(&t, &id, "x").await;
    let ct = model::time::parse(attr(&r, "ct").as_str().unwrap_or("")).expect("ct");
    let et = model::time::parse(attr(&r, "et").as_str().unwrap_or("")).expect("et");
    assert_eq!((et - ct).num_seconds(), 60);
}

#[tokio::test]
async fn expired_resources_disappear() {
    let clock = model::clock::ManualClock::new();
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    let t = TestCse::with_config(config).await;
    let id = t.register("ae").await;
    let r = t
        .create(
            &id,
            "cse-in/ae",
            T::Container,
            json!({"m2m:cnt": {"rn": "c"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    let r = t
        .create(
            &id,
            "cse-in/ae/c",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "x", "et": soon}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(t.retrieve(&id, "cse-in/ae/c/la").await.rsc, R::Ok);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 0);
    clock.advance(std::time::Duration::from_secs(61));
    // Addressing already hides it; the sweep removes it and fixes the counters.
    assert_eq!(t.retrieve(&id, "cse-in/ae/c/la").await.rsc, R::NotFound);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(attr(&t.retrieve(&id, "cse-in/ae/c").await, "cni"), json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cni_is_exact_under_16_concurrent_writers() {
    let (t, id) = setup(json!({"rn": "c"})).await;
    let t = Arc::new(t);
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (t, id) = (t.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            for i in 0..25 {
                if cin(&t, &id, &format!("w{w}-{i}")).await.rsc == R::Created {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut acknowledged = 0;
    for task in tasks {
        acknowledged += task.await.expect("task");
    }
    let c = t.retrieve(&id, "cse-in/ae/c").await;
    assert_eq!(acknowledged, 400);
    assert_eq!(attr(&c, "cni"), json!(acknowledged));
    assert_eq!(attr(&c, "st"), json!(acknowledged));
    let kids = t
        .cse
        .store()
        .children(
            attr(&c, "ri").as_str().unwrap_or(""),
            Some(T::ContentInstance),
        )
        .expect("kids");
    assert_eq!(kids.len() as u64, acknowledged);
}
