//! One page of resources for a RETRIEVE result (child resources, discovery): what the store
//! scans, filtered by the request's criteria and by each resource's own access decision,
//! then `ofst`, `lim` and the CSE's own bounds.
//!
//! The order matters for security: a resource the originator may not see is dropped before
//! it is counted, so it neither takes a place under `lim` nor shifts `ofst`. The cost stays
//! with what is returned: the store applies `ty`, `rn` and `lvl` from its index, content
//! instances refused by their parent's decision or passed over by `ofst` are not read, every
//! other resource is read one at a time and dropped unless returned, and the scan stops as
//! soon as the page is full. When the CSE's bounds (not the request's `lim`) cut the result,
//! the response says so with Content Status partial and the Content Offset to continue from.

use crate::access::governed_by_parent;
use model::filter::Relatives;
use model::{ContentStatus, FilterCriteria, Resource, ResourceType, Response, Result};
use std::collections::HashMap;
use store::{Entry, Flow, Peek, Scan, Scope, Store, Visitor};

/// What a result holds of each resource, which decides what it costs in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Addresses or child resource references.
    References,
    /// Full representations.
    Representations,
}

/// The limits of one page: the request's (`ofst`, `lim`) and the CSE's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Matches to pass over first (`ofst`).
    pub(crate) offset: u64,
    /// Most matches the originator asked for (`lim`); reaching it is a full result.
    pub(crate) lim: Option<u64>,
    /// Most resources the CSE puts in one response.
    pub(crate) max_resources: u64,
    /// Most bytes of resources the CSE puts in one response (at least one resource).
    pub(crate) max_bytes: u64,
    /// What the result holds of each resource.
    pub(crate) shape: Shape,
}

/// The resources of a page and, when the CSE's bounds cut it, where to continue.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// What the originator gets, in the order of the scan.
    pub(crate) found: Vec<Resource>,
    /// `Some(ofst)` when more resources matched than the CSE returns at once.
    pub(crate) continue_at: Option<u64>,
}

impl Page {
    /// Marks the response partial (with its Content Offset) when the page was cut.
    pub(crate) fn mark(&self, resp: &mut Response) {
        if let Some(at) = self.continue_at {
            resp.cnst = Some(ContentStatus::Partial);
            resp.cnot = Some(at);
        }
    }
}

/// The scan that answers `fc` under `scope`: the criteria the store can apply from its index
/// are pushed down, unless `fo` = 2 (OR) makes each criterion insufficient on its own.
pub(crate) fn scan<'a>(scope: Scope<'a>, fc: &'a FilterCriteria) -> Scan<'a> {
    let and = fc.fo != Some(2);
    let (types, names): (&[ResourceType], &[String]) =
        if and { (&fc.ty, &fc.rn) } else { (&[], &[]) };
    Scan {
        scope,
        types,
        names,
    }
}

/// How a page's resources are admitted: their own access decision, and whether that
/// decision can be shared.
pub(crate) struct Admission<'a> {
    /// The access decision for one resource.
    pub(crate) admit: &'a mut dyn FnMut(&Resource) -> bool,
    /// Whether resources governed by their parent's policies (content instances) are
    /// decided alike under one parent, as they are when the request carries no token (a
    /// token can name a single resource). Then one decision per parent stands for its
    /// siblings, and those refused, or passed over by `ofst`, are never read.
    pub(crate) by_parent: bool,
}

/// Collects one page: each scanned resource must match `fc` (its relatives read through
/// `relatives` for the criteria on them) and be admitted (its own access decision) before
/// it counts.
pub(crate) fn collect(
    store: &dyn Store,
    scan: &Scan<'_>,
    fc: &FilterCriteria,
    bounds: Bounds,
    admission: Admission<'_>,
    relatives: &mut dyn Relatives,
) -> Result<Page> {
    if bounds.lim == Some(0) {
        return Ok(Page::default());
    }
    // Whether the store's own criteria (`ty`, `rn`, `lvl`) are the whole filter, so that an
    // index entry tells whether a resource matches.
    let by_index = {
        let mut rest = fc.clone();
        rest.ty.clear();
        rest.rn.clear();
        fc.fo != Some(2) && !rest.has_conditions()
    };
    let mut collector = Collector {
        store,
        fc,
        bounds,
        admission,
        relatives,
        by_index,
        decided: HashMap::new(),
        matched: 0,
        bytes: 0,
        page: Page::default(),
    };
    store.scan(scan, &mut collector)?;
    Ok(collector.page)
}

/// The visitor of [`collect`]'s scan.
struct Collector<'f, 'a> {
    store: &'f dyn Store,
    fc: &'f FilterCriteria,
    bounds: Bounds,
    admission: Admission<'a>,
    relatives: &'f mut dyn Relatives,
    by_index: bool,
    /// Decisions shared by siblings: (parent, type) -> admitted.
    decided: HashMap<(String, ResourceType), bool>,
    matched: u64,
    bytes: u64,
    page: Page,
}

impl Visitor for Collector<'_, '_> {
    fn peek(&mut self, entry: &Entry<'_>) -> Result<Peek> {
        if !self.admission.by_parent || !governed_by_parent(entry.ty) {
            return Ok(Peek::Read);
        }
        Ok(match self.decided.get(&(entry.pi.to_owned(), entry.ty)) {
            Some(false) => Peek::Pass,
            Some(true) if self.by_index && self.matched < self.bounds.offset => {
                self.matched += 1;
                Peek::Pass
            }
            _ => Peek::Read,
        })
    }

    fn visit(&mut self, r: Resource) -> Result<Flow> {
        if !self.fc.matches_with(&r, self.relatives)? {
            return Ok(Flow::Continue);
        }
        // Its own access decision, and no content instance of a container that disables
        // retrieval (`disr`); both depend on the parent alone for siblings it governs.
        let admitted = if self.admission.by_parent && governed_by_parent(r.ty) {
            let key = (r.pi().to_owned(), r.ty);
            match self.decided.get(&key) {
                Some(known) => *known,
                None => {
                    let admitted = (self.admission.admit)(&r)
                        && crate::resources::cnt::may_list(self.store, &r);
                    self.decided.insert(key, admitted);
                    admitted
                }
            }
        } else {
            (self.admission.admit)(&r) && crate::resources::cnt::may_list(self.store, &r)
        };
        if !admitted {
            return Ok(Flow::Continue);
        }
        self.matched += 1;
        if self.matched <= self.bounds.offset {
            return Ok(Flow::Continue);
        }
        let size = cost(&r, self.bounds.shape);
        let taken = self.page.found.len() as u64;
        if taken >= self.bounds.max_resources
            || (taken > 0 && self.bytes.saturating_add(size) > self.bounds.max_bytes)
        {
            self.page.continue_at = Some(self.bounds.offset + taken);
            return Ok(Flow::Stop);
        }
        self.bytes = self.bytes.saturating_add(size);
        self.page.found.push(r);
        Ok(if Some(taken + 1) == self.bounds.lim {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

/// About how many bytes a resource adds to a response of this shape.
fn cost(r: &Resource, shape: Shape) -> u64 {
    match shape {
        // The address plus the reference's JSON around it.
        Shape::References => r.srn.len() as u64 + 48,
        Shape::Representations => {
            let mut counter = Counter(0);
            // Writing into a counter cannot fail; an error would only undercount.
            let _ = serde_json::to_writer(&mut counter, &r.attrs);
            counter.0
        }
    }
}

/// Counts what is written to it, keeping nothing.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
