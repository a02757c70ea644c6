//! `<contentInstance>`: the one type whose creation changes its parent. The container's
//! `cni`, `cbs` and `st` are read and written in the same write job as the insert, so they
//! stay exact under any number of concurrent writers.

use crate::resources::cnt;
use crate::Cse;
use model::{time, Error, Resource, ResourceType, ResponseStatusCode, Result};
use serde_json::json;

/// Computes `cs`, checks size limits and applies `mia` as an expiration time.
pub(crate) fn prepare(cse: &Cse, parent: &Resource, r: &mut Resource) -> Result<()> {
    let con = r.attrs.get("con").cloned().unwrap_or_default();
    if parent.attrs.contains_key("li") {
        // A location container keeps position fixes (`resources::lcp`).
        model::resources::lcp::check_position(&con)?;
    }
    let cs = model::resources::cin::content_size(&con);
    if cs > cse.config.max_content_size {
        return Err(Error::bad_request(format!(
            "content of {cs} bytes exceeds the limit of {}",
            cse.config.max_content_size
        )));
    }
    if parent.u64_attr("mbs").is_some_and(|mbs| cs > mbs) {
        return Err(Error::new(
            ResponseStatusCode::NotAcceptable,
            format!("content of {cs} bytes exceeds the container's mbs"),
        ));
    }
    r.attrs.insert("cs".into(), json!(cs));
    if let Some(mia) = parent.u64_attr("mia") {
        let ct = r
            .attrs
            .get("ct")
            .and_then(|v| v.as_str())
            .map(time::parse)
            .transpose()?
            .unwrap_or_else(time::now);
        let limit = time::format(ct + chrono::Duration::seconds(mia as i64));
        if r.et().is_none_or(|et| et > limit.as_str()) {
            r.attrs.insert("et".into(), json!(limit));
        }
    }
    Ok(())
}

/// Inserts the instance (a content instance, or a time series instance: `tsi::admit`) and
/// updates its container or time series in one durable write. Returns the instance as
/// stored and the instances evicted to respect `mni`/`mbs`.
pub(crate) async fn insert(
    cse: &Cse,
    mut r: Resource,
    creator: Option<String>,
) -> Result<(Resource, Vec<Resource>)> {
    store::write(cse.store.as_ref(), move |t| {
        super::ae::still_registered(t, creator.as_deref())?;
        let mut cnt = t
            .get(r.pi())?
            .ok_or_else(|| Error::not_found("the container was deleted"))?;
        if r.ty == ResourceType::TimeSeriesInstance {
            super::tsi::admit(t, &cnt, &r)?;
        }
        crate::lifetime::within_parent(&mut r, &cnt);
        let cs = r.u64_attr("cs").unwrap_or(0);
        // `st` (stateTag) belongs to containers and content instances only.
        if cnt.ty == ResourceType::Container {
            let st = cnt.u64_attr("st").unwrap_or(0) + 1;
            r.attrs.insert("st".into(), json!(st));
            cnt.attrs.insert("st".into(), json!(st));
        }
        t.insert(&r)?;
        cnt.attrs
            .insert("cni".into(), json!(cnt.u64_attr("cni").unwrap_or(0) + 1));
        cnt.attrs
            .insert("cbs".into(), json!(cnt.u64_attr("cbs").unwrap_or(0) + cs));
        cnt.attrs
            .insert("lt".into(), r.attrs.get("ct").cloned().unwrap_or_default());
        let evicted = cnt::enforce_limits(t, &mut cnt)?;
        t.update(&cnt)?;
        Ok((r, evicted))
    })
    .await
}
