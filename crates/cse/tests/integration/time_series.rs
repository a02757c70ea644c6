//! `<timeSeries>` and `<timeSeriesInstance>` (TS-0004 clauses 7.4.38 and 7.4.39): creation
//! and its checks, counters and `la`/`ol`, a data generation time that is already taken
//! (4105), limits that prune as a container's do, access control, discovery, missing data
//! detection on a manual clock (by the timer task and after a restart) and the
//! subscriptions that report it (`net` 8, `enc/md`).

use crate::common::{attr, clocked, open_cse, Receiver, TestCse};
use model::clock::ManualClock;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const TS: &str = "cse-in/ae/ts";
/// The periodic interval of the watched series, in milliseconds.
const PEI: i64 = 60_000;

async fn series(t: &TestCse, id: &str, attrs: Value) -> model::Response {
    let mut ts = json!({"rn": "ts"});
    if let (Some(a), Some(e)) = (ts.as_object_mut(), attrs.as_object()) {
        a.extend(e.clone());
    }
    t.create(id, "cse-in/ae", T::TimeSeries, json!({ "m2m:ts": ts }))
        .await
}

async fn point(t: &TestCse, id: &str, dgt: Value, con: &str) -> model::Response {
    t.create(
        id,
        TS,
        T::TimeSeriesInstance,
        json!({"m2m:tsi": {"dgt": dgt, "con": con}}),
    )
    .await
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    model::time::format(t)
}

fn at(anchor: chrono::DateTime<chrono::Utc>, ms: i64) -> chrono::DateTime<chrono::Utc> {
    anchor + chrono::Duration::milliseconds(ms)
}

async fn setup(attrs: Value) -> (TestCse, String) {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    let r = series(&t, &id, attrs).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (t, id)
}

#[tokio::test]
async fn a_series_is_created_with_counters_and_its_types_are_in_srt() {
    let (t, id) =
        setup(json!({"pei": 1000, "mni": 5, "or": "http://o/x", "cnf": "text/plain:0"})).await;
    let r = t.retrieve(&id, TS).await;
    assert_eq!(r.rsc, R::Ok);
    let pc = r.pc.as_ref().expect("pc");
    assert_eq!(pc["m2m:ts"]["ty"], json!(29));
    for (k, v) in [
        ("cni", json!(0)),
        ("cbs", json!(0)),
        ("mdc", json!(0)),
        ("peid", json!(100)),
        ("mni", json!(5)),
    ] {
        assert_eq!(attr(&r, k), v, "{k}");
    }
    assert_eq!(attr(&r, "mdlt"), Value::Null);
    let cb = t.retrieve(&id, "cse-in").await;
    let srt = attr(&cb, "srt");
    for ty in [29, 30] {
        assert!(
            srt.as_array().is_some_and(|a| a.contains(&json!(ty))),
            "{srt}"
        );
    }
}

#[tokio::test]
async fn instances_are_counted_and_reached_through_la_and_ol() {
    let (t, id) = setup(json!({})).await;
    assert_eq!(t.retrieve(&id, &format!("{TS}/la")).await.rsc, R::NotFound);
    assert_eq!(t.retrieve(&id, &format!("{TS}/ol")).await.rsc, R::NotFound);
    let r = t
        .created(
            &id,
            TS,
            T::TimeSeriesInstance,
            json!({"m2m:tsi": {"dgt": "20260101T000000", "con": "first", "snr": 1}}),
        )
        .await;
    assert_eq!(attr(&r, "ty"), json!(30));
    assert_eq!(attr(&r, "cs"), json!(5));
    assert_eq!(attr(&r, "snr"), json!(1));
    assert_eq!(attr(&r, "dgt"), json!("20260101T000000,000000"));
    assert_eq!(
        attr(&r, "st"),
        Value::Null,
        "no stateTag on a time series instance"
    );
    assert_eq!(
        point(&t, &id, json!("20260101T000010"), "second").await.rsc,
        R::Created
    );
    // A relative time is counted from now and stored as absolute.
    let r = point(&t, &id, json!(-5000), "third").await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    assert!(attr(&r, "dgt").as_str().is_some_and(|d| d.contains('T')));
    let ts = t.retrieve(&id, TS).await;
    assert_eq!((attr(&ts, "cni"), attr(&ts, "cbs")), (json!(3), json!(16)));
    assert_eq!(
        attr(&t.retrieve(&id, &format!("{TS}/la")).await, "con"),
        json!("third")
    );
    assert_eq!(
        attr(&t.retrieve(&id, &format!("{TS}/ol")).await, "con"),
        json!("first")
    );
    // Deleting through `ol` keeps the counters exact.
    assert_eq!(t.delete(&id, &format!("{TS}/ol")).await.rsc, R::Deleted);
    let ts = t.retrieve(&id, TS).await;
    assert_eq!((attr(&ts, "cni"), attr(&ts, "cbs")), (json!(2), json!(11)));
}

/// TS-0004 clause 7.4.39.2.1: a second data point with the same generation time in the
/// same series is 4105; it is free again once the first is deleted, and another series
/// may use it.
#[tokio::test]
async fn a_taken_generation_time_is_a_conflict() {
    let (t, id) = setup(json!({})).await;
    let r = point(&t, &id, json!("20260101T000000"), "a").await;
    assert_eq!(r.rsc, R::Created);
    let first = attr(&r, "ri");
    // The same instant written differently is the same time.
    let r = point(&t, &id, json!("20260101T000000,000Z"), "b").await;
    assert_eq!(r.rsc, R::Conflict, "{:?}", r.pc);
    let ts = t.retrieve(&id, TS).await;
    assert_eq!(attr(&ts, "cni"), json!(1));
    assert_eq!(
        attr(&t.retrieve(&id, &format!("{TS}/la")).await, "con"),
        json!("a")
    );
    t.created(
        &id,
        "cse-in/ae",
        T::TimeSeries,
        json!({"m2m:ts": {"rn": "other"}}),
    )
    .await;
    let r = t
        .create(
            &id,
            "cse-in/ae/other",
            T::TimeSeriesInstance,
            json!({"m2m:tsi": {"dgt": "20260101T000000", "con": "c"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "another series");
    let first = first.as_str().expect("ri");
    assert_eq!(t.delete(&id, first).await.rsc, R::Deleted);
    assert_eq!(
        point(&t, &id, json!("20260101T000000"), "d").await.rsc,
        R::Created
    );
}

/// TS-0004 clause 7.4.39.2.3: a time series instance is never updated (4005), directly or
/// through `la`.
#[tokio::test]
async fn an_instance_cannot_be_updated() {
    let (t, id) = setup(json!({})).await;
    let r = point(&t, &id, json!("20260101T000000"), "a").await;
    let ri = attr(&r, "ri");
    let ri = ri.as_str().expect("ri");
    for to in [ri.to_owned(), format!("{TS}/la")] {
        let r = t.update(&id, &to, json!({"m2m:tsi": {"lbl": ["x"]}})).await;
        assert_eq!(r.rsc, R::OperationNotAllowed, "{to}");
    }
    assert_eq!(attr(&t.retrieve(&id, ri).await, "lbl"), Value::Null);
}

/// Every misuse of a series' or an instance's attributes is 4000 (or 4108 for a child
/// where it cannot be), and nothing is created.
#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (t, id) = setup(json!({"mbs": 4})).await;
    let bad_series = [
        json!({"mdd": true}),
        json!({"mdd": true, "pei": 1000, "peid": 100, "mdt": 100}),
        json!({"pei": 1000, "peid": 501}),
        json!({"pei": 0}),
        json!({"mdn": 0}),
        json!({"mdlt": ["20260101T000000"]}),
        json!({"mdc": 1}),
        json!({"cni": 1}),
        json!({"cnf": "text"}),
        json!({"or": "a b"}),
        json!({"mdd": "yes"}),
        json!({"at": ["/x"]}),
    ];
    for (n, attrs) in bad_series.into_iter().enumerate() {
        let mut a = attrs.clone();
        a["rn"] = json!(format!("bad{n}"));
        let r = t
            .create(&id, "cse-in/ae", T::TimeSeries, json!({ "m2m:ts": a }))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{attrs}: {:?}", r.pc);
        assert_eq!(
            t.retrieve(&id, &format!("cse-in/ae/bad{n}")).await.rsc,
            R::NotFound
        );
    }
    let bad_points = [
        json!({"con": "x"}),
        json!({"dgt": "20260101T000000"}),
        json!({"dgt": "yesterday", "con": "x"}),
        json!({"dgt": 1.5, "con": "x"}),
        json!({"dgt": "20260101T000000", "con": "x", "cr": null}),
        json!({"dgt": "20260101T000000", "con": "x", "cnf": "text/plain:0"}),
        json!({"dgt": "20260101T000000", "con": "x", "cs": 1}),
        json!({"dgt": "20260101T000000", "con": "x", "snr": -1}),
        json!({"dgt": "20260101T000000", "con": "x", "acpi": ["x"]}),
    ];
    for tsi in bad_points {
        let r = t
            .create(&id, TS, T::TimeSeriesInstance, json!({ "m2m:tsi": tsi }))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{tsi}: {:?}", r.pc);
    }
    // Larger than the series' mbs: 5207, as for a container.
    let r = point(&t, &id, json!("20260101T000000"), "12345").await;
    assert_eq!(r.rsc, R::NotAcceptable);
    // Instances belong in their own parent type only.
    let r = t
        .create(
            &id,
            TS,
            T::ContentInstance,
            json!({"m2m:cin": {"con": "x"}}),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    t.created(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let r = t
        .create(
            &id,
            "cse-in/ae/c",
            T::TimeSeriesInstance,
            json!({"m2m:tsi": {"dgt": "20260101T000000", "con": "x"}}),
        )
        .await;
    assert_eq!(r.rsc, R::InvalidChildResourceType);
    let ts = t.retrieve(&id, TS).await;
    assert_eq!((attr(&ts, "cni"), attr(&ts, "cbs")), (json!(0), json!(0)));
}

/// TS-0004 clause 7.4.38.2.3: the detection's settings are not changed together with
/// `mdd` or while it is on; a new `pei` brings a `peid` that fits it.
#[tokio::test]
async fn updates_keep_the_detection_rules() {
    let (t, id) = setup(json!({"pei": 1000, "peid": 300, "mdt": 500})).await;
    let before = t.retrieve(&id, TS).await.pc;
    for changes in [
        json!({"mdd": true, "mdt": 600}),
        json!({"mdd": true, "pei": 2000}),
        json!({"peid": 501}),
        json!({"mdt": 200, "mdd": true}),
        json!({"mdlt": ["20260101T000000"]}),
        json!({"cnf": "text/plain:0"}),
    ] {
        let r = t.update(&id, TS, json!({ "m2m:ts": changes })).await;
        assert_eq!(r.rsc, R::BadRequest, "{changes}: {:?}", r.pc);
        assert_eq!(t.retrieve(&id, TS).await.pc, before, "{changes}");
    }
    // A smaller pei keeps peid while it fits, else the default (a tenth).
    let r = t.update(&id, TS, json!({"m2m:ts": {"pei": 800}})).await;
    assert_eq!((r.rsc, attr(&r, "peid")), (R::Updated, json!(300)));
    let r = t.update(&id, TS, json!({"m2m:ts": {"pei": 400}})).await;
    assert_eq!((r.rsc, attr(&r, "peid")), (R::Updated, json!(40)));
    let r = t.update(&id, TS, json!({"m2m:ts": {"mdd": true}})).await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    for changes in [
        json!({"mdt": 600}),
        json!({"mdn": 2}),
        json!({"pei": 500}),
        json!({"peid": 1}),
    ] {
        let r = t.update(&id, TS, json!({ "m2m:ts": changes })).await;
        assert_eq!(r.rsc, R::BadRequest, "{changes} while detecting");
    }
    let r = t.update(&id, TS, json!({"m2m:ts": {"mdd": false}})).await;
    assert_eq!(r.rsc, R::Updated);
    let r = t
        .update(&id, TS, json!({"m2m:ts": {"mdt": 600, "mdn": 2}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
}

/// `mni`, `mbs` and `mia` prune a series as they prune a container.
#[tokio::test]
async fn limits_prune_the_oldest_instances() {
    let (t, id) = setup(json!({"mni": 2, "mia": 60})).await;
    for (n, dgt) in ["20260101T000000", "20260101T000001", "20260101T000002"]
        .iter()
        .enumerate()
    {
        let r = point(&t, &id, json!(dgt), &format!("v{n}")).await;
        assert_eq!(r.rsc, R::Created);
        let ct = model::time::parse(attr(&r, "ct").as_str().unwrap_or("")).expect("ct");
        let et = model::time::parse(attr(&r, "et").as_str().unwrap_or("")).expect("et");
        assert_eq!((et - ct).num_seconds(), 60, "mia");
    }
    let ts = t.retrieve(&id, TS).await;
    assert_eq!(attr(&ts, "cni"), json!(2));
    assert_eq!(
        attr(&t.retrieve(&id, &format!("{TS}/ol")).await, "con"),
        json!("v1")
    );
    // The pruned data point's generation time is free again.
    assert_eq!(
        point(&t, &id, json!("20260101T000000"), "again").await.rsc,
        R::Created
    );
    let r = t
        .update(&id, TS, json!({"m2m:ts": {"mni": 1, "mbs": 100}}))
        .await;
    assert_eq!((r.rsc, attr(&r, "cni")), (R::Updated, json!(1)));
    assert_eq!(
        attr(&t.retrieve(&id, &format!("{TS}/la")).await, "con"),
        json!("again")
    );
    let r = t
        .update(&id, TS, json!({"m2m:ts": {"mni": 10, "mbs": 3}}))
        .await;
    assert_eq!(
        (r.rsc, attr(&r, "cni"), attr(&r, "cbs")),
        (R::Updated, json!(0), json!(0))
    );
}

/// A series is governed by its `acpi`, its instances by the series' policies.
#[tokio::test]
async fn access_is_checked_on_the_series_and_its_instances() {
    let (t, owner, other) = crate::common::owner_and_other(cse::CseConfig::default()).await;
    t.created(
        &owner,
        "cse-in/owner",
        T::TimeSeries,
        json!({"m2m:ts": {"rn": "ts"}}),
    )
    .await;
    let mine = "cse-in/owner/ts";
    let tsi = json!({"m2m:tsi": {"dgt": "20260101T000000", "con": "x"}});
    let r = t
        .create(&other, mine, T::TimeSeriesInstance, tsi.clone())
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(
        t.retrieve(&other, mine).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.create(&owner, mine, T::TimeSeriesInstance, tsi).await.rsc,
        R::Created
    );
    let la = format!("{mine}/la");
    assert_eq!(
        t.retrieve(&other, &la).await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.delete(&other, &la).await.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(t.retrieve(&owner, &la).await.rsc, R::Ok);
    let r = t.update(&other, mine, json!({"m2m:ts": {"mni": 1}})).await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(attr(&t.retrieve(&owner, mine).await, "mni"), Value::Null);
}

#[tokio::test]
async fn discovery_finds_series_and_instances() {
    let (t, id) = setup(json!({})).await;
    let r = point(&t, &id, json!("20260101T000000"), "a").await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("ty", "29")]).await,
        vec![TS.to_owned()]
    );
    let found = t.discover(&id, "cse-in/ae", &[("ty", "30")]).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(&format!("{TS}/")), "{found:?}");
}

/// A CSE on a manual clock with a watched series (`pei` one minute, `peid` six seconds,
/// `mdt` ten seconds, at most three points listed) and its owner's AE-ID.
async fn watched(clock: &ManualClock, extra: Value) -> (TestCse, String) {
    let config = cse::CseConfig {
        expiry_check_ms: 10,
        ..clocked(clock)
    };
    let t = TestCse::with_config(config).await;
    let id = t.register("ae").await;
    let mut attrs = json!({"pei": PEI, "mdd": true, "mdt": 10_000, "mdn": 3});
    if let (Some(a), Some(e)) = (attrs.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    let r = series(&t, &id, attrs).await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    (t, id)
}

/// Moves `clock` to `ms` after `anchor`.
fn move_to(clock: &ManualClock, anchor: chrono::DateTime<chrono::Utc>, ms: i64) {
    let now = clock.clock().now();
    let target = at(anchor, ms);
    if let Ok(d) = (target - now).to_std() {
        clock.advance(d);
    }
}

/// Runs the detection now (the series' own timer task may run it as well: tests look at
/// the series, which both leave the same).
async fn detect(t: &TestCse) -> usize {
    let ri = attr(&t.retrieve(&owner(t).await, TS).await, "ri");
    cse::time_series::detect(&t.cse, ri.as_str().expect("ri"))
        .await
        .expect("detect")
}

/// The AE-ID of the series' owner.
async fn owner(t: &TestCse) -> String {
    let r = t.retrieve("CAdmin", "cse-in/ae").await;
    attr(&r, "aei")
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default()
}

async fn mdc(t: &TestCse, id: &str) -> Value {
    attr(&t.retrieve(id, TS).await, "mdc")
}

/// TS-0001 clause 10.2.4.29: periods after the first data point without a data point
/// within `peid` are listed `mdt` after they were expected, newest first, at most `mdn`.
#[tokio::test]
async fn missing_data_points_are_detected_on_the_clock() {
    let clock = ManualClock::new();
    let (t, id) = watched(&clock, json!({})).await;
    // Before the first data point nothing is expected.
    move_to(&clock, clock.clock().now(), 10 * PEI);
    assert_eq!(detect(&t).await, 0);
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    // Period 1 comes 3 s late (within peid), period 2 never, period 3 7 s late (outside).
    let late = at(anchor, PEI + 3_000);
    assert_eq!(
        point(&t, &id, json!(stamp(late)), "p1").await.rsc,
        R::Created
    );
    assert_eq!(
        point(&t, &id, json!(stamp(at(anchor, 3 * PEI + 7_000))), "p3")
            .await
            .rsc,
        R::Created
    );
    move_to(&clock, anchor, 2 * PEI + 9_000);
    detect(&t).await;
    assert_eq!(
        mdc(&t, &id).await,
        json!(0),
        "period 2 is not due before mdt has passed"
    );
    move_to(&clock, anchor, 3 * PEI + 30_000);
    detect(&t).await;
    let ts = t.retrieve(&id, TS).await;
    assert_eq!(attr(&ts, "mdc"), json!(2));
    assert_eq!(
        attr(&ts, "mdlt"),
        json!([stamp(at(anchor, 3 * PEI)), stamp(at(anchor, 2 * PEI))])
    );
    // Two more missing: the oldest of four falls out past mdn (3).
    move_to(&clock, anchor, 5 * PEI + 30_000);
    detect(&t).await;
    let ts = t.retrieve(&id, TS).await;
    assert_eq!(attr(&ts, "mdc"), json!(3));
    assert_eq!(
        attr(&ts, "mdlt"),
        json!([
            stamp(at(anchor, 5 * PEI)),
            stamp(at(anchor, 4 * PEI)),
            stamp(at(anchor, 3 * PEI))
        ])
    );
    assert_eq!(detect(&t).await, 0, "each period is checked once");
    assert_eq!(t.retrieve(&id, TS).await.pc, ts.pc);
}

/// The timer task runs the detection by itself when the clock passes a detection time.
#[tokio::test]
async fn the_timer_task_detects_without_being_asked() {
    let clock = ManualClock::new();
    let (t, id) = watched(&clock, json!({})).await;
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    move_to(&clock, anchor, PEI + 30_000);
    let mut mdc = Value::Null;
    for _ in 0..500 {
        mdc = attr(&t.retrieve(&id, TS).await, "mdc");
        if mdc == json!(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mdc, json!(1));
}

/// Where the detection stands is in the store: after a restart the periods that fell due
/// meanwhile are detected, the data points seen before still count.
#[tokio::test]
async fn detection_survives_a_restart() {
    let clock = ManualClock::new();
    let (mut t, id) = watched(&clock, json!({})).await;
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    assert_eq!(
        point(&t, &id, json!(stamp(at(anchor, 2 * PEI))), "p2")
            .await
            .rsc,
        R::Created
    );
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    let config = cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    };
    t.cse = open_cse(config, Arc::new(store)).await;
    move_to(&clock, anchor, 3 * PEI + 30_000);
    let found = detect(&t).await;
    let ts = t.retrieve(&id, TS).await;
    // The restarted CSE's own task may have run first: the series says what was found.
    assert!(found <= 2, "{found}");
    assert_eq!(attr(&ts, "mdc"), json!(2));
    assert_eq!(
        attr(&ts, "mdlt"),
        json!([stamp(at(anchor, 3 * PEI)), stamp(at(anchor, PEI))])
    );
}

/// TS-0004 clause 7.4.38.2.3: `mdd` false stops the detection and keeps the list; `mdd`
/// true clears it and starts again from the next data point. Deleting the series ends it.
#[tokio::test]
async fn mdd_stops_and_restarts_the_detection() {
    let clock = ManualClock::new();
    let (t, id) = watched(&clock, json!({})).await;
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    move_to(&clock, anchor, PEI + 30_000);
    assert!(detect(&t).await <= 1);
    assert_eq!(attr(&t.retrieve(&id, TS).await, "mdc"), json!(1));
    let r = t.update(&id, TS, json!({"m2m:ts": {"mdd": false}})).await;
    assert_eq!(r.rsc, R::Updated);
    move_to(&clock, anchor, 4 * PEI + 30_000);
    assert_eq!(detect(&t).await, 0);
    let ts = t.retrieve(&id, TS).await;
    assert_eq!(
        (attr(&ts, "mdc"), attr(&ts, "mdlt").as_array().map(Vec::len)),
        (json!(1), Some(1))
    );
    let r = t.update(&id, TS, json!({"m2m:ts": {"mdd": true}})).await;
    assert_eq!(
        (r.rsc, attr(&r, "mdc"), attr(&r, "mdlt")),
        (R::Updated, json!(0), Value::Null)
    );
    move_to(&clock, anchor, 8 * PEI);
    assert_eq!(detect(&t).await, 0, "waiting for the next data point");
    let again = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(again)), "p").await.rsc,
        R::Created
    );
    move_to(&clock, again, PEI + 30_000);
    assert!(detect(&t).await <= 1);
    assert_eq!(attr(&t.retrieve(&id, TS).await, "mdc"), json!(1));
    assert_eq!(t.delete(&id, TS).await.rsc, R::Deleted);
    assert_eq!(
        t.create(
            &id,
            "cse-in/ae",
            T::TimeSeries,
            json!({"m2m:ts": {"rn": "ts"}})
        )
        .await
        .rsc,
        R::Created
    );
    move_to(&clock, again, 9 * PEI);
    assert_eq!(detect(&t).await, 0, "the new series is not watched");
}

/// TS-0004 clause 7.4.8.2.1: `net` 8 needs `enc/md`, alone, on a `<timeSeries>`; its
/// content is the time series notification (`nct` 5).
#[tokio::test]
async fn missing_data_subscriptions_are_checked() {
    let (t, id) = setup(json!({"pei": 1000})).await;
    let rx = Receiver::start(2000).await;
    t.created(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let md = json!({"num": 2, "dur": "PT10M"});
    for (to, sub) in [
        (TS, json!({"enc": {"net": [8]}})),
        (TS, json!({"enc": {"net": [8, 1], "md": md}})),
        (TS, json!({"enc": {"net": [8], "md": md}, "nct": 1})),
        (
            TS,
            json!({"enc": {"net": [8], "md": {"num": 0, "dur": "PT1M"}}}),
        ),
        (
            TS,
            json!({"enc": {"net": [8], "md": {"num": 1, "dur": "soon"}}}),
        ),
        (
            TS,
            json!({"enc": {"net": [8], "md": {"num": 1, "dur": "PT0S"}}}),
        ),
        (TS, json!({"enc": {"net": [8], "md": {"num": 1}}})),
        (
            TS,
            json!({"enc": {"net": [8], "md": {"num": 1, "dur": "PT1M", "x": 1}}}),
        ),
        ("cse-in/ae/c", json!({"enc": {"net": [8], "md": md}})),
        ("cse-in/ae/c", json!({"enc": {"md": md}})),
    ] {
        let mut s = sub.clone();
        s["nu"] = json!([rx.url]);
        let r = t
            .create(&id, to, T::Subscription, json!({ "m2m:sub": s }))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{to} {sub}: {:?}", r.pc);
    }
    let mut subs = Request::new(Operation::Retrieve, "cse-in/ae", Some(id.clone()));
    subs.fc.add("fu", "1").expect("fu");
    subs.fc.add("ty", "23").expect("ty");
    let found = t.send(subs).await;
    let none = found.pc.as_ref().map(|p| p["m2m:uril"].clone());
    assert!(
        none.as_ref()
            .is_none_or(|u| u.as_array().is_none_or(Vec::is_empty)),
        "{none:?}"
    );
    let r = t
        .created(
            &id,
            TS,
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [rx.url], "enc": {"net": [8], "md": md}}}),
        )
        .await;
    assert_eq!(attr(&r, "nct"), json!(5));
    // An UPDATE may not drop md while net 8 stays, nor combine net 8 with another.
    let sub = format!("{TS}/s");
    for enc in [json!({"net": [8]}), json!({"net": [8, 1], "md": md})] {
        let r = t.update(&id, &sub, json!({"m2m:sub": {"enc": enc}})).await;
        assert_eq!(r.rsc, R::BadRequest, "{enc}");
    }
    assert_eq!(
        attr(&t.retrieve(&id, &sub).await, "enc"),
        json!({"net": [8], "md": md})
    );
    // `md` may change (a new window).
    let other = json!({"net": [8], "md": {"num": 1, "dur": "PT1H"}});
    let r = t
        .update(&id, &sub, json!({"m2m:sub": {"enc": other}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
}

/// TS-0001 clause 10.2.4.29: from the `num`-th missing point in a window of `dur`, each
/// detection notifies the points not yet notified and the window's count; when the window
/// ends, counting starts again. Subscribers of the series' attributes hear of `mdlt`.
#[tokio::test]
async fn missing_data_is_notified_per_window() {
    let clock = ManualClock::new();
    let (t, id) = watched(&clock, json!({"mdn": 10})).await;
    let rx = Receiver::start(2000).await;
    let md = json!({"num": 2, "dur": "PT5M"});
    t.created(
        &id,
        TS,
        T::Subscription,
        json!({"m2m:sub": {"rn": "md", "nu": [rx.url], "enc": {"net": [8], "md": md}}}),
    )
    .await;
    let updates = Receiver::start(2000).await;
    t.created(
        &id,
        TS,
        T::Subscription,
        json!({"m2m:sub": {"rn": "up", "nu": [updates.url], "enc": {"net": [1]}}}),
    )
    .await;
    let verifications = rx.count();
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    // Period 1 missing: one point, below num.
    move_to(&clock, anchor, PEI + 30_000);
    detect(&t).await;
    // Period 2 missing: the count reaches 2: notified with both points.
    move_to(&clock, anchor, 2 * PEI + 30_000);
    detect(&t).await;
    let got = rx.wait_for(verifications + 1).await;
    assert_eq!(got.len(), verifications + 1, "{got:?}");
    let sgn = &got[verifications]["m2m:sgn"];
    assert_eq!(sgn["nev"]["net"], json!(8));
    assert_eq!(
        sgn["nev"]["rep"]["m2m:tsn"],
        json!({"mdlt": [stamp(at(anchor, 2 * PEI)), stamp(at(anchor, PEI))], "mdc": 2})
    );
    // Period 3 missing, still in the window: notified alone, count 3.
    move_to(&clock, anchor, 3 * PEI + 30_000);
    detect(&t).await;
    let got = rx.wait_for(verifications + 2).await;
    assert_eq!(
        got.get(verifications + 1)
            .map(|g| g["m2m:sgn"]["nev"]["rep"]["m2m:tsn"].clone()),
        Some(json!({"mdlt": [stamp(at(anchor, 3 * PEI))], "mdc": 3}))
    );
    // Period 6 after the window (opened at period 1's detection, five minutes): count 1.
    assert_eq!(
        point(&t, &id, json!(stamp(at(anchor, 4 * PEI))), "p4")
            .await
            .rsc,
        R::Created
    );
    assert_eq!(
        point(&t, &id, json!(stamp(at(anchor, 5 * PEI))), "p5")
            .await
            .rsc,
        R::Created
    );
    move_to(&clock, anchor, 6 * PEI + 30_000);
    detect(&t).await;
    assert_eq!(mdc(&t, &id).await, json!(4));
    // The attribute subscriber heard of each change of the list (after its verification
    // and the creations' updates of cni); the window's subscriber of nothing more.
    let heard = updates.wait_for(1 + 3 + 4).await;
    for n in 1..=4 {
        assert!(
            heard
                .iter()
                .any(|h| h["m2m:sgn"]["nev"]["rep"]["m2m:ts"]["mdc"] == json!(n)),
            "mdc {n}: {heard:?}"
        );
    }
    assert_eq!(rx.count(), verifications + 2, "a new window, below num");
}

/// Instances expire by `mia` and the counters follow; an expired series goes with its
/// instances and its detection.
#[tokio::test]
async fn instances_and_series_expire() {
    let clock = ManualClock::new();
    let soon = stamp(at(clock.clock().now(), 600_000));
    let (t, id) = watched(&clock, json!({"mia": 60, "et": soon})).await;
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    move_to(&clock, anchor, 61_000);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    let ts = t.retrieve(&id, TS).await;
    assert_eq!((attr(&ts, "cni"), attr(&ts, "cbs")), (json!(0), json!(0)));
    assert_eq!(t.retrieve(&id, &format!("{TS}/la")).await.rsc, R::NotFound);
    let ri = attr(&ts, "ri");
    let ri = ri.as_str().expect("ri");
    move_to(&clock, anchor, 601_000);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(t.retrieve(&id, TS).await.rsc, R::NotFound);
    assert_eq!(cse::time_series::detect(&t.cse, ri).await.ok(), Some(0));
}

/// TS-0001 table 9.6.8-2: an UPDATE of `md` stops the window and its count; counting starts
/// again at the next missing point.
#[tokio::test]
async fn updating_md_restarts_the_window() {
    let clock = ManualClock::new();
    let (t, id) = watched(&clock, json!({"mdn": 10})).await;
    let rx = Receiver::start(2000).await;
    let md = json!({"num": 2, "dur": "PT1H"});
    let sub = json!({"m2m:sub": {"rn": "md", "nu": [rx.url], "enc": {"net": [8], "md": md}}});
    assert_eq!(
        t.create(&id, TS, T::Subscription, sub).await.rsc,
        R::Created
    );
    let verifications = rx.count();
    let anchor = clock.clock().now();
    assert_eq!(
        point(&t, &id, json!(stamp(anchor)), "p0").await.rsc,
        R::Created
    );
    move_to(&clock, anchor, PEI + 30_000);
    detect(&t).await;
    let r = t
        .update(
            &id,
            &format!("{TS}/md"),
            json!({"m2m:sub": {"enc": {"net": [8], "md": md}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    move_to(&clock, anchor, 2 * PEI + 30_000);
    detect(&t).await;
    assert_eq!(mdc(&t, &id).await, json!(2));
    assert_eq!(rx.count(), verifications, "the count started again at 1");
    move_to(&clock, anchor, 3 * PEI + 30_000);
    detect(&t).await;
    let got = rx.wait_for(verifications + 1).await;
    assert_eq!(
        got.get(verifications)
            .map(|g| g["m2m:sgn"]["nev"]["rep"]["m2m:tsn"].clone()),
        Some(json!({"mdlt": [stamp(at(anchor, 3 * PEI)), stamp(at(anchor, 2 * PEI))], "mdc": 2}))
    );
}
