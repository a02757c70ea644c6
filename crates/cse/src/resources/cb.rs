//! `<CSEBase>`: created once, at first start, from the configuration.

use crate::Cse;
use model::{time, Resource, ResourceType, Result};
use serde_json::{json, Map};

/// Creates the CSEBase if the store has none yet.
pub(crate) async fn ensure(cse: &Cse) -> Result<()> {
    let c = &cse.config;
    let srt: Vec<u16> = ResourceType::ALL.iter().map(|t| t.code()).collect();
    if let Some(mut cb) = cse.store.get_by_srn(&c.cse_name)? {
        // Points of access follow the configuration of this start; the releases and
        // resource types this build supports follow the build (a CSEBase an earlier
        // version created may claim others). `rr`, which earlier versions stored, is not a
        // <CSEBase> attribute (TS-0001 Table 9.6.3-2).
        let mut changed = cb.attrs.remove("rr").is_some();
        let current = [
            ("poa", json!(c.poa)),
            ("srv", json!(model::primitive::SUPPORTED_RELEASES)),
            ("srt", json!(srt)),
        ];
        for (name, value) in current {
            if cb.attrs.get(name) != Some(&value) {
                cb.attrs.insert(name.to_owned(), value);
                changed = true;
            }
        }
        if changed {
            store::write(cse.store.as_ref(), move |t| t.update(&cb)).await?;
        }
        return Ok(());
    }
    let now = time::format(c.clock.now());
    let mut attrs = Map::new();
    for (k, v) in [
        ("ri", json!(c.cse_id)),
        ("rn", json!(c.cse_name)),
        ("pi", json!("")),
        ("ty", json!(5)),
        ("ct", json!(now)),
        ("lt", json!(now)),
        ("cst", json!(1)),
        ("csi", json!(format!("/{}", c.cse_id))),
        ("srt", json!(srt)),
        ("poa", json!(c.poa)),
        ("srv", json!(model::primitive::SUPPORTED_RELEASES)),
        ("csz", json!(["application/json", "application/cbor"])),
    ] {
        attrs.insert(k.to_owned(), v);
    }
    let cb = Resource {
        ty: ResourceType::CseBase,
        srn: c.cse_name.clone(),
        attrs,
    };
    store::write(cse.store.as_ref(), move |t| t.insert(&cb)).await?;
    tracing::info!(cse_id = %c.cse_id, "created CSEBase {}", c.cse_name);
    Ok(())
}
