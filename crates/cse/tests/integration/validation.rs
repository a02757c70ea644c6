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

/// TS-0004 clauses 7.3.3.3 and 7.3.3.4: an attribute the type's Release 3 table defines but
/// this CSE does not support is NOT_IMPLEMENTED on CREATE and UPDATE (BAD_REQUEST where the
/// table makes it NP); a name no table defines stays BAD_REQUEST. Nothing is stored.
#[tokio::test]
async fn defined_but_unsupported_attributes_are_not_implemented() {
    use model::ResourceType as T;
    let t = TestCse::new().await;
    let ae = t.register("ae").await;
    let cnt = json!({"m2m:cnt": {"rn": "c"}});
    assert_eq!(
        t.create(&ae, "cse-in/ae", T::Container, cnt).await.rsc,
        R::Created
    );
    let sub = |extra: serde_json::Value| {
        let mut s = json!({"rn": "s", "nu": [ae.clone()]});
        s.as_object_mut()
            .expect("obj")
            .extend(extra.as_object().cloned().unwrap_or_default());
        json!({ "m2m:sub": s })
    };
    let cases = [
        (
            T::Subscription,
            "cse-in/ae/c",
            sub(json!({"gpi": "cse-in/g"})),
            R::NotImplemented,
        ),
        (
            T::Subscription,
            "cse-in/ae/c",
            sub(json!({"nec": 2})),
            R::NotImplemented,
        ),
        (
            T::Subscription,
            "cse-in/ae/c",
            sub(json!({"nsi": true})),
            R::BadRequest,
        ),
        (
            T::Subscription,
            "cse-in/ae/c",
            sub(json!({"gpi": "g", "zzz": 1})),
            R::BadRequest,
        ),
        (
            T::Group,
            "cse-in/ae",
            json!({"m2m:grp": {"rn": "s", "mnm": 2, "mid": [], "nar": {"num": 2}}}),
            R::NotImplemented,
        ),
        (
            T::Group,
            "cse-in/ae",
            json!({"m2m:grp": {"rn": "s", "mnm": 2, "mid": [], "ssi": true}}),
            R::BadRequest,
        ),
        (
            T::Container,
            "cse-in/ae",
            json!({"m2m:cnt": {"rn": "s", "at": ["/x"]}}),
            R::NotImplemented,
        ),
    ];
    for (ty, parent, pc, want) in cases {
        let r = t.create(&ae, parent, ty, pc.clone()).await;
        assert_eq!(r.rsc, want, "{pc}: {:?}", r.pc);
        assert_eq!(
            t.retrieve(&ae, &format!("{parent}/s")).await.rsc,
            R::NotFound,
            "{pc}"
        );
    }
    let r = t
        .create(
            "C",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"rn": "x", "api": "Nx", "rr": true, "esi": {"esct": [1]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::NotImplemented, "{:?}", r.pc);
    assert_eq!(t.retrieve(ADMIN, "cse-in/x").await.rsc, R::NotFound);

    let before = t.retrieve(&ae, "cse-in/ae/c").await;
    for (pc, want) in [
        (json!({"m2m:cnt": {"aa": ["lbl"]}}), R::NotImplemented),
        (json!({"m2m:cnt": {"aa": null}}), R::NotImplemented),
        (
            json!({"m2m:cnt": {"aa": ["lbl"], "lbl": ["x"]}}),
            R::NotImplemented,
        ),
        (json!({"m2m:cnt": {"li": "cse-in/loc"}}), R::BadRequest),
    ] {
        let r = t.update(&ae, "cse-in/ae/c", pc.clone()).await;
        assert_eq!(r.rsc, want, "{pc}: {:?}", r.pc);
    }
    assert_eq!(t.retrieve(&ae, "cse-in/ae/c").await.pc, before.pc);
}

/// A timestamp `days` from now, in the form the CSE writes.
fn in_days(days: i64) -> String {
    model::time::format(model::time::now() + chrono::Duration::days(days))
}

/// TS-0004 clause 7.3.3.3: the CSE sets a child's `et` no later than its parent's, whether
/// the originator asked for a later one or left it to the default lifetime, and says so in
/// the response; the same holds on UPDATE. A `<CSEBase>` has no `et` and limits nothing.
#[tokio::test]
async fn a_child_never_outlives_its_parent() {
    use model::ResourceType as T;
    let t = TestCse::new().await;
    let ae = t.register("ae").await;
    let far = in_days(3 * 365);
    let r = t
        .update(&ae, "cse-in/ae", json!({"m2m:ae": {"et": far}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    let ae_et = attr(&r, "et");
    let soon = in_days(30);
    let cases = [
        (
            json!({"rn": "later", "et": in_days(4 * 365)}),
            ae_et.clone(),
        ),
        (json!({"rn": "default"}), ae_et.clone()),
        (json!({"rn": "sooner", "et": soon}), json!(soon)),
    ];
    for (cnt, want) in cases {
        let r = t
            .create(&ae, "cse-in/ae", T::Container, json!({ "m2m:cnt": cnt }))
            .await;
        assert_eq!(r.rsc, R::Created, "{cnt}");
        assert_eq!(attr(&r, "et"), want, "{cnt}");
        let path = format!("cse-in/ae/{}", cnt["rn"].as_str().expect("rn"));
        assert_eq!(attr(&t.retrieve(&ae, &path).await, "et"), want, "{cnt}");
    }
    // A content instance, below the container that expires soonest.
    let cin = json!({"m2m:cin": {"con": "x", "et": in_days(60)}});
    let r = t
        .create(&ae, "cse-in/ae/sooner", T::ContentInstance, cin)
        .await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(attr(&r, "et"), json!(soon));
    // UPDATE: a later `et`, or `null` (the default lifetime), is capped at the parent's.
    for et in [json!(in_days(5 * 365)), json!(null)] {
        let r = t
            .update(&ae, "cse-in/ae/later", json!({"m2m:cnt": {"et": et}}))
            .await;
        assert_eq!(r.rsc, R::Updated, "{et}");
        assert_eq!(attr(&r, "et"), ae_et, "{et}");
    }
    // An AE below the CSEBase keeps what it asked for.
    let longest = in_days(9 * 365);
    let r = t
        .update(&ae, "cse-in/ae", json!({"m2m:ae": {"et": longest}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(attr(&r, "et"), json!(longest));
}

/// TS-0004 clause 7.3.3.4: an UPDATE that makes a resource's `et` earlier than it was is
/// BAD_REQUEST while a child expires after the new value, and changes nothing; shortening
/// it to no earlier than every child, or lengthening it, is served.
#[tokio::test]
async fn a_parent_is_not_shortened_below_a_child() {
    use model::ResourceType as T;
    let t = TestCse::new().await;
    let ae = t.register("ae").await;
    let cnt = json!({"m2m:cnt": {"rn": "c", "et": in_days(100)}});
    assert_eq!(
        t.create(&ae, "cse-in/ae", T::Container, cnt).await.rsc,
        R::Created
    );
    let sub = json!({"m2m:sub": {"rn": "s", "nu": [ae.clone()], "et": in_days(50)}});
    assert_eq!(
        t.create(&ae, "cse-in/ae/c", T::Subscription, sub).await.rsc,
        R::Created
    );
    let before = t.retrieve(&ae, "cse-in/ae/c").await;
    for et in [in_days(49), in_days(10)] {
        let r = t
            .update(&ae, "cse-in/ae/c", json!({"m2m:cnt": {"et": et}}))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{et}: {:?}", r.pc);
    }
    assert_eq!(t.retrieve(&ae, "cse-in/ae/c").await.pc, before.pc);
    // The AE, whose child expires in 100 days, is held to the same rule.
    let r = t
        .update(&ae, "cse-in/ae", json!({"m2m:ae": {"et": in_days(99)}}))
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    for et in [in_days(51), in_days(200)] {
        let r = t
            .update(&ae, "cse-in/ae/c", json!({"m2m:cnt": {"et": et.clone()}}))
            .await;
        assert_eq!(r.rsc, R::Updated, "{et}: {:?}", r.pc);
        assert_eq!(attr(&r, "et"), json!(et));
    }
}
