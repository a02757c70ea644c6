//! Issue 12, group 6 (validation), in memory: what the `<CSEBase>` holds across versions
//! and how an UPDATE of it is answered. The HTTP conformance tests of the group are in
//! `crates/cli/tests/integration/conformance_validation.rs`.
use crate::common::*;
use model::ResponseStatusCode as R;
use serde_json::json;
use std::sync::Arc;

/// TS-0001 Table 9.6.3-2: the `<CSEBase>` has no `requestReachability`. A store written by
/// an earlier version holds one; it is gone after the next start.
#[tokio::test]
async fn a_stored_cse_base_loses_rr_at_start() {
    let mut t = TestCse::new().await;
    assert_eq!(attr(&t.retrieve(ADMIN, "cse-in").await, "rr"), json!(null));
    let mut cb = t
        .cse
        .store()
        .get_by_srn("cse-in")
        .expect("read")
        .expect("the CSEBase");
    cb.attrs.insert("rr".into(), json!(true));
    store::write(t.cse.store().as_ref(), move |txn| txn.update(&cb))
        .await
        .expect("write");
    assert_eq!(attr(&t.retrieve(ADMIN, "cse-in").await, "rr"), json!(true));
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(cse::CseConfig::default(), Arc::new(store)).await;
    let cb = t.retrieve(ADMIN, "cse-in").await;
    assert_eq!(cb.rsc, R::Ok);
    assert_eq!(attr(&cb, "rr"), json!(null), "{:?}", cb.pc);
}

/// TS-0004 clause 7.4.3.2.3: an UPDATE of the `<CSEBase>` is OPERATION_NOT_ALLOWED, whoever
/// sends it and whatever it carries.
#[tokio::test]
async fn the_cse_base_is_not_updated() {
    let t = TestCse::new().await;
    let ae = t.register("ae").await;
    for from in [ADMIN, ae.as_str()] {
        for pc in [
            json!({"m2m:cb": {"lbl": ["x"]}}),
            json!({"m2m:cb": {"acpi": []}}),
            json!({"m2m:cb": {"zzz": 1}}),
        ] {
            let r = t.update(from, "cse-in", pc.clone()).await;
            assert_eq!(r.rsc, R::OperationNotAllowed, "{from} {pc}");
        }
    }
    assert_eq!(attr(&t.retrieve(ADMIN, "cse-in").await, "lbl"), json!(null));
}
