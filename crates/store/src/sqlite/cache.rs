//! The tree cache: every resource except content instances and time series instances, in
//! memory.
//!
//! Nearly every request reads a few of these (the originator's `<AE>`, the target's parent
//! container, the policies of `acpi`, the subscriptions to notify), while content instances
//! are the bulk of the data and are read one at a time. So the structural part of the tree is
//! served from memory and content instances from SQLite. The writer applies each committed
//! batch to the cache before it acknowledges the batch, so a reader never misses an
//! acknowledged write.

use model::{Resource, ResourceType};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Whether resources of a type live in the cache.
pub(super) fn cached(ty: ResourceType) -> bool {
    !ty.is_instance()
}

/// The cached part of the tree.
#[derive(Debug, Default)]
pub(super) struct Tree {
    by_ri: HashMap<String, Arc<Resource>>,
    ri_by_srn: HashMap<String, String>,
    /// Cached children of each parent, in creation order.
    children: HashMap<String, Vec<String>>,
    /// Every record, by (table, key), its values oldest first (some are read on every
    /// request, such as the AE-ID remembered for a PSK with `allowed_aes`).
    records: BTreeMap<(String, String), Vec<Vec<u8>>>,
}

impl Tree {
    pub(super) fn get(&self, ri: &str) -> Option<&Arc<Resource>> {
        self.by_ri.get(ri)
    }

    pub(super) fn get_by_srn(&self, srn: &str) -> Option<&Arc<Resource>> {
        self.ri_by_srn.get(srn).and_then(|ri| self.by_ri.get(ri))
    }

    /// Cached children of `pi` of type `ty` (a cached type), in creation order.
    pub(super) fn children(&self, pi: &str, ty: ResourceType) -> Vec<Resource> {
        self.children
            .get(pi)
            .into_iter()
            .flatten()
            .filter_map(|ri| self.by_ri.get(ri))
            .filter(|r| r.ty == ty)
            .map(|r| Resource::clone(r))
            .collect()
    }

    /// The values of a record, oldest first (empty: none).
    pub(super) fn record(&self, table: &str, key: &str) -> &[Vec<u8>] {
        self.records
            .get(&(table.to_owned(), key.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// Every record of a table (key, first value), sorted by key.
    pub(super) fn table(&self, table: &str) -> Vec<(String, Vec<u8>)> {
        let from = (table.to_owned(), String::new());
        self.records
            .range(from..)
            .take_while(|((t, _), _)| t == table)
            .filter_map(|((_, k), v)| Some((k.clone(), v.first()?.clone())))
            .collect()
    }

    /// The records of a table whose key starts with `prefix` (key, first value), sorted by
    /// key: a range of the map, so other keys cost nothing.
    pub(super) fn table_prefix(&self, table: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
        let from = (table.to_owned(), prefix.to_owned());
        self.records
            .range(from..)
            .take_while(|((t, k), _)| t == table && k.starts_with(prefix))
            .filter_map(|((_, k), v)| Some((k.clone(), v.first()?.clone())))
            .collect()
    }

    /// Applies a committed change to a record.
    pub(super) fn change_record(&mut self, change: RecordChange) {
        match change {
            RecordChange::Put(t, k, v) => {
                self.records.insert((t, k), vec![v]);
            }
            RecordChange::Add(t, k, v) => self.records.entry((t, k)).or_default().push(v),
            RecordChange::Delete(t, k) => {
                self.records.remove(&(t, k));
            }
        }
    }

    /// Adds or replaces a resource (re-indexing it when its parent or its name changed).
    pub(super) fn put(&mut self, r: Resource) {
        if !cached(r.ty) {
            return;
        }
        let ri = r.ri().to_owned();
        match self.by_ri.get(&ri) {
            None => self
                .children
                .entry(r.pi().to_owned())
                .or_default()
                .push(ri.clone()),
            Some(old) => {
                if old.pi() != r.pi() {
                    if let Some(siblings) = self.children.get_mut(old.pi()) {
                        siblings.retain(|s| *s != ri);
                    }
                    let siblings = self.children.entry(r.pi().to_owned()).or_default();
                    if !siblings.contains(&ri) {
                        siblings.push(ri.clone());
                    }
                }
                if old.srn != r.srn && self.ri_by_srn.get(&old.srn) == Some(&ri) {
                    self.ri_by_srn.remove(&old.srn);
                }
            }
        }
        self.ri_by_srn.insert(r.srn.clone(), ri.clone());
        self.by_ri.insert(ri, Arc::new(r));
    }

    /// Gives the resource `old` the `ri` `new`, in its place among its siblings and with its
    /// children; its new state follows with [`Tree::put`].
    pub(super) fn rename(&mut self, old: &str, new: &str) {
        let Some(r) = self.by_ri.remove(old) else {
            return;
        };
        self.ri_by_srn.insert(r.srn.clone(), new.to_owned());
        if let Some(siblings) = self.children.get_mut(r.pi()) {
            for s in siblings.iter_mut().filter(|s| *s == old) {
                *s = new.to_owned();
            }
        }
        if let Some(children) = self.children.remove(old) {
            self.children.insert(new.to_owned(), children);
        }
        self.by_ri.insert(new.to_owned(), r);
    }

    /// Removes a resource (its descendants are removed by their own entries).
    pub(super) fn remove(&mut self, ri: &str) {
        if let Some(r) = self.by_ri.remove(ri) {
            self.ri_by_srn.remove(&r.srn);
            if let Some(siblings) = self.children.get_mut(r.pi()) {
                siblings.retain(|s| s != ri);
            }
            self.children.remove(ri);
        }
    }
}

/// A change to a record (table, key): its value replaced, one more value, or the record gone.
#[derive(Debug)]
pub(super) enum RecordChange {
    Put(String, String, Vec<u8>),
    Add(String, String, Vec<u8>),
    Delete(String, String),
}

/// Changes made by write jobs that are not committed yet: the latest state of every touched
/// resource (`None`: deleted), in the order they were first touched.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    state: HashMap<String, Option<Resource>>,
    order: Vec<String>,
    /// Records changed, in order.
    records: Vec<RecordChange>,
    /// Resources whose new state is written to SQLite only at the end of the group.
    deferred: Vec<String>,
    /// Resources given another `ri` (old, new), in order.
    renames: Vec<(String, String)>,
    /// Content instances changed in bulk (their structured names, or a reference in them):
    /// the recent instances are dropped.
    flush_instances: bool,
}

impl Overlay {
    pub(super) fn get(&self, ri: &str) -> Option<&Option<Resource>> {
        self.state.get(ri)
    }

    pub(super) fn record(&mut self, ri: &str, r: Option<Resource>) {
        if self.state.insert(ri.to_owned(), r).is_none() {
            self.order.push(ri.to_owned());
        }
    }

    /// Records an update whose SQL write waits for the end of the group.
    pub(super) fn record_deferred(&mut self, ri: &str, r: Resource) {
        self.record(ri, Some(r));
        self.deferred.push(ri.to_owned());
    }

    /// The final state of every deferred update that still exists, once each.
    pub(super) fn deferred(&self) -> Vec<&Resource> {
        let mut seen = std::collections::HashSet::new();
        self.deferred
            .iter()
            .filter(|ri| seen.insert(ri.as_str()))
            .filter_map(|ri| self.state.get(ri).and_then(Option::as_ref))
            .collect()
    }

    /// Every resource that exists in this overlay's latest state.
    pub(super) fn states(&self) -> impl Iterator<Item = &Resource> {
        self.state.values().flatten()
    }

    /// Records that the resource `old` is now `new` (see [`Tree::rename`]).
    pub(super) fn rename(&mut self, old: &str, new: &str) {
        self.renames.push((old.to_owned(), new.to_owned()));
    }

    /// Records that cached content instances may be stale (changed in bulk).
    pub(super) fn flush_instances(&mut self) {
        self.flush_instances = true;
    }

    /// Records a change to a record (see [`Tree::change_record`]).
    pub(super) fn change_record(&mut self, change: RecordChange) {
        self.records.push(change);
    }

    /// Moves a finished job's changes into the batch.
    pub(super) fn absorb(&mut self, job: Overlay) {
        self.records.extend(job.records);
        self.deferred.extend(job.deferred);
        self.renames.extend(job.renames);
        self.flush_instances |= job.flush_instances;
        for ri in job.order {
            if let Some(r) = job.state.get(&ri) {
                self.record(&ri, r.clone());
            }
        }
    }

    /// Applies committed changes to the tree and to the recent instances.
    pub(super) fn apply(self, tree: &mut Tree, instances: &mut Instances) {
        let Overlay {
            mut state,
            order,
            records,
            renames,
            flush_instances,
            ..
        } = self;
        for change in records {
            tree.change_record(change);
        }
        for (old, new) in renames {
            tree.rename(&old, &new);
        }
        let mut deleted = flush_instances;
        if flush_instances {
            instances.clear();
        }
        for ri in order {
            match state.remove(&ri) {
                Some(Some(r)) if cached(r.ty) => tree.put(r),
                Some(Some(r)) => {
                    // An instance changes only when a reference in it is rewritten.
                    instances.remove(&ri);
                    instances.put(Arc::new(r));
                }
                Some(None) => {
                    tree.remove(&ri);
                    instances.remove(&ri);
                    deleted = true;
                }
                None => {}
            }
        }
        if deleted {
            instances.generation += 1;
        }
    }
}

/// Recently written or read content instances, by `ri` and by structured name, at most
/// `capacity` of them (the oldest entry leaves first).
///
/// Instances never change, they are only deleted, so the one hazard is a reader putting back
/// an instance that was deleted while it was reading SQLite. `generation` counts batches
/// with deletions; a reader notes it before reading and caches what it read only if it has
/// not moved ([`Instances::put_if_unchanged`]).
///
/// The eviction queue `order` is not searched on removal (that would cost a scan of up to
/// `capacity` names per trimmed instance); a removed instance leaves a stale name in it. A
/// container with `mni` below `capacity` removes as many instances as it adds, so the queue
/// would grow by one name per create and never reach the front: the queue is swept whenever
/// it holds more stale names than live ones ([`Instances::sweep_stale`]), which keeps it
/// within twice the live count (plus [`SWEEP_SLACK`]) at an amortised constant cost.
#[derive(Debug)]
pub(super) struct Instances {
    by_ri: HashMap<String, Cached>,
    ri_by_srn: HashMap<String, String>,
    /// Eviction order: (`seq` of the entry when it was queued, `ri`), oldest first.
    order: VecDeque<(u64, String)>,
    /// Sequence of the next entry, so that a name queued for an earlier entry of the same
    /// `ri` (removed, then cached again) neither evicts nor keeps the current one.
    next_seq: u64,
    capacity: usize,
    pub(super) generation: u64,
}

/// A cached instance and the sequence number of its place in the eviction queue.
#[derive(Debug)]
struct Cached {
    seq: u64,
    r: Arc<Resource>,
}

/// Stale names the eviction queue may hold beyond the live ones before it is swept, so that a
/// nearly empty cache is not swept on every removal.
const SWEEP_SLACK: usize = 64;

impl Instances {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            by_ri: HashMap::new(),
            ri_by_srn: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            capacity,
            generation: 0,
        }
    }

    pub(super) fn get(&self, ri: &str) -> Option<&Arc<Resource>> {
        self.by_ri.get(ri).map(|c| &c.r)
    }

    pub(super) fn get_by_srn(&self, srn: &str) -> Option<&Arc<Resource>> {
        self.ri_by_srn.get(srn).and_then(|ri| self.get(ri))
    }

    pub(super) fn put(&mut self, r: Arc<Resource>) {
        if self.capacity == 0 || self.by_ri.contains_key(r.ri()) {
            return;
        }
        while self.by_ri.len() >= self.capacity {
            match self.order.pop_front() {
                Some((seq, old)) if self.is_current(seq, &old) => self.remove(&old),
                Some(_) => {}
                None => break,
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ri_by_srn.insert(r.srn.clone(), r.ri().to_owned());
        self.order.push_back((seq, r.ri().to_owned()));
        self.by_ri.insert(r.ri().to_owned(), Cached { seq, r });
        self.sweep_stale();
    }

    /// Caches an instance a reader fetched, unless a deletion happened since `generation`.
    pub(super) fn put_if_unchanged(&mut self, r: Arc<Resource>, generation: u64) {
        if generation == self.generation {
            self.put(r);
        }
    }

    pub(super) fn remove(&mut self, ri: &str) {
        if let Some(c) = self.by_ri.remove(ri) {
            self.ri_by_srn.remove(&c.r.srn);
            self.sweep_stale();
        }
    }

    /// Forgets every instance (their structured names moved).
    pub(super) fn clear(&mut self) {
        self.by_ri.clear();
        self.ri_by_srn.clear();
        self.order.clear();
    }

    /// Names in the eviction queue, live or stale (bounded by `2 * len + SWEEP_SLACK`).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.order.len()
    }

    /// Cached instances.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_ri.len()
    }

    /// Whether the queued name `(seq, ri)` is the place of the instance cached now.
    fn is_current(&self, seq: u64, ri: &str) -> bool {
        self.by_ri.get(ri).is_some_and(|c| c.seq == seq)
    }

    /// Drops the names of removed instances once they outnumber the live ones (plus slack):
    /// the sweep costs O(live) and the next one is at least live + slack changes away.
    fn sweep_stale(&mut self) {
        if self.order.len() <= 2 * self.by_ri.len() + SWEEP_SLACK {
            return;
        }
        let by_ri = &self.by_ri;
        self.order
            .retain(|(seq, ri)| by_ri.get(ri).is_some_and(|c| c.seq == *seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(ty: ResourceType, ri: &str, pi: &str, srn: &str) -> Resource {
        let attrs = json!({"ri": ri, "pi": pi, "rn": srn})
            .as_object()
            .cloned()
            .unwrap_or_default();
        Resource {
            ty,
            srn: srn.into(),
            attrs,
        }
    }

    /// The SQL that loads the cache skips exactly the types the cache does not hold.
    #[test]
    fn instance_types_are_the_uncached_ones() {
        let uncached: Vec<u16> = ResourceType::ALL
            .into_iter()
            .filter(|t| !cached(*t))
            .map(ResourceType::code)
            .collect();
        assert_eq!(uncached, super::super::INSTANCE_TYPES);
    }

    #[test]
    fn overlay_latest_state_wins_and_order_is_kept() {
        let mut tree = Tree::default();
        let mut batch = Overlay::default();
        let mut job = Overlay::default();
        job.record("a", Some(r(ResourceType::Container, "a", "p", "p/a")));
        job.record("b", Some(r(ResourceType::Container, "b", "p", "p/b")));
        job.record("a", None);
        batch.absorb(job);
        batch.record(
            "c",
            Some(r(ResourceType::ContentInstance, "c", "b", "p/b/c")),
        );
        let mut instances = Instances::new(2);
        batch.apply(&mut tree, &mut instances);
        assert!(
            instances.get_by_srn("p/b/c").is_some(),
            "new instances are cached"
        );
        assert!(tree.get("a").is_none());
        assert!(tree.get_by_srn("p/b").is_some());
        assert!(tree.get("c").is_none(), "content instances are not cached");
        assert_eq!(tree.children("p", ResourceType::Container).len(), 1);
        tree.remove("b");
        assert!(tree.children("p", ResourceType::Container).is_empty());
        assert!(tree.get_by_srn("p/b").is_none());
    }

    #[test]
    fn instances_are_bounded_and_deletions_win_over_readers() {
        let mut i = Instances::new(2);
        for n in ["a", "b", "c"] {
            i.put(Arc::new(r(
                ResourceType::ContentInstance,
                n,
                "p",
                &format!("p/{n}"),
            )));
        }
        assert!(i.get("a").is_none() && i.get("b").is_some() && i.get("c").is_some());
        // A reader read "d" before a batch deleted it: its result is not cached.
        let seen = i.generation;
        let mut deletion = Overlay::default();
        deletion.record("d", None);
        deletion.apply(&mut Tree::default(), &mut i);
        i.put_if_unchanged(
            Arc::new(r(ResourceType::ContentInstance, "d", "p", "p/d")),
            seen,
        );
        assert!(i.get("d").is_none());
        i.put_if_unchanged(
            Arc::new(r(ResourceType::ContentInstance, "d", "p", "p/d")),
            i.generation,
        );
        assert!(i.get_by_srn("p/d").is_some());
    }

    fn cin(n: u64) -> Arc<Resource> {
        Arc::new(r(
            ResourceType::ContentInstance,
            &format!("cin{n}"),
            "cnt",
            &format!("cnt/cin{n}"),
        ))
    }

    /// Issue 10: a container with `mni` below the cache's capacity trims one instance per
    /// create; each trimmed instance used to leave its name in the eviction queue for good
    /// (about 60 bytes per create).
    #[test]
    fn trimmed_instances_leave_nothing_behind() {
        let (capacity, mni, creates) = (10_000, 1_000, 100_000);
        let mut i = Instances::new(capacity);
        for n in 0..creates {
            i.put(cin(n));
            if n >= mni {
                i.remove(&format!("cin{}", n - mni));
            }
            assert!(
                i.queued() <= 2 * i.len() + SWEEP_SLACK,
                "after {n} creates: {} queued names for {} instances",
                i.queued(),
                i.len()
            );
        }
        assert_eq!(i.len(), mni as usize);
        assert!(i.get("cin0").is_none() && i.get(&format!("cin{}", creates - 1)).is_some());
    }

    #[test]
    fn a_stale_name_does_not_evict_the_instance_cached_again_under_it() {
        let mut i = Instances::new(2);
        i.put(cin(1));
        i.remove("cin1");
        i.put(cin(2));
        i.put(cin(1));
        // Full: the next put evicts the oldest live entry (cin2), not cin1 through its
        // stale first name.
        i.put(cin(3));
        assert!(i.get("cin1").is_some() && i.get("cin3").is_some());
        assert!(i.get("cin2").is_none());
    }
}
