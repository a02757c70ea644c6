//! The creator (issue 12, group 8; TS-0004 clause 7.3.3.5, TS-0001 clause 9.6.1.3): `cr` is
//! part of a resource only when its CREATE asked for it with `cr: null`, while the creator
//! the security checks rely on (the default access policy, a subscription's subscriber) is
//! a record kept apart from the attribute, and resources stored by earlier versions, which
//! carry `cr` and no record, keep their creator.
use crate::common;

use common::*;
use cse::records::{StoreRecords, CREATOR};
use model::{ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};

#[tokio::test]
async fn cr_only_when_asked_while_the_default_policy_holds() {
    let t = TestCse::new().await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;

    let plain = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "plain"}}),
        )
        .await;
    assert_eq!(plain.rsc, R::Created);
    assert_eq!(attr(&plain, "cr"), Value::Null);
    let read = t.retrieve(&owner, "cse-in/owner/plain").await;
    assert_eq!((read.rsc, attr(&read, "cr")), (R::Ok, Value::Null));
    // No `acpi`: the creator alone holds every privilege, without `cr` on the wire.
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/plain").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.update(
            &owner,
            "cse-in/owner/plain",
            json!({"m2m:cnt": {"lbl": ["x"]}})
        )
        .await
        .rsc,
        R::Updated
    );

    let asked = t
        .create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": "asked", "cr": null}}),
        )
        .await;
    assert_eq!((asked.rsc, attr(&asked, "cr")), (R::Created, json!(owner)));
    assert_eq!(
        attr(&t.retrieve(&owner, "cse-in/owner/asked").await, "cr"),
        json!(owner)
    );

    // The same for every type with a creator: content instances, groups.
    for (cr, expected) in [(None, Value::Null), (Some(Value::Null), json!(owner))] {
        let mut cin = json!({"con": "v"});
        let mut grp = json!({"mnm": 2, "mid": ["cse-in/owner/plain"]});
        if let Some(cr) = &cr {
            cin["cr"] = cr.clone();
            grp["cr"] = cr.clone();
        }
        let r = t
            .create(
                &owner,
                "cse-in/owner/plain",
                T::ContentInstance,
                json!({ "m2m:cin": cin }),
            )
            .await;
        assert_eq!((r.rsc, attr(&r, "cr")), (R::Created, expected.clone()));
        let r = t
            .create(&owner, "cse-in/owner", T::Group, json!({ "m2m:grp": grp }))
            .await;
        assert_eq!((r.rsc, attr(&r, "cr")), (R::Created, expected.clone()));
        let path = format!("cse-in/owner/{}", attr(&r, "rn").as_str().unwrap_or(""));
        assert_eq!(t.retrieve(&owner, &path).await.rsc, R::Ok);
        assert_eq!(
            t.retrieve(&other, &path).await.rsc,
            R::OriginatorHasNoPrivilege
        );
    }

    // A value for `cr` is not the originator's to give (TS-0004 clause 7.3.3.3): 4000, and
    // nothing is created.
    for (ty, body) in [
        (
            T::Container,
            json!({"m2m:cnt": {"rn": "spoof", "cr": owner}}),
        ),
        (
            T::ContentInstance,
            json!({"m2m:cin": {"rn": "spoof", "con": "v", "cr": "Cx"}}),
        ),
        (
            T::Group,
            json!({"m2m:grp": {"rn": "spoof", "mnm": 1, "mid": [], "cr": 5}}),
        ),
    ] {
        let to = if ty == T::ContentInstance {
            "cse-in/owner/plain"
        } else {
            "cse-in/owner"
        };
        assert_eq!(
            t.create(&owner, to, ty, body).await.rsc,
            R::BadRequest,
            "{ty:?}"
        );
        assert_eq!(
            t.retrieve(&owner, &format!("{to}/spoof")).await.rsc,
            R::NotFound
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_cr_still_notifies_its_creator() {
    let t = TestCse::new().await;
    let rx = Receiver::start(2000).await;
    let ae = t.register_with("listener", json!({"poa": [rx.url]})).await;
    t.create(
        &ae,
        "cse-in/listener",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    // The subscriber is its own target: no `cr` (TS-0004 clause 7.4.8.2.1 sets it only for
    // another target), yet its standing is checked against its creator record.
    let sub = t
        .create(
            &ae,
            "cse-in/listener/c",
            T::Subscription,
            json!({"m2m:sub": {"rn": "s", "nu": [ae], "enc": {"net": [3]}}}),
        )
        .await;
    assert_eq!((sub.rsc, attr(&sub, "cr")), (R::Created, Value::Null));
    t.create(
        &ae,
        "cse-in/listener/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "7"}}),
    )
    .await;
    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0]["m2m:sgn"]["nev"]["rep"]["m2m:cin"]["con"],
        json!("7")
    );
    assert!(got[0]["m2m:sgn"].get("cr").is_none(), "{got:?}");
}

#[tokio::test]
async fn resources_stored_by_earlier_versions_keep_their_creator() {
    let t = TestCse::new().await;
    let owner = t.register("owner").await;
    let other = t.register("other").await;
    for rn in ["legacy", "orphan"] {
        t.create(
            &owner,
            "cse-in/owner",
            T::Container,
            json!({"m2m:cnt": {"rn": rn}}),
        )
        .await;
    }
    let store = t.cse.store().clone();
    let ri = |rn: &str| {
        store
            .get_by_srn(&format!("cse-in/owner/{rn}"))
            .ok()
            .flatten()
            .map(|r| r.ri().to_owned())
            .expect("created")
    };
    let (legacy, orphan) = (ri("legacy"), ri("orphan"));
    assert_eq!(
        store.creator_of(&store.get(&legacy).ok().flatten().expect("legacy")),
        Some(owner.clone())
    );
    // What an earlier version wrote: `cr` on every resource, no creator record. And a
    // resource with neither, which nobody but the admin may touch.
    let (id, l, o) = (owner.clone(), legacy.clone(), orphan.clone());
    store::write(store.as_ref(), move |t| {
        let mut r = t.get(&l)?.expect("legacy");
        r.attrs.insert("cr".into(), json!(id));
        t.update(&r)?;
        t.delete_record(CREATOR, &l)?;
        t.delete_record(CREATOR, &o)
    })
    .await
    .expect("write");
    assert_eq!(t.retrieve(&owner, "cse-in/owner/legacy").await.rsc, R::Ok);
    assert_eq!(
        t.retrieve(&other, "cse-in/owner/legacy").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(
        t.retrieve(&owner, "cse-in/owner/orphan").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    assert_eq!(t.retrieve(ADMIN, "cse-in/owner/orphan").await.rsc, R::Ok);
}
