//! What a RETRIEVE result holds beyond its target: child resources (`rcn` 4, 5, 6, 8),
//! discovery, `la`/`ol` and group fan-out. Every resource returned passes its own access
//! decision (issue 9 M1), and a result is read one page at a time, stopping where the page
//! is full, with a partial result marked for continuation (issue 9 M4).
use crate::common;

use common::*;
use cse::{Cse, CseConfig};
use model::{
    ContentStatus, Operation, Request, ResourceType as T, Response, ResponseStatusCode as R,
    ResultContent,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// A request with query parameters as the HTTP binding would add them.
fn get(fr: &str, to: &str, rcn: Option<u64>, query: &[(&str, &str)]) -> Request {
    let mut req = Request::new(Operation::Retrieve, to, Some(fr.to_owned()));
    req.rcn = rcn.map(|n| ResultContent::from_code(n).expect("rcn"));
    for (k, v) in query {
        match *k {
            "drt" => req.drt = v.parse().ok(),
            _ => req.fc.add(k, v).expect("criterion"),
        }
    }
    req
}

/// The resource names in a response's content, in order: every `rn` and `nm`, and the last
/// segment of each address of an `m2m:uril`.
fn names(r: &Response) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("rn" | "nm", Value::String(s)) => out.push(s.clone()),
                        ("m2m:uril", Value::Array(uris)) => out.extend(
                            uris.iter()
                                .filter_map(Value::as_str)
                                .map(|u| u.rsplit('/').next().unwrap_or(u).to_owned()),
                        ),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(pc) = &r.pc {
        walk(pc, &mut out);
    }
    out
}

/// An owner AE that `other` may read (and discover), holding, in creation order: `closed`
/// (the default policy: the owner only), `findable` (DISCOVER only for `other`), `open`
/// (RETRIEVE and DISCOVER for `other`), the ACP `share` (its `pvs`: the owner only), the ACP
/// `visible` (its `pvs` let `other` read it), and a `<sub>` of the owner's.
struct Tree {
    t: TestCse,
    owner: String,
    other: String,
}

async fn tree_with(t: TestCse) -> Tree {
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let make = |rn: &str, pv: Value, pvs: Value| json!({"m2m:acp": {"rn": rn, "pv": {"acr": pv}, "pvs": {"acr": pvs}}});
    let created = |r: Response| {
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        attr(&r, "ri").as_str().expect("ri").to_owned()
    };
    let cnt = |rn: &str, acpi: Vec<String>| {
        let mut c = json!({"rn": rn});
        if !acpi.is_empty() {
            c["acpi"] = json!(acpi);
        }
        json!({ "m2m:cnt": c })
    };
    created(
        t.create(&owner, "cse-in/owner", T::Container, cnt("closed", vec![]))
            .await,
    );
    let discover_only = created(
        t.create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            make(
                "finder",
                json!([{"acor": [other], "acop": 32}, {"acor": [owner], "acop": 63}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await,
    );
    let share = created(
        t.create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            make(
                "share",
                json!([{"acor": [other], "acop": 34}, {"acor": [owner], "acop": 63}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await,
    );
    created(
        t.create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            make(
                "visible",
                json!([{"acor": [owner], "acop": 63}]),
                json!([{"acor": [other], "acop": 2}, {"acor": [owner], "acop": 63}]),
            ),
        )
        .await,
    );
    created(
        t.create(
            &owner,
            "cse-in/owner",
            T::Container,
            cnt("findable", vec![discover_only]),
        )
        .await,
    );
    created(
        t.create(
            &owner,
            "cse-in/owner",
            T::Container,
            cnt("open", vec![share.clone()]),
        )
        .await,
    );
    created(
        t.create(
            &owner,
            "cse-in/owner",
            T::Subscription,
            json!({"m2m:sub": {"rn": "watch", "nu": [owner], "enc": {"net": [3]}}}),
        )
        .await,
    );
    let r = t
        .update(&owner, "cse-in/owner", json!({"m2m:ae": {"acpi": [share]}}))
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(t.retrieve(&other, "cse-in/owner").await.rsc, R::Ok);
    Tree { t, owner, other }
}

async fn tree() -> Tree {
    tree_with(TestCse::new().await).await
}

#[tokio::test]
async fn child_results_of_the_cse_base_hold_only_the_aes_the_originator_may_read() {
    let t = TestCse::new().await;
    let me = t.register("me").await;
    let victim = t.register("victim").await;
    assert_eq!(
        t.retrieve(&me, "cse-in/victim").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    for rcn in [4, 5, 6, 8] {
        let r = t.send(get(&me, "cse-in", Some(rcn), &[])).await;
        assert_eq!(r.rsc, R::Ok, "rcn {rcn}");
        let seen = names(&r);
        assert!(seen.contains(&"me".to_owned()), "rcn {rcn}: {seen:?}");
        assert!(!seen.contains(&"victim".to_owned()), "rcn {rcn}: {seen:?}");
        let text = serde_json::to_string(&r.pc).unwrap_or_default();
        assert!(
            !text.contains(&victim),
            "rcn {rcn} names the victim's AE-ID: {text}"
        );
    }
    // The admin still sees every AE.
    let r = t.send(get(ADMIN, "cse-in", Some(6), &[])).await;
    assert!(names(&r).contains(&"victim".to_owned()));
}

#[tokio::test]
async fn every_embedded_child_passes_its_own_retrieve_decision() {
    let Tree { t, owner, other } = tree().await;
    for rcn in [4, 5, 6, 8] {
        let r = t.send(get(&other, "cse-in/owner", Some(rcn), &[])).await;
        assert_eq!(r.rsc, R::Ok, "rcn {rcn}");
        let mut seen = names(&r);
        seen.retain(|n| n != "owner");
        // `visible` is an ACP whose pvs grant RETRIEVE; `share` grants RETRIEVE in its pv
        // only, which does not govern the ACP itself.
        assert_eq!(seen, vec!["open", "visible"], "rcn {rcn}");
    }
    // The owner sees all its children.
    let r = t.send(get(&owner, "cse-in/owner", Some(6), &[])).await;
    assert_eq!(
        names(&r),
        vec!["closed", "findable", "finder", "open", "share", "visible", "watch"]
    );
}

#[tokio::test]
async fn a_child_the_originator_cannot_read_does_not_take_a_place_under_lim_or_ofst() {
    let Tree { t, other, .. } = tree().await;
    // Containers in creation order: closed, findable, open; only `open` is readable.
    let r = t
        .send(get(
            &other,
            "cse-in/owner",
            Some(6),
            &[("ty", "3"), ("lim", "1")],
        ))
        .await;
    assert_eq!(names(&r), vec!["open"]);
    let r = t
        .send(get(&other, "cse-in/owner", Some(6), &[("ofst", "1")]))
        .await;
    // In name order the readable ones are `open` and `visible`.
    assert_eq!(
        names(&r),
        vec!["visible"],
        "ofst counts readable children only"
    );
    assert_eq!(r.cnst, None);
}

#[tokio::test]
async fn discovery_returns_what_passes_discover_and_representations_need_retrieve() {
    let Tree { t, owner, other } = tree().await;
    for drt in ["1", "2"] {
        let r = t
            .send(get(
                &other,
                "cse-in/owner",
                None,
                &[("fu", "1"), ("drt", drt)],
            ))
            .await;
        assert_eq!(r.rsc, R::Ok);
        let uris: Vec<String> =
            r.pc.as_ref()
                .and_then(|pc| pc["m2m:uril"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
        assert_eq!(uris.len(), 2, "drt {drt}: {uris:?}");
        if drt == "1" {
            assert_eq!(uris, vec!["cse-in/owner/findable", "cse-in/owner/open"]);
        }
    }
    // lim counts discoverable results only.
    let r = t
        .send(get(
            &other,
            "cse-in/owner",
            None,
            &[("fu", "1"), ("lim", "1")],
        ))
        .await;
    assert_eq!(names(&r), vec!["findable"]);
    // Child resource references: the same set.
    let r = t
        .send(get(&other, "cse-in/owner", Some(6), &[("fu", "1")]))
        .await;
    assert_eq!(names(&r), vec!["findable", "open"]);
    // Representations are no discovery result (TS-0001 table 8.1.2-1): 4000.
    for rcn in [1, 4, 5, 8] {
        let r = t
            .send(get(&other, "cse-in/owner", Some(rcn), &[("fu", "1")]))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "rcn {rcn}");
    }
    // A condition on an attribute's value (TS-0004 7.3.3.17.9) reads it: only resources
    // the originator may also RETRIEVE are tested, so `findable` (DISCOVER only) is left out
    // although its `cni` is 0 too.
    let r = t
        .send(get(
            &other,
            "cse-in/owner",
            None,
            &[("fu", "1"), ("ty", "3"), ("cni", "0")],
        ))
        .await;
    assert_eq!(names(&r), vec!["open"]);
    let r = t
        .send(get(
            &owner,
            "cse-in/owner",
            None,
            &[("fu", "1"), ("cni", "0")],
        ))
        .await;
    assert_eq!(names(&r), vec!["closed", "findable", "open"]);
    let r = t
        .send(get(&other, "cse-in/owner/findable", None, &[("fu", "1")]))
        .await;
    assert_eq!(r.rsc, R::Ok);
    // The owner discovers everything below its AE.
    let r = t
        .send(get(&owner, "cse-in/owner", None, &[("fu", "1")]))
        .await;
    assert_eq!(names(&r).len(), 7);
}

#[tokio::test]
async fn latest_and_oldest_of_an_unreadable_container_do_not_say_whether_it_is_empty() {
    let Tree { t, owner, other } = tree().await;
    for edge in ["la", "ol"] {
        let r = t
            .retrieve(&other, &format!("cse-in/owner/closed/{edge}"))
            .await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{edge}");
        let r = t
            .retrieve(&other, &format!("cse-in/owner/open/{edge}"))
            .await;
        assert_eq!(r.rsc, R::NotFound, "{edge}: readable and empty");
    }
    for c in ["closed", "open"] {
        let r = t
            .create(
                &owner,
                &format!("cse-in/owner/{c}"),
                T::ContentInstance,
                json!({"m2m:cin": {"con": c}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created);
    }
    let r = t.retrieve(&other, "cse-in/owner/closed/la").await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t.retrieve(&other, "cse-in/owner/open/ol").await;
    assert_eq!(attr(&r, "con"), json!("open"));
}

#[tokio::test]
async fn fan_out_checks_each_member_and_its_children() {
    let Tree { t, owner, other } = tree().await;
    let share = attr(&t.retrieve(&owner, "cse-in/owner/share").await, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Group,
            json!({"m2m:grp": {"rn": "g", "mt": 0, "mnm": 5, "acpi": [share],
                "mid": ["cse-in/owner/closed", "cse-in/owner/open", "cse-in/owner"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let r = t
        .send(get(&other, "cse-in/owner/g/fopt", Some(6), &[]))
        .await;
    assert_eq!(r.rsc, R::Ok);
    let answers = r.pc.as_ref().map(|pc| pc["m2m:agr"]["m2m:rsp"].clone());
    let answers = answers
        .and_then(|a| a.as_array().cloned())
        .unwrap_or_default();
    let codes: Vec<u64> = answers.iter().filter_map(|a| a["rsc"].as_u64()).collect();
    assert_eq!(codes, vec![4103, 2000, 2000]);
    let of_owner = Response {
        pc: Some(answers[2]["pc"].clone()),
        ..Response::new(R::Ok, "", None)
    };
    let mut seen = names(&of_owner);
    seen.retain(|n| n != "owner");
    // Descendants in structured-name order (docs/conformance.md).
    assert_eq!(seen, vec!["g", "open", "visible"]);
}

/// A CSE whose store can say how many resources its scans read.
async fn counted(config: CseConfig) -> (TestCse, Arc<store::SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        store::SqliteStore::open(dir.path(), store::SqliteOptions::default()).expect("store"),
    );
    let cse = Cse::open(config, store.clone()).await.expect("cse");
    (TestCse { cse, dir }, store)
}

#[tokio::test]
async fn lim_one_over_many_large_instances_reads_one() {
    let (t, store) = counted(CseConfig::default()).await;
    let Tree { t, owner, other } = tree_with(t).await;
    let con = "x".repeat(256 * 1024);
    for _ in 0..40 {
        let r = t
            .create(
                &owner,
                "cse-in/owner/open",
                T::ContentInstance,
                json!({"m2m:cin": {"con": con}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created);
    }
    let before = store.scanned();
    let r = t
        .send(get(
            &other,
            "cse-in/owner/open",
            Some(4),
            &[("lim", "1"), ("ty", "4")],
        ))
        .await;
    assert_eq!(r.rsc, R::Ok);
    assert_eq!(
        r.pc.as_ref()
            .map(|pc| pc["m2m:cnt"]["m2m:cin"].as_array().map(Vec::len)),
        Some(Some(1))
    );
    assert_eq!(store.scanned() - before, 1, "one instance read, not 40");
    // The same through discovery, and a type filter that excludes every instance.
    let before = store.scanned();
    let r = t
        .send(get(
            &other,
            "cse-in/owner/open",
            None,
            &[("fu", "1"), ("lim", "1"), ("ty", "4")],
        ))
        .await;
    assert_eq!(r.rsc, R::Ok);
    assert_eq!(store.scanned() - before, 1);
    let before = store.scanned();
    let r = t
        .send(get(&other, "cse-in/owner/open", Some(8), &[("ty", "3")]))
        .await;
    assert_eq!(r.rsc, R::Ok);
    assert_eq!(store.scanned() - before, 0, "no instance read for ty=3");
}

#[tokio::test]
async fn results_beyond_the_cse_limits_are_partial_with_an_offset_that_continues() {
    let config = CseConfig {
        result_limit: 2,
        discovery_limit: 2,
        ..CseConfig::default()
    };
    let Tree { t, owner, other } = tree_with(TestCse::with_config(config).await).await;
    for i in 0..5 {
        let r = t
            .create(
                &owner,
                "cse-in/owner/open",
                T::ContentInstance,
                json!({"m2m:cin": {"rn": format!("i{i}"), "con": "v"}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created);
    }
    for fu in [None, Some("1")] {
        let mut all = Vec::new();
        let mut ofst = 0;
        let mut pages = 0;
        loop {
            let mut q = vec![("ofst", ofst.to_string())];
            if let Some(fu) = fu {
                q.push(("fu", fu.to_owned()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = t.send(get(&other, "cse-in/owner/open", Some(6), &q)).await;
            assert_eq!(r.rsc, R::Ok);
            pages += 1;
            all.extend(names(&r));
            match r.cnst {
                Some(ContentStatus::Partial) => ofst = r.cnot.expect("cnot with a partial result"),
                other => {
                    assert_eq!(other, None);
                    assert_eq!(r.cnot, None);
                    break;
                }
            }
            assert!(pages < 10, "the continuation makes progress");
        }
        assert_eq!(all, vec!["i0", "i1", "i2", "i3", "i4"], "fu {fu:?}");
        assert_eq!(pages, 3);
    }
    // A lim the originator asked for is a full result, even at the CSE's limit.
    let r = t
        .send(get(&other, "cse-in/owner/open", Some(6), &[("lim", "2")]))
        .await;
    assert_eq!((names(&r).len(), r.cnst), (2, None));
}

#[tokio::test]
async fn the_byte_bound_cuts_embedded_results_but_always_returns_one() {
    let config = CseConfig {
        result_max_bytes: 1,
        ..CseConfig::default()
    };
    let Tree { t, owner, other } = tree_with(TestCse::with_config(config).await).await;
    for i in 0..2 {
        t.create(
            &owner,
            "cse-in/owner/open",
            T::ContentInstance,
            json!({"m2m:cin": {"rn": format!("i{i}"), "con": "v"}}),
        )
        .await;
    }
    let r = t.send(get(&other, "cse-in/owner/open", Some(8), &[])).await;
    assert_eq!(names(&r), vec!["i0"]);
    assert_eq!((r.cnst, r.cnot), (Some(ContentStatus::Partial), Some(1)));
    let r = t
        .send(get(&other, "cse-in/owner/open", Some(8), &[("ofst", "1")]))
        .await;
    assert_eq!(names(&r), vec!["i1"]);
    assert_eq!(r.cnst, None);
}

#[tokio::test]
async fn instances_refused_or_passed_over_by_ofst_are_not_read() {
    let (t, store) = counted(CseConfig::default()).await;
    let Tree { t, owner, other } = tree_with(t).await;
    for c in ["closed", "open"] {
        for i in 0..20 {
            let r = t
                .create(
                    &owner,
                    &format!("cse-in/owner/{c}"),
                    T::ContentInstance,
                    // Two digits: results list descendants in name order.
                    json!({"m2m:cin": {"rn": format!("{c}{i:02}"), "con": "v"}}),
                )
                .await;
            assert_eq!(r.rsc, R::Created);
        }
    }
    // One instance tells the decision for its siblings; ofst passes over the rest unread.
    let before = store.scanned();
    let r = t
        .send(get(
            &other,
            "cse-in/owner/open",
            Some(6),
            &[("ofst", "15"), ("lim", "2")],
        ))
        .await;
    assert_eq!(names(&r), vec!["open15", "open16"]);
    assert_eq!(store.scanned() - before, 3, "open00, open15, open16");
    // Discovery of instances: those of `closed` cost one read, the refusal of the first.
    let before = store.scanned();
    let r = t
        .send(get(
            &other,
            "cse-in/owner",
            None,
            &[("fu", "1"), ("ty", "4")],
        ))
        .await;
    let found = names(&r);
    assert_eq!(found.len(), 20);
    assert!(found.iter().all(|n| n.starts_with("open")), "{found:?}");
    assert_eq!(store.scanned() - before, 21);
}

/// Criteria on children (TS-0004 clauses 7.3.3.17.5, .6, .9) read each child once, through
/// the store's `(parent, type)` index, and stop as soon as they are decided: a discovery
/// over a tree costs at most its size twice, never its size squared.
#[tokio::test]
async fn criteria_on_children_read_each_child_at_most_once() {
    let (t, store) = counted(CseConfig::default()).await;
    let Tree { t, owner, .. } = tree_with(t).await;
    for k in 0..20 {
        let rn = format!("k{k:02}");
        let r = t
            .create(
                &owner,
                "cse-in/owner/open",
                T::Container,
                json!({"m2m:cnt": {"rn": rn}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created);
        for _ in 0..5 {
            let r = t
                .create(
                    &owner,
                    &format!("cse-in/owner/open/{rn}"),
                    T::ContentInstance,
                    json!({"m2m:cin": {"con": "x"}}),
                )
                .await;
            assert_eq!(r.rsc, R::Created);
        }
    }
    let discover = |q: &'static [(&'static str, &'static str)]| {
        let mut all = vec![("fu", "1")];
        all.extend_from_slice(q);
        get(&owner, "cse-in/owner/open", None, &all)
    };
    // No child has the label: every candidate's children are read, once each.
    let before = store.scanned();
    let r = t.send(discover(&[("ty", "3"), ("clbl", "none")])).await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    assert!(names(&r).is_empty());
    let read = store.scanned() - before;
    assert!(
        read <= 20 + 100,
        "20 containers, 100 instances at most: {read}"
    );
    // A child of the type ends each candidate's scan, which the index narrows to the type.
    let before = store.scanned();
    let r = t.send(discover(&[("ty", "3"), ("chty", "4")])).await;
    assert_eq!(names(&r).len(), 20, "{:?}", r.pc);
    let read = store.scanned() - before;
    assert!(
        read <= 20 + 20,
        "one instance per container at most: {read}"
    );
    // Parent criteria read the parent outside the scan, not the candidate's siblings.
    let before = store.scanned();
    let r = t.send(discover(&[("ty", "4"), ("pty", "3")])).await;
    assert_eq!(names(&r).len(), 100, "{:?}", r.pc);
    let read = store.scanned() - before;
    assert!(read <= 100, "the candidates only: {read}");
}
