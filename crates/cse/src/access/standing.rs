//! Access decisions for an originator that is not sending a request now: the creator of a
//! `<dynamicAuthorizationConsultation>` (is its DAS one the resource's policies trust?) and
//! a subscriber when its notification is due (may it still read what it subscribed to?).
//! Both are decided against the policies as they are at that moment, so losing a privilege
//! takes effect at the next decision, not at the next request of that originator.

use super::RequestContext;
use crate::config::CseConfig;
use crate::originator::Originator;
use model::ResourceType;
use store::Store;

/// The originator a recorded ID (a creator record) stands for now: the admin, this CSE, a remote CSE
/// (an ID starting with `/`), or an AE that is still registered under that AE-ID. `None`
/// for an AE-ID that is gone (deregistered or rotated away), so it holds nothing.
pub fn originator_of_record(id: &str, config: &CseConfig, store: &dyn Store) -> Option<Originator> {
    if id == config.admin {
        return Some(Originator::Admin);
    }
    if id == config.cse_id || id == format!("/{}", config.cse_id) {
        return Some(Originator::Cse);
    }
    if id.starts_with('/') {
        return Some(Originator::RemoteCse(id.to_owned()));
    }
    match store.resource_type(id) {
        Ok(Some(ResourceType::Ae)) => Some(Originator::Ae(id.to_owned())),
        _ => None,
    }
}

impl RequestContext {
    /// The facts about an originator that is not making a request at `time` (now); it
    /// counts as authenticated (the CSE itself establishes who it is: a registered AE-ID, a
    /// CSE-ID, checked now), and what only a request carries (peer address, location,
    /// credential level, roles) is unknown, so conditions that need it fail (fail closed).
    pub fn standing(time: model::time::Timestamp) -> Self {
        Self {
            authenticated: true,
            time,
            ip: None,
            location: None,
            credential_level: None,
            roles: Vec::new(),
        }
    }
}
