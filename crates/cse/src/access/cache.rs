//! Compiled policies, kept per ACP for as long as the ACP is unchanged, so a decision does
//! not parse rules again. The store hands out each resource as a shared `Arc` that it
//! replaces on every write; an entry is used only while the store still hands out the very
//! same `Arc` (pointer equality), so an updated ACP is recompiled on its next use and a
//! stale compilation is never used. A store that copies resources on every read simply
//! never hits the cache.

use super::rule::{Domain, Policy, RuleSet};
use model::Resource;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Entries kept before the cache starts over (a bound, not a tuning knob: a CSE with more
/// ACPs than this in active use only compiles more often).
const CAPACITY: usize = 4096;

/// Compiled `pv` and `pvs` of the ACPs in use.
#[derive(Debug)]
pub struct PolicyCache {
    domain: Domain,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

#[derive(Debug)]
struct Entry {
    resource: Arc<Resource>,
    pv: Arc<Policy>,
    pvs: Arc<Policy>,
}

impl PolicyCache {
    /// An empty cache for rules of this SP and CSE.
    pub fn new(domain: Domain) -> Self {
        Self {
            domain,
            entries: RwLock::default(),
        }
    }

    /// The domain rules are compiled against.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The compiled rule set of an ACP resource.
    pub fn policy(&self, acp: &Arc<Resource>, set: RuleSet) -> Arc<Policy> {
        let pick = |e: &Entry| match set {
            RuleSet::Privileges => e.pv.clone(),
            RuleSet::SelfPrivileges => e.pvs.clone(),
        };
        if let Ok(entries) = self.entries.read() {
            if let Some(e) = entries.get(acp.ri()) {
                if Arc::ptr_eq(&e.resource, acp) {
                    return pick(e);
                }
            }
        }
        let compile = |s: RuleSet| {
            Arc::new(Policy::compile(
                acp.ri(),
                s,
                acp.attrs.get(s.attribute()),
                &self.domain,
            ))
        };
        let entry = Entry {
            resource: acp.clone(),
            pv: compile(RuleSet::Privileges),
            pvs: compile(RuleSet::SelfPrivileges),
        };
        let out = pick(&entry);
        // A poisoned lock only means another thread panicked mid-insert; the compiled rules
        // are still right, they are just not kept.
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(acp.ri().to_owned(), Arc::new(entry));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ResourceType;
    use serde_json::json;

    fn acp(acop: u64) -> Arc<Resource> {
        let attrs = json!({"ri": "acp1", "pv": {"acr": [{"acor": ["all"], "acop": acop}]},
                           "pvs": {"acr": [{"acor": ["Cx"], "acop": 63}]}});
        Arc::new(Resource {
            ty: ResourceType::AccessControlPolicy,
            srn: "cse-in/acp1".into(),
            attrs: attrs.as_object().cloned().unwrap_or_default(),
        })
    }

    fn acop(p: &Policy) -> Option<u8> {
        p.rules.first()?.as_ref().ok().map(|r| r.operations)
    }

    #[test]
    fn reuses_while_unchanged_and_recompiles_after_a_change() {
        let cache = PolicyCache::new(Domain::of(&crate::CseConfig::default()));
        let v1 = acp(2);
        let a = cache.policy(&v1, RuleSet::Privileges);
        let b = cache.policy(&v1, RuleSet::Privileges);
        assert!(Arc::ptr_eq(&a, &b), "same resource: same compilation");
        assert_eq!(acop(&a), Some(2));
        let pvs = cache.policy(&v1, RuleSet::SelfPrivileges);
        assert_eq!(acop(&pvs), Some(63));
        // The store replaced the ACP (an UPDATE): a new Arc, so a new compilation.
        let v2 = acp(4);
        let c = cache.policy(&v2, RuleSet::Privileges);
        assert_eq!(acop(&c), Some(4));
        // An equal copy is not the stored resource either: compiled again, same result.
        let copy = Arc::new(Resource::clone(&v2));
        assert_eq!(acop(&cache.policy(&copy, RuleSet::Privileges)), Some(4));
    }
}
