//! Access control through `Cse::handle`: default policy, ACP rules, pvs, acpi updates,
//! contexts, groups and roles in `acor`, `macp` fan-out, and the admin's explainer.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::json;

async fn two_aes() -> (TestCse, String, String) {
    let (t, owner, other) = common::owner_and_other(cse::CseConfig::default()).await;
    t.create(
        &owner,
        "cse-in/owner/data",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "secret"}}),
    )
    .await;
    (t, owner, other)
}

/// Every privilege (acop 63) to `ae` alone: the usual `pvs`.
fn all_to(ae: &str) -> serde_json::Value {
    json!([{"acor": [ae], "acop": 63}])
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
    // Registered AEs may read the CSEBase, but not create under it without a policy; nobody
    // updates it (TS-0004 clause 7.4.3.2.3).
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
        R::OperationNotAllowed
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
                all_to(&owner),
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
                all_to(&owner),
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
            acp("s", json!([{"acor": ["S*"], "acop": 2}]), all_to(&owner)),
        )
        .await;
    let s_ri = attr(&r, "ri");
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp("all", json!([{"acor": ["all"], "acop": 2}]), all_to(&owner)),
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
                all_to(&owner),
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

/// Creates an ACP under `parent` as `fr` and returns its `ri`.
async fn make_acp(
    t: &TestCse,
    fr: &str,
    parent: &str,
    rn: &str,
    pv: serde_json::Value,
    pvs: serde_json::Value,
) -> String {
    let r = t
        .create(fr, parent, T::AccessControlPolicy, acp(rn, pv, pvs))
        .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    attr(&r, "ri").as_str().expect("ri").to_owned()
}

async fn set_acpi(t: &TestCse, fr: &str, to: &str, acpi: &[&str]) -> R {
    t.update(fr, to, json!({ "m2m:cnt": { "acpi": acpi } }))
        .await
        .rsc
}

#[tokio::test]
async fn malformed_contexts_are_refused_at_creation_and_update() {
    let (t, owner, _other) = two_aes().await;
    let ok_pvs = all_to(&owner);
    let bad_contexts = [
        json!([{"actw": ["* * * * * *"]}]),
        json!([{"actw": ["* * 24 * * * *"]}]),
        json!([{"actw": ["*/0 * * * * * *"]}]),
        json!([{"actw": ["1-2-3 * * * * * *"]}]),
        json!([{"acip": {"ipv4": ["10.0.0.0/33"]}}]),
        json!([{"acip": {"ipv4": ["10.0.0.256"]}}]),
        json!([{"acip": {"ipv6": ["2001:db8::/129"]}}]),
        json!([{"acip": {"ipv4": ["::1"]}}]),
        json!([{"aclr": {"accr": [91, 0, 10]}}]),
        json!([{"aclr": {"accr": [1, 2]}}]),
        json!([{"aclr": {"accc": ["KOR"]}}]),
        json!([{"aclr": {"accr": [1, 2, 3], "accc": ["KR"]}}]),
        json!([{"scl": 4}]),
        json!([{"unknown": 1}]),
    ];
    for acco in &bad_contexts {
        let pv = json!([{"acor": ["all"], "acop": 2, "acco": acco}]);
        let r = t
            .create(
                &owner,
                "cse-in/owner",
                T::AccessControlPolicy,
                acp("bad", pv.clone(), ok_pvs.clone()),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "create with {acco}");
        // In pvs too.
        let r = t
            .create(
                &owner,
                "cse-in/owner",
                T::AccessControlPolicy,
                acp(
                    "bad",
                    json!([]),
                    json!([{"acor": [owner], "acop": 63, "acco": acco}]),
                ),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "create pvs with {acco}");
    }
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/bad").await.rsc,
        R::NotFound,
        "nothing was created"
    );
    // A valid ACP cannot be broken by an UPDATE either, and stays as it was.
    make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "good",
        json!([{"acor": ["all"], "acop": 2, "acco": [{"actw": ["* * * * * * *"]}]}]),
        ok_pvs.clone(),
    )
    .await;
    for acco in &bad_contexts {
        let u = t
            .update(
                &owner,
                "cse-in/owner/good",
                json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"], "acop": 2, "acco": acco}]}}}),
            )
            .await;
        assert_eq!(u.rsc, R::BadRequest, "update with {acco}");
    }
    let r = t.retrieve(&owner, "cse-in/owner/good").await;
    assert_eq!(
        attr(&r, "pv")["acr"][0]["acco"][0]["actw"][0],
        "* * * * * * *"
    );
}

#[tokio::test]
async fn wildcard_and_prefix_tricks() {
    let (t, owner, other) = two_aes().await;
    let cases: Vec<(String, bool)> = vec![
        (other[..other.len() - 1].to_owned(), false),
        (format!("{other}x"), false),
        (format!("{}*", &other[..5]), true),
        ("C*".to_owned(), true),
        ("S*".to_owned(), false),
        ("/id-mn/*".to_owned(), false),
        (format!("/id-in/{other}"), true),
        ("/*/C*".to_owned(), true),
        (format!("//secure-cse.example/id-in/{other}"), true),
        (format!("//other.example/id-in/{other}"), false),
        ("//secure-cse.example".to_owned(), true),
        ("//other.example".to_owned(), false),
        ("/C*".to_owned(), false),
    ];
    for (i, (entry, granted)) in cases.iter().enumerate() {
        let ri = make_acp(
            &t,
            &owner,
            "cse-in/owner",
            &format!("p{i}"),
            json!([{"acor": [entry], "acop": 2}]),
            all_to(&owner),
        )
        .await;
        assert_eq!(
            set_acpi(&t, &owner, "cse-in/owner/data", &[&ri]).await,
            R::Updated
        );
        let want = if *granted {
            R::Ok
        } else {
            R::OriginatorHasNoPrivilege
        };
        assert_eq!(
            t.retrieve(&other, "cse-in/owner/data").await.rsc,
            want,
            "acor {entry:?}"
        );
    }
    // A bare `*` is neither an ID pattern nor `all`: refused (4000), nothing created.
    let r = t
        .create(
            &owner,
            "cse-in/owner",
            T::AccessControlPolicy,
            acp("star", json!([{"acor": ["*"], "acop": 2}]), all_to(&owner)),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    let message =
        r.pc.as_ref()
            .and_then(|pc| pc["m2m:dbg"].as_str())
            .unwrap_or_default();
    assert!(
        message.contains("acor entry '*'") && message.contains("\"all\""),
        "the message says what to write: {message}"
    );
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/star").await.rsc,
        R::NotFound
    );
}

#[tokio::test]
async fn self_granting_updates_are_refused() {
    let (t, owner, other) = two_aes().await;
    // The other AE may read and update the container's attributes, but not its policies.
    let shared = make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "shared",
        json!([{"acor": [other], "acop": 63}, {"acor": [owner], "acop": 63}]),
        all_to(&owner),
    )
    .await;
    assert_eq!(
        set_acpi(&t, &owner, "cse-in/owner/data", &[&shared]).await,
        R::Updated
    );
    assert_eq!(
        t.update(&other, "cse-in/owner/data", json!({"m2m:cnt": {"mni": 7}}))
            .await
            .rsc,
        R::Updated
    );
    // Its own policy, made under its own AE, granting itself everything...
    let mine = make_acp(
        &t,
        &other,
        "cse-in/other",
        "mine",
        json!([{"acor": [other], "acop": 63}]),
        json!([{"acor": [other], "acop": 63}]),
    )
    .await;
    // ...cannot be put on the container (acpi is checked against pvs, not pv)...
    assert_eq!(
        set_acpi(&t, &other, "cse-in/owner/data", &[&mine]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        set_acpi(&t, &other, "cse-in/owner/data", &[&shared, &mine]).await,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        set_acpi(&t, &other, "cse-in/owner/data", &[]).await,
        R::OriginatorHasNoPrivilege
    );
    // ...and the shared policy itself cannot be rewritten by pv rights alone.
    for change in [
        json!({"m2m:acp": {"pvs": {"acr": [{"acor": [other], "acop": 63}]}}}),
        json!({"m2m:acp": {"pv": {"acr": [{"acor": ["all"], "acop": 63}]}}}),
    ] {
        assert_eq!(
            t.update(&other, "cse-in/owner/shared", change).await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }
    assert_eq!(
        t.delete(&other, "cse-in/owner/shared").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let r = t.retrieve(&owner, "cse-in/owner/data").await;
    assert_eq!(attr(&r, "acpi"), json!([shared]));
    let r = t.retrieve(&owner, "cse-in/owner/shared").await;
    assert_eq!(
        attr(&r, "pvs"),
        json!({"acr": [{"acor": [owner], "acop": 63}]})
    );
    // Whoever holds pvs may change the policy: the owner can.
    assert_eq!(
        t.update(
            &owner,
            "cse-in/owner/shared",
            json!({"m2m:acp": {"pv": {"acr": [{"acor": [owner], "acop": 63}]}}})
        )
        .await
        .rsc,
        R::Updated
    );
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege,
        "the changed policy applies at once"
    );
}

#[tokio::test]
async fn groups_and_roles_in_acor() {
    let (t, owner, other) = two_aes().await;
    let member = t.register("member").await;
    let g = t
        .create(
            &owner,
            "cse-in/owner",
            T::Group,
            // MIXED (no `mt`): the owner may not read the other AE, so a typed group could
            // not check its type (TS-0004 7.4.13.2.1, 5105).
            json!({"m2m:grp": {"rn": "readers", "mnm": 5, "mid": ["cse-in/member"]}}),
        )
        .await;
    assert_eq!(g.rsc, R::Created, "{:?}", g.pc);
    let g_ri = attr(&g, "ri").as_str().expect("ri").to_owned();
    for (i, entry) in [g_ri.clone(), "/id-in/cse-in/owner/readers".to_owned()]
        .iter()
        .enumerate()
    {
        let ri = make_acp(
            &t,
            &owner,
            "cse-in/owner",
            &format!("g{i}"),
            json!([{"acor": [entry], "acop": 2}]),
            all_to(&owner),
        )
        .await;
        assert_eq!(
            set_acpi(&t, &owner, "cse-in/owner/data", &[&ri]).await,
            R::Updated
        );
        assert_eq!(
            t.retrieve(&member, "cse-in/owner/data").await.rsc,
            R::Ok,
            "{entry}"
        );
        assert_eq!(
            t.retrieve(&other, "cse-in/owner/data").await.rsc,
            R::OriginatorHasNoPrivilege,
            "{entry}"
        );
    }
    // A From that names the group is not a member of it.
    let r = t.retrieve(&g_ri, "cse-in/owner/data").await;
    assert_ne!(r.rsc, R::Ok);
    // Leaving the group takes the privilege away.
    t.update(
        &owner,
        "cse-in/owner/readers",
        json!({"m2m:grp": {"mid": []}}),
    )
    .await;
    assert_eq!(
        t.retrieve(&member, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // Roles: no request holds a role it was not verified to hold, whatever its From says.
    let s_ae = {
        let r = t
            .create(
                "Soperators",
                "cse-in",
                T::Ae,
                json!({"m2m:ae": {"rn": "ops", "api": "Nops", "rr": false, "srv": ["3"]}}),
            )
            .await;
        assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
        attr(&r, "aei").as_str().expect("aei").to_owned()
    };
    let ri = make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "roles",
        json!([{"acor": ["operators"], "acop": 2}]),
        all_to(&owner),
    )
    .await;
    assert_eq!(
        set_acpi(&t, &owner, "cse-in/owner/data", &[&ri]).await,
        R::Updated
    );
    assert_eq!(
        t.retrieve(&s_ae, "cse-in/owner/data").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_ne!(
        t.retrieve("operators", "cse-in/owner/data").await.rsc,
        R::Ok
    );
}

#[tokio::test]
async fn contexts_through_the_pipeline() {
    let (t, owner, other) = two_aes().await;
    // Test requests come from 127.0.0.1 over plain HTTP: no location, no credential level.
    let cases = [
        (json!({"acip": {"ipv4": ["127.0.0.0/8"]}}), true),
        (json!({"acip": {"ipv4": ["10.0.0.0/8"]}}), false),
        (json!({"acip": {"ipv6": ["::1"]}}), false),
        (json!({"actw": ["* * * * * * *"]}), true),
        (json!({"actw": ["* * * * * * 2000"]}), false),
        (json!({"aclr": {"accc": ["KR"]}}), false),
        (json!({"scl": 1}), false),
        (json!({}), true),
    ];
    for (i, (ctx, granted)) in cases.iter().enumerate() {
        let ri = make_acp(
            &t,
            &owner,
            "cse-in/owner",
            &format!("c{i}"),
            json!([{"acor": [other], "acop": 2, "acco": [ctx]}]),
            all_to(&owner),
        )
        .await;
        assert_eq!(
            set_acpi(&t, &owner, "cse-in/owner/data", &[&ri]).await,
            R::Updated
        );
        let want = if *granted {
            R::Ok
        } else {
            R::OriginatorHasNoPrivilege
        };
        assert_eq!(
            t.retrieve(&other, "cse-in/owner/data").await.rsc,
            want,
            "{ctx}"
        );
    }
}

#[tokio::test]
async fn macp_governs_fan_out() {
    let (t, owner, other) = two_aes().await;
    t.create(
        &owner,
        "cse-in/owner",
        T::Container,
        json!({"m2m:cnt": {"rn": "b"}}),
    )
    .await;
    let g = t
        .create(
            &owner,
            "cse-in/owner",
            T::Group,
            json!({"m2m:grp": {"rn": "g", "mt": 3, "mnm": 5, "mid": ["cse-in/owner/data", "cse-in/owner/b"]}}),
        )
        .await;
    assert_eq!(g.rsc, R::Created);
    // Without macp the group's own (default) policy governs: only the owner.
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/g/fopt").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let fan = make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "fan",
        json!([{"acor": [other], "acop": 2}]),
        all_to(&owner),
    )
    .await;
    let u = t
        .update(
            &owner,
            "cse-in/owner/g",
            json!({"m2m:grp": {"macp": [fan]}}),
        )
        .await;
    assert_eq!(u.rsc, R::Updated, "{:?}", u.pc);
    // macp lets the request fan out; each member still decides for itself.
    let r = t.retrieve(&other, "cse-in/owner/g/fopt").await;
    assert_eq!(r.rsc, R::Ok);
    let rsps =
        r.pc.as_ref()
            .map(|p| p["m2m:agr"]["m2m:rsp"].clone())
            .unwrap_or_default();
    assert_eq!(rsps[0]["rsc"], json!(4103));
    assert_eq!(rsps[1]["rsc"], json!(4103));
    // macp grants RETRIEVE only; the group resource itself is still the owner's.
    assert_eq!(
        t.delete(&other, "cse-in/owner/g/fopt").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/g").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // macp replaces the group's policies for fan-out: the owner is not in it.
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/g/fopt").await.rsc,
        R::OriginatorHasNoPrivilege
    );
}

#[tokio::test]
async fn attributes_that_decide_access_need_the_self_privileges() {
    let (t, owner, other) = two_aes().await;
    // The other AE may UPDATE (acop 4) the group and the container, nothing more.
    let upd = make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "upd",
        json!([{"acor": [owner], "acop": 63}, {"acor": [other], "acop": 4}]),
        all_to(&owner),
    )
    .await;
    let open = make_acp(
        &t,
        &other,
        "cse-in/other",
        "open",
        json!([{"acor": ["all"], "acop": 63}]),
        json!([{"acor": [other], "acop": 63}]),
    )
    .await;
    let g = t
        .create(
            &owner,
            "cse-in/owner",
            T::Group,
            json!({"m2m:grp": {"rn": "g", "mt": 3, "mnm": 5, "mid": ["cse-in/owner/data"], "acpi": [upd]}}),
        )
        .await;
    assert_eq!(g.rsc, R::Created, "{:?}", g.pc);
    assert_eq!(
        set_acpi(&t, &owner, "cse-in/owner/data", &[&upd]).await,
        R::Updated
    );
    // Ordinary attributes: granted by pv.
    let r = t
        .update(&other, "cse-in/owner/g", json!({"m2m:grp": {"lbl": ["x"]}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    // macp (who may fan out), mid (who a group in acor admits) and acpi: refused, with or
    // without other attributes.
    for (to, change) in [
        ("cse-in/owner/g", json!({"m2m:grp": {"macp": [open]}})),
        (
            "cse-in/owner/g",
            json!({"m2m:grp": {"mid": ["cse-in/owner/data", "cse-in/other"]}}),
        ),
        (
            "cse-in/owner/g",
            json!({"m2m:grp": {"macp": [open], "lbl": ["y"]}}),
        ),
        ("cse-in/owner/data", json!({"m2m:cnt": {"acpi": [open]}})),
    ] {
        let r = t.update(&other, to, change.clone()).await;
        assert_eq!(r.rsc, R::OriginatorHasNoPrivilege, "{change}");
    }
    let back = t.retrieve(&owner, "cse-in/owner/g").await;
    assert_eq!(attr(&back, "macp"), serde_json::Value::Null);
    assert_eq!(attr(&back, "lbl"), json!(["x"]));
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/g/fopt").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    // The owner may, but only with names of existing ACPs (at creation too).
    let r = t
        .update(
            &owner,
            "cse-in/owner/g",
            json!({"m2m:grp": {"macp": ["nothing"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    let r = t
        .update(
            &owner,
            "cse-in/owner/g",
            json!({"m2m:grp": {"macp": [upd]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    // nu (who receives what a subscription reports): the owner's subscription, whose ACP
    // lets the other AE UPDATE it, cannot be redirected to the other AE's endpoint.
    let rx = Receiver::start(2000).await;
    let sub = t
        .create(
            &owner,
            "cse-in/owner/data",
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [rx.url], "acpi": [upd]}}),
        )
        .await;
    assert_eq!(sub.rsc, R::Created, "{:?}", sub.pc);
    let r = t
        .update(
            &other,
            "cse-in/owner/data/s",
            json!({"m2m:sub": {"nu": ["http://127.0.0.1:9/elsewhere"]}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .update(
            &other,
            "cse-in/owner/data/s",
            json!({"m2m:sub": {"exc": 5}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(
        attr(&t.retrieve(&owner, "cse-in/owner/data/s").await, "nu"),
        json!([rx.url])
    );
    for (ty, body) in [
        (
            T::Container,
            json!({"m2m:cnt": {"rn": "c2", "acpi": ["nothing"]}}),
        ),
        (
            T::Group,
            json!({"m2m:grp": {"rn": "g2", "mt": 3, "mnm": 5, "mid": ["cse-in/owner/data"], "macp": ["nothing"]}}),
        ),
    ] {
        let r = t.create(&owner, "cse-in/owner", ty, body.clone()).await;
        assert_eq!(r.rsc, R::BadRequest, "{body}");
    }
}

fn explain_query(pairs: &[(&str, &str)]) -> cse::security_manager::admin::ExplainQuery {
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    cse::security_manager::admin::ExplainQuery::parse(&params).expect("valid query")
}

async fn explain(t: &TestCse, fr: &str, pairs: &[(&str, &str)]) -> model::Response {
    let ctx =
        cse::SecurityContext::plaintext("test", Some("127.0.0.1:40000".parse().expect("addr")));
    t.cse
        .admin(
            &ctx,
            Some(fr.to_owned()),
            "rq-explain",
            cse::security_manager::admin::AdminCommand::Explain(explain_query(pairs)),
        )
        .await
}

#[tokio::test]
async fn the_admin_can_ask_why_and_the_requester_cannot_see_it() {
    let (t, owner, other) = two_aes().await;
    let ri = make_acp(
        &t,
        &owner,
        "cse-in/owner",
        "why",
        json!([
            {"acor": [owner], "acop": 63},
            {"acor": [other], "acop": 2, "acco": [{"actw": ["* * 8-17 * * 1-5 *"], "acip": {"ipv4": ["10.0.0.0/8"]}}]}
        ]),
        all_to(&owner),
    )
    .await;
    assert_eq!(
        set_acpi(&t, &owner, "cse-in/owner/data", &[&ri]).await,
        R::Updated
    );
    // The refusal says nothing about rules.
    let refused = t.retrieve(&other, "cse-in/owner/data").await;
    assert_eq!(refused.rsc, R::OriginatorHasNoPrivilege);
    let body = serde_json::to_string(&refused.pc).expect("json");
    for secret in ["acip", "actw", "10.0.0.0", &ri, "rule"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    // The admin gets the trace, with the failing conditions named.
    let r = explain(
        &t,
        ADMIN,
        &[
            ("from", &other),
            ("to", "cse-in/owner/data"),
            ("op", "retrieve"),
            ("time", "20260302T180000"),
        ],
    )
    .await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    let e = &r.pc.as_ref().expect("content")["explain"];
    assert_eq!(e["decision"], "refused");
    assert_eq!(e["basis"]["via"], "acpi");
    assert_eq!(e["policies"][0]["acp"], json!(ri));
    let rule1 = &e["policies"][0]["rules"][0];
    assert_eq!(rule1["failed"][0]["condition"], "originator");
    let rule2 = &e["policies"][0]["rules"][1];
    let failed: Vec<&str> = rule2["failed"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["condition"].as_str())
        .collect();
    assert_eq!(failed, vec!["time-window", "ip-address"]);
    // The same request at 10:00 from 10.1.1.1 would be granted.
    let r = explain(
        &t,
        ADMIN,
        &[
            ("from", &other),
            ("to", "cse-in/owner/data"),
            ("op", "retrieve"),
            ("time", "20260302T100000"),
            ("ip", "10.1.1.1"),
        ],
    )
    .await;
    let e = &r.pc.as_ref().expect("content")["explain"];
    assert_eq!(e["decision"], "granted");
    assert_eq!(e["policies"][0]["rules"][1]["holds"], true);
    // Default policy, acpi updates and the admin are explained too.
    let r = explain(
        &t,
        ADMIN,
        &[("from", &owner), ("to", "cse-in/other"), ("op", "delete")],
    )
    .await;
    assert_eq!(
        r.pc.as_ref().expect("content")["explain"]["decision"],
        "refused"
    );
    assert_eq!(
        r.pc.as_ref().expect("content")["explain"]["basis"]["kind"],
        "default-policy"
    );
    let r = explain(
        &t,
        ADMIN,
        &[
            ("from", &other),
            ("to", "cse-in/owner/data"),
            ("op", "update"),
            ("acpi", "true"),
        ],
    )
    .await;
    let e = &r.pc.as_ref().expect("content")["explain"];
    assert_eq!(
        (e["check"].as_str(), e["policies"][0]["set"].as_str()),
        (Some("acpi-update"), Some("pvs"))
    );
    let r = explain(
        &t,
        ADMIN,
        &[
            ("from", ADMIN),
            ("to", "cse-in/owner/data"),
            ("op", "delete"),
        ],
    )
    .await;
    assert_eq!(
        r.pc.as_ref().expect("content")["explain"]["basis"]["kind"],
        "privileged"
    );
    // Only the admin may ask.
    let r = explain(
        &t,
        &owner,
        &[
            ("from", &other),
            ("to", "cse-in/owner/data"),
            ("op", "retrieve"),
        ],
    )
    .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // Bad questions are bad requests.
    for bad in [
        vec![("from", "Cx"), ("to", "cse-in")],
        vec![("from", "Cx"), ("to", "cse-in"), ("op", "create")],
        vec![("from", "Cx"), ("to", "cse-in"), ("op", "jump")],
        vec![
            ("from", "Cx"),
            ("to", "cse-in"),
            ("op", "retrieve"),
            ("level", "9"),
        ],
        vec![
            ("from", "Cx"),
            ("to", "cse-in"),
            ("op", "retrieve"),
            ("lat", "1"),
        ],
        vec![
            ("from", "Cx"),
            ("to", "cse-in"),
            ("op", "retrieve"),
            ("zzz", "1"),
        ],
        vec![
            ("from", "Cx"),
            ("from", "Cy"),
            ("to", "cse-in"),
            ("op", "retrieve"),
        ],
    ] {
        let params: Vec<(String, String)> = bad
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(
            cse::security_manager::admin::ExplainQuery::parse(&params).map_err(|e| e.rsc),
            Err(R::BadRequest),
            "{bad:?}"
        );
    }
}

/// `m2m explain --country KR` alone: a country is a location fact without coordinates (it
/// used to be refused unless lat and lon came with it).
#[test]
fn explain_takes_a_country_without_coordinates() {
    let q = explain_query(&[
        ("from", "Cx"),
        ("to", "cse-in"),
        ("op", "retrieve"),
        ("country", "KR"),
    ]);
    let location = q.location.expect("a location");
    assert_eq!(location.position, None);
    assert_eq!(location.country.as_deref(), Some("KR"));
}
