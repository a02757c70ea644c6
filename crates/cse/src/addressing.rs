//! Resolving a request's `To` to a resource of this CSE, including the virtual resources
//! `la` (latest), `ol` (oldest), `fopt` (group fan-out), `pcu` (a polling channel's
//! long-polling point) and `ntsr` (a subscription's notification target self-reference).

use crate::config::CseConfig;
use model::id::Address;
use model::{time, Error, Resource, ResourceType, Result};
use store::Store;

/// What a request targets.
#[derive(Debug, Clone)]
pub enum Target {
    /// A real resource.
    Resource(Resource),
    /// `<container>/la` or `/ol`: the newest or oldest content instance (may not exist);
    /// of a `<timeSeries>`, its newest or oldest time series instance.
    Edge {
        /// The container.
        container: Resource,
        /// The content instance it stands for, if the container has any.
        instance: Option<Resource>,
    },
    /// `<group>/fopt[/suffix]`: the request fans out to each member (+ suffix).
    FanOut {
        /// The group.
        group: Resource,
        /// Path appended to each member's address.
        suffix: String,
    },
    /// `<pollingChannel>/pcu`: the `<pollingChannelURI>` its owner long-polls and answers
    /// through (TS-0004 clause 7.4.22); carries the channel.
    PollingChannelUri(Resource),
    /// `<subscription>/ntsr`: the `<notificationTargetSelfReference>` a notification
    /// target deletes to leave the subscription (TS-0004 clause 7.4.33); carries it.
    NotificationTargetSelfReference(Resource),
}

/// Turns `To` into a CSE-relative path: structured (`cse-in/...`) or unstructured (`ri/...`).
///
/// By the resource identifier syntax (TS-0004 clause 6.2.4) an SP-relative or absolute
/// address names a resource after the CSE-ID: a bare `/id-in` or `//sp/id-in` names the CSE,
/// not its `<CSEBase>`, and addresses no resource here (4004). Every resource name is
/// non-empty, so a trailing `/` is 4000 like any other empty segment. This CSE is an IN-CSE
/// without `<remoteCSE>` resources, so another CSE-ID or SP-ID matches nothing it could
/// forward to: 4004 (TS-0004 clause 7.3.2.6).
fn local_path(to: &str, config: &CseConfig) -> Result<String> {
    local_path_of(to, &config.cse_id, &config.sp_id)
}

/// [`local_path`] for the CSE `cse_id` of the service provider `sp_id` (a check that runs
/// inside a store write, without the configuration).
pub(crate) fn local_path_of(to: &str, cse_id: &str, sp_id: &str) -> Result<String> {
    let unknown = |id: &str| {
        Error::not_found(format!(
            "'{id}' is not this CSE and no <remoteCSE> leads to it"
        ))
    };
    let bare = || Error::not_found(format!("'{to}' names a CSE, not a resource"));
    let path = match Address::parse(to)? {
        Address::CseRelative(p) => p,
        Address::SpRelative {
            cse_id: to_cse,
            rest,
        } => {
            if to_cse != cse_id {
                return Err(unknown(&to_cse));
            }
            rest
        }
        Address::Absolute {
            sp_id: to_sp,
            cse_id: to_cse,
            rest,
        } => {
            if to_sp != sp_id || to_cse != cse_id {
                return Err(unknown(&format!("//{to_sp}/{to_cse}")));
            }
            rest
        }
    };
    if path.is_empty() {
        return Err(bare());
    }
    if path.split('/').any(str::is_empty) {
        return Err(Error::bad_request(format!(
            "invalid target address '{to}': empty resource name"
        )));
    }
    Ok(path)
}

/// Resolves `To` against the store. Expired resources that the sweeper has not removed yet
/// are already treated as gone.
pub fn resolve(to: &str, config: &CseConfig, store: &dyn Store) -> Result<Target> {
    let path = local_path(to, config)?;
    let live = |r| live_at(r, &config.clock);
    let mut segments: Vec<&str> = path.split('/').collect();
    // The CSEBase itself: its name, its ri, or "-".
    if segments[0] == "-" || segments[0] == config.cse_id {
        segments[0] = &config.cse_name;
    }
    let srn_of_first = if segments[0] == config.cse_name {
        config.cse_name.clone()
    } else {
        // Unstructured: the first segment is a resource ID.
        let r = live(store.get(segments[0])?).ok_or_else(|| not_found(to))?;
        if segments.len() == 1 {
            return Ok(Target::Resource(r));
        }
        r.srn
    };
    // Fast path: no virtual resource named, so the structured name is the whole answer.
    if !segments[1..]
        .iter()
        .any(|s| matches!(*s, "la" | "ol" | "fopt" | "pcu" | "ntsr"))
    {
        let mut srn = srn_of_first;
        for seg in &segments[1..] {
            srn.push('/');
            srn.push_str(seg);
        }
        return live(store.get_by_srn(&srn)?)
            .map(Target::Resource)
            .ok_or_else(|| not_found(to));
    }
    let mut srn = srn_of_first;
    let mut current: Option<Resource> = None;
    for (i, seg) in segments.iter().enumerate().skip(1) {
        let parent = match current.take() {
            Some(r) => r,
            None => live(store.get_by_srn(&srn)?).ok_or_else(|| not_found(to))?,
        };
        match *seg {
            "la" | "ol" if i == segments.len() - 1 && parent.ty.instance_type().is_some() => {
                let ty = parent
                    .ty
                    .instance_type()
                    .unwrap_or(ResourceType::ContentInstance);
                let instance = if *seg == "la" {
                    store.newest_child(parent.ri(), ty)?
                } else {
                    store.oldest_child(parent.ri(), ty)?
                };
                return Ok(Target::Edge {
                    container: parent,
                    instance: live(instance),
                });
            }
            "pcu" if i == segments.len() - 1 && parent.ty == ResourceType::PollingChannel => {
                return Ok(Target::PollingChannelUri(parent));
            }
            "ntsr" if i == segments.len() - 1 && parent.ty == ResourceType::Subscription => {
                return Ok(Target::NotificationTargetSelfReference(parent));
            }
            "fopt" if parent.ty == ResourceType::Group => {
                let suffix = segments[i + 1..].join("/");
                return Ok(Target::FanOut {
                    group: parent,
                    suffix,
                });
            }
            _ => {
                srn = format!("{srn}/{seg}");
                current = Some(live(store.get_by_srn(&srn)?).ok_or_else(|| not_found(to))?);
            }
        }
    }
    match current {
        Some(r) => Ok(Target::Resource(r)),
        None => live(store.get_by_srn(&srn)?)
            .map(Target::Resource)
            .ok_or_else(|| not_found(to)),
    }
}

fn not_found(to: &str) -> Error {
    Error::not_found(format!("no resource at '{to}'"))
}

/// Drops a resource whose expiration time has passed.
fn live_at(r: Option<Resource>, clock: &model::clock::Clock) -> Option<Resource> {
    r.filter(|r| {
        r.et()
            .is_none_or(|et| et > time::format(clock.now()).as_str())
    })
}
