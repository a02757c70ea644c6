//! One page of resources for a RETRIEVE result (child resources, discovery): what the store
//! scans, filtered by the request's criteria and by each resource's own access decision,
//! then `ofst`, `lim` and the CSE's own bounds.
//!
//! The order matters for security: a resource the originator may not see is dropped before
//! it is counted, so it neither takes a place under `lim` nor shifts `ofst`, and the scan
//! stops as soon as the page is full, so a request never costs the CSE the resources it
//! will not return. When the CSE's bounds (not the request's `lim`) cut the result, the
//! response says so with Content Status partial and the Content Offset to continue from.

use model::{ContentStatus, FilterCriteria, Resource, ResourceType, Response, Result};
use store::{Flow, Scan, Scope, Store};

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
    /// What the originator gets, in creation order.
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

/// Collects one page: each scanned resource must match `fc` and pass `admit` (its own
/// access decision) before it counts.
pub(crate) fn collect(
    store: &dyn Store,
    scan: &Scan<'_>,
    fc: &FilterCriteria,
    bounds: Bounds,
    admit: &mut dyn FnMut(&Resource) -> bool,
) -> Result<Page> {
    let mut page = Page::default();
    if bounds.lim == Some(0) {
        return Ok(page);
    }
    let mut matched = 0u64;
    let mut bytes = 0u64;
    store.scan(scan, &mut |r| {
        if !fc.matches(r.ty, &r.attrs) || !admit(&r) {
            return Ok(Flow::Continue);
        }
        matched += 1;
        if matched <= bounds.offset {
            return Ok(Flow::Continue);
        }
        let size = cost(&r, bounds.shape);
        let taken = page.found.len() as u64;
        if taken >= bounds.max_resources
            || (taken > 0 && bytes.saturating_add(size) > bounds.max_bytes)
        {
            page.continue_at = Some(bounds.offset + taken);
            return Ok(Flow::Stop);
        }
        bytes = bytes.saturating_add(size);
        page.found.push(r);
        Ok(if Some(taken + 1) == bounds.lim {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })?;
    Ok(page)
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
