//! The embedded SQLite backend: one writer thread that group-commits, a small pool of
//! read connections (WAL lets them read while the writer writes).

use crate::{Entry, Flow, Peek, Scan, Scope, Store, Txn, Visitor, WriteJob, SCHEMA_VERSION};
use model::{Error, Resource, ResourceType, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::oneshot;

mod cache;
use cache::{cached, Instances, Overlay, RecordChange, Tree};

/// Longest wait for the writers of the last group before committing without them.
const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(300);

/// Tuning of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most write jobs committed in one transaction.
    pub max_batch: usize,
    /// Jobs that may wait for the writer before `submit` applies back-pressure.
    pub queue: usize,
    /// Read connections kept open.
    pub readers: usize,
    /// Content instances kept in memory (the most recently written or read).
    pub cached_instances: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            queue: 65536,
            readers: 4,
            cached_instances: 10_000,
        }
    }
}

type Ack = oneshot::Sender<Result<()>>;

/// The SQLite store. Dropping it stops the writer after the queued jobs are committed.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    jobs: SyncSender<(WriteJob, Ack)>,
    readers: Mutex<Vec<Connection>>,
    tree: Arc<RwLock<Tree>>,
    instances: Arc<Mutex<Instances>>,
    /// Resources whose attributes scans have read (see [`SqliteStore::scanned`]).
    scanned: AtomicU64,
}

fn db_err(e: rusqlite::Error) -> Error {
    if disk_full(&e) {
        return full_error(&e);
    }
    Error::internal(format!("store: {e}"))
}

/// Whether SQLite failed for want of space (`SQLITE_FULL`: the file system or the volume
/// the database lives on is full).
fn disk_full(e: &rusqlite::Error) -> bool {
    match e {
        // SHMSIZE: the WAL index could not grow (its file is extended by writing to it).
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == rusqlite::ErrorCode::DiskFull
                || f.extended_code == rusqlite::ffi::SQLITE_IOERR_SHMSIZE
        }
        // A store error carried through SQLite's error type (the deferred updates).
        rusqlite::Error::ToSqlConversionFailure(inner) => {
            inner.downcast_ref::<Error>().is_some_and(is_full_refusal)
        }
        _ => false,
    }
}

const FULL: &str = "the CSE's storage is full, nothing was written; retry once space is freed";

/// The one answer to a write the full disk refused: 5207, nothing written, retry later.
fn full_error(e: &dyn std::fmt::Display) -> Error {
    Error::storage_full(format!("{FULL} ({e})"))
}

/// Whether a write job's error is [`full_error`] (and not another 5207, such as a content
/// instance larger than its container allows).
fn is_full_refusal(e: &Error) -> bool {
    e.rsc == model::ResponseStatusCode::NotAcceptable && e.message.starts_with(FULL)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    ri   TEXT NOT NULL UNIQUE,
    pi   TEXT NOT NULL,
    ty   INTEGER NOT NULL,
    srn  TEXT NOT NULL UNIQUE,
    et   TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(pi, ty, seq);
CREATE INDEX IF NOT EXISTS resources_expiry ON resources(et) WHERE et IS NOT NULL;
CREATE TABLE IF NOT EXISTS records (
    tbl   TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    ri    TEXT
);
CREATE INDEX IF NOT EXISTS records_key ON records(tbl, key);
CREATE INDEX IF NOT EXISTS records_tied ON records(ri) WHERE ri IS NOT NULL;
";

/// Moves a version-1 database to version 2: the three tables the CSE's security manager
/// had in the store become records of the tables it now names itself (`credential-ae`,
/// `ae-credential`, `sealed-identity`), values as bytes, in their order. One transaction:
/// a crash leaves version 1 whole.
const MIGRATE_1_TO_2: &str = "
BEGIN IMMEDIATE;
INSERT INTO records (tbl, key, value)
    SELECT 'credential-ae', credential_id, CAST(ae_id AS BLOB) FROM credential_aes ORDER BY rowid;
INSERT INTO records (tbl, key, value)
    SELECT 'ae-credential', ae_id, CAST(credential AS BLOB) FROM ae_credentials ORDER BY rowid;
INSERT INTO records (tbl, key, value)
    SELECT 'sealed-identity', ae_id, sealed FROM sealed_identities ORDER BY rowid;
DROP TABLE credential_aes;
DROP TABLE ae_credentials;
DROP TABLE sealed_identities;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
COMMIT;
";

impl SqliteStore {
    /// Opens (or creates) the database in `dir`, checks the schema version and starts the writer.
    pub fn open(dir: &Path, options: SqliteOptions) -> Result<Self> {
        let path = private_dir(dir)?;
        let conn = Connection::open(&path).map_err(db_err)?;
        // Small pages: a create dirties a handful of pages (the table and each index's last
        // leaf), and every dirty page goes to the WAL before the commit's fsync, so smaller
        // pages mean less to write and sync per durable commit. Takes effect when the
        // database is created.
        conn.pragma_update(None, "page_size", 1024)
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        // Each write job runs in a savepoint: keep its statement journal in memory, and the
        // writer's page cache (16 MiB) large enough that index pages stay hot.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db_err)?;
        conn.pragma_update(None, "cache_size", -16384)
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "OFF")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(db_err)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) if v == "1" => conn.execute_batch(MIGRATE_1_TO_2).map_err(db_err)?,
            Some(v) => {
                return Err(Error::internal(format!(
                    "database {} has schema version {v}, this build needs {SCHEMA_VERSION}",
                    path.display()
                )))
            }
        }
        make_private(&path)?;
        let mut readers = Vec::with_capacity(options.readers);
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db_err)?;
            readers.push(r);
        }
        let mut tree = Tree::default();
        for r in query_many(
            &conn,
            &format!("SELECT {COLS} FROM resources WHERE ty NOT IN (?1, ?2) ORDER BY seq"),
            INSTANCE_TYPES,
        )? {
            tree.put(r);
        }
        let mut records = conn
            .prepare("SELECT tbl, key, value FROM records ORDER BY rowid")
            .map_err(db_err)?;
        let rows = records
            .query_map([], |r| {
                Ok(RecordChange::Add(r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db_err)?;
        for row in rows {
            tree.change_record(row.map_err(db_err)?);
        }
        drop(records);
        let tree = Arc::new(RwLock::new(tree));
        // Checkpoints stay with the writer (SQLite's automatic checkpoint after a commit once
        // the WAL holds 1000 pages): between two groups nothing else writes, so a checkpoint
        // completes and the next group starts the WAL over at its beginning, which keeps the
        // WAL small and its blocks already allocated. A checkpointer on another connection
        // never completes under sustained writes, and the WAL then grows without bound.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)
            .map_err(db_err)?;
        let (jobs, rx) = mpsc::sync_channel(options.queue);
        let max_batch = options.max_batch.max(1);
        let writer_tree = tree.clone();
        let instances = Arc::new(Mutex::new(Instances::new(options.cached_instances)));
        let writer_instances = instances.clone();
        std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || writer_loop(conn, rx, max_batch, writer_tree, writer_instances))
            .map_err(|e| Error::internal(format!("cannot start store writer: {e}")))?;
        Ok(Self {
            path,
            jobs,
            readers: Mutex::new(readers),
            tree,
            instances,
            scanned: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many resources scans have read with their attributes since the store opened:
    /// what a request's result cost in content read, as opposed to index entries passed
    /// over (for tests and benchmarks that check a scan stops where it should).
    pub fn scanned(&self) -> u64 {
        self.scanned.load(Ordering::Relaxed)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .readers
            .lock()
            .map_err(|_| Error::internal("reader pool poisoned"))?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db_err)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            pool.push(conn);
        }
        out
    }
}

/// Creates `dir` (mode 700) when missing; returns the database's path in it.
fn private_dir(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(dir.join("cse.db"))
}

/// Takes group and others' access away from the database, its WAL and its shared-memory
/// file (SQLite creates them 644). Run once the first write made all three: SQLite gives a
/// WAL or shared-memory file it creates later the database file's mode, so they stay 600.
fn make_private(db: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| Error::internal(format!("cannot chmod 600 {}: {e}", file.display())),
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<(WriteJob, Ack)>,
    max_batch: usize,
    tree: Arc<RwLock<Tree>>,
    instances: Arc<Mutex<Instances>>,
) {
    // How many jobs the last group held: when several writers are active, the writer waits a
    // moment for that many before committing, so one fsync serves them all (group commit with
    // a commit delay). A lone writer never waits.
    let mut expected = 1;
    // Whether the last group failed for want of space: said once in the log when the disk
    // fills and once when writes succeed again, not once per refused request.
    let mut full = false;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = std::time::Instant::now() + COMMIT_DELAY;
        loop {
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.len() >= expected.min(max_batch) {
                break;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        expected = batch.len();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        let mut changes = Overlay::default();
        let committed = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let Ok(view) = tree.read() else {
                return Err(rusqlite::Error::InvalidQuery);
            };
            for (job, ack) in batch {
                tx.execute_batch("SAVEPOINT job")?;
                let mut txn = SqlTxn {
                    conn: &tx,
                    tree: &view,
                    batch: &changes,
                    job: Overlay::default(),
                };
                let outcome = job(&mut txn);
                let job_changes = txn.job;
                if outcome.is_ok() {
                    tx.execute_batch("RELEASE job")?;
                    changes.absorb(job_changes);
                } else {
                    tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                }
                outcomes.push(outcome);
                acks.push(ack);
            }
            for r in changes.deferred() {
                write_update(&tx, r, view.get(r.ri()).map(|old| old.et()))
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            }
            drop(view);
            tx.commit()
        })();
        let out_of_space = match &committed {
            Err(e) => disk_full(e),
            Ok(()) => false,
        } || outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(is_full_refusal));
        if out_of_space != full {
            full = out_of_space;
            if full {
                tracing::error!(
                    "store: the disk is full; writes are refused with 5207 until space is freed"
                );
            } else {
                tracing::warn!("store: space is available again; writes succeed");
            }
        }
        match committed {
            Ok(()) => {
                // Readers see the batch in memory before anyone is told it is done.
                if let (Ok(mut t), Ok(mut i)) = (tree.write(), instances.lock()) {
                    changes.apply(&mut t, &mut i);
                }
                for (ack, outcome) in acks.into_iter().zip(outcomes) {
                    let _ = ack.send(outcome);
                }
            }
            Err(e) => {
                // Nothing of the group is written; every one of its requests is refused.
                let refusal = if out_of_space {
                    full_error(&e)
                } else {
                    tracing::error!(error = %e, "store: group commit failed");
                    Error::internal(format!("store: commit failed: {e}"))
                };
                for ack in acks {
                    let _ = ack.send(Err(refusal.clone()));
                }
            }
        }
    }
}

fn row_to_resource(ty: i64, srn: String, body: String) -> Result<Resource> {
    let ty = ResourceType::from_code(ty as u64)
        .map_err(|_| Error::internal(format!("store: unknown type {ty}")))?;
    let attrs: Map<String, Value> = serde_json::from_str(&body)
        .map_err(|e| Error::internal(format!("store: corrupt resource {srn}: {e}")))?;
    Ok(Resource { ty, srn, attrs })
}

const COLS: &str = "ty, srn, body";
/// The `ty` of the types kept in SQLite only, outside the tree cache (`cache::cached`):
/// content instances and time series instances.
const INSTANCE_TYPES: [u16; 2] = [4, 30];

fn query_one(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Option<Resource>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let row = stmt
        .query_row(p, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()
        .map_err(db_err)?;
    row.map(|(ty, srn, body)| row_to_resource(ty, srn, body))
        .transpose()
}

fn query_many(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Resource>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt
        .query_map(p, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (ty, srn, body) = row.map_err(db_err)?;
        out.push(row_to_resource(ty, srn, body)?);
    }
    Ok(out)
}

fn get(conn: &Connection, ri: &str) -> Result<Option<Resource>> {
    query_one(
        conn,
        &format!("SELECT {COLS} FROM resources WHERE ri = ?1"),
        [ri],
    )
}

fn get_by_srn(conn: &Connection, srn: &str) -> Result<Option<Resource>> {
    query_one(
        conn,
        &format!("SELECT {COLS} FROM resources WHERE srn = ?1"),
        [srn],
    )
}

fn children(conn: &Connection, pi: &str, ty: Option<ResourceType>) -> Result<Vec<Resource>> {
    match ty {
        Some(ty) => query_many(
            conn,
            &format!("SELECT {COLS} FROM resources WHERE pi = ?1 AND ty = ?2 ORDER BY seq"),
            params![pi, ty.code()],
        ),
        None => query_many(
            conn,
            &format!("SELECT {COLS} FROM resources WHERE pi = ?1 ORDER BY seq"),
            [pi],
        ),
    }
}

fn edge_child(
    conn: &Connection,
    pi: &str,
    ty: ResourceType,
    newest: bool,
) -> Result<Option<Resource>> {
    let order = if newest { "DESC" } else { "ASC" };
    query_one(
        conn,
        &format!(
            "SELECT {COLS} FROM resources WHERE pi = ?1 AND ty = ?2 ORDER BY seq {order} LIMIT 1"
        ),
        params![pi, ty.code()],
    )
}

/// Everything strictly below `srn`: names that start with `srn/`. `0` is the character after
/// `/`, so the range `[srn/, srn0)` is exactly that prefix and uses the unique index.
fn subtree(conn: &Connection, srn: &str) -> Result<Vec<Resource>> {
    query_many(
        conn,
        &format!("SELECT {COLS} FROM resources WHERE srn > ?1 AND srn < ?2 ORDER BY seq"),
        params![format!("{srn}/"), format!("{srn}0")],
    )
}

/// The SQL of a scan over the index entries only (`seq`, `ty`, `srn`, `pi`: never the body),
/// with its parameters. Children are one query per type, each walking the `(pi, ty, seq)`
/// index in creation order, so that their merge streams without sorting every child first;
/// descendants are one query walking the structured names in order.
fn scan_queries(scan: &Scan<'_>) -> Vec<(String, Vec<rusqlite::types::Value>)> {
    use rusqlite::types::Value as V;
    const COLUMNS: &str = "SELECT seq, ty, srn, pi FROM resources WHERE";
    match scan.scope {
        Scope::Children(pi) => {
            // Each type once, however often the filter names it.
            let types: Vec<ResourceType> = ResourceType::ALL
                .into_iter()
                .filter(|t| scan.types.is_empty() || scan.types.contains(t))
                .collect();
            types
                .iter()
                .map(|ty| {
                    (
                        format!("{COLUMNS} pi = ?1 AND ty = ?2 ORDER BY seq"),
                        vec![V::Text(pi.to_owned()), V::Integer(i64::from(ty.code()))],
                    )
                })
                .collect()
        }
        Scope::Descendants { srn, .. } => {
            let mut sql = format!("{COLUMNS} srn > ?1 AND srn < ?2");
            let mut args = vec![V::Text(format!("{srn}/")), V::Text(format!("{srn}0"))];
            if !scan.types.is_empty() {
                let marks: Vec<String> =
                    (3..3 + scan.types.len()).map(|i| format!("?{i}")).collect();
                sql.push_str(&format!(" AND ty IN ({})", marks.join(", ")));
                args.extend(scan.types.iter().map(|t| V::Integer(i64::from(t.code()))));
            }
            // In name order, which the unique index on `srn` gives without sorting: the
            // scan streams and stops where its visitor has enough, whatever the subtree's size.
            sql.push_str(" ORDER BY srn");
            vec![(sql, args)]
        }
    }
}

/// One index entry of a scan.
struct IndexRow {
    seq: i64,
    code: i64,
    srn: String,
    pi: String,
}

fn next_index_row(rows: &mut rusqlite::Rows<'_>) -> Result<Option<IndexRow>> {
    let Some(row) = rows.next().map_err(db_err)? else {
        return Ok(None);
    };
    Ok(Some(IndexRow {
        seq: row.get(0).map_err(db_err)?,
        code: row.get(1).map_err(db_err)?,
        srn: row.get(2).map_err(db_err)?,
        pi: row.get(3).map_err(db_err)?,
    }))
}

/// Whether an index entry passes the criteria SQL did not apply (depth and name, both read
/// from the structured name).
fn scan_admits(scan: &Scan<'_>, srn: &str) -> bool {
    if let Scope::Descendants {
        srn: root,
        max_depth: Some(max),
    } = scan.scope
    {
        if depth_below(root, srn) > max {
            return false;
        }
    }
    scan.names.is_empty() || {
        let rn = srn.rsplit('/').next().unwrap_or(srn);
        scan.names.iter().any(|n| n == rn)
    }
}

fn depth_below(root: &str, srn: &str) -> u64 {
    srn[root.len()..].matches('/').count() as u64
}

/// Writes a resource's new state; the expiry index is touched only when `et` changed from
/// `old_et` (`None`: unknown, so it is checked in SQL).
fn write_update(conn: &Connection, r: &Resource, old_et: Option<Option<&str>>) -> Result<()> {
    let body = serde_json::to_string(&r.attrs).map_err(|e| Error::internal(e.to_string()))?;
    let mut stmt = conn
        .prepare_cached("UPDATE resources SET body = ?2 WHERE ri = ?1")
        .map_err(db_err)?;
    stmt.execute(params![r.ri(), body]).map_err(db_err)?;
    if old_et != Some(r.et()) {
        let mut stmt = conn
            .prepare_cached("UPDATE resources SET et = ?2 WHERE ri = ?1 AND et IS NOT ?2")
            .map_err(db_err)?;
        stmt.execute(params![r.ri(), r.et()]).map_err(db_err)?;
    }
    Ok(())
}

/// A write job's view: SQL inside the group transaction, plus the in-memory state of the
/// cached resources (committed tree, then this batch's changes, then this job's).
struct SqlTxn<'a> {
    conn: &'a Connection,
    tree: &'a Tree,
    batch: &'a Overlay,
    job: Overlay,
}

impl Txn for SqlTxn<'_> {
    fn get(&mut self, ri: &str) -> Result<Option<Resource>> {
        if let Some(state) = self.job.get(ri).or_else(|| self.batch.get(ri)) {
            return Ok(state.clone());
        }
        if let Some(r) = self.tree.get(ri) {
            return Ok(Some(Resource::clone(r)));
        }
        get(self.conn, ri)
    }

    fn resource_type(&mut self, ri: &str) -> Result<Option<ResourceType>> {
        if let Some(state) = self.job.get(ri).or_else(|| self.batch.get(ri)) {
            return Ok(state.as_ref().map(|r| r.ty));
        }
        if let Some(r) = self.tree.get(ri) {
            return Ok(Some(r.ty));
        }
        Ok(get(self.conn, ri)?.map(|r| r.ty))
    }

    fn oldest_child(&mut self, pi: &str, ty: ResourceType) -> Result<Option<Resource>> {
        edge_child(self.conn, pi, ty, false)
    }

    fn children(&mut self, pi: &str, ty: ResourceType) -> Result<Vec<Resource>> {
        // SQLite has every insert and deletion of this group already; an update of a
        // cached resource is in memory until the group ends, so each child is read
        // through the overlays.
        let ris: Vec<String> = self
            .conn
            .prepare_cached("SELECT ri FROM resources WHERE pi = ?1 AND ty = ?2 ORDER BY seq")
            .map_err(db_err)?
            .query_map(params![pi, ty.code()], |r| r.get(0))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)?;
        let mut children = Vec::with_capacity(ris.len());
        for ri in &ris {
            if let Some(r) = Txn::get(self, ri)? {
                children.push(r);
            }
        }
        Ok(children)
    }

    fn get_by_srn(&mut self, srn: &str) -> Result<Option<Resource>> {
        let ri: Option<String> = self
            .conn
            .prepare_cached("SELECT ri FROM resources WHERE srn = ?1")
            .map_err(db_err)?
            .query_row([srn], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        match ri {
            Some(ri) => Txn::get(self, &ri),
            None => Ok(None),
        }
    }

    fn child_expires_after(&mut self, pi: &str, et: model::time::Timestamp) -> Result<bool> {
        let later = |s: &str| model::time::parse(s).is_ok_and(|t| t > et);
        // An UPDATE of a cached child in this group is written to SQLite only at the end of
        // the group: its new `et` is in memory. (Its old one still counts below, which errs
        // on the side of keeping the child.)
        if self
            .batch
            .states()
            .chain(self.job.states())
            .any(|r| r.pi() == pi && r.et().is_some_and(later))
        {
            return Ok(true);
        }
        // Stored timestamps differ in their optional parts (`,fraction`, `Z`), so SQL picks
        // those from the same second on, and each is compared as a time.
        let second = model::time::format(et);
        let second = second.get(..15).unwrap_or(&second);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT et FROM resources WHERE pi = ?1 AND et >= ?2")
            .map_err(db_err)?;
        let mut rows = stmt.query(params![pi, second]).map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            let stored: String = row.get(0).map_err(db_err)?;
            if later(&stored) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn insert(&mut self, r: &Resource) -> Result<()> {
        let body = serde_json::to_string(&r.attrs).map_err(|e| Error::internal(e.to_string()))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO resources (ri, pi, ty, srn, et, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db_err)?;
        match stmt.execute(params![r.ri(), r.pi(), r.ty.code(), r.srn, r.et(), body]) {
            Ok(_) => {
                self.job.record(r.ri(), Some(r.clone()));
                Ok(())
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::conflict(format!(
                    "a resource named '{}' already exists",
                    r.rn()
                )))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    fn update(&mut self, r: &Resource) -> Result<()> {
        if self.get(r.ri())?.is_none() {
            return Err(Error::not_found(format!("resource {} vanished", r.ri())));
        }
        if cached(r.ty) {
            // Written once per group, at its end, with the group's last state: a container
            // that receives many instances in one group is rewritten once, not once each.
            self.job.record_deferred(r.ri(), r.clone());
            return Ok(());
        }
        write_update(self.conn, r, None)?;
        self.job.record(r.ri(), Some(r.clone()));
        Ok(())
    }

    fn delete_subtree(&mut self, ri: &str) -> Result<Vec<Resource>> {
        let Some(root) = self.get(ri)? else {
            return Ok(Vec::new());
        };
        let mut gone = subtree(self.conn, &root.srn)?;
        gone.sort_by_key(|r| r.srn.matches('/').count());
        let tied: Vec<(String, String)> = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT tbl, key FROM records WHERE ri IN \
                 (SELECT ri FROM resources WHERE srn = ?1 OR (srn > ?2 AND srn < ?3))",
            )
            .map_err(db_err)?
            .query_map(
                params![root.srn, format!("{}/", root.srn), format!("{}0", root.srn)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)?;
        for (table, key) in tied {
            self.delete_record(&table, &key)?;
        }
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM resources WHERE srn = ?1 OR (srn > ?2 AND srn < ?3)")
            .map_err(db_err)?;
        stmt.execute(params![
            root.srn,
            format!("{}/", root.srn),
            format!("{}0", root.srn)
        ])
        .map_err(db_err)?;
        gone.insert(0, root);
        for g in &gone {
            self.job.record(g.ri(), None);
        }
        Ok(gone)
    }

    fn rename(&mut self, old_ri: &str, r: &Resource) -> Result<()> {
        let Some(old) = self.get(old_ri)? else {
            return Err(Error::not_found(format!("resource {old_ri} vanished")));
        };
        if self.get(r.ri())?.is_some() {
            return Err(Error::conflict(format!("'{}' is taken", r.ri())));
        }
        // Records tied to it stay tied to it under its new `ri`.
        self.conn
            .prepare_cached("UPDATE records SET ri = ?2 WHERE ri = ?1")
            .map_err(db_err)?
            .execute(params![old_ri, r.ri()])
            .map_err(db_err)?;
        // What changes below it, in its current state: the children name the new `ri` as
        // their parent, and cached descendants carry the moved structured name.
        let mut below = children(self.conn, old_ri, None)?;
        if old.srn != r.srn {
            below.extend(query_many(
                self.conn,
                &format!(
                    "SELECT {COLS} FROM resources WHERE srn > ?1 AND srn < ?2 AND pi != ?3 AND ty NOT IN (?4, ?5)"
                ),
                params![
                    format!("{}/", old.srn),
                    format!("{}0", old.srn),
                    old_ri,
                    INSTANCE_TYPES[0],
                    INSTANCE_TYPES[1]
                ],
            )?);
        }
        // Content instances this group wrote below it: SQLite moves them, their state in
        // memory must follow.
        if old.srn != r.srn {
            let prefix = format!("{}/", old.srn);
            below.extend(
                self.batch
                    .states()
                    .chain(self.job.states())
                    .filter(|s| !cached(s.ty) && s.srn.starts_with(&prefix))
                    .cloned(),
            );
        }
        let mut moved = Vec::new();
        for below in below {
            let child = below.pi() == old_ri;
            let Some(mut current) = self.get(below.ri())? else {
                continue;
            };
            if let Some(rest) = current.srn.strip_prefix(&format!("{}/", old.srn)) {
                current.srn = format!("{}/{rest}", r.srn);
            }
            if child {
                current.attrs.insert("pi".into(), r.ri().into());
                write_update(self.conn, &current, Some(current.et()))?;
            }
            moved.push(current);
        }
        let body = serde_json::to_string(&r.attrs).map_err(|e| Error::internal(e.to_string()))?;
        let renamed = self
            .conn
            .prepare_cached(
                "UPDATE resources SET ri = ?2, pi = ?3, srn = ?4, et = ?5, body = ?6 WHERE ri = ?1",
            )
            .map_err(db_err)?
            .execute(params![old_ri, r.ri(), r.pi(), r.srn, r.et(), body]);
        match renamed {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::conflict(format!(
                    "a resource named '{}' already exists",
                    r.rn()
                )))
            }
            Err(e) => return Err(db_err(e)),
        }
        self.conn
            .prepare_cached("UPDATE resources SET pi = ?2 WHERE pi = ?1")
            .map_err(db_err)?
            .execute(params![old_ri, r.ri()])
            .map_err(db_err)?;
        if old.srn != r.srn {
            // `substr` counts from 1: what follows the old name, starting with its `/`.
            self.conn
                .prepare_cached(
                    "UPDATE resources SET srn = ?3 || substr(srn, ?4) WHERE srn > ?1 AND srn < ?2",
                )
                .map_err(db_err)?
                .execute(params![
                    format!("{}/", old.srn),
                    format!("{}0", old.srn),
                    r.srn,
                    old.srn.len() as i64 + 1
                ])
                .map_err(db_err)?;
            self.job.flush_instances();
        }
        self.job.rename(old_ri, r.ri());
        self.job.record(old_ri, None);
        self.job.record(r.ri(), Some(r.clone()));
        for m in moved {
            let ri = m.ri().to_owned();
            self.job.record(&ri, Some(m));
        }
        Ok(())
    }

    fn mentioning(&mut self, text: &str) -> Result<Vec<Resource>> {
        let stored = query_many(
            self.conn,
            &format!(
                "SELECT {COLS} FROM resources WHERE ty NOT IN (?2, ?3) AND instr(body, ?1) > 0 ORDER BY seq"
            ),
            params![text, INSTANCE_TYPES[0], INSTANCE_TYPES[1]],
        )?;
        let mut seen = std::collections::HashSet::new();
        let mut found = Vec::new();
        // Stored rows in their current state, then what this group changed and SQLite does
        // not hold yet (updates written at the end of the group).
        for r in stored {
            if let Some(current) = self.get(r.ri())? {
                if seen.insert(current.ri().to_owned()) {
                    found.push(current);
                }
            }
        }
        for r in self.job.states().chain(self.batch.states()) {
            let mentions = !r.ty.is_instance()
                && serde_json::to_string(&r.attrs).is_ok_and(|b| b.contains(text));
            if mentions && seen.insert(r.ri().to_owned()) {
                found.push(r.clone());
            }
        }
        Ok(found)
    }

    fn reassign_instance_creator(&mut self, old: &str, new: &str) -> Result<usize> {
        // `instr` first: it skips most rows without parsing their JSON.
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE resources SET body = json_set(body, '$.cr', ?2) \
                 WHERE ty = ?3 AND instr(body, ?1) > 0 AND json_extract(body, '$.cr') = ?1",
            )
            .map_err(db_err)?
            .execute(params![old, new, ResourceType::ContentInstance.code()])
            .map_err(db_err)?;
        // Instances this group wrote are in SQLite already; their state in memory follows.
        let in_memory: Vec<Resource> = self
            .batch
            .states()
            .chain(self.job.states())
            .filter(|r| {
                r.ty == ResourceType::ContentInstance
                    && r.attrs.get("cr").and_then(Value::as_str) == Some(old)
            })
            .cloned()
            .collect();
        for mut r in in_memory {
            r.attrs.insert("cr".into(), new.into());
            let ri = r.ri().to_owned();
            self.job.record(&ri, Some(r));
        }
        if changed > 0 {
            self.job.flush_instances();
        }
        Ok(changed)
    }

    fn put_record(
        &mut self,
        table: &str,
        key: &str,
        value: &[u8],
        tied_to: Option<&str>,
    ) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")
            .map_err(db_err)?
            .execute(params![table, key])
            .map_err(db_err)?;
        self.conn
            .prepare_cached("INSERT INTO records (tbl, key, value, ri) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db_err)?
            .execute(params![table, key, value, tied_to])
            .map_err(db_err)?;
        self.job.change_record(RecordChange::Put(
            table.to_owned(),
            key.to_owned(),
            value.to_owned(),
        ));
        Ok(())
    }

    fn add_record(&mut self, table: &str, key: &str, value: &[u8]) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO records (tbl, key, value) VALUES (?1, ?2, ?3)")
            .map_err(db_err)?
            .execute(params![table, key, value])
            .map_err(db_err)?;
        self.job.change_record(RecordChange::Add(
            table.to_owned(),
            key.to_owned(),
            value.to_owned(),
        ));
        Ok(())
    }

    fn record(&mut self, table: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached(
                "SELECT value FROM records WHERE tbl = ?1 AND key = ?2 ORDER BY rowid LIMIT 1",
            )
            .map_err(db_err)?
            .query_row(params![table, key], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    fn tied_records(&mut self, table: &str, ri: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let Some(root) = self.get(ri)? else {
            return Ok(Vec::new());
        };
        self.conn
            .prepare_cached(
                "SELECT key, value FROM records WHERE tbl = ?1 AND ri IN \
                 (SELECT ri FROM resources WHERE srn = ?2 OR (srn > ?3 AND srn < ?4)) \
                 ORDER BY rowid",
            )
            .map_err(db_err)?
            .query_map(
                params![
                    table,
                    root.srn,
                    format!("{}/", root.srn),
                    format!("{}0", root.srn)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)
    }

    fn keys_holding(&mut self, table: &str, value: &[u8]) -> Result<Vec<String>> {
        // The first value of each key, as `record` reads it.
        self.conn
            .prepare_cached(
                "SELECT key FROM records AS r WHERE tbl = ?1 AND value = ?2 AND rowid = \
                 (SELECT min(rowid) FROM records WHERE tbl = r.tbl AND key = r.key) \
                 ORDER BY rowid",
            )
            .map_err(db_err)?
            .query_map(params![table, value], |r| r.get(0))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)
    }

    fn delete_record(&mut self, table: &str, key: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")
            .map_err(db_err)?
            .execute(params![table, key])
            .map_err(db_err)?;
        self.job
            .change_record(RecordChange::Delete(table.to_owned(), key.to_owned()));
        Ok(())
    }
}

impl SqliteStore {
    fn cached_read<T>(&self, f: impl FnOnce(&Tree) -> Option<T>) -> Option<T> {
        self.tree.read().ok().and_then(|t| f(&t))
    }
}

impl SqliteStore {
    /// Reads an instance (or anything not in the tree) from SQLite, remembering instances.
    fn read_through(
        &self,
        lookup: impl Fn(&Instances) -> Option<Resource>,
        read: impl FnOnce(&Connection) -> Result<Option<Resource>>,
    ) -> Result<Option<Resource>> {
        let generation = match self.instances.lock() {
            Ok(i) => match lookup(&i) {
                Some(r) => return Ok(Some(r)),
                None => i.generation,
            },
            Err(_) => return Err(Error::internal("instance cache poisoned")),
        };
        let found = self.with_reader(read)?;
        if let Some(r) = found.as_ref().filter(|r| !cached(r.ty)) {
            if let Ok(mut i) = self.instances.lock() {
                i.put_if_unchanged(Arc::new(r.clone()), generation);
            }
        }
        Ok(found)
    }
}

impl Store for SqliteStore {
    fn get_shared(&self, ri: &str) -> Result<Option<Arc<Resource>>> {
        if let Some(r) = self.cached_read(|t| t.get(ri).cloned()) {
            return Ok(Some(r));
        }
        if let Some(r) = self.instances.lock().ok().and_then(|i| i.get(ri).cloned()) {
            return Ok(Some(r));
        }
        Ok(self.get(ri)?.map(Arc::new))
    }

    fn get(&self, ri: &str) -> Result<Option<Resource>> {
        if let Some(r) = self.cached_read(|t| t.get(ri).map(|r| Resource::clone(r))) {
            return Ok(Some(r));
        }
        self.read_through(|i| i.get(ri).map(|r| Resource::clone(r)), |c| get(c, ri))
    }

    fn get_by_srn(&self, srn: &str) -> Result<Option<Resource>> {
        if let Some(r) = self.cached_read(|t| t.get_by_srn(srn).map(|r| Resource::clone(r))) {
            return Ok(Some(r));
        }
        self.read_through(
            |i| i.get_by_srn(srn).map(|r| Resource::clone(r)),
            |c| get_by_srn(c, srn),
        )
    }

    fn children(&self, pi: &str, ty: Option<ResourceType>) -> Result<Vec<Resource>> {
        match ty {
            Some(ty) if cached(ty) => self
                .tree
                .read()
                .map(|t| t.children(pi, ty))
                .map_err(|_| Error::internal("store cache poisoned")),
            _ => self.with_reader(|c| children(c, pi, ty)),
        }
    }

    fn newest_child(&self, pi: &str, ty: ResourceType) -> Result<Option<Resource>> {
        self.with_reader(|c| edge_child(c, pi, ty, true))
    }

    fn oldest_child(&self, pi: &str, ty: ResourceType) -> Result<Option<Resource>> {
        self.with_reader(|c| edge_child(c, pi, ty, false))
    }

    fn descendants(&self, srn: &str, max_depth: Option<u64>) -> Result<Vec<Resource>> {
        let mut all = self.with_reader(|c| subtree(c, srn))?;
        if let Some(max) = max_depth {
            all.retain(|r| depth_below(srn, &r.srn) <= max);
        }
        Ok(all)
    }

    fn scan(&self, scan: &Scan<'_>, visitor: &mut dyn Visitor) -> Result<()> {
        let queries = scan_queries(scan);
        self.with_reader(|c| {
            // Every statement runs on one connection, inside one read transaction: the bodies
            // read are those of the snapshot the index entries came from.
            let tx = c.unchecked_transaction().map_err(db_err)?;
            let mut statements = Vec::with_capacity(queries.len());
            for (sql, _) in &queries {
                statements.push(tx.prepare_cached(sql).map_err(db_err)?);
            }
            let mut body = tx
                .prepare_cached("SELECT body FROM resources WHERE seq = ?1")
                .map_err(db_err)?;
            let mut streams = Vec::with_capacity(queries.len());
            for (stmt, (_, args)) in statements.iter_mut().zip(&queries) {
                streams.push(
                    stmt.query(rusqlite::params_from_iter(args.iter()))
                        .map_err(db_err)?,
                );
            }
            let mut heads = Vec::with_capacity(streams.len());
            for rows in &mut streams {
                heads.push(next_index_row(rows)?);
            }
            // Merge the streams by `seq`: creation order across types.
            loop {
                let next = heads
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| h.as_ref().map(|h| (i, h.seq)))
                    .min_by_key(|(_, seq)| *seq)
                    .map(|(i, _)| i);
                let Some(i) = next else { break };
                let Some(IndexRow { seq, code, srn, pi }) = heads[i].take() else {
                    break;
                };
                heads[i] = next_index_row(&mut streams[i])?;
                if !scan_admits(scan, &srn) {
                    continue;
                }
                let ty = ResourceType::from_code(code as u64)
                    .map_err(|_| Error::internal(format!("store: unknown type {code}")))?;
                let entry = Entry {
                    ty,
                    pi: &pi,
                    srn: &srn,
                };
                match visitor.peek(&entry)? {
                    Peek::Read => {}
                    Peek::Pass => continue,
                    Peek::Stop => break,
                }
                let Some(text) = body
                    .query_row([seq], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(db_err)?
                else {
                    continue;
                };
                self.scanned.fetch_add(1, Ordering::Relaxed);
                if visitor.visit(row_to_resource(code, srn, text)?)? == Flow::Stop {
                    break;
                }
            }
            Ok(())
        })
    }

    fn record(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.records(table, key)?.into_iter().next())
    }

    fn records(&self, table: &str, key: &str) -> Result<Vec<Vec<u8>>> {
        let tree = self
            .tree
            .read()
            .map_err(|_| Error::internal("store cache poisoned"))?;
        Ok(tree.record(table, key).to_vec())
    }

    fn table(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let tree = self
            .tree
            .read()
            .map_err(|_| Error::internal("store cache poisoned"))?;
        Ok(tree.table(table))
    }

    fn table_prefix(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let tree = self
            .tree
            .read()
            .map_err(|_| Error::internal("store cache poisoned"))?;
        Ok(tree.table_prefix(table, prefix))
    }

    fn expired(&self, now: &str, limit: usize) -> Result<Vec<String>> {
        self.with_reader(|c| {
            let mut stmt = c
                .prepare_cached("SELECT ri FROM resources WHERE et IS NOT NULL AND et < ?1 ORDER BY et LIMIT ?2")
                .map_err(db_err)?;
            let rows = stmt.query_map(params![now, limit as i64], |r| r.get::<_, String>(0)).map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
    }

    fn submit(&self, job: WriteJob) -> oneshot::Receiver<Result<()>> {
        let (ack, rx) = oneshot::channel();
        if let Err(mpsc::SendError((_, ack))) = self.jobs.send((job, ack)) {
            let _ = ack.send(Err(Error::internal("store writer stopped")));
        }
        rx
    }
}

#[cfg(test)]
mod tests;
