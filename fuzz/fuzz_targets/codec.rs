//! JSON and CBOR content as a request body carries it: decoding (duplicate keys, depth,
//! trailing data), the re-encoding of what was accepted, and the attribute checks every
//! resource type applies to a CREATE or UPDATE body, with the type-specific checks that
//! follow the table check (`<mgmtObj>` and `<flexContainer>` specialisations, `<timeSeries>`
//! and its instances, `<subscription>`, service subscription, `<role>`, `<dac>`) and the
//! readers of notification and polling-channel content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::codec::{decode, encode, Format};
use model::resources::{asar, dac, fcnt, mgo, pch, rol, sub, svsn, ts, tsi};
use model::{attributes, Operation, ResourceType};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::Json
    } else {
        Format::Cbor
    };
    let Ok(value) = decode(bytes, format) else {
        return;
    };
    // Whatever was accepted is answered in either format: it must encode and read back the same.
    for f in [Format::Json, Format::Cbor] {
        let again = decode(&encode(&value, f), f);
        assert_eq!(again.ok().as_ref(), Some(&value), "{f:?} round trip");
    }
    // The content of a NOTIFY to a subscriber and of one to a polling channel's `pcu`.
    let _ = sub::validate_notification(Some(&value));
    let _ = pch::ResponsePrimitive::from_content(Some(&value));
    // A resource body is `{"m2m:xxx": {attributes}}`: check it as the named type, and as
    // every other type, for both operations that carry attributes.
    let Some(wrapper) = value.as_object() else {
        return;
    };
    for (key, inner) in wrapper {
        let Some(attrs) = inner.as_object() else {
            continue;
        };
        let named = ResourceType::from_wrapper(key);
        for ty in named.into_iter().chain(ResourceType::ALL) {
            for op in [Operation::Create, Operation::Update] {
                if attributes::validate(ty, op, attrs).is_ok() {
                    type_checks(ty, op, attrs);
                }
            }
        }
        specialisations(key, attrs);
    }
});

/// What the CSE checks after the attribute table accepted a body, type by type.
fn type_checks(ty: ResourceType, op: Operation, attrs: &Map<String, Value>) {
    let create = op == Operation::Create;
    match ty {
        ResourceType::ServiceSubscribedAppRule => {
            let _ = asar::validate(attrs);
        }
        ResourceType::DynamicAuthorizationConsultation => {
            let _ = dac::validate(attrs);
        }
        ResourceType::Role => {
            let _ = rol::validate(attrs);
        }
        ResourceType::ServiceSubscribedNode if create => {
            let _ = svsn::check_create(attrs);
        }
        ResourceType::ServiceSubscribedNode => {
            let _ = svsn::check_update(attrs, attrs);
        }
        ResourceType::Subscription if create => {
            let _ = sub::validate(attrs);
        }
        ResourceType::Subscription => {
            let _ = sub::check_update(attrs);
        }
        ResourceType::TimeSeries => {
            let mut changes = attrs.clone();
            ts::complete(if create { None } else { Some(attrs) }, &mut changes);
            if create {
                let _ = ts::check(&changes);
            } else {
                let _ = ts::check_update(attrs, &changes);
            }
        }
        ResourceType::TimeSeriesInstance => {
            if let Ok(t) = tsi::generation_time(attrs, model::time::now()) {
                let _ = tsi::format_generation_time(t);
            }
        }
        _ => {}
    }
}

/// The specialised types name their specialisation by the JSON key (`m2m:bat`, `cod:binSh`).
fn specialisations(key: &str, attrs: &Map<String, Value>) {
    if let Some(s) = mgo::Specialisation::of_wrapper(key) {
        for op in [Operation::Create, Operation::Update] {
            let _ = attributes::validate_specialised(s, op, attrs);
        }
        let _ = s.check_create(attrs);
        let _ = s.requested_actions(attrs);
    }
    if let Some((name, spec)) = fcnt::by_wrapper(key) {
        for op in [Operation::Create, Operation::Update] {
            let _ = fcnt::validate(spec, op, attrs);
        }
        let _ = fcnt::check_cnd(name, attrs);
        let _ = fcnt::content_size(spec, attrs);
    }
}
