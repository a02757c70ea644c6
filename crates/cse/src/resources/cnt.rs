//! `<container>`: counters start at zero; limits are enforced when instances arrive
//! (`cin`) and when the limits are lowered (`update`).

use model::{Resource, ResourceType, Result};
use serde_json::json;
use store::Txn;

/// Initial counters of a new container.
pub(crate) fn prepare(r: &mut Resource) {
    r.attrs.insert("cni".into(), json!(0));
    r.attrs.insert("cbs".into(), json!(0));
    r.attrs.insert("st".into(), json!(0));
}

/// Removes the oldest instances until `cni <= mni` and `cbs <= mbs`, inside a write, and
/// returns the removed instances. The container's counters are updated in place.
pub(crate) fn enforce_limits(t: &mut dyn Txn, cnt: &mut Resource) -> Result<Vec<Resource>> {
    let mut evicted = Vec::new();
    loop {
        let cni = cnt.u64_attr("cni").unwrap_or(0);
        let cbs = cnt.u64_attr("cbs").unwrap_or(0);
        let over_n = cnt.u64_attr("mni").is_some_and(|m| cni > m);
        let over_b = cnt.u64_attr("mbs").is_some_and(|m| cbs > m);
        if !over_n && !over_b {
            break;
        }
        let Some(oldest) = t.oldest_child(cnt.ri(), ResourceType::ContentInstance)? else {
            break;
        };
        t.delete_subtree(oldest.ri())?;
        let cs = oldest.u64_attr("cs").unwrap_or(0);
        cnt.attrs.insert("cni".into(), json!(cni.saturating_sub(1)));
        cnt.attrs
            .insert("cbs".into(), json!(cbs.saturating_sub(cs)));
        evicted.push(oldest);
    }
    Ok(evicted)
}
