//! The parent and children of the resources a result considers, for the filter criteria on
//! relatives (`palb`, `pty`, `patr` on the parent; `clbl`, `chty`, `catr` on the children;
//! TS-0004 clauses 7.3.3.17.5, .6 and .9).
//!
//! Access control: a relative counts only if the originator may RETRIEVE it (and, for a
//! content instance, its container does not disable retrieval). The criteria compare the
//! relative's representation, which only its readers may see; a resource is never selected
//! through, and so never reveals anything of, a relative hidden from the originator.
//!
//! Cost: children are read through the store's `(parent, type)` index, one scan per
//! resource tested, which stops as soon as the criteria are decided; each resource is a
//! child of one parent, so a whole result reads each stored resource at most once more as
//! a child. A parent is read once for its children that follow one another in the scan (a
//! bounded memory of recent parents). Decisions governed by a parent's policies (content
//! instances) are shared by siblings, as the page does.

use crate::access::governed_by_parent;
use crate::resources::cnt::may_list;
use model::filter::Relatives;
use model::{Resource, ResourceType, Result};
use std::collections::HashMap;
use std::sync::Arc;
use store::{Entry, Flow, Peek, Scan, Scope, Store, Visitor};

/// How many parents [`Kin`] remembers before it forgets them all.
const PARENTS_KEPT: usize = 1024;

/// [`Relatives`] read from the store, each passing the originator's RETRIEVE decision.
pub(crate) struct Kin<'a> {
    store: &'a dyn Store,
    /// The originator's RETRIEVE decision on one resource.
    may_read: &'a mut dyn FnMut(&Resource) -> bool,
    /// Whether siblings governed by their parent's policies share one decision (no token
    /// in the request: a token can name a single resource).
    by_parent: bool,
    parents: HashMap<String, Option<Arc<Resource>>>,
    decided: HashMap<(String, ResourceType), bool>,
}

impl<'a> Kin<'a> {
    /// Relatives as seen by an originator whose RETRIEVE decision is `may_read`.
    pub(crate) fn new(
        store: &'a dyn Store,
        may_read: &'a mut dyn FnMut(&Resource) -> bool,
        by_parent: bool,
    ) -> Self {
        Self {
            store,
            may_read,
            by_parent,
            parents: HashMap::new(),
            decided: HashMap::new(),
        }
    }

    /// Whether the originator may read `r` as a relative.
    fn readable(&mut self, r: &Resource) -> bool {
        if self.by_parent && governed_by_parent(r.ty) {
            let key = (r.pi().to_owned(), r.ty);
            if let Some(known) = self.decided.get(&key) {
                return *known;
            }
            let ok = (self.may_read)(r) && may_list(self.store, r);
            self.decided.insert(key, ok);
            return ok;
        }
        (self.may_read)(r) && may_list(self.store, r)
    }
}

impl Relatives for Kin<'_> {
    fn parent(&mut self, of: &Resource) -> Result<Option<Arc<Resource>>> {
        let pi = of.pi();
        if pi.is_empty() {
            return Ok(None);
        }
        if let Some(known) = self.parents.get(pi) {
            return Ok(known.clone());
        }
        let parent = self.store.get_shared(pi)?;
        let parent = parent.filter(|p| self.readable(p));
        if self.parents.len() >= PARENTS_KEPT {
            self.parents.clear();
        }
        self.parents.insert(pi.to_owned(), parent.clone());
        Ok(parent)
    }

    fn children(
        &mut self,
        of: &Resource,
        types: &[ResourceType],
        visit: &mut dyn FnMut(&Resource) -> bool,
    ) -> Result<()> {
        let store = self.store;
        let scan = Scan {
            scope: Scope::Children(of.ri()),
            types,
            names: &[],
        };
        store.scan(&scan, &mut Children { kin: self, visit })
    }
}

/// The visitor of one [`Kin::children`] scan.
struct Children<'k, 'a> {
    kin: &'k mut Kin<'a>,
    visit: &'k mut dyn FnMut(&Resource) -> bool,
}

impl Visitor for Children<'_, '_> {
    fn peek(&mut self, entry: &Entry<'_>) -> Result<Peek> {
        // Siblings refused by their parent's decision are not read.
        let refused = self.kin.by_parent
            && governed_by_parent(entry.ty)
            && self.kin.decided.get(&(entry.pi.to_owned(), entry.ty)) == Some(&false);
        Ok(if refused { Peek::Pass } else { Peek::Read })
    }

    fn visit(&mut self, child: Resource) -> Result<Flow> {
        if !self.kin.readable(&child) {
            return Ok(Flow::Continue);
        }
        Ok(if (self.visit)(&child) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}
