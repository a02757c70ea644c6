//! The audit checkpoint anchored in a key home (issue 9, M3): a checkpoint file rewound
//! together with the log is refused at open with an anchor and, as before, not without one;
//! a crash between writing the checkpoint and moving the anchor does not stop the next
//! start and opens no window; ordinary entries move the anchor at a bounded rate.
//!
//! The counter anchor runs against a counter kept in memory (the TPM's NV counter has its
//! own tests in `keystore`, against swtpm), so that a crash between the two writes can be
//! placed exactly; the record anchor runs against a SoftHSMv2 token.
#![allow(clippy::unwrap_used, missing_docs)]

use crate::audit::{audit_key, lines, public, refused, write_lines};
use keystore::anchor::{AnchorRecord, MonotonicCounter};
use keystore::pkcs11::{Pkcs11Config, Pkcs11Home, Pkcs11Record};
use keystore::testing::{SoftHsm, SOFTHSM_MODULE};
use keystore::{KeyStoreError, SecretBytes, SecretSource, SigningKey};
use manager::audit::{
    anchor, Anchoring, AuditError, AuditLog, Checkpoint, Event, HeadAnchor, Layout,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Long enough that only what asks for it moves the anchor during a test.
const INTERVAL: Duration = Duration::from_secs(3600);

/// A monotonic counter in memory, whose increments can be made to fail before or after
/// they take effect (a crash, or an answer lost on the way back).
#[derive(Debug, Default)]
struct Counter {
    value: Mutex<Option<u64>>,
    increments: AtomicU64,
    fail_before: AtomicBool,
    fail_after: AtomicBool,
}

impl Counter {
    fn at(value: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            value: Mutex::new(value),
            ..Self::default()
        })
    }

    fn value(&self) -> Option<u64> {
        *self.value.lock().unwrap()
    }

    fn unreachable() -> KeyStoreError {
        KeyStoreError::TpmUnreachable {
            tcti: "test".into(),
            reason: "the connection was lost".into(),
        }
    }
}

impl MonotonicCounter for Counter {
    fn name(&self) -> String {
        "the test counter".into()
    }

    fn read(&self) -> Result<Option<u64>, KeyStoreError> {
        Ok(self.value())
    }

    fn create(&self) -> Result<u64, KeyStoreError> {
        let mut value = self.value.lock().unwrap();
        assert!(value.is_none(), "created twice");
        // Like a TPM: the first value is not 1 but above every counter the TPM had.
        *value = Some(1000);
        Ok(1000)
    }

    fn increment(&self) -> Result<u64, KeyStoreError> {
        if self.fail_before.load(Ordering::SeqCst) {
            return Err(Self::unreachable());
        }
        let mut value = self.value.lock().unwrap();
        let next = value.expect("incremented before it was created") + 1;
        *value = Some(next);
        self.increments.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.load(Ordering::SeqCst) {
            return Err(Self::unreachable());
        }
        Ok(next)
    }
}

fn counted(counter: &Arc<Counter>) -> Anchoring {
    Anchoring {
        anchor: HeadAnchor::Counter(counter.clone()),
        interval: INTERVAL,
    }
}

fn open(path: &Path, key: &SigningKey, anchoring: Anchoring) -> Result<AuditLog, AuditError> {
    AuditLog::open_with_anchor(
        path,
        Some(key.clone()),
        Layout::for_log(path),
        Some(anchoring),
    )
}

fn checkpoint(path: &Path) -> Checkpoint {
    Checkpoint::load(&Layout::for_log(path).head_file)
        .unwrap()
        .expect("a checkpoint")
}

fn revoked(n: u64) -> Event {
    Event::Revoked {
        credential: format!("12-stolen{n}@sp.example"),
        actor: "CAdmin".into(),
        reason: "device stolen".into(),
    }
}

/// The log and its checkpoint as they are now, to put back later (what a forger who kept
/// copies of the files can do).
struct Saved {
    lines: Vec<String>,
    head: Vec<u8>,
}

fn save(path: &Path) -> Saved {
    Saved {
        lines: lines(path),
        head: std::fs::read(Layout::for_log(path).head_file).unwrap(),
    }
}

fn rewind(path: &Path, saved: &Saved) {
    write_lines(path, &saved.lines);
    std::fs::write(Layout::for_log(path).head_file, &saved.head).unwrap();
}

#[test]
fn a_checkpoint_rewound_with_the_log_is_refused_with_a_counter_anchor() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let counter = Counter::at(None);

    let log = open(&path, &key, counted(&counter)).unwrap();
    assert_eq!(counter.value(), Some(1000), "the first open creates it");
    assert_eq!(checkpoint(&path).counter, Some(1000));
    for i in 1..=3 {
        log.append(refused(i)).unwrap();
    }
    let before = save(&path);
    // A revocation is anchored as soon as it is on disk.
    log.append(revoked(4)).unwrap();
    assert_eq!(counter.value(), Some(1001));
    assert_eq!(checkpoint(&path).counter, Some(1001));
    log.append(refused(5)).unwrap();
    drop(log);
    assert_eq!(
        counter.value(),
        Some(1002),
        "closing anchors the last entry"
    );

    // The forger keeps entries 1-3 and the signed checkpoint of that time.
    rewind(&path, &before);
    // The files alone still agree with each other, as before anchors existed.
    let plain = AuditLog::open_with(&path, Some(key.clone()), Layout::for_log(&path)).unwrap();
    assert_eq!(plain.head().unwrap().seq, 3);
    drop(plain);
    rewind(&path, &before);
    // The anchor does not.
    let err = open(&path, &key, counted(&counter)).unwrap_err();
    assert!(matches!(err, AuditError::Rewound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("counter value 1000") && text.contains("at 1002"),
        "{text}"
    );
}

#[test]
fn a_crash_between_the_checkpoint_and_the_increment_does_not_stop_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let counter = Counter::at(None);
    let log = open(&path, &key, counted(&counter)).unwrap();
    log.append(refused(1)).unwrap();
    let before = save(&path);

    // The checkpoint carrying the next value is written, the increment never happens.
    counter.fail_before.store(true, Ordering::SeqCst);
    log.append(revoked(2)).unwrap();
    assert_eq!(checkpoint(&path).counter, Some(1001));
    assert_eq!(counter.value(), Some(1000));
    drop(log);

    counter.fail_before.store(false, Ordering::SeqCst);
    let log = open(&path, &key, counted(&counter)).unwrap();
    assert_eq!(log.head().unwrap().seq, 2);
    assert_eq!(
        counter.value(),
        Some(1001),
        "the start completed the increment"
    );
    assert_eq!(checkpoint(&path).counter, Some(1001));
    drop(log);

    // No window opened: the checkpoint from before the crash is still refused.
    rewind(&path, &before);
    let err = open(&path, &key, counted(&counter)).unwrap_err();
    assert!(matches!(err, AuditError::Rewound { .. }), "{err}");
}

#[test]
fn an_increment_whose_answer_was_lost_is_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let counter = Counter::at(None);
    let log = open(&path, &key, counted(&counter)).unwrap();
    // The counter moves, but the answer never arrives.
    counter.fail_after.store(true, Ordering::SeqCst);
    log.append(revoked(1)).unwrap();
    assert_eq!(counter.value(), Some(1001));
    counter.fail_after.store(false, Ordering::SeqCst);
    // The next anchoring asks the counter where it is instead of guessing.
    log.append(revoked(2)).unwrap();
    assert_eq!(counter.value(), Some(1002));
    assert_eq!(checkpoint(&path).counter, Some(1002));
    drop(log);
    open(&path, &key, counted(&counter)).unwrap();
}

#[test]
fn ordinary_entries_move_the_anchor_at_most_once_per_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let counter = Counter::at(None);
    let log = open(&path, &key, counted(&counter)).unwrap();
    assert_eq!(log.anchor_due(), None);
    for i in 1..=20 {
        log.append(refused(i)).unwrap();
    }
    assert_eq!(counter.increments.load(Ordering::SeqCst), 0);
    assert_eq!(checkpoint(&path).seq, 20);
    assert_eq!(checkpoint(&path).counter, Some(1000));
    assert!(
        log.anchor_due().is_some(),
        "the last entries wait for the interval"
    );
    // What the CSE's audit writer does when the interval has passed, and at shutdown.
    assert!(log.anchor_pending().unwrap());
    assert_eq!(counter.increments.load(Ordering::SeqCst), 1);
    assert_eq!(log.anchor_due(), None);
    assert!(!log.anchor_pending().unwrap(), "nothing is left to anchor");
    log.append(revoked(21)).unwrap();
    assert_eq!(counter.increments.load(Ordering::SeqCst), 2);
    drop(log);
    assert_eq!(
        counter.increments.load(Ordering::SeqCst),
        2,
        "nothing was pending at close"
    );
}

#[test]
fn an_anchor_needs_a_signed_log_and_a_counter_that_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let counter = Counter::at(None);
    let err =
        AuditLog::open_with_anchor(&path, None, Layout::for_log(&path), Some(counted(&counter)))
            .unwrap_err();
    assert!(
        matches!(err, AuditError::AnchorNeedsSignature { .. }),
        "{err}"
    );
    let _ = std::fs::remove_file(&path);

    // A log written before the anchor was configured is adopted once: the counter is made.
    let key = audit_key(tmp.path(), "audit");
    let plain = AuditLog::open_with(&path, Some(key.clone()), Layout::for_log(&path)).unwrap();
    plain.append(refused(1)).unwrap();
    drop(plain);
    let before = save(&path);
    drop(open(&path, &key, counted(&counter)).unwrap());
    assert_eq!(counter.value(), Some(1000), "created at the first open");
    // Rewound to the checkpoint from before the anchor: refused now that the counter exists.
    rewind(&path, &before);
    let err = open(&path, &key, counted(&counter)).unwrap_err();
    assert!(matches!(err, AuditError::Rewound { .. }), "{err}");
    assert!(
        err.to_string().contains("carries no counter value"),
        "{err}"
    );

    // A counter that is gone, or behind the checkpoint, is another counter.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let counter = Counter::at(None);
    drop(open(&path, &key, counted(&counter)).unwrap());
    for other in [Counter::at(None), Counter::at(Some(5))] {
        let err = open(&path, &key, counted(&other)).unwrap_err();
        assert!(matches!(err, AuditError::AnchorBehind { .. }), "{err}");
    }
    // A counter value the audit key did not sign counts for nothing.
    let mut forged = checkpoint(&path);
    forged.counter = Some(counter.value().unwrap() + 1);
    forged.save(&Layout::for_log(&path).head_file).unwrap();
    assert!(open(&path, &key, counted(&counter)).is_err());
}

// === the PKCS#11 record, on SoftHSM ===

/// SoftHSM for this test process (the module reads its configuration once).
fn softhsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("audit-softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hsm = SoftHsm::new(&dir)?;
        hsm.use_in_this_process();
        Some(hsm)
    })
    .as_ref()
}

/// A fresh token, its home, and the record `audit-head` on it.
fn token(label: &str) -> Option<(Arc<Pkcs11Home>, Pkcs11Record)> {
    static INIT: Mutex<()> = Mutex::new(());
    let hsm = softhsm()?;
    let pin = hsm.conf().with_file_name(format!("{label}.pin"));
    {
        let _one_at_a_time = INIT.lock().unwrap();
        keystore::pkcs11::init_token(
            Path::new(SOFTHSM_MODULE),
            label,
            &SecretBytes::from_slice(b"so-pin-5678"),
            &SecretBytes::from_slice(b"1234"),
        )
        .unwrap();
    }
    std::fs::write(&pin, "1234\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home = Arc::new(
        Pkcs11Home::open(&Pkcs11Config {
            module: PathBuf::from(SOFTHSM_MODULE),
            token_label: label.into(),
            pin: SecretSource::File(pin),
        })
        .unwrap(),
    );
    let record = home.anchor_record("audit-head").unwrap();
    Some((home, record))
}

fn recorded(home: &Arc<Pkcs11Home>) -> Anchoring {
    Anchoring {
        anchor: HeadAnchor::Record(Arc::new(home.anchor_record("audit-head").unwrap())),
        interval: INTERVAL,
    }
}

#[test]
fn a_checkpoint_rewound_with_the_log_is_refused_with_a_token_anchor() {
    let Some((home, record)) = token("anchor-rewind") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let log = open(&path, &key, recorded(&home)).unwrap();
    for i in 1..=3 {
        log.append(refused(i)).unwrap();
    }
    let before = save(&path);
    log.append(revoked(4)).unwrap();
    let kept: Checkpoint = serde_json::from_slice(&record.read().unwrap().unwrap()).unwrap();
    assert_eq!(
        kept,
        checkpoint(&path),
        "the token holds the signed checkpoint"
    );
    assert!(kept.verifies(&public(&key), manager::audit::Purpose::Head));
    drop(log);

    rewind(&path, &before);
    let plain = AuditLog::open_with(&path, Some(key.clone()), Layout::for_log(&path)).unwrap();
    assert_eq!(plain.head().unwrap().seq, 3, "without the anchor it passes");
    drop(plain);
    rewind(&path, &before);
    let err = open(&path, &key, recorded(&home)).unwrap_err();
    assert!(matches!(err, AuditError::Rewound { .. }), "{err}");
    assert!(err.to_string().contains("anchor holds entry 4"), "{err}");
}

#[test]
fn a_crash_between_the_checkpoint_and_the_record_does_not_stop_the_next_start() {
    let Some((home, record)) = token("anchor-crash") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    let log = open(&path, &key, recorded(&home)).unwrap();
    log.append(refused(1)).unwrap();
    let first = record.read().unwrap().unwrap();
    let before = save(&path);
    log.append(revoked(2)).unwrap();
    drop(log);
    // The token still holds what it held before the revocation: the state a crash right
    // after writing the checkpoint file leaves.
    record.write(&first).unwrap();
    let log = open(&path, &key, recorded(&home)).unwrap();
    assert_eq!(log.head().unwrap().seq, 2);
    let now: Checkpoint = serde_json::from_slice(&record.read().unwrap().unwrap()).unwrap();
    assert_eq!(now.seq, 2, "the start moved the record up");
    drop(log);
    rewind(&path, &before);
    assert!(matches!(
        open(&path, &key, recorded(&home)),
        Err(AuditError::Rewound { .. })
    ));
}

#[test]
fn a_forged_record_is_refused() {
    let Some((home, record)) = token("anchor-forged") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.log");
    let key = audit_key(tmp.path(), "audit");
    drop(open(&path, &key, recorded(&home)).unwrap());
    let mut kept: Checkpoint = serde_json::from_slice(&record.read().unwrap().unwrap()).unwrap();
    kept.seq += 5;
    record.write(&serde_json::to_vec(&kept).unwrap()).unwrap();
    let err = open(&path, &key, recorded(&home)).unwrap_err();
    assert!(matches!(err, AuditError::AnchorForged { .. }), "{err}");
    record.write(b"not a checkpoint").unwrap();
    let err = open(&path, &key, recorded(&home)).unwrap_err();
    assert!(matches!(err, AuditError::AnchorForged { .. }), "{err}");
    // `judge` is what `m2m audit verify --anchor-from` uses: the same verdict.
    let anchor = recorded(&home).anchor;
    let err = anchor::judge(
        &anchor,
        Some(&checkpoint(&path)),
        &Layout::for_log(&path).head_file,
        &public(&key),
    )
    .unwrap_err();
    assert!(matches!(err, AuditError::AnchorForged { .. }), "{err}");
}
