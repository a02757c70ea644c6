//! Durable storage of the resource tree.
//!
//! The [`Store`] trait is what the CSE sees: quick reads of committed state, and writes as
//! closures that run one after another inside a transaction ([`Txn`]). Running writes as
//! closures on the store's side gives two things at once: every read-modify-write (a
//! container's `cni`, `cbs` and `st`) is serialized without locks in the CSE, and many
//! concurrent writes share one fsync (group commit). A write's future resolves only after its
//! transaction is durable on disk, so an acknowledged request survives `kill -9`.
//!
//! [`SqliteStore`] is the embedded default; a PostgreSQL backend can implement the same trait.
#![forbid(unsafe_code)]

mod sqlite;

pub use sqlite::{SqliteOptions, SqliteStore};

use model::{Resource, ResourceType, Result};

use tokio::sync::oneshot;

/// The schema version this build reads and writes.
/// Version 2 replaced the credential tables of version 1 by generic records (a version-1
/// database is moved to version 2 when it is opened).
pub const SCHEMA_VERSION: u32 = 2;

/// Reads and writes inside one write transaction. Reads see the writes made earlier in the
/// same transaction, including those of other requests committed in the same group.
pub trait Txn {
    /// A resource by `ri`.
    fn get(&mut self, ri: &str) -> Result<Option<Resource>>;
    /// The type of a resource, if it exists (checks that need no copy of it).
    fn resource_type(&mut self, ri: &str) -> Result<Option<ResourceType>> {
        Ok(self.get(ri)?.map(|r| r.ty))
    }
    /// The oldest direct child of a type.
    fn oldest_child(&mut self, pi: &str, ty: ResourceType) -> Result<Option<Resource>>;
    /// The direct children of a type in creation order, as this transaction sees them (so
    /// that a decision made on several resources, such as the service subscription rules
    /// a registration is checked against, reads one consistent state).
    fn children(&mut self, pi: &str, ty: ResourceType) -> Result<Vec<Resource>>;
    /// A resource by structured name, as this transaction sees it.
    fn get_by_srn(&mut self, srn: &str) -> Result<Option<Resource>>;
    /// Whether a direct child of `pi` expires (`et`) after `et`: whether shortening the
    /// parent's lifetime would leave a child outliving it (TS-0004 clause 7.3.3.4), decided
    /// inside the write so that no concurrent write slips in between.
    fn child_expires_after(&mut self, pi: &str, et: model::time::Timestamp) -> Result<bool>;
    /// Inserts a new resource; a taken `ri` or structured name is a 4105 CONFLICT.
    fn insert(&mut self, r: &Resource) -> Result<()>;
    /// Replaces a resource's attributes (same `ri`).
    fn update(&mut self, r: &Resource) -> Result<()>;
    /// Deletes a resource and its whole subtree; returns what was deleted, parents first.
    fn delete_subtree(&mut self, ri: &str) -> Result<Vec<Resource>>;
    /// Replaces the resource `old_ri` by `r`, which has another `ri` (an AE whose AE-ID is
    /// rotated) and possibly another structured name, which then moves its whole subtree.
    /// It keeps its place among its siblings, and its children follow it (their `pi`). A
    /// taken `ri` or structured name is a 4105 CONFLICT.
    fn rename(&mut self, old_ri: &str, r: &Resource) -> Result<()>;
    /// Every resource but content and time series instances whose stored attributes contain `text`
    /// anywhere (a scan: for rare maintenance such as rewriting every reference to a
    /// rotated AE-ID).
    fn mentioning(&mut self, text: &str) -> Result<Vec<Resource>>;
    /// Gives every content instance whose creator (`cr`) is `old` the creator `new`, in bulk:
    /// content instances are the bulk of the data, and `cr` is the one attribute of theirs
    /// that names an originator. Returns how many changed.
    fn reassign_instance_creator(&mut self, old: &str, new: &str) -> Result<usize>;
    /// Sets the record `key` of the named `table` to `value`, replacing what it held. A
    /// record `tied_to` a resource (by `ri`) is deleted with it (and follows it through
    /// [`Txn::rename`]); an untied one stays until it is deleted.
    ///
    /// Records are the security manager's side of a write (which credential registered an
    /// AE, which one made a subscription...): written in the same transaction as the
    /// resources they speak about, so that an acknowledged request cannot keep one and lose
    /// the other. The store gives them no meaning: tables are names the caller chooses,
    /// values are opaque bytes.
    fn put_record(
        &mut self,
        table: &str,
        key: &str,
        value: &[u8],
        tied_to: Option<&str>,
    ) -> Result<()>;
    /// Adds one more value to the record `key` of `table` (a record may hold several,
    /// kept in the order they were added).
    fn add_record(&mut self, table: &str, key: &str, value: &[u8]) -> Result<()>;
    /// The first value of a record, as this transaction sees it (so that a check and the
    /// write it guards are one step).
    fn record(&mut self, table: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Deletes a record with all its values.
    fn delete_record(&mut self, table: &str, key: &str) -> Result<()>;
    /// The keys of `table` whose first value is `value`, as this transaction sees them (a
    /// scan of the table: for rare maintenance such as following a rotated AE-ID).
    fn keys_holding(&mut self, table: &str, value: &[u8]) -> Result<Vec<String>>;
    /// The records of `table` (key, first value) tied to the resource `ri` or to anything
    /// below it: what [`Txn::delete_subtree`] of `ri` will delete with it, for a caller that
    /// still needs them to act on the deletion.
    fn tied_records(&mut self, table: &str, ri: &str) -> Result<Vec<(String, Vec<u8>)>>;
}

/// Where a [`Scan`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The direct children of the resource with this `ri`.
    Children(&'a str),
    /// Everything strictly below the resource with this structured name, at most
    /// `max_depth` levels down when given (1: its children).
    Descendants {
        /// The structured name of the resource at the top (not itself visited).
        srn: &'a str,
        /// Deepest level visited, counted from the top (`lvl`).
        max_depth: Option<u64>,
    },
}

/// Which resources a request's result may contain, as far as the store can tell without
/// reading a resource's attributes: the rest of the filter criteria, and access control,
/// are the visitor's to apply. Backends push these criteria into their indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Where to look.
    pub scope: Scope<'a>,
    /// Only resources of these types; empty: every type (`ty`).
    pub types: &'a [ResourceType],
    /// Only resources with one of these names; empty: any name (`rn`).
    pub names: &'a [String],
}

/// A resource as a scan's index shows it, before its attributes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its type.
    pub ty: ResourceType,
    /// Its parent's `ri`.
    pub pi: &'a str,
    /// Its structured name.
    pub srn: &'a str,
}

/// What a scan's visitor wants of an [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Its attributes: [`Visitor::visit`] gets the resource.
    Read,
    /// Nothing: the scan goes on to the next entry without reading this one.
    Pass,
    /// Nothing more: the scan ends.
    Stop,
}

/// Receives what a [`Store::scan`] finds.
pub trait Visitor {
    /// Decides from the index entry alone whether the resource is worth reading (by
    /// default, every one is).
    fn peek(&mut self, _entry: &Entry<'_>) -> Result<Peek> {
        Ok(Peek::Read)
    }
    /// Takes a resource the visitor asked to read.
    fn visit(&mut self, resource: Resource) -> Result<Flow>;
}

/// What a scan's visitor wants after a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The next resource, if any.
    Continue,
    /// Nothing more: the scan ends without reading further.
    Stop,
}

/// One unit of work for the writer: runs inside the group transaction.
pub type WriteJob = Box<dyn FnOnce(&mut dyn Txn) -> Result<()> + Send>;

/// The resource store.
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// A resource by `ri` (committed state).
    fn get(&self, ri: &str) -> Result<Option<Resource>>;
    /// A resource by `ri`, shared rather than copied (committed state). Hot paths that only
    /// read use it; the default copies.
    fn get_shared(&self, ri: &str) -> Result<Option<std::sync::Arc<Resource>>> {
        Ok(self.get(ri)?.map(std::sync::Arc::new))
    }
    /// The type of a resource, if it exists (committed state).
    fn resource_type(&self, ri: &str) -> Result<Option<ResourceType>> {
        Ok(self.get_shared(ri)?.map(|r| r.ty))
    }
    /// A resource by structured name (committed state).
    fn get_by_srn(&self, srn: &str) -> Result<Option<Resource>>;
    /// Direct children in creation order, optionally of one type.
    fn children(&self, pi: &str, ty: Option<ResourceType>) -> Result<Vec<Resource>>;
    /// The newest direct child of a type (for `la`).
    fn newest_child(&self, pi: &str, ty: ResourceType) -> Result<Option<Resource>>;
    /// The oldest direct child of a type (for `ol`).
    fn oldest_child(&self, pi: &str, ty: ResourceType) -> Result<Option<Resource>>;
    /// Every resource below `srn` (not itself) in creation order, at most `max_depth`
    /// levels down when given. It loads the whole subtree: for maintenance and tests; a
    /// request's results use [`scan`](Store::scan), which stops when the caller has enough.
    fn descendants(&self, srn: &str, max_depth: Option<u64>) -> Result<Vec<Resource>>;
    /// Shows the resources a [`Scan`] selects to `visitor`, one at a time (children in
    /// creation order, descendants in structured-name order, so that neither needs a sort
    /// of everything first), until it answers [`Flow::Stop`] or there are no more. The scan's criteria are
    /// applied before a resource's attributes are read, and the visitor sees each index
    /// [`Entry`] first: what it passes over costs an index entry, not its content, and only
    /// what it keeps stays in memory. Results are one consistent snapshot of committed state.
    fn scan(&self, scan: &Scan<'_>, visitor: &mut dyn Visitor) -> Result<()>;
    /// The first value of a record (committed state; see [`Txn::put_record`]).
    fn record(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every value of a record, oldest first (committed state).
    fn records(&self, table: &str, key: &str) -> Result<Vec<Vec<u8>>>;
    /// Every record of a table as (key, first value), sorted by key (committed state).
    fn table(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// The records of a table whose key starts with `prefix`, as (key, first value), sorted
    /// by key (committed state): one owner's share of a table whose keys start with the
    /// owner's name, without reading the others'.
    fn table_prefix(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut rows = self.table(table)?;
        rows.retain(|(k, _)| k.starts_with(prefix));
        Ok(rows)
    }
    /// `ri`s of resources whose `et` is before `now` (formatted timestamp), oldest first.
    fn expired(&self, now: &str, limit: usize) -> Result<Vec<String>>;
    /// Runs a write job in the next group transaction; the receiver yields once the job's
    /// outcome is durable (or failed).
    fn submit(&self, job: WriteJob) -> oneshot::Receiver<Result<()>>;
}

/// Runs `f` as a write and returns its value once it is durable on disk.
pub async fn write<T, F>(store: &dyn Store, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Txn) -> Result<T> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(1);
    let done = store.submit(Box::new(move |txn| {
        let v = f(txn)?;
        // The receiver lives until after the ack, so this cannot fail.
        let _ = tx.send(v);
        Ok(())
    }));
    done.await
        .map_err(|_| model::Error::internal("store writer stopped"))??;
    rx.try_recv()
        .map_err(|_| model::Error::internal("write produced no value"))
}
