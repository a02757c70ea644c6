//! AE registration and the originator check (TS-0004 clause 7.3.2.1).
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::json;

fn ae(rn: &str) -> serde_json::Value {
    json!({"m2m:ae": {"rn": rn, "api": "Napp", "rr": false, "srv": ["3"]}})
}

#[tokio::test]
async fn cse_assigns_random_c_ids() {
    let t = TestCse::new().await;
    let a = t.register("a").await;
    let b = t.register("b").await;
    assert!(a.starts_with('C') && a.len() == 21, "{a}");
    assert_ne!(a, b);
    // An empty originator also asks the CSE for an ID.
    let r = t.create("", "cse-in", T::Ae, ae("c")).await;
    assert_eq!(r.rsc, R::Created);
    assert!(attr(&r, "aei").as_str().is_some_and(|s| s.starts_with('C')));
    let r = t.create("S", "cse-in", T::Ae, ae("s")).await;
    assert!(attr(&r, "aei").as_str().is_some_and(|s| s.starts_with('S')));
}

#[tokio::test]
async fn chosen_stems_and_reregistration() {
    let t = TestCse::new().await;
    let r = t.create("Cmine", "cse-in", T::Ae, ae("mine")).await;
    assert_eq!(r.rsc, R::Created);
    assert_eq!(attr(&r, "ri"), json!("Cmine"));
    assert_eq!(attr(&r, "aei"), json!("Cmine"));
    let again = t.create("Cmine", "cse-in", T::Ae, ae("other")).await;
    assert_eq!(again.rsc, R::OriginatorHasAlreadyRegistered);
    let admin = t.create(ADMIN, "cse-in", T::Ae, ae("adm")).await;
    assert_eq!(admin.rsc, R::OperationNotAllowed);
}

#[tokio::test]
async fn registration_errors() {
    let t = TestCse::new().await;
    let bad_api = t
        .create(
            "C",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"api": "app", "rr": false}}),
        )
        .await;
    assert_eq!(bad_api.rsc, R::BadRequest);
    let no_rr = t
        .create("C", "cse-in", T::Ae, json!({"m2m:ae": {"api": "Napp"}}))
        .await;
    assert_eq!(no_rr.rsc, R::BadRequest);
    let no_api = t
        .create("C", "cse-in", T::Ae, json!({"m2m:ae": {"rr": true}}))
        .await;
    assert_eq!(no_api.rsc, R::BadRequest);
    let ro = t
        .create(
            "C",
            "cse-in",
            T::Ae,
            json!({"m2m:ae": {"api": "Napp", "rr": true, "aei": "Cx"}}),
        )
        .await;
    assert_eq!(ro.rsc, R::BadRequest);
    let id = t.register("host").await;
    t.create(
        &id,
        "cse-in/host",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    let nested = t.create("C", "cse-in/host/c", T::Ae, ae("nested")).await;
    assert_eq!(nested.rsc, R::InvalidChildResourceType);
    // Nothing was created by the refused requests.
    let all = t
        .cse
        .store()
        .children("id-in", Some(T::Ae))
        .expect("children");
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn deleting_an_ae_deletes_its_subtree_and_registration() {
    let t = TestCse::new().await;
    let id = t.register("gone").await;
    t.create(
        &id,
        "cse-in/gone",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    t.create(
        &id,
        "cse-in/gone/c",
        T::ContentInstance,
        json!({"m2m:cin": {"con": "x"}}),
    )
    .await;
    assert_eq!(t.delete(&id, "cse-in/gone").await.rsc, R::Deleted);
    assert_eq!(t.retrieve(ADMIN, "cse-in/gone/c").await.rsc, R::NotFound);
    assert!(t
        .cse
        .store()
        .descendants("cse-in/gone", None)
        .expect("query")
        .is_empty());
    // Its AE-ID is no longer a registered originator.
    assert_eq!(
        t.retrieve(&id, "cse-in").await.rsc,
        R::OriginatorNotAuthenticated
    );
}

#[tokio::test]
async fn originator_rules_without_association() {
    let t = TestCse::new().await;
    let id = t.register("me").await;
    let mut missing = Request::new(Operation::Retrieve, "cse-in", None);
    missing.rqi = "m1".into();
    let r = t.send(missing).await;
    assert_eq!((r.rsc, r.rqi.as_str()), (R::BadRequest, "m1"));
    assert_eq!(
        t.retrieve("Cnobody", "cse-in").await.rsc,
        R::OriginatorNotAuthenticated
    );
    assert_eq!(
        t.retrieve("/id-mn", "cse-in").await.rsc,
        R::SecurityAssociationRequired
    );
    assert_eq!(
        t.retrieve("//other.sp/id-in/Cx", "cse-in").await.rsc,
        R::SecurityAssociationRequired
    );
    assert_eq!(
        t.retrieve("/id-other/Cx", "cse-in").await.rsc,
        R::SecurityAssociationRequired
    );
    assert_eq!(t.retrieve("admin", "cse-in").await.rsc, R::BadRequest);
    // The same AE in SP-relative and absolute form.
    assert_eq!(
        t.retrieve(&format!("/id-in/{id}"), "cse-in/me").await.rsc,
        R::Ok
    );
    assert_eq!(
        t.retrieve(&format!("//secure-cse.example/id-in/{id}"), "cse-in/me")
            .await
            .rsc,
        R::Ok
    );
    // A spoofed CSE-ID cannot create anything either.
    let r = t
        .create("/id-in", "cse-in", T::Container, json!({"m2m:cnt": {}}))
        .await;
    assert_eq!(r.rsc, R::SecurityAssociationRequired);
}
