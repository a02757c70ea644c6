//! Access control, first cut: default policy, ACP rules, pvs, acpi updates.
mod common;

use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::json;

async fn two_aes() -> (TestCse, String, String) {
    let t = TestCse::new().await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "data"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Created);
    t.create(
        &owner,
        "cse-in/owner/data",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "secret"}}),
    )
    .await;
    (t, owner, other)
}

fn acp(rn: &str, pv: serde_json::Value, pvs: serde_json::Value) -> serde_json::Value {
    json!({"m2m:acp": {"rn": rn, "pv": {"acr": pv}, "pvs": {"acr": pvs}}})
}

#[tokio::test]
async fn default_policy_is_creator_only() {
    let (t, owner, other) = two_aes().await;
    assert_eq!(t.retrieve(&owner, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(t.retrieve(&owner, "cse-in/owner/data/la").await.rsc, R::Ok);
    for to in ["cse-in/owner", "cse-in/owner/data", "cse-in/owner/data/la"] {
        assert_eq!(
            t.retrieve(&other, to).await.rsc,
            R::OriginatorHasNoPrivilege,
            "{to}"
        );
    }
    assert_eq!(
        t.update(&other, "cse-in/owner/data", json!({"m2m:cnt": {"mni": 1}}))
            .await
            .rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.delete(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let r = t
        .create(
            &other,
            "cse-in/owner/data",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "x"}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // Registered AEs may read the CSEBase, but not create under it without a policy.
    assert_eq!(t.retrieve(&other, "cse-in").await.rsc, R::Ok);
    assert_eq!(
        t.create(&other, "cse-in", T::Container, json!({"m2m:cnt": {}}))
            .await
            .rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.update(&other, "cse-in", json!({"m2m:cb": {"lbl": ["x"]}}))
            .await
            .rsc,
        R::OriginatorHasNoPrivilege
    );
    // Nothing changed.
    assert_eq!(
        attr(&t.retrieve(&owner, "cse-in/owner/data").await, "cni"),
        json!(1)
    );
}

#[tokio::test]
async fn acp_rules_grant_exactly_their_bits() {
    let (t, owner, other) = two_aes().await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp(
                "share",
                json!([{"acor": [other], "acop": 2}, {"acor": [owner], "acop": 63}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let acp_ri = attr(&r, "ri");
    let u = t
        .update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"acpi": [acp_ri]}}),
        )
        .await;
    assert_eq!(u.rsc, R::Updated, "{:?}", u.pc);
    assert_eq!(t.retrieve(&other, "cse-in/owner/data").await.rsc, R::Ok);
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data/la").await.rsc,
        R::Ok,
        "instances follow their container"
    );
    assert_eq!(
        t.update(&other, "cse-in/owner/data", json!({"m2m:cnt": {"mni": 1}}))
            .await
            .rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.delete(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The owner is in the rules, so still has every right.
    assert_eq!(
        t.update(&owner, "cse-in/owner/data", json!({"m2m:cnt": {"mni": 5}}))
            .await
            .rsc,
        R::Updated
    );
    // The other AE may neither read nor change the ACP itself (pvs).
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/share").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let grab = t
        .update(
            &other,
            "cse-in/owner/share",
            json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        )
        .await;
    assert_eq!(grab.rsc, R::OriginatorHasNoPrivilege);
    // Nor swap the container's acpi: checked against pvs.
    let swap = t
        .update(
            &other,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"acpi": []}}),
        )
        .await;
    assert_eq!(swap.rsc, R::OriginatorHasNoPrivilege);
}

#[tokio::test]
async fn wildcards_all_and_discovery_bits() {
    let (t, owner, other) = two_aes().await;
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp(
                "wild",
                json!([{"acor": ["C*"], "acop": 32}, {"acor": [owner], "acop": 63}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await;
    let ri = attr(&r, "ri");
    t.update(
        &owner,
        "cse-in/owner/data",
        json!({"m2m:cnt": {"acpi": [ri]}}),
    )
    .await;
    // DISCOVERY but not RETRIEVE.
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let mut d = Request::new(
        Operation::Retrieve,
        "cse-in/owner/data",
        Some(other.clone()),
    );
    d.fc.add("fu", "1").expect("fu");
    assert_eq!(t.send(d).await.rsc, R::Ok);
    // `S*` does not match a C-ID; `all` matches anyone registered.
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp(
                "s",
                json!([{"acor": ["S*"], "acop": 2}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await;
    let s_ri = attr(&r, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp(
                "all",
                json!([{"acor": ["all"], "acop": 2}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await;
    let all_ri = attr(&r, "ri");
    t.create(
        &owner,
        "cse-in/owner",
        T::Container,
        json!({"m2m:cnt": {"rn": "pub", "acpi": [s_ri]}}),
    )
    .await;
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/pub").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The creator is not in the rules any more, so it needs pvs to change acpi: it has it.
    assert_eq!(
        t.update(
            &owner,
            "cse-in/owner/pub",
            json!({"m2m:cnt": {"acpi": [all_ri]}})
        )
        .await
        .rsc,
        R::Updated
    );
    assert_eq!(t.retrieve(&other, "cse-in/owner/pub").await.rsc, R::Ok);
}

#[tokio::test]
async fn acpi_rules() {
    let (t, owner, _other) = two_aes().await;
    let together = t
        .update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"acpi": ["x"], "mni": 3}}),
        )
        .await;
    assert_eq!(together.rsc, R::BadRequest);
    let not_acp = t
        .update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"acpi": ["cse-in/owner"]}}),
        )
        .await;
    assert_eq!(not_acp.rsc, R::BadRequest);
    let bad_rules = [
        json!({"m2m:acp": {"pv": {"acr": []}, "pvs": {"acr": []}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"]}]}, "pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"], "acop": 64}]}, "pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": [], "acop": 2}]}, "pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"], "acop": 2, "xyz": 1}]}, "pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": "all", "acop": 2}]}, "pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
        json!({"m2m:acp": {"pvs": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
    ];
    for body in bad_rules {
        assert_eq!(
            t.create(&owner, "cse-in/owner", T::AccessControlPolicy, body.clone())
                .await
                .rsc,
            R::BadRequest,
            "{body}"
        );
    }
    // acaf needs an authenticated originator: over plain HTTP the rule never matches.
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp(
                "authn",
                json!([{"acor": [owner], "acop": 63, "acaf": true}]),
                json!([{"acor": [owner], "acop": 63}]),
            ),
        )
        .await;
    let ri = attr(&r, "ri");
    assert_eq!(
        t.update(
            &owner,
            "cse-in/owner/data",
            json!({"m2m:cnt": {"acpi": [ri]}})
        )
        .await
        .rsc,
        R::Updated
    );
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.retrieve(ADMIN, "cse-in/owner/data").await.rsc,
        R::Ok,
        "the admin bypasses ACPs in this profile"
    );
}
