//! `<container>`: counters start at zero; limits are enforced when instances arrive
//! (`cin`) and when the limits are lowered (`update`); `disr` (disableRetrieval, TS-0004
//! Release 4) keeps its content instances from being read, and when it is turned off the
//! instances written meanwhile are deleted, so they never become readable.

use model::resources::cnt::retrieval_disabled;
use model::{Error, Resource, ResourceType, Result};
use serde_json::json;
use store::{Store, Txn};

/// Refuses (4005 OPERATION_NOT_ALLOWED) reading the content instances of `cnt` when it
/// disables their retrieval.
pub(crate) fn check_retrievable(cnt: &Resource) -> Result<()> {
    if retrieval_disabled(&cnt.attrs) {
        tracing::info!(
            container = cnt.ri(),
            "read of a content instance refused: the container disables retrieval (disr)"
        );
        return Err(Error::operation_not_allowed(
            "the container disables the retrieval of its content instances (disr)",
        ));
    }
    Ok(())
}

/// [`check_retrievable`] for a resource about to be read: a content instance is checked
/// against its container; any other type passes.
pub(crate) fn check_instance_retrievable(store: &dyn Store, r: &Resource) -> Result<()> {
    if r.ty != ResourceType::ContentInstance {
        return Ok(());
    }
    match store.get_shared(r.pi())? {
        Some(cnt) => check_retrievable(&cnt),
        None => Err(Error::not_found("the container was deleted")),
    }
}

/// Whether `r` may appear in a result that carries resources read below a target (child
/// resources, discovery): not a content instance of a container that disables retrieval.
/// A container that cannot be read counts as disabling it (fail closed).
pub(crate) fn may_list(store: &dyn Store, r: &Resource) -> bool {
    r.ty != ResourceType::ContentInstance
        || matches!(store.get_shared(r.pi()), Ok(Some(cnt)) if !retrieval_disabled(&cnt.attrs))
}

/// Inside an UPDATE's write, with the container as stored (`before`) and as updated
/// (`cnt`): when retrieval was disabled and no longer is, deletes every content instance
/// (their counters go to zero) and returns them.
pub(crate) fn drop_hidden_instances(
    t: &mut dyn Txn,
    before: &Resource,
    cnt: &mut Resource,
) -> Result<Vec<Resource>> {
    if !retrieval_disabled(&before.attrs) || retrieval_disabled(&cnt.attrs) {
        return Ok(Vec::new());
    }
    let mut dropped = Vec::new();
    while let Some(oldest) = t.oldest_child(cnt.ri(), ResourceType::ContentInstance)? {
        t.delete_subtree(oldest.ri())?;
        dropped.push(oldest);
    }
    cnt.attrs.insert("cni".into(), json!(0));
    cnt.attrs.insert("cbs".into(), json!(0));
    tracing::info!(
        container = cnt.ri(),
        count = dropped.len(),
        "disr turned off: the content instances written while retrieval was disabled are deleted"
    );
    Ok(dropped)
}

/// Initial counters of a new container.
pub(crate) fn prepare(r: &mut Resource) {
    r.attrs.insert("cni".into(), json!(0));
    r.attrs.insert("cbs".into(), json!(0));
    r.attrs.insert("st".into(), json!(0));
}

/// Removes the oldest instances until `cni <= mni` and `cbs <= mbs`, inside a write, and
/// returns the removed instances. The container's (or time series') counters are updated
/// in place.
pub(crate) fn enforce_limits(t: &mut dyn Txn, cnt: &mut Resource) -> Result<Vec<Resource>> {
    let mut evicted = Vec::new();
    let Some(instance_type) = cnt.ty.instance_type() else {
        return Ok(evicted);
    };
    loop {
        let cni = cnt.u64_attr("cni").unwrap_or(0);
        let cbs = cnt.u64_attr("cbs").unwrap_or(0);
        let over_n = cnt.u64_attr("mni").is_some_and(|m| cni > m);
        let over_b = cnt.u64_attr("mbs").is_some_and(|m| cbs > m);
        if !over_n && !over_b {
            break;
        }
        let Some(oldest) = t.oldest_child(cnt.ri(), instance_type)? else {
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
