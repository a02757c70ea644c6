use super::*;
use crate::ResourceType;
use serde_json::json;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn switch() -> &'static Specialisation {
    by_wrapper("cod:binSh")
        .map(|(_, s)| s)
        .expect("binarySwitch")
}

#[test]
fn every_specialisation_is_named_uniquely_and_its_children_exist() {
    let mut wrappers = Vec::new();
    let mut cnds = Vec::new();
    for s in ALL {
        assert!(!s.names.is_empty(), "{}", s.id);
        for n in s.names {
            wrappers.push(n.wrapper);
            cnds.push(n.cnd);
            assert!(
                ResourceType::from_wrapper(n.wrapper).is_none(),
                "{}",
                n.wrapper
            );
        }
        for child in s.children {
            assert!(ALL.iter().any(|c| c.id == *child), "{} -> {child}", s.id);
        }
        let mut names: Vec<_> = s.attributes.iter().map(|c| c.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(n, names.len(), "{}", s.id);
        for c in s.attributes {
            assert!(
                !UNIVERSAL.iter().chain(ATTRIBUTES).any(|a| a.name == c.name),
                "{} {} shadows a common attribute",
                s.id,
                c.name
            );
        }
    }
    for list in [&mut wrappers, &mut cnds] {
        let n = list.len();
        list.sort_unstable();
        list.dedup();
        assert_eq!(n, list.len());
    }
}

#[test]
fn both_namings_find_the_same_schema() {
    let (cod, a) = by_cnd("org.onem2m.common.device.deviceLight").expect("cod");
    let (hd, b) = by_cnd("org.onem2m.home.device.deviceLight").expect("hd");
    assert_eq!((cod.wrapper, hd.wrapper), ("cod:devLt", "hd:deLit"));
    assert!(std::ptr::eq(a, b));
    assert!(by_cnd("org.onem2m.common.moduleclass.nothing").is_none());
    assert!(by_wrapper("m2m:fcnt").is_none());
}

#[test]
fn cnd_must_name_the_wrapper_s_specialisation() {
    let (name, _) = by_wrapper("cod:binSh").expect("binSh");
    assert!(check_cnd(name, &map(json!({"cnd": name.cnd}))).is_ok());
    let other = check_cnd(
        name,
        &map(json!({"cnd": "org.onem2m.common.moduleclass.colour"})),
    );
    assert_eq!(
        other.map_err(|e| e.rsc),
        Err(ResponseStatusCode::BadRequest)
    );
    let r3 = check_cnd(
        name,
        &map(json!({"cnd": "org.onem2m.home.moduleclass.binarySwitch"})),
    );
    assert_eq!(r3.map_err(|e| e.rsc), Err(ResponseStatusCode::BadRequest));
    let unknown = check_cnd(name, &map(json!({"cnd": "org.example.unknown"})));
    assert_eq!(
        unknown.map_err(|e| e.rsc),
        Err(ResponseStatusCode::SpecializationSchemaNotFound)
    );
}

#[test]
fn custom_attributes_are_checked_against_the_schema() {
    let s = switch();
    let cnd = "org.onem2m.common.moduleclass.binarySwitch";
    let create = |v: Value| validate(s, Operation::Create, &map(v));
    let update = |v: Value| validate(s, Operation::Update, &map(v));
    assert!(create(json!({"cnd": cnd, "powSe": false, "rn": "sw", "lbl": ["a"]})).is_ok());
    assert!(create(json!({"cnd": cnd, "powSe": true, "dgt": "20260101T000000"})).is_ok());
    for bad in [
        json!({"cnd": cnd}),
        json!({"cnd": cnd, "powSe": "on"}),
        json!({"cnd": cnd, "powSe": 1}),
        json!({"cnd": cnd, "powSe": null}),
        json!({"cnd": cnd, "powSe": true, "red": 3}),
        json!({"cnd": cnd, "powSe": true, "zzz": 3}),
        json!({"cnd": cnd, "powSe": true, "dgt": "yesterday"}),
        json!({"cnd": cnd, "powSe": true, "cs": 4}),
        json!({"cnd": cnd, "powSe": true, "mni": 4}),
        json!({"cnd": cnd, "powSe": true, "nl": "x"}),
        json!({"powSe": true}),
    ] {
        assert_eq!(
            create(bad.clone()).map_err(|e| e.rsc),
            Err(ResponseStatusCode::BadRequest),
            "{bad}"
        );
    }
    assert!(update(json!({"powSe": true})).is_ok());
    assert!(update(json!({"dgt": null})).is_ok());
    assert!(update(json!({"lbl": ["x"], "powSe": false})).is_ok());
    for bad in [
        json!({}),
        json!({"powSe": null}),
        json!({"cnd": cnd}),
        json!({"powSe": "off"}),
        json!({"green": 1}),
    ] {
        assert!(update(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn ranges_come_from_the_schema() {
    let (_, colour) = by_wrapper("cod:color").expect("colour");
    let cnd = "org.onem2m.common.moduleclass.colour";
    let ok = |r: i64| {
        validate(
            colour,
            Operation::Create,
            &map(json!({"cnd": cnd, "red": r, "green": 0, "blue": 255})),
        )
        .is_ok()
    };
    assert!(ok(0) && ok(255));
    assert!(!ok(256) && !ok(-1));
    let (_, fault) = by_wrapper("cod:fauDn").expect("fault");
    let fcnd = "org.onem2m.common.moduleclass.faultDetection";
    assert!(validate(
        fault,
        Operation::Create,
        &map(json!({"cnd": fcnd, "sus": true, "code": -3, "dc": "lamp broken"}))
    )
    .is_ok());
}

#[test]
fn content_size_sums_the_custom_attributes() {
    let (_, fault) = by_wrapper("cod:fauDn").expect("fault");
    let attrs = map(json!({"cnd": "x", "rn": "abc", "sus": true, "code": 12, "dc": "four"}));
    // "true" 4 + "12" 2 + "four" 4.
    assert_eq!(content_size(fault, &attrs), 10);
}

#[test]
fn discovery_finds_custom_attributes_of_flex_containers_only() {
    use crate::attributes::find;
    assert!(find(ResourceType::FlexContainer, "powSe").is_some());
    assert!(find(ResourceType::FlexContainer, "cnd").is_some());
    assert!(find(ResourceType::FlexContainer, "nothing").is_none());
    assert!(find(ResourceType::Container, "powSe").is_none());
}
