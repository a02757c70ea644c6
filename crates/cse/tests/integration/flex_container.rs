//! `<flexContainer>` (TS-0004 clause 7.4.37; TS-0001 clause 9.6.35) with the Home Appliance
//! specialisations: a `deviceLight` and its module classes created, read, updated and
//! deleted under their own wrapper keys; every representation checked against the
//! specialisation's schema, with the precise code for each misuse and nothing changed;
//! access control, subscriptions, discovery, expiration and restarts.
use crate::common;

use common::*;
use model::{Operation, Request, ResourceType as T, ResponseStatusCode as R};
use serde_json::{json, Value};
use std::sync::Arc;

const LIGHT: &str = "org.onem2m.common.device.deviceLight";
const SWITCH: &str = "org.onem2m.common.moduleclass.binarySwitch";
const COLOUR: &str = "org.onem2m.common.moduleclass.colour";

/// A CSE with the AE `ae` holding the light `cse-in/ae/lamp` and its switch
/// `cse-in/ae/lamp/switch` (off).
async fn setup_with(config: cse::CseConfig) -> (TestCse, String) {
    let t = TestCse::with_config(config).await;
    let id = t.register("ae").await;
    t.created(
        &id,
        "cse-in/ae",
        T::FlexContainer,
        json!({"cod:devLt": {"rn": "lamp", "cnd": LIGHT}}),
    )
    .await;
    t.created(
        &id,
        "cse-in/ae/lamp",
        T::FlexContainer,
        json!({"cod:binSh": {"rn": "switch", "cnd": SWITCH, "powSe": false}}),
    )
    .await;
    (t, id)
}

async fn setup() -> (TestCse, String) {
    setup_with(cse::CseConfig::default()).await
}

/// The representation under `key` in a response.
fn rep(r: &model::Response, key: &str) -> Value {
    r.pc.as_ref()
        .and_then(|pc| pc.get(key))
        .cloned()
        .unwrap_or_else(|| panic!("no '{key}' in {:?}", r.pc))
}

#[tokio::test]
async fn a_light_and_its_switch_live_under_their_own_keys() {
    let (t, id) = setup().await;
    let r = t.retrieve(&id, "cse-in/ae/lamp/switch").await;
    assert_eq!(r.rsc, R::Ok);
    let sw = rep(&r, "cod:binSh");
    assert_eq!(sw["ty"], json!(28));
    assert_eq!(sw["cnd"], json!(SWITCH));
    assert_eq!(sw["powSe"], json!(false));
    assert_eq!(sw["st"], json!(0));
    assert_eq!(sw["cs"], json!(5), "\"false\" is 5 bytes");
    assert_eq!(
        sw["pi"],
        attr(&t.retrieve(&id, "cse-in/ae/lamp").await, "ri")
    );
    let lamp = rep(&t.retrieve(&id, "cse-in/ae/lamp").await, "cod:devLt");
    assert_eq!(
        (lamp["cs"].clone(), lamp["cnd"].clone()),
        (json!(0), json!(LIGHT))
    );

    // UPDATE: the switch is turned on; st and cs follow, the answer is under the same key.
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let sw = rep(&r, "cod:binSh");
    assert_eq!(
        (sw["powSe"].clone(), sw["st"].clone(), sw["cs"].clone()),
        (json!(true), json!(1), json!(4))
    );
    let sw = rep(&t.retrieve(&id, "cse-in/ae/lamp/switch").await, "cod:binSh");
    assert_eq!(sw["powSe"], json!(true));
    // An optional custom attribute set, then removed with null.
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"dgt": "20260101T120000"}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(rep(&r, "cod:binSh")["cs"], json!(4 + 15));
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"dgt": null}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert!(rep(&r, "cod:binSh").get("dgt").is_none());

    // A colour beside it; children listed with their specialisation's key.
    t.created(
        &id,
        "cse-in/ae/lamp",
        T::FlexContainer,
        json!({"cod:color": {"rn": "colour", "cnd": COLOUR, "red": 255, "green": 128, "blue": 0}}),
    )
    .await;
    let mut all = Request::new(Operation::Retrieve, "cse-in/ae/lamp", Some(id.clone()));
    all.rcn = Some(model::ResultContent::AttributesAndChildResources);
    let r = t.send(all).await;
    assert_eq!(r.rsc, R::Ok);
    let lamp = rep(&r, "cod:devLt");
    assert_eq!(lamp["cod:binSh"][0]["rn"], json!("switch"));
    assert_eq!(lamp["cod:color"][0]["red"], json!(255));

    // DELETE of the light takes its module classes with it.
    assert_eq!(t.delete(&id, "cse-in/ae/lamp").await.rsc, R::Deleted);
    for gone in [
        "cse-in/ae/lamp",
        "cse-in/ae/lamp/switch",
        "cse-in/ae/lamp/colour",
    ] {
        assert_eq!(t.retrieve(&id, gone).await.rsc, R::NotFound, "{gone}");
    }
}

#[tokio::test]
async fn release_3_home_domain_names_are_accepted_and_kept() {
    let t = TestCse::new().await;
    let id = t.register("ae").await;
    t.created(
        &id,
        "cse-in/ae",
        T::FlexContainer,
        json!({"hd:deLit": {"rn": "old", "cnd": "org.onem2m.home.device.deviceLight"}}),
    )
    .await;
    t.created(&id,
            "cse-in/ae/old",
            T::FlexContainer,
            json!({"hd:binSh": {"rn": "sw", "cnd": "org.onem2m.home.moduleclass.binarySwitch", "powSe": true}})).await;
    let r = t.retrieve(&id, "cse-in/ae/old/sw").await;
    assert_eq!(rep(&r, "hd:binSh")["powSe"], json!(true));
    // Its UPDATE speaks the same naming; the other one is refused.
    let r = t
        .update(
            &id,
            "cse-in/ae/old/sw",
            json!({"cod:binSh": {"powSe": false}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest);
    let r = t
        .update(
            &id,
            "cse-in/ae/old/sw",
            json!({"hd:binSh": {"powSe": false}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
}

#[tokio::test]
async fn creations_that_break_the_schema_are_refused_precisely() {
    let (t, id) = setup().await;
    let cases: Vec<(&str, Value, R)> = vec![
        // No schema for the specialisation (TS-0004 clause 7.4.37.2.1): 4125.
        (
            "cse-in/ae",
            json!({"cod:nothing": {"cnd": "org.onem2m.common.moduleclass.nothing"}}),
            R::SpecializationSchemaNotFound,
        ),
        (
            "cse-in/ae",
            json!({"m2m:sc_offLot": {"cnd": "http://example.com/offStreetParking.xsd"}}),
            R::SpecializationSchemaNotFound,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": "org.example.binarySwitch", "powSe": true}}),
            R::SpecializationSchemaNotFound,
        ),
        // Invalid against the schema: 4000.
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": COLOUR, "powSe": true}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"powSe": true}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": "on"}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": true, "red": 1}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": true, "brightness": 1}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": true, "cs": 3}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": true, "st": 3}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:binSh": {"cnd": SWITCH, "powSe": true, "mni": 3}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:color": {"cnd": COLOUR, "red": 256, "green": 0, "blue": 0}}),
            R::BadRequest,
        ),
        (
            "cse-in/ae",
            json!({"cod:color": {"cnd": COLOUR, "red": -1, "green": 0, "blue": 0}}),
            R::BadRequest,
        ),
        ("cse-in/ae", json!({"cod:binSh": "on"}), R::BadRequest),
        (
            "cse-in/ae",
            json!({"m2m:cnt": {"cnd": SWITCH}}),
            R::BadRequest,
        ),
        // A module class takes no flexContainer children; a light takes only its modules.
        (
            "cse-in/ae/lamp/switch",
            json!({"cod:color": {"cnd": COLOUR, "red": 1, "green": 1, "blue": 1}}),
            R::InvalidChildResourceType,
        ),
        (
            "cse-in/ae/lamp",
            json!({"cod:devLt": {"cnd": LIGHT}}),
            R::InvalidChildResourceType,
        ),
    ];
    for (to, pc, rsc) in cases {
        let mut pc = pc;
        if let Some(inner) = pc
            .as_object_mut()
            .and_then(|o| o.values_mut().next())
            .and_then(Value::as_object_mut)
        {
            inner.insert("rn".into(), json!("refused"));
        }
        let r = t.create(&id, to, T::FlexContainer, pc.clone()).await;
        assert_eq!(r.rsc, rsc, "{pc}: {:?}", r.pc);
        assert_eq!(
            t.retrieve(&id, &format!("{to}/refused")).await.rsc,
            R::NotFound,
            "{pc}"
        );
    }
    // Nothing was created by any of them.
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("ty", "28")]).await,
        vec!["cse-in/ae/lamp", "cse-in/ae/lamp/switch"]
    );
}

#[tokio::test]
async fn updates_that_break_the_schema_change_nothing() {
    let (t, id) = setup().await;
    let before = t.retrieve(&id, "cse-in/ae/lamp/switch").await;
    for pc in [
        json!({"cod:binSh": {"powSe": null}}),
        json!({"cod:binSh": {"powSe": "on"}}),
        json!({"cod:binSh": {"powSe": true, "red": 3}}),
        json!({"cod:binSh": {"powSe": true, "cnd": COLOUR}}),
        json!({"cod:binSh": {"cnd": SWITCH}}),
        json!({"cod:binSh": {"cs": 1}}),
        json!({"cod:binSh": {"mbs": 1}}),
        json!({"cod:binSh": {}}),
        json!({"cod:color": {"red": 3}}),
        json!({"m2m:fcnt": {"powSe": true}}),
    ] {
        let r = t.update(&id, "cse-in/ae/lamp/switch", pc.clone()).await;
        assert_eq!(r.rsc, R::BadRequest, "{pc}: {:?}", r.pc);
    }
    assert_eq!(t.retrieve(&id, "cse-in/ae/lamp/switch").await.pc, before.pc);
}

#[tokio::test]
async fn access_control_governs_flex_containers() {
    let (t, owner) = setup().await;
    let other = t.register("other").await;
    assert_eq!(
        t.retrieve(&other, "cse-in/ae/lamp/switch").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let r = t
        .update(
            &other,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    let r = t
        .create(
            &other,
            "cse-in/ae/lamp",
            T::FlexContainer,
            json!({"cod:color": {"cnd": COLOUR, "red": 1, "green": 1, "blue": 1}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    // The owner lets `other` read (and only read) the switch, keeping every right itself.
    let r = t.created(&owner,
            "cse-in/ae",
            T::AccessControlPolicy,
            json!({"m2m:acp": {"rn": "readers", "pv": {"acr": [{"acor": [other], "acop": 2}, {"acor": [owner], "acop": 63}]}, "pvs": {"acr": [{"acor": [owner], "acop": 63}]}}})).await;
    let acp = attr(&r, "ri");
    let r = t
        .update(
            &owner,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"acpi": [acp]}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(t.retrieve(&other, "cse-in/ae/lamp/switch").await.rsc, R::Ok);
    let r = t
        .update(
            &other,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::OriginatorHasNoPrivilege);
    assert_eq!(
        t.delete(&other, "cse-in/ae/lamp/switch").await.rsc,
        R::OriginatorHasNoPrivilege
    );
    let sw = rep(
        &t.retrieve(&owner, "cse-in/ae/lamp/switch").await,
        "cod:binSh",
    );
    assert_eq!(sw["powSe"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_notified_under_the_specialisation_s_key() {
    let (t, id) = setup().await;
    let all = Receiver::start(2000).await;
    let modified = Receiver::start(2000).await;
    let children = Receiver::start(2000).await;
    for (to, sub) in [
        (
            "cse-in/ae/lamp/switch",
            json!({"m2m:sub": {"nu": [all.url], "enc": {"net": [1, 2]}}}),
        ),
        (
            "cse-in/ae/lamp/switch",
            json!({"m2m:sub": {"nu": [modified.url], "nct": 2}}),
        ),
        (
            "cse-in/ae/lamp",
            json!({"m2m:sub": {"nu": [children.url], "enc": {"net": [3, 4]}}}),
        ),
    ] {
        t.created(&id, to, T::Subscription, sub).await;
    }
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    let got = all.wait_for(2).await;
    let sw = &got[1]["m2m:sgn"]["nev"]["rep"]["cod:binSh"];
    assert_eq!(
        (sw["powSe"].clone(), sw["cnd"].clone()),
        (json!(true), json!(SWITCH))
    );
    assert_eq!(got[1]["m2m:sgn"]["nev"]["net"], json!(1));
    let got = modified.wait_for(2).await;
    let sw = &got[1]["m2m:sgn"]["nev"]["rep"]["cod:binSh"];
    assert_eq!(sw["powSe"], json!(true));
    assert_eq!(sw["cs"], json!(4));
    assert!(sw.get("cnd").is_none(), "only what changed: {sw}");

    t.created(&id, "cse-in/ae/lamp", T::FlexContainer, json!({"cod:brigs": {"rn": "dim", "cnd": "org.onem2m.common.moduleclass.brightness", "brigs": 40}})).await;
    assert_eq!(t.delete(&id, "cse-in/ae/lamp/dim").await.rsc, R::Deleted);
    let got = children.wait_for(3).await;
    assert_eq!(got[1]["m2m:sgn"]["nev"]["net"], json!(3));
    assert_eq!(
        got[1]["m2m:sgn"]["nev"]["rep"]["cod:brigs"]["brigs"],
        json!(40)
    );
    assert_eq!(got[2]["m2m:sgn"]["nev"]["net"], json!(4));
    assert_eq!(
        got[2]["m2m:sgn"]["nev"]["rep"]["cod:brigs"]["rn"],
        json!("dim")
    );
    // Deleting the switch: its subscriber is told (net 2), under the switch's key.
    assert_eq!(t.delete(&id, "cse-in/ae/lamp/switch").await.rsc, R::Deleted);
    let got = all.wait_for(3).await;
    assert_eq!(got[2]["m2m:sgn"]["nev"]["net"], json!(2), "{}", got[2]);
    assert_eq!(
        got[2]["m2m:sgn"]["nev"]["rep"]["cod:binSh"]["rn"],
        json!("switch")
    );
}

#[tokio::test]
async fn discovery_by_type_definition_and_custom_attribute() {
    let (t, id) = setup().await;
    t.created(
        &id,
        "cse-in/ae/lamp",
        T::FlexContainer,
        json!({"cod:binSh": {"rn": "night", "cnd": SWITCH, "powSe": true}}),
    )
    .await;
    t.created(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "c"}}),
    )
    .await;
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("ty", "28")]).await,
        vec![
            "cse-in/ae/lamp",
            "cse-in/ae/lamp/night",
            "cse-in/ae/lamp/switch"
        ]
    );
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("cnd", SWITCH)]).await,
        vec!["cse-in/ae/lamp/night", "cse-in/ae/lamp/switch"]
    );
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("cnd", LIGHT)]).await,
        vec!["cse-in/ae/lamp"]
    );
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("powSe", "true")]).await,
        vec!["cse-in/ae/lamp/night"]
    );
    // contentSize is the size criterion: "false" (5 bytes) is, "true" (4) is not.
    assert_eq!(
        t.discover(&id, "cse-in/ae", &[("ty", "28"), ("sza", "5")])
            .await,
        vec!["cse-in/ae/lamp/switch"]
    );
    // Partial retrieve of a custom attribute.
    let mut r = Request::new(
        Operation::Retrieve,
        "cse-in/ae/lamp/night",
        Some(id.clone()),
    );
    r.atrl = vec!["powSe".into()];
    let r = t.send(r).await;
    assert_eq!(r.pc, Some(json!({"cod:binSh": {"powSe": true}})));
}

#[tokio::test]
async fn the_cse_base_lists_the_type_and_instances_expire() {
    let clock = model::clock::ManualClock::new();
    let (t, id) = setup_with(cse::CseConfig {
        clock: clock.clock(),
        ..Default::default()
    })
    .await;
    let srt = attr(&t.retrieve(&id, "cse-in").await, "srt");
    assert!(
        srt.as_array().is_some_and(|a| a.contains(&json!(28))),
        "{srt}"
    );
    let soon = model::time::format(clock.clock().now() + chrono::Duration::seconds(60));
    t.created(&id, "cse-in/ae/lamp", T::FlexContainer, json!({"cod:colSn": {"rn": "sat", "cnd": "org.onem2m.common.moduleclass.colourSaturation", "colSn": 50, "et": soon}})).await;
    assert_eq!(cse::expiry::sweep(&t.cse).await, 0);
    clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(t.retrieve(&id, "cse-in/ae/lamp/sat").await.rsc, R::NotFound);
    assert_eq!(cse::expiry::sweep(&t.cse).await, 1);
    assert_eq!(t.retrieve(&id, "cse-in/ae/lamp/switch").await.rsc, R::Ok);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_restart() {
    let (mut t, id) = setup().await;
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/switch",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated);
    let before = t.retrieve(&id, "cse-in/ae/lamp/switch").await.pc;
    let store =
        store::SqliteStore::open(t.dir.path(), store::SqliteOptions::default()).expect("store");
    t.cse = open_cse(cse::CseConfig::default(), Arc::new(store)).await;
    let r = t.retrieve(&id, "cse-in/ae/lamp/switch").await;
    assert_eq!(r.rsc, R::Ok);
    assert_eq!(r.pc, before);
    assert_eq!(rep(&r, "cod:binSh")["powSe"], json!(true));
}

#[tokio::test]
async fn release_4_additions_are_refused_and_other_parents_take_flex_containers() {
    let (t, id) = setup().await;
    // No <flexContainerInstance> (ty 58), no la/ol, no instance limits: Release 4 only.
    let mut req = Request::new(Operation::Create, "cse-in/ae/lamp/switch", Some(id.clone()));
    req.pc = Some(json!({"m2m:fcin": {"powSe": true}}));
    req.ty = model::ResourceType::from_code(58).ok();
    assert_eq!(req.ty, None, "ty 58 is not a type this CSE hosts");
    assert_eq!(t.send(req).await.rsc, R::BadRequest);
    for virtual_child in ["la", "ol"] {
        let r = t
            .retrieve(&id, &format!("cse-in/ae/lamp/switch/{virtual_child}"))
            .await;
        assert_eq!(r.rsc, R::NotFound, "{virtual_child}");
    }
    for limit in ["mni", "mbs", "mia"] {
        let r = t
            .update(
                &id,
                "cse-in/ae/lamp/switch",
                json!({"cod:binSh": { limit: 3 }}),
            )
            .await;
        assert_eq!(r.rsc, R::BadRequest, "{limit}");
    }

    // Under a container, with the creator asked for; an UPDATE with rcn=9 reports cs.
    t.created(
        &id,
        "cse-in/ae",
        T::Container,
        json!({"m2m:cnt": {"rn": "room"}}),
    )
    .await;
    let r = t.created(&id,
            "cse-in/ae/room",
            T::FlexContainer,
            json!({"cod:fauDn": {"rn": "fault", "cnd": "org.onem2m.common.moduleclass.faultDetection", "sus": false, "cr": null}})).await;
    assert_eq!(rep(&r, "cod:fauDn")["cr"], json!(id));
    let mut req = Request::new(Operation::Update, "cse-in/ae/room/fault", Some(id.clone()));
    req.pc = Some(json!({"cod:fauDn": {"sus": true, "code": 7, "dc": "bulb"}}));
    req.rcn = Some(model::ResultContent::ModifiedAttributes);
    let r = t.send(req).await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    let modified = rep(&r, "cod:fauDn");
    assert_eq!(modified["cs"], json!(4 + 1 + 4));
    assert_eq!(modified["st"], json!(1));
    assert!(modified.get("cnd").is_none(), "{modified}");
}

#[tokio::test]
async fn a_group_of_switches_turns_them_all_on() {
    let (t, id) = setup().await;
    t.created(
        &id,
        "cse-in/ae/lamp",
        T::FlexContainer,
        json!({"cod:binSh": {"rn": "night", "cnd": SWITCH, "powSe": false}}),
    )
    .await;
    let g = t
        .create(&id, "cse-in/ae", T::Group, json!({"m2m:grp": {"rn": "switches", "mt": 28, "mnm": 5, "mid": ["cse-in/ae/lamp/switch", "cse-in/ae/lamp/night"]}}))
        .await;
    assert_eq!(
        (g.rsc, attr(&g, "mtv")),
        (R::Created, json!(true)),
        "{:?}",
        g.pc
    );
    let r = t
        .update(
            &id,
            "cse-in/ae/switches/fopt",
            json!({"cod:binSh": {"powSe": true}}),
        )
        .await;
    assert_eq!(r.rsc, R::Ok, "{:?}", r.pc);
    let rsps =
        r.pc.as_ref()
            .map(|p| p["m2m:agr"]["m2m:rsp"].clone())
            .unwrap_or_default();
    assert_eq!(rsps.as_array().map(Vec::len), Some(2), "{rsps}");
    for rn in ["switch", "night"] {
        let sw = rep(
            &t.retrieve(&id, &format!("cse-in/ae/lamp/{rn}")).await,
            "cod:binSh",
        );
        assert_eq!(sw["powSe"], json!(true), "{rn}");
    }
    // A light is a flexContainer too: a group of type 28 takes it (no specializationType
    // is hosted), but it is not a switch, so the fan-out below answers 4000 for it.
    t.created(&id, "cse-in/ae", T::Group, json!({"m2m:grp": {"rn": "mixed", "mt": 28, "mnm": 5, "mid": ["cse-in/ae/lamp/switch", "cse-in/ae/lamp"]}})).await;
    let r = t
        .update(
            &id,
            "cse-in/ae/mixed/fopt",
            json!({"cod:binSh": {"powSe": false}}),
        )
        .await;
    let rsps =
        r.pc.as_ref()
            .map(|p| p["m2m:agr"]["m2m:rsp"].clone())
            .unwrap_or_default();
    let codes: Vec<Value> = rsps
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["rsc"].clone())
        .collect();
    assert!(
        codes.contains(&json!(2004)) && codes.contains(&json!(4000)),
        "{rsps}"
    );
    assert_eq!(
        rep(&t.retrieve(&id, "cse-in/ae/lamp").await, "cod:devLt")["st"],
        json!(0)
    );
}

#[tokio::test]
async fn custom_attributes_are_held_to_the_content_size_limit() {
    let (t, id) = setup_with(cse::CseConfig {
        max_content_size: 16,
        ..Default::default()
    })
    .await;
    let cnd = "org.onem2m.common.moduleclass.faultDetection";
    // "false" (5) + "0123456789a" (11) = 16: at the limit.
    let r = t
        .created(
            &id,
            "cse-in/ae/lamp",
            T::FlexContainer,
            json!({"cod:fauDn": {"rn": "fault", "cnd": cnd, "sus": false, "dc": "0123456789a"}}),
        )
        .await;
    assert_eq!(rep(&r, "cod:fauDn")["cs"], json!(16));
    let r = t
        .create(
            &id,
            "cse-in/ae/lamp",
            T::FlexContainer,
            json!({"cod:fauDn": {"rn": "big", "cnd": cnd, "sus": false, "dc": "0123456789ab"}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    assert_eq!(t.retrieve(&id, "cse-in/ae/lamp/big").await.rsc, R::NotFound);
    let before = t.retrieve(&id, "cse-in/ae/lamp/fault").await.pc;
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/fault",
            json!({"cod:fauDn": {"code": 7}}),
        )
        .await;
    assert_eq!(r.rsc, R::BadRequest, "{:?}", r.pc);
    assert_eq!(t.retrieve(&id, "cse-in/ae/lamp/fault").await.pc, before);
    // Making room first is fine.
    let r = t
        .update(
            &id,
            "cse-in/ae/lamp/fault",
            json!({"cod:fauDn": {"dc": null, "code": 7}}),
        )
        .await;
    assert_eq!(r.rsc, R::Updated, "{:?}", r.pc);
    assert_eq!(rep(&r, "cod:fauDn")["cs"], json!(6));
}
