//! Groups and fan-out through `fopt`.
use crate::common;

use common::*;
use model::{ResourceType as T, ResponseStatusCode as R};
use serde_json::json;

#[tokio::test]
async fn fan_out_reaches_every_member() {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    for rn in ["a", "b"] {
        t.create(
            &id,
            "cse-in/ae",
            T::Container,
            json!({"m2m:cnt": {"rn": rn}}),
        )
        .await;
    }
    let g = t.create(&id, "cse-in/ae", T::Group, json!({"m2m:grp": {"rn": "g", "mt": 3, "mnm": 5, "mid": ["cse-in/ae/a", "cse-in/ae/b"]}})).await;
    assert_eq!(
        (g.rsc, attr(&g, "cnm"), attr(&g, "mtv")),
        (R::Created, json!(2), json!(true))
    );
    let r = t
        .create(
            &id,
            "cse-in/ae/g/fopt",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "both"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Ok);
    let rsps =
        r.pc.as_ref()
            .map(|p| p["m2m:agr"]["m2m:rsp"].clone())
            .unwrap_or_default();
    assert_eq!(rsps.as_array().map(Vec::len), Some(2));
    assert_eq!(rsps[0]["rsc"], json!(2001));
    for rn in ["a", "b"] {
        assert_eq!(
            attr(&t.retrieve(&id, &format!("cse-in/ae/{rn}/la")).await, "con"),
            json!("both")
        );
    }
    let r = t.retrieve(&id, "cse-in/ae/g/fopt/la").await;
    let rsps =
        r.pc.as_ref()
            .map(|p| p["m2m:agr"]["m2m:rsp"].clone())
            .unwrap_or_default();
    assert_eq!(rsps[1]["pc"]["m2m:cin"]["con"], json!("both"));
    // Members are still checked one by one: another AE gets 4103 per member.
    let other = t.register("other").await;
    assert_eq!(
        t.retrieve(&other, "cse-in/ae/g/fopt").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.retrieve(&id, "cse-in/ae/g/fopt/fopt").await.rsc,
        R::BadRequest
    );
}

#[tokio::test]
async fn member_rules() {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    t.create(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "a"}}),
    )
    .await;
    // TS-0004 7.4.13.2.1: the request is refused only for these.
    let cases = [
        (
            json!({"mt": 2, "csy": 2, "mnm": 5, "mid": ["cse-in/ae/a"]}),
            R::GroupMemberTypeInconsistent,
        ),
        // A member whose type cannot be read: missing here, answered as an unreadable one.
        (
            json!({"mt": 3, "mnm": 5, "mid": ["cse-in/ae/zzz"]}),
            R::ReceiverHasNoPrivilege,
        ),
        (json!({"mt": 3, "mnm": 0, "mid": []}), R::BadRequest),
        (json!({"mt": 3, "mid": ["cse-in/ae/a"]}), R::BadRequest),
        (
            json!({"mt": 3, "mnm": 5, "mid": [], "csy": 4}),
            R::BadRequest,
        ),
        (json!({"mt": 99, "mnm": 5, "mid": []}), R::BadRequest),
        (json!({"mnm": 5, "mid": [], "spty": "x"}), R::NotImplemented),
        (
            json!({"mt": 3, "mnm": 1, "mid": ["cse-in/ae/a"], "cnm": 1}),
            R::BadRequest,
        ),
        (
            json!({"mnm": 1, "mid": ["cse-in/ae/a", "cse-in/ae"]}),
            R::MaxNumberOfMemberExceeded,
        ),
    ];
    for (grp, want) in cases {
        assert_eq!(
            t.create(&id, "cse-in/ae", T::Group, json!({ "m2m:grp": grp }))
                .await
                .rsc,
            want,
            "{grp}"
        );
    }
    // Duplicates are dropped, ABANDON_MEMBER (the default) drops the AE, SET_MIXED keeps it.
    let g = t.create(&id, "cse-in/ae", T::Group, json!({"m2m:grp": {"rn": "g", "mt": 3, "mnm": 3, "mid": ["cse-in/ae/a", "cse-in/ae", "cse-in/ae/a"]}})).await;
    assert_eq!(
        (g.rsc, attr(&g, "mid"), attr(&g, "cnm"), attr(&g, "mt")),
        (R::Created, json!(["cse-in/ae/a"]), json!(1), json!(3))
    );
    let m = t.create(&id, "cse-in/ae", T::Group, json!({"m2m:grp": {"rn": "m", "mt": 3, "csy": 3, "mnm": 3, "mid": ["cse-in/ae/a", "cse-in/ae"]}})).await;
    assert_eq!(
        (m.rsc, attr(&m, "cnm"), attr(&m, "mt"), attr(&m, "mtv")),
        (R::Created, json!(2), json!(0), json!(true))
    );
    let u = t
        .update(&id, "cse-in/ae/g", json!({"m2m:grp": {"mid": []}}))
        .await;
    assert_eq!((u.rsc, attr(&u, "cnm")), (R::Updated, json!(0)));
    assert_eq!(t.retrieve(&id, "cse-in/ae/g/fopt").await.rsc, R::NoMembers);
}
