//! Property test of the content codecs: random resources of every type (each attribute of
//! its table, with a value of the attribute's kind, and arbitrary JSON where the kind allows
//! anything) survive JSON, CBOR and JSON -> CBOR -> JSON unchanged: every attribute, every
//! value, and the order of the members.
#![allow(missing_docs)]

use model::attributes::{self, Kind};
use model::codec::{decode, encode, Format};
use model::ResourceType;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Numbers as JSON and CBOR carry them: any i64, any u64, any finite f64.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Any JSON value, a few levels deep, strings of any Unicode.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn value_of(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Str | Kind::Uri | Kind::ContentInfo => ".{0,16}".prop_map(Value::String).boxed(),
        Kind::Int | Kind::PositiveInt | Kind::UpTo(_) | Kind::OneOf(_) => {
            any::<u64>().prop_map(Value::from).boxed()
        }
        Kind::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Kind::Time => "20[0-9]{2}[01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9](,[0-9]{1,6})?"
            .prop_map(Value::String)
            .boxed(),
        Kind::StrList | Kind::UriList | Kind::PoaList | Kind::Labels | Kind::Serializations => {
            prop::collection::vec(".{0,8}".prop_map(Value::String), 0..4)
                .prop_map(Value::Array)
                .boxed()
        }
        Kind::IntList => prop::collection::vec(any::<u32>().prop_map(Value::from), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Kind::NullOnly => Just(Value::Null).boxed(),
        Kind::AbsRelTime => prop_oneof![
            "20[0-9]{2}[01][0-9][0-3][0-9]T[0-2][0-9][0-5][0-9][0-5][0-9]".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
        ]
        .boxed(),
        Kind::Object | Kind::Any | Kind::Acrs | Kind::ActionStatus | Kind::Unsupported => {
            json().boxed()
        }
        Kind::GeoCoordinates => (-180.0..=180.0f64, -90.0..=90.0f64, any::<bool>())
            .prop_map(|(lon, lat, text)| {
                let crd = serde_json::json!([lon, lat]);
                let crd = if text {
                    Value::String(crd.to_string())
                } else {
                    crd
                };
                serde_json::json!({"typ": 1, "crd": crd})
            })
            .boxed(),
    }
}

/// `{"m2m:xxx": {attributes}}` of a random type, with a random subset of its attributes.
fn resource() -> impl Strategy<Value = Value> {
    prop::sample::select(ResourceType::ALL.to_vec())
        .prop_flat_map(|ty| {
            let attrs: Vec<_> = attributes::UNIVERSAL
                .iter()
                .chain(attributes::table(ty))
                .map(|a| prop::option::of(value_of(a.kind).prop_map(move |v| (a.name, v))))
                .collect();
            (Just(ty), attrs, any::<prop::sample::Index>())
        })
        .prop_map(|(ty, attrs, rotate)| {
            let mut present: Vec<(&str, Value)> = attrs.into_iter().flatten().collect();
            // Any member order, not only the table's.
            if !present.is_empty() {
                let n = rotate.index(present.len());
                present.rotate_left(n);
            }
            let members: Map<String, Value> = present
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            let mut outer = Map::new();
            outer.insert(ty.wrapper().to_owned(), Value::Object(members));
            Value::Object(outer)
        })
}

/// Equal, and every object's members in the same order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn resources_round_trip_through_json_and_cbor(r in resource()) {
        for f in [Format::Json, Format::Cbor] {
            let back = decode(&encode(&r, f), f);
            prop_assert!(back.as_ref().is_ok_and(|b| same(b, &r)), "{:?}: {:?} -> {:?}", f, r, back);
        }
        let via_cbor = decode(&encode(&r, Format::Json), Format::Json)
            .and_then(|v| decode(&encode(&v, Format::Cbor), Format::Cbor))
            .and_then(|v| decode(&encode(&v, Format::Json), Format::Json));
        prop_assert!(via_cbor.as_ref().is_ok_and(|b| same(b, &r)), "{:?} -> {:?}", r, via_cbor);
    }

    #[test]
    fn any_json_round_trips(v in json()) {
        for f in [Format::Json, Format::Cbor] {
            let back = decode(&encode(&v, f), f);
            prop_assert!(back.as_ref().is_ok_and(|b| same(b, &v)), "{:?}: {:?} -> {:?}", f, v, back);
        }
    }
}
