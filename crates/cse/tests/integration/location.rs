//! Geo-location: the `loc` attribute (`m2m:geoCoordinates`) on the types that carry it,
//! validated on CREATE and UPDATE, and the geo-query of discovery (`gmty`, `geom`, `gsf`).
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, Response, ResponseStatusCode as R};
use serde_json::{json, Value};

/// The last path segments of an `m2m:uril`, sorted.
fn found(r: &Response) -> Vec<String> {
    let mut names: Vec<String> = uril(r)
        .iter()
        .map(|u| u.rsplit('/').next().unwrap_or(u).to_owned())
        .collect();
    names.sort();
    names
}

const PARIS: &str = "[2.35, 48.85]";
/// A box around Paris (longitude 2..3, latitude 48..49).
const ILE_DE_FRANCE: &str = "[[[2,48],[3,48],[3,49],[2,49],[2,48]]]";

#[tokio::test]
async fn loc_is_validated_on_create_and_update() {
    let t = TestCse::new().await;
    let ae = t
        .register_with("geo", json!({"loc": {"typ": 1, "crd": PARIS}}))
        .await;
    let r = t.retrieve(&ae, "cse-in/geo").await;
    assert_eq!(attr(&r, "loc"), json!({"typ": 1, "crd": PARIS}));
    for bad in [
        json!({"typ": 1, "crd": "[2.35, 91]"}),
        json!({"typ": 1, "crd": [181, 0]}),
        json!({"typ": 1, "crd": "[2.35"}),
        json!({"typ": 9, "crd": [0, 0]}),
        json!({"typ": 3, "crd": [[[0, 0], [1, 0], [1, 1]]]}),
        json!({"typ": 3, "crd": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}),
        json!({"typ": 2, "crd": [[0, 0]]}),
        json!({"crd": [0, 0]}),
        json!("2.35,48.85"),
    ] {
        let r = t
            .create(
                &ae,
                "cse-in/geo",
                T::Container,
                json!({"m2m:cnt": {"rn": "c", "loc": bad}}),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
        assert_eq!(
            t.retrieve(&ae, "cse-in/geo/c").await.rsc,
            R::NotFound,
            "{bad}"
        );
        let r = t
            .update(&ae, "cse-in/geo", json!({"m2m:ae": {"loc": bad}}))
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{bad}");
        let r = t.retrieve(&ae, "cse-in/geo").await;
        assert_eq!(attr(&r, "loc"), json!({"typ": 1, "crd": PARIS}), "{bad}");
    }
    // Every type whose table defines it takes it; others refuse it as unknown.
    let line = json!({"typ": 2, "crd": [[2.0, 48.0], [2.5, 48.5]]});
    let r = t
        .created(
            &ae,
            "cse-in/geo",
            T::Container,
            json!({"m2m:cnt": {"rn": "c", "loc": line}}),
        )
        .await;
    assert_eq!(attr(&r, "loc"), line);
    t.created(
        &ae,
        "cse-in/geo",
        T::Group,
        json!({"m2m:grp": {"rn": "g", "mid": [], "mnm": 2, "loc": line}}),
    )
    .await;
    t.created(
        &ae,
        "cse-in/geo",
        T::TimeSeries,
        json!({"m2m:ts": {"rn": "t", "loc": line}}),
    )
    .await;
    let r = t
        .create(
            &ae,
            "cse-in/geo/c",
            T::ContentInstance,
            json!({"m2m:cin": {"con": "x", "loc": line}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    // UPDATE replaces the location and null removes it.
    let r = t
        .update(
            &ae,
            "cse-in/geo/c",
            json!({"m2m:cnt": {"loc": {"typ": 1, "crd": [2.9, 48.9]}}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(attr(&r, "loc"), json!({"typ": 1, "crd": [2.9, 48.9]}));
    let r = t
        .update(&ae, "cse-in/geo/c", json!({"m2m:cnt": {"loc": null}}))
        .await;
    assert_eq!(r.rsc, R::Updated);
    assert_eq!(
        attr(&t.retrieve(&ae, "cse-in/geo/c").await, "loc"),
        Value::Null
    );
}

/// An AE holding containers at Paris (`paris`), Berlin (`berlin`), one whose location is a
/// polygon around Paris (`region`), a line across it (`road`) and one without a location.
async fn places() -> (TestCse, String) {
    let t = TestCse::new().await;
    let ae = t.register("geo").await;
    for (rn, loc) in [
        ("paris", json!({"typ": 1, "crd": PARIS})),
        ("berlin", json!({"typ": 1, "crd": [13.4, 52.5]})),
        (
            "region",
            json!({"typ": 3, "crd": "[[[2.2,48.7],[2.5,48.7],[2.5,49],[2.2,49],[2.2,48.7]]]"}),
        ),
        ("road", json!({"typ": 2, "crd": [[1.5, 48.5], [2.5, 48.5]]})),
        ("nowhere", Value::Null),
    ] {
        let mut cnt = json!({"rn": rn});
        if !loc.is_null() {
            cnt["loc"] = loc;
        }
        let r = t
            .create(&ae, "cse-in/geo", T::Container, json!({ "m2m:cnt": cnt }))
            .await;
        assert_eq!(r.rsc, R::Created, "{rn}: {:?}", r.pc);
    }
    (t, ae)
}

#[tokio::test]
async fn geo_query_finds_resources_by_their_location() {
    let (t, ae) = places().await;
    // Within: the point and the polygon lie in the box; the road leaves it.
    let r = t
        .send(discovery(
            &ae,
            "cse-in/geo",
            &[("gmty", "3"), ("geom", ILE_DE_FRANCE), ("gsf", "1")],
        ))
        .await;
    assert_eq!(found(&r), ["paris", "region"]);
    // Contains: the polygon around Paris, and the point equal to it (a point contains
    // itself); Berlin and the road do not.
    let r = t
        .send(discovery(
            &ae,
            "cse-in/geo",
            &[("gmty", "1"), ("geom", PARIS), ("gsf", "2")],
        ))
        .await;
    assert_eq!(found(&r), ["paris", "region"]);
    // Intersects: the box meets the point, the polygon and the road.
    let r = t
        .send(discovery(
            &ae,
            "cse-in/geo",
            &[("gmty", "3"), ("geom", ILE_DE_FRANCE), ("gsf", "3")],
        ))
        .await;
    assert_eq!(found(&r), ["paris", "region", "road"]);
    // Combined with another criterion (AND), and with OR.
    let r = t
        .send(discovery(
            &ae,
            "cse-in/geo",
            &[
                ("gmty", "3"),
                ("geom", ILE_DE_FRANCE),
                ("gsf", "3"),
                ("rn", "road"),
            ],
        ))
        .await;
    assert_eq!(found(&r), ["road"]);
    let r = t
        .send(discovery(
            &ae,
            "cse-in/geo",
            &[
                ("gmty", "1"),
                ("geom", PARIS),
                ("gsf", "2"),
                ("rn", "berlin"),
                ("fo", "2"),
            ],
        ))
        .await;
    assert_eq!(found(&r), ["berlin", "paris", "region"]);
    // The geo-query as JSON `fc` (non-HTTP bindings), coordinates as an array.
    let mut req = Request::new(Operation::Retrieve, "cse-in/geo", Some(ae.clone()));
    req.fc = model::FilterCriteria::from_json(
        &json!({"fu": 1, "gmty": 1, "geom": [13.4, 52.5], "gsf": 3}),
    )
    .expect("fc");
    assert_eq!(found(&t.send(req).await), ["berlin"]);
}

#[tokio::test]
async fn an_incomplete_or_bad_geo_query_is_refused() {
    let (t, ae) = places().await;
    for query in [
        vec![("gmty", "1"), ("geom", PARIS)],
        vec![("geom", PARIS), ("gsf", "1")],
        vec![("gmty", "1"), ("gsf", "1")],
        vec![("gsf", "3")],
    ] {
        let r = t.send(discovery(&ae, "cse-in/geo", &query)).await;
        assert_eq!(r.rsc, R::BadRequest, "{query:?}");
    }
    for (key, value) in [("gmty", "7"), ("gsf", "4"), ("gmty", "x")] {
        let mut fc = model::FilterCriteria::default();
        let err = fc.add(key, value).err().map(|e| e.rsc);
        assert_eq!(err, Some(R::BadRequest), "{key}={value}");
    }
    let mut fc = model::FilterCriteria::default();
    fc.add("gmty", "1").ok();
    fc.add("gsf", "1").ok();
    for geom in ["[2.35, 95]", "[[2,48],[3,48]]", "nope", "[]"] {
        let err = fc.clone().add("geom", geom).err().map(|e| e.rsc);
        assert_eq!(err, Some(R::BadRequest), "{geom}");
    }
    let mut req = Request::new(Operation::Retrieve, "cse-in/geo", Some(ae.clone()));
    let bad =
        model::FilterCriteria::from_json(&json!({"fu": 1, "gmty": 1, "geom": [200, 0], "gsf": 1}));
    assert_eq!(bad.err().map(|e| e.rsc), Some(R::BadRequest));
    req.fc.fu = Some(1);
    req.fc.gmty = Some(1);
    req.fc.gsf = Some(1);
    assert_eq!(t.send(req).await.rsc, R::BadRequest);
}

#[tokio::test]
async fn the_geo_query_is_no_oracle_for_locations_the_originator_cannot_read() {
    let (t, owner) = places().await;
    let other = t.register("other").await;
    // `other` may not RETRIEVE the owner's containers: nothing is found through loc.
    let r = t
        .send(discovery(
            &other,
            "cse-in/geo",
            &[("gmty", "3"), ("geom", ILE_DE_FRANCE), ("gsf", "3")],
        ))
        .await;
    assert!(
        matches!(r.rsc, R::Ok | R::OriginatorHasNoPrivilege),
        "{:?}",
        r.rsc
    );
    if r.rsc == R::Ok {
        assert!(found(&r).is_empty());
    }
    let r = t
        .send(discovery(
            &owner,
            "cse-in/geo",
            &[("gmty", "3"), ("geom", ILE_DE_FRANCE), ("gsf", "3")],
        ))
        .await;
    assert_eq!(found(&r).len(), 3);
}
