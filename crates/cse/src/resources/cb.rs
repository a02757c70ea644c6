//! `<CSEBase>`: created once, at first start, from the configuration.

use crate::Cse;
use model::{time, Resource, ResourceType, Result};
use serde_json::{json, Map};

/// Creates the CSEBase if the store has none yet.
pub(crate) async fn ensure(cse: &Cse) -> Result<()> {
    let c = &cse.config;
    if let Some(mut cb) = cse.store.get_by_srn(&c.cse_name)? {
        // Points of access follow the configuration of this start. `rr`, which earlier
        // versions stored, is not a <CSEBase> attribute (TS-0001 Table 9.6.3-2).
        let stale_rr = cb.attrs.remove("rr").is_some();
        if cb.str_list("poa") != c.poa || stale_rr {
            cb.attrs.insert("poa".into(), json!(c.poa));
            store::write(cse.store.as_ref(), move |t| t.update(&cb)).await?;
        }
        return Ok(());
    }
    let now = time::format(c.clock.now());
    let srt: Vec<u16> = ResourceType::ALL.iter().map(|t| t.code()).collect();
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
