//! Filter criteria in both forms the CSE reads: the HTTP query string (through the binding,
//! with the request parameters that share it) and the JSON `fc` of other bindings; what is
//! accepted is then matched against resources, as discovery does for every stored resource,
//! with the others as its parent and children (the criteria on relatives and the content
//! filter's queries are parsed and evaluated here too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::filter::Relatives;
use model::{FilterCriteria, Resource, ResourceType};
use std::sync::Arc;

/// Every fuzzed resource is the parent and a child of every other.
struct All(Vec<Resource>);

impl Relatives for All {
    fn parent(&mut self, _of: &Resource) -> model::Result<Option<Arc<Resource>>> {
        Ok(self.0.first().cloned().map(Arc::new))
    }

    fn children(
        &mut self,
        _of: &Resource,
        types: &[ResourceType],
        visit: &mut dyn FnMut(&Resource) -> bool,
    ) -> model::Result<()> {
        for r in &self.0 {
            if (types.is_empty() || types.contains(&r.ty)) && visit(r) {
                break;
            }
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let fc = if selector & 1 == 0 {
        let request = http::Request::builder()
            .uri(format!("/cse-in?{text}"))
            .header("X-M2M-RI", "fuzz")
            .header("X-M2M-Origin", "Cfuzz")
            .body(());
        let Ok(request) = request else {
            return;
        };
        let (parts, ()) = request.into_parts();
        match http_binding::primitive_from_http(&parts, b"") {
            Ok(primitive) => primitive.fc,
            Err(_) => return,
        }
    } else {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        match FilterCriteria::from_json(&value) {
            Ok(fc) => fc,
            Err(_) => return,
        }
    };
    let _ = fc.validate();
    let _ = fc.has_conditions();
    let resources = [
        serde_json::json!({"ri": "cnt1", "rn": "box", "ty": 3, "lbl": ["a", "key=value"],
            "ct": "20250101T000000", "lt": "20250102T000000", "et": "20991231T235959",
            "st": 4, "cni": 2, "cbs": 10, "mni": 5, "cr": "Cae1"}),
        serde_json::json!({"ri": "cin1", "rn": "cin_1", "ty": 4, "cnf": "text/plain:0",
            "cs": 3, "con": "abc", "ct": "20250101T000001", "st": 0}),
        serde_json::json!({"ri": "cin2", "rn": "cin_2", "ty": 4, "cnf": "application/json:0",
            "cs": 40, "con": "{\"t\": 21.5, \"u\": \"Cel\", \"a\": [1, {\"b\": \"x\"}]}"}),
        // The newer types: a flexContainer's custom attributes, a series, a management object.
        serde_json::json!({"ri": "fcnt1", "rn": "switch", "ty": 28, "st": 1, "cs": 1,
            "cnd": "org.onem2m.common.moduleclass.binarySwitch", "powSe": true,
            "lbl": ["room=1"]}),
        serde_json::json!({"ri": "ts1", "rn": "series", "ty": 29, "cni": 1, "cbs": 4,
            "pei": 1000, "mdd": true, "mdlt": ["20250101T000000"]}),
        serde_json::json!({"ri": "bat1", "rn": "bat", "ty": 13, "mgd": 1006, "btl": 80,
            "bts": 1}),
        serde_json::json!({}),
    ];
    let mut family = All(Vec::new());
    for attrs in &resources {
        let Some(attrs) = attrs.as_object() else {
            continue;
        };
        for ty in ResourceType::ALL {
            let _ = fc.matches(ty, attrs);
        }
        let ty = attrs
            .get("ty")
            .and_then(serde_json::Value::as_u64)
            .and_then(|t| ResourceType::from_code(t).ok())
            .unwrap_or(ResourceType::Container);
        family.0.push(Resource {
            ty,
            srn: "cse-in/x".into(),
            attrs: attrs.clone(),
        });
    }
    for r in family.0.clone() {
        let _ = fc.matches_with(&r, &mut family);
    }
});
