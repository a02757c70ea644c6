//! JSON and CBOR content as a request body carries it: decoding (duplicate keys, depth,
//! trailing data), the re-encoding of what was accepted, and the attribute checks every
//! resource type applies to a CREATE or UPDATE body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::codec::{decode, encode, Format};
use model::{attributes, Operation, ResourceType};

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
                let _ = attributes::validate(ty, op, attrs);
            }
        }
    }
});
