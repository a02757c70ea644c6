//! Withdrawn credentials (seed 3.1: the security manager withdraws security material).
//!
//! A credential is *revoked* for good or *suspended* until resumed. Either way no new
//! security association is established with it and the live ones are closed (the CSE does
//! that through [`crate::association::Registry::close_credentials`]). Credentials are named by
//! their Credential-ID (`12-<KpsaID>` for a PSK, `3x-<SHA-256 of the TBSCertificate>` for a
//! certificate), as associations are.
//!
//! A credential can derive from another: an edge node's PSK derives from its GBA gateway's
//! NAF key ([`crate::gba`]), and, when the MEF is so configured, an enrolled Kpsa from the
//! enrolee key that obtained it ([`crate::provisioned::EnrolledBy`]); [`DerivedRules`]
//! combines such rules. Withdrawing the parent withdraws what derives from it (new
//! handshakes are refused, live associations closed); withdrawing a derived credential
//! affects it alone. A [`DerivedCredentials`] rule, installed with
//! [`Revocations::set_derived`], says which credential derives from which.
//!
//! The list is durable: each change is one JSON line appended to a journal and synced before
//! the call returns, so an acknowledged revocation survives a crash. Opening replays the
//! journal; a journal that does not parse stops the start rather than forget a revocation.
//!
//! A change takes effect in memory first, before anything is written: a withdrawn credential
//! is refused from that moment whatever the disk says (fail closed). The journal keeps
//! [`JOURNAL_RESERVE`] bytes allocated past its end, so its lines still fit when the data
//! volume is full. Should a line still not be written (the reserve used up, an I/O error),
//! the change stays in force, the call says so ([`Persistence::Pending`]), and the line waits
//! in memory, in order, until [`Revocations::persist_pending`] writes it.

use crate::association::CredentialBinding;
use crate::credentials::{CredentialStore, PskCredential, PskUnavailable};
use crate::journal::{self, Journal};
use model::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use crate::credentials::{Withdrawal, WithdrawalKind};

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case", deny_unknown_fields)]
enum Change {
    Withdraw {
        credential: String,
        #[serde(flatten)]
        withdrawal: Withdrawal,
    },
    Resume {
        credential: String,
        at: u64,
    },
}

/// Bytes kept allocated past the end of the journal (a withdrawal line is about 150 bytes,
/// so some 400 withdrawals persist on a full disk before the reserve runs out).
pub const JOURNAL_RESERVE: u64 = 64 * 1024;

/// Whether a change to the withdrawn credentials is on disk yet. Either way it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// Written and synced: it survives a crash.
    Durable,
    /// In force, but its journal line could not be written yet (`reason` says why); it is
    /// kept in memory and written by the next [`Revocations::persist_pending`]. A crash before
    /// then loses it.
    Pending {
        /// Why the journal could not be written.
        reason: String,
    },
}

/// Why a withdrawal cannot be recorded or the journal cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The journal cannot be read or written.
    #[error("revocation journal {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A journal line does not parse.
    #[error("revocation journal {path}, line {line}: {message}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Revocation is final: a revoked credential cannot be suspended or resumed.
    #[error("credential {0} is revoked for good")]
    AlreadyRevoked(String),
    /// Only a suspended credential can be resumed.
    #[error("credential {0} is not suspended")]
    NotSuspended(String),
    /// A Credential-ID must be non-empty and printable.
    #[error("invalid Credential-ID {0:?}")]
    InvalidCredential(String),
}

/// Which credential another derives from, so that withdrawing the parent withdraws it too
/// (an edge node's `12-<node>.<B-TID>` derives from its gateway's `12-<B-TID>`).
pub trait DerivedCredentials: Send + Sync + fmt::Debug {
    /// The Credential-ID `credential_id` derives from, if it derives from one.
    fn parent(&self, credential_id: &str) -> Option<String>;

    /// The credentials known to derive from `parent`, so that withdrawing it can name them
    /// in the audit trail; empty when the rule cannot list them (they are withdrawn all the
    /// same, through [`DerivedCredentials::parent`]).
    fn derived_from(&self, _parent: &str) -> Vec<String> {
        Vec::new()
    }
}

/// Several rules as one: the first rule that names a parent decides it (a credential derives
/// from one credential at most); the derived credentials are those of every rule.
#[derive(Debug, Default)]
pub struct DerivedRules(pub Vec<Arc<dyn DerivedCredentials>>);

impl DerivedCredentials for DerivedRules {
    fn parent(&self, credential_id: &str) -> Option<String> {
        self.0.iter().find_map(|r| r.parent(credential_id))
    }

    fn derived_from(&self, parent: &str) -> Vec<String> {
        self.0.iter().flat_map(|r| r.derived_from(parent)).collect()
    }
}

/// The withdrawn credentials, durable in a journal (or in memory only, for tests).
#[derive(Debug, Default)]
pub struct Revocations {
    journal: Option<Journal>,
    withdrawn: RwLock<HashMap<String, Withdrawal>>,
    /// The rule naming derived credentials' parents; none: no credential derives from another.
    derived: RwLock<Option<Arc<dyn DerivedCredentials>>>,
    /// When a withdrawal or resumption happened (recorded, shown to the admin).
    clock: Clock,
}

impl Revocations {
    /// Opens the journal at `path` (created, mode 600, when missing) and replays it. A last
    /// line cut short by a crash was never acknowledged and is dropped; any other line that
    /// does not parse stops the start.
    pub fn open(path: &Path) -> Result<Self, RevocationError> {
        let io = |source| RevocationError::Io {
            path: path.to_owned(),
            source,
        };
        let (journal, text) = Journal::open(path, "revocation", JOURNAL_RESERVE).map_err(io)?;
        let mut withdrawn = HashMap::new();
        let corrupt = |line, message| RevocationError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        };
        journal::replay(&text, corrupt, |change: Change, _| {
            apply(&mut withdrawn, change);
            Ok(())
        })?;
        Ok(Self {
            journal: Some(journal),
            withdrawn: RwLock::new(withdrawn),
            derived: RwLock::default(),
            clock: Clock::system(),
        })
    }

    /// The same list, its entries timed by `clock` (the CSE's).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Installs (or, with `None`, removes) the rule that names the parent of a derived
    /// credential. Replaced when the TLS listeners are rebuilt (a reload may change it).
    pub fn set_derived(&self, derived: Option<Arc<dyn DerivedCredentials>>) {
        let mut slot = self.derived.write().unwrap_or_else(|p| p.into_inner());
        *slot = derived;
    }

    /// The credential `credential_id` derives from, by the installed rule.
    fn parent(&self, credential_id: &str) -> Option<String> {
        let rule = self
            .derived
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        rule.and_then(|r| r.parent(credential_id))
            .filter(|p| p != credential_id)
    }

    /// The credentials the installed rule lists as derived from `parent` (withdrawn with it).
    pub fn derived_from(&self, parent: &str) -> Vec<String> {
        let rule = self
            .derived
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut all = rule.map(|r| r.derived_from(parent)).unwrap_or_default();
        all.retain(|c| c != parent);
        all.sort();
        all.dedup();
        all
    }

    /// Whether `credential_id` may be used: its own withdrawal, or else that of the
    /// credential it derives from (with the parent named in the reason). This is what the
    /// handshake checks; [`Revocations::status`] is the credential's own entry only.
    pub fn effective(&self, credential_id: &str) -> Option<Withdrawal> {
        if let Some(own) = self.status(credential_id) {
            return Some(own);
        }
        let parent = self.parent(credential_id)?;
        self.status(&parent).map(|w| Withdrawal {
            reason: format!("with {parent}: {}", w.reason),
            ..w
        })
    }

    /// Whether withdrawing `withdrawn` withdraws `credential_id`: the same credential, or one
    /// that derives from it. The CSE closes the live associations this holds for.
    pub fn covers(&self, withdrawn: &str, credential_id: &str) -> bool {
        credential_id == withdrawn || self.parent(credential_id).is_some_and(|p| p == withdrawn)
    }

    /// Why `credential_id` is withdrawn, if it is.
    pub fn status(&self, credential_id: &str) -> Option<Withdrawal> {
        self.withdrawn
            .read()
            .ok()
            .and_then(|w| w.get(credential_id).cloned())
    }

    /// Every withdrawn credential, sorted by Credential-ID.
    pub fn list(&self) -> Vec<(String, Withdrawal)> {
        let mut all: Vec<_> = self
            .withdrawn
            .read()
            .map(|w| w.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Revokes a credential for good (again: no change). In force when it returns; durable
    /// unless it says [`Persistence::Pending`].
    pub fn revoke(
        &self,
        credential_id: &str,
        reason: &str,
    ) -> Result<Persistence, RevocationError> {
        if self
            .status(credential_id)
            .is_some_and(|w| w.kind == WithdrawalKind::Revoked)
        {
            return Ok(self.persistence());
        }
        self.record(credential_id, WithdrawalKind::Revoked, reason)
    }

    /// Suspends a credential until [`Revocations::resume`]. In force when it returns; durable
    /// unless it says [`Persistence::Pending`].
    pub fn suspend(
        &self,
        credential_id: &str,
        reason: &str,
    ) -> Result<Persistence, RevocationError> {
        if self
            .status(credential_id)
            .is_some_and(|w| w.kind == WithdrawalKind::Revoked)
        {
            return Err(RevocationError::AlreadyRevoked(credential_id.to_owned()));
        }
        self.record(credential_id, WithdrawalKind::Suspended, reason)
    }

    /// Lifts a suspension. In force when it returns; durable unless it says
    /// [`Persistence::Pending`] (a crash before it is written leaves the credential suspended).
    pub fn resume(&self, credential_id: &str) -> Result<Persistence, RevocationError> {
        match self.status(credential_id).map(|w| w.kind) {
            Some(WithdrawalKind::Suspended) => {}
            Some(WithdrawalKind::Revoked) => {
                return Err(RevocationError::AlreadyRevoked(credential_id.to_owned()))
            }
            None => return Err(RevocationError::NotSuspended(credential_id.to_owned())),
        }
        self.commit(Change::Resume {
            credential: credential_id.to_owned(),
            at: self.clock.unix(),
        })
    }

    fn record(
        &self,
        credential_id: &str,
        kind: WithdrawalKind,
        reason: &str,
    ) -> Result<Persistence, RevocationError> {
        if credential_id.is_empty() || credential_id.chars().any(char::is_control) {
            return Err(RevocationError::InvalidCredential(credential_id.to_owned()));
        }
        self.commit(Change::Withdraw {
            credential: credential_id.to_owned(),
            withdrawal: Withdrawal {
                kind,
                reason: reason.to_owned(),
                at: self.clock.unix(),
            },
        })
    }

    /// Applies the change in memory (from then on it is in force), then writes it to the
    /// journal, synced, after any line still pending. A line that cannot be written stays
    /// pending: the change is in force and the caller is told it is not yet durable.
    fn commit(&self, change: Change) -> Result<Persistence, RevocationError> {
        let Some(journal) = &self.journal else {
            apply(
                &mut self.withdrawn.write().unwrap_or_else(|p| p.into_inner()),
                change,
            );
            return Ok(Persistence::Durable);
        };
        let mut line = serde_json::to_vec(&change).map_err(|e| RevocationError::Corrupt {
            path: journal.path().to_owned(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push(b'\n');
        // The journal lock is held from the change in memory to its line, so the journal's
        // order is the order in which changes took effect.
        let mut writer = journal.lock();
        apply(
            &mut self.withdrawn.write().unwrap_or_else(|p| p.into_inner()),
            change,
        );
        writer.hold(line);
        match writer.flush() {
            Ok(()) => Ok(Persistence::Durable),
            Err(e) => {
                let pending = writer.held();
                tracing::error!(journal = %journal.path().display(), error = %e, pending, "a credential withdrawal is in force but not yet persisted; retrying until the journal can be written");
                Ok(Persistence::Pending {
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Whether every change in force is on disk.
    fn persistence(&self) -> Persistence {
        match self.pending() {
            0 => Persistence::Durable,
            n => Persistence::Pending {
                reason: format!("{n} journal lines are not yet written"),
            },
        }
    }

    /// How many changes are in force but not yet on disk.
    pub fn pending(&self) -> usize {
        self.journal.as_ref().map_or(0, Journal::held)
    }

    /// Writes the changes that are in force but not yet on disk. The CSE calls it
    /// periodically while [`Revocations::pending`] is not zero, so withdrawals made while the
    /// disk was full persist by themselves once space returns.
    pub fn persist_pending(&self) -> Result<(), RevocationError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let mut writer = journal.lock();
        let pending = writer.held();
        if pending == 0 {
            return Ok(());
        }
        writer.flush().map_err(|source| RevocationError::Io {
            path: journal.path().to_owned(),
            source,
        })?;
        tracing::warn!(journal = %journal.path().display(), written = pending, "credential withdrawals held in memory are now persisted");
        Ok(())
    }
}

fn apply(withdrawn: &mut HashMap<String, Withdrawal>, change: Change) {
    match change {
        Change::Withdraw {
            credential,
            withdrawal,
        } => {
            // Revocation is final: a later suspension line cannot weaken it.
            let revoked = withdrawn
                .get(&credential)
                .is_some_and(|w| w.kind == WithdrawalKind::Revoked);
            if !revoked {
                withdrawn.insert(credential, withdrawal);
            }
        }
        Change::Resume { credential, .. } => {
            if withdrawn
                .get(&credential)
                .is_some_and(|w| w.kind == WithdrawalKind::Suspended)
            {
                withdrawn.remove(&credential);
            }
        }
    }
}

/// A credential store whose withdrawn credentials are gone: a withdrawn PSK identity or
/// certificate binding is unknown to the handshake, and [`CredentialStore::withdrawn`] says
/// why for the checks after it.
#[derive(Debug)]
pub struct Withdrawable {
    inner: Arc<dyn CredentialStore>,
    revocations: Arc<Revocations>,
    /// The listener whose PSK identities these are (their Credential-ID prefix depends on it).
    listener: &'static str,
}

impl Withdrawable {
    /// `inner`, minus what `revocations` withdraws (PSK identities are KpsaIDs: `12-...`).
    pub fn new(inner: Arc<dyn CredentialStore>, revocations: Arc<Revocations>) -> Self {
        Self {
            inner,
            revocations,
            listener: "",
        }
    }

    /// The enrolment listener's enrolee keys, minus what `revocations` withdraws (PSK
    /// identities are KpmIDs: `10-...`), so that an enrolment key can be revoked too.
    pub fn enrolees(inner: Arc<dyn CredentialStore>, revocations: Arc<Revocations>) -> Self {
        Self {
            inner,
            revocations,
            listener: crate::association::ENROLMENT_LISTENER,
        }
    }

    fn psk_withdrawn(&self, identity: &str) -> bool {
        let credential = crate::association::psk_credential_id(self.listener, identity);
        self.revocations.effective(&credential).is_some()
    }
}

impl CredentialStore for Withdrawable {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        if self.psk_withdrawn(identity) {
            return None;
        }
        self.inner.psk(identity)
    }

    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        if self.psk_withdrawn(identity) {
            return Ok(None);
        }
        self.inner.lookup_psk(identity)
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        if self.psk_withdrawn(identity) {
            return None;
        }
        self.inner.psk_binding(identity)
    }

    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding> {
        if self.revocations.effective(credential_id).is_some() {
            return None;
        }
        self.inner.certificate_binding(credential_id)
    }

    fn withdrawn(&self, credential_id: &str) -> Option<Withdrawal> {
        self.revocations.effective(credential_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_suspend_resume_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("revocations.jsonl");
        let r = Revocations::open(&path).expect("open");
        r.revoke("12-a@sp", "key compromise").expect("revoke");
        r.suspend("33-ff", "lost device").expect("suspend");
        r.suspend("33-ee", "audit").expect("suspend");
        r.resume("33-ee").expect("resume");
        assert!(matches!(
            r.suspend("12-a@sp", "x"),
            Err(RevocationError::AlreadyRevoked(_))
        ));
        assert!(matches!(
            r.resume("12-a@sp"),
            Err(RevocationError::AlreadyRevoked(_))
        ));
        assert!(matches!(
            r.resume("33-00"),
            Err(RevocationError::NotSuspended(_))
        ));
        assert!(matches!(
            r.revoke("", "x"),
            Err(RevocationError::InvalidCredential(_))
        ));
        drop(r);
        let r = Revocations::open(&path).expect("reopen");
        let a = r.status("12-a@sp").expect("revoked");
        assert_eq!(
            (a.kind, a.reason.as_str()),
            (WithdrawalKind::Revoked, "key compromise")
        );
        assert_eq!(
            r.status("33-ff").map(|w| w.kind),
            Some(WithdrawalKind::Suspended)
        );
        assert!(r.status("33-ee").is_none());
        assert_eq!(r.list().len(), 2);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    impl Revocations {
        /// Points the journal at `file` (a device that refuses writes), as if the disk filled.
        fn swap_journal_file(&self, file: std::fs::File, end: u64) {
            self.journal
                .as_ref()
                .expect("a journal")
                .swap_file(file, end);
        }
    }

    #[test]
    fn a_withdrawal_the_journal_cannot_take_is_in_force_pending_and_persisted_later() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("revocations.jsonl");
        let r = Revocations::open(&path).expect("open");
        // Space is kept past the end of the journal, its length unchanged.
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.len(), 0);
        assert!(
            meta.blocks() * 512 >= JOURNAL_RESERVE,
            "{} blocks",
            meta.blocks()
        );
        assert_eq!(
            r.revoke("12-a@sp", "first").expect("revoke"),
            Persistence::Durable
        );
        let written = std::fs::metadata(&path).expect("meta").len();

        // The disk is full: writes fail with ENOSPC.
        let full = std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .expect("/dev/full");
        r.swap_journal_file(full, 0);
        let outcome = r.revoke("12-b@sp", "stolen").expect("in force");
        assert!(
            matches!(&outcome, Persistence::Pending { reason } if reason.contains("No space")),
            "{outcome:?}"
        );
        assert_eq!(
            r.status("12-b@sp").map(|w| w.kind),
            Some(WithdrawalKind::Revoked)
        );
        assert!(matches!(
            r.suspend("33-ff", "lost").expect("in force"),
            Persistence::Pending { .. }
        ));
        assert_eq!(r.pending(), 2);
        // Asking again for what is in force says it is still not durable.
        assert!(matches!(
            r.revoke("12-b@sp", "again").expect("no change"),
            Persistence::Pending { .. }
        ));
        assert!(r.persist_pending().is_err(), "still full");
        assert_eq!(r.pending(), 2);

        // Space returns: the pending lines are written, in order, after the durable one.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .expect("reopen");
        r.swap_journal_file(file, written);
        r.persist_pending().expect("persisted");
        assert_eq!(r.pending(), 0);
        drop(r);
        let r = Revocations::open(&path).expect("replay");
        assert_eq!(
            r.status("12-a@sp").map(|w| w.kind),
            Some(WithdrawalKind::Revoked)
        );
        assert_eq!(
            r.status("12-b@sp").map(|w| w.reason),
            Some("stolen".to_owned())
        );
        assert_eq!(
            r.status("33-ff").map(|w| w.kind),
            Some(WithdrawalKind::Suspended)
        );
    }

    /// `12-<x>.<y>@d` derives from `12-<y>@d`, for the tests.
    #[derive(Debug)]
    struct DotParent;

    impl DerivedCredentials for DotParent {
        fn parent(&self, credential_id: &str) -> Option<String> {
            let rest = credential_id.strip_prefix("12-")?;
            let (_, gateway) = rest.split_once('.')?;
            Some(format!("12-{gateway}"))
        }
    }

    #[test]
    fn withdrawing_a_parent_withdraws_what_derives_from_it_and_not_the_reverse() {
        let r = Arc::new(Revocations::default());
        assert!(!r.covers("12-g@d", "12-n.g@d"), "no rule, no parent");
        r.set_derived(Some(Arc::new(DotParent)));
        assert!(r.covers("12-g@d", "12-n.g@d"));
        assert!(r.covers("12-n.g@d", "12-n.g@d"));
        assert!(
            !r.covers("12-n.g@d", "12-g@d"),
            "a node does not cover its gateway"
        );
        assert!(!r.covers("12-g@d", "12-m.h@d"));

        let store = Withdrawable::new(
            Arc::new(crate::credentials::FileCredentials::default()),
            r.clone(),
        );
        // A node revoked alone: its gateway and its siblings stay.
        r.revoke("12-n.g@d", "lost").expect("revoke");
        assert!(store.withdrawn("12-n.g@d").is_some());
        assert!(store.withdrawn("12-m.g@d").is_none());
        assert!(store.withdrawn("12-g@d").is_none());
        // The gateway suspended: every node behind it is withdrawn, the reason names it.
        r.suspend("12-g@d", "gateway stolen").expect("suspend");
        let w = store.withdrawn("12-m.g@d").expect("through the gateway");
        assert_eq!(w.kind, WithdrawalKind::Suspended);
        assert!(
            w.reason.contains("12-g@d") && w.reason.contains("gateway stolen"),
            "{}",
            w.reason
        );
        assert_eq!(
            store.withdrawn("12-n.g@d").map(|w| w.kind),
            Some(WithdrawalKind::Revoked),
            "its own, stronger withdrawal first"
        );
        r.resume("12-g@d").expect("resume");
        assert!(store.withdrawn("12-m.g@d").is_none());
        r.set_derived(None);
        r.suspend("12-g@d", "again").expect("suspend");
        assert!(store.withdrawn("12-m.g@d").is_none(), "the rule is gone");
    }

    #[test]
    fn a_damaged_journal_is_refused_and_revocation_is_final_on_replay() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j");
        std::fs::write(
            &path,
            concat!(
                r#"{"change":"withdraw","credential":"c","kind":"revoked","reason":"r","at":1}"#,
                "\n",
                r#"{"change":"withdraw","credential":"c","kind":"suspended","reason":"s","at":2}"#,
                "\n",
                r#"{"change":"resume","credential":"c","at":3}"#,
                "\n"
            ),
        )
        .expect("write");
        let r = Revocations::open(&path).expect("open");
        assert_eq!(r.status("c").map(|w| w.kind), Some(WithdrawalKind::Revoked));
        // A torn last line (a crash mid-append, never acknowledged) is dropped.
        std::fs::write(
            &path,
            concat!(
                r#"{"change":"withdraw","credential":"c","kind":"revoked","reason":"r","at":1}"#,
                "\n",
                r#"{"change":"withd"#
            ),
        )
        .expect("write");
        let r = Revocations::open(&path).expect("torn tail dropped");
        assert_eq!(r.list().len(), 1);
        drop(r);
        // A complete line that does not parse stops the start.
        std::fs::write(&path, "{\"change\":\"withdraw\"\n").expect("write");
        let err = Revocations::open(&path).expect_err("corrupt");
        assert!(
            matches!(err, RevocationError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }
}
