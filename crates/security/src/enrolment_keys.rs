//! The Enrolment Keys (Ke) the MEF keeps after an enrolment that named Enrolment Targets, so
//! that it can later derive the usage-constrained keys those targets fetch (TS-0003 clause
//! 8.3.2.1 "Use of Remotely Provisioned Credential", clause 10.3.7). Durable and sealed at
//! rest, like the MAF's registrations ([`crate::maf_store`]).
//!
//! Each enrolment is one JSON line appended to a journal (mode 600) and synced before
//! [`EnrolmentKeys::keep`] returns. A last line cut short by a crash was never acknowledged;
//! opening drops it. Any other line that does not parse or does not open stops the start.
//! Opening skips expired enrolments and rewrites the journal without them when they make up
//! most of it.
//!
//! Ke is never in the journal in clear: it is sealed with AES-256-GCM by a [`Sealer`]
//! ([`crate::sealing`]; by default [`seal_in_data_folder`], a level-1 home in the data
//! folder), with the KeID, the enrolee, the targets and the expiry as associated data, so a
//! sealed Ke cannot be moved to another line.

use crate::journal::{self, Journal};
use crate::sealing::{data_folder_key, Sealer};
use keystore::SecretBytes;
use model::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use zeroize::Zeroizing;

/// Length of Ke.
pub const KE_LEN: usize = 32;

/// What the sealing keys of the journal are derived with (HKDF-Expand inside the home).
const SEAL_INFO: &[u8] = b"secure-cse enrolment key seal/1";

/// The default sealer of a data folder: an HMAC key `enrolment-seal` (role `psk-master`) in a
/// level-1 home `DIR/enrolment-keys` (key-encryption key `DIR/enrolment-keys.kek`), made on
/// first use.
pub fn seal_in_data_folder(dir: &Path) -> Result<Sealer, keystore::KeyStoreError> {
    let (store, key) = data_folder_key(
        dir,
        "enrolment-keys",
        "enrolment-seal",
        keystore::KeyRole::PskMaster,
    )?;
    Ok(Sealer::new(store, key, SEAL_INFO))
}

/// Default number of live enrolments kept.
pub const DEFAULT_MAX_ENROLMENTS: usize = 10_000;

/// Why an enrolment key cannot be kept or the journal cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolmentKeyError {
    /// The journal cannot be read or written; nothing changed.
    #[error("enrolment key journal {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A journal line (not the last, torn one) does not parse or does not open.
    #[error("enrolment key journal {path}, line {line}: {message}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong (never a key).
        message: String,
    },
    /// The KeID is already kept (an exporter output never repeats).
    #[error("enrolment key {0} is already kept")]
    AlreadyKept(String),
    /// As many live enrolments are kept as allowed.
    #[error("too many enrolment keys kept")]
    Full,
    /// Sealing failed.
    #[error("sealing an enrolment key failed")]
    Seal,
}

/// One kept enrolment as callers see it: everything but Ke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRecord {
    /// The KeID (`HEX@mef-fqdn`, the relative part upper case).
    pub ke_id: String,
    /// The enrolee (its KpmID).
    pub enrolee: String,
    /// The Enrolment Targets the enrolment named (AE-IDs or CSE-IDs, as given).
    pub targets: Vec<String>,
    /// When the enrolment expires (seconds since the Unix epoch).
    pub expires: u64,
}

struct Entry {
    record: EnrolmentRecord,
    ke: SecretBytes,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    ke_id: String,
    enrolee: String,
    targets: Vec<String>,
    expires: u64,
    /// nonce (12) || ciphertext || tag (16), in hex.
    sealed: String,
    at: u64,
}

fn aad(r: &EnrolmentRecord) -> Vec<u8> {
    format!(
        "enrolment-key\0{}\0{}\0{}\0{}",
        r.ke_id,
        r.enrolee,
        r.targets.join("\u{1f}"),
        r.expires
    )
    .into_bytes()
}

/// The kept enrolment keys, durable in a sealed journal (or in memory only, for tests).
pub struct EnrolmentKeys {
    journal: Option<Journal>,
    seal: Sealer,
    max: usize,
    entries: RwLock<HashMap<String, Entry>>,
    /// Decides which enrolments have expired.
    clock: Clock,
}

impl fmt::Debug for EnrolmentKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrolmentKeys")
            .field("journal", &self.journal.as_ref().map(Journal::path))
            .field("seal", &self.seal)
            .field("max", &self.max)
            .field("kept", &self.len())
            .finish()
    }
}

impl EnrolmentKeys {
    /// Keys in memory only: nothing survives the process (tests).
    pub fn in_memory(seal: Sealer, max: usize) -> Self {
        Self {
            journal: None,
            seal,
            max,
            entries: RwLock::default(),
            clock: Clock::system(),
        }
    }

    /// The same, deciding expiry by `clock` (a test's [`ManualClock`](model::clock::ManualClock)).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the journal at `path` (created, mode 600, when missing), replays it and opens
    /// every sealed Ke (one that does not open stops the start). Expired enrolments are not
    /// loaded (by `clock`, which decides expiry from then on).
    pub fn open(
        path: &Path,
        seal: Sealer,
        max: usize,
        clock: Clock,
    ) -> Result<Self, EnrolmentKeyError> {
        let io = |source| EnrolmentKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let (journal, text) = Journal::open(path, "enrolment key", 0).map_err(io)?;
        let now = clock.unix();
        let mut entries = HashMap::new();
        let corrupt = |line, message| EnrolmentKeyError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        };
        let lines = journal::replay(&text, corrupt, |line: Line, _| {
            let record = EnrolmentRecord {
                ke_id: line.ke_id,
                enrolee: line.enrolee,
                targets: line.targets,
                expires: line.expires,
            };
            let ke = journal::open_sealed_key(&line.sealed, KE_LEN, |sealed| {
                seal.open(&aad(&record), sealed)
            })?;
            if record.expires > now {
                entries.insert(record.ke_id.clone(), Entry { record, ke });
            }
            Ok(())
        })?;
        let keys = Self {
            journal: Some(journal),
            seal,
            max,
            entries: RwLock::new(entries),
            clock,
        };
        if journal::worth_compacting(lines, keys.len()) {
            keys.compact()?;
        }
        Ok(keys)
    }

    /// Rewrites the journal with the live enrolments only (a new file, synced, renamed over
    /// the old one).
    fn compact(&self) -> Result<(), EnrolmentKeyError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let io = |source| EnrolmentKeyError::Io {
            path: journal.path().to_owned(),
            source,
        };
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut text = Zeroizing::new(Vec::new());
        for entry in entries.values() {
            text.extend_from_slice(&self.line_for(&entry.record, entry.ke.expose())?);
        }
        journal.replace(&text).map_err(io)?;
        Ok(())
    }

    fn line_for(&self, r: &EnrolmentRecord, ke: &[u8]) -> Result<Vec<u8>, EnrolmentKeyError> {
        let sealed = self
            .seal
            .seal(&aad(r), ke)
            .map_err(|_| EnrolmentKeyError::Seal)?;
        let line = Line {
            ke_id: r.ke_id.clone(),
            enrolee: r.enrolee.clone(),
            targets: r.targets.clone(),
            expires: r.expires,
            sealed: hex::encode(sealed),
            at: self.clock.unix(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|_| EnrolmentKeyError::Seal)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Keeps Ke for `record`. Durable when it returns `Ok`; on `Err` nothing was kept.
    pub fn keep(
        &self,
        record: EnrolmentRecord,
        ke: &[u8; KE_LEN],
    ) -> Result<(), EnrolmentKeyError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.contains_key(&record.ke_id) {
            return Err(EnrolmentKeyError::AlreadyKept(record.ke_id));
        }
        if entries.len() >= self.max {
            let now = self.clock.unix();
            entries.retain(|_, e| e.record.expires > now);
        }
        if entries.len() >= self.max {
            return Err(EnrolmentKeyError::Full);
        }
        let line = Zeroizing::new(self.line_for(&record, ke)?);
        if let Some(journal) = &self.journal {
            let io = |source| EnrolmentKeyError::Io {
                path: journal.path().to_owned(),
                source,
            };
            journal.append(&line).map_err(io)?;
        }
        entries.insert(
            record.ke_id.clone(),
            Entry {
                record,
                ke: SecretBytes::new(ke.to_vec()),
            },
        );
        Ok(())
    }

    /// The enrolment `ke_id` and a copy of its Ke, if kept (expired ones included: the
    /// caller decides, and says why).
    pub fn get(&self, ke_id: &str) -> Option<(EnrolmentRecord, SecretBytes)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(ke_id)
            .map(|e| (e.record.clone(), SecretBytes::new(e.ke.expose().to_vec())))
    }

    /// Number of enrolments held.
    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or_default()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::clock::ManualClock;
    use std::time::Duration;

    fn record(id: &str, expires: u64) -> EnrolmentRecord {
        EnrolmentRecord {
            ke_id: id.to_owned(),
            enrolee: "sensor-9@mef.example".to_owned(),
            targets: vec!["Cmaf1".to_owned()],
            expires,
        }
    }

    #[test]
    fn kept_keys_survive_reopening_sealed_and_expired_ones_do_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("enrolment-keys.jsonl");
        let seal = || seal_in_data_folder(dir.path()).expect("seal");
        let far = Clock::system().unix() + 3600;
        let keys = EnrolmentKeys::open(&path, seal(), 4, Clock::system()).expect("open");
        keys.keep(record("AA@m", far), &[0x5a; KE_LEN])
            .expect("keep");
        keys.keep(record("BB@m", 1), &[0x6b; KE_LEN])
            .expect("keep expired");
        assert!(matches!(
            keys.keep(record("AA@m", far), &[1; KE_LEN]),
            Err(EnrolmentKeyError::AlreadyKept(_))
        ));
        let text = std::fs::read_to_string(&path).expect("journal");
        assert!(
            !text.contains(&hex::encode([0x5a; KE_LEN])),
            "sealed at rest"
        );
        assert!(!format!("{keys:?}").contains("5a5a"));
        drop(keys);

        let keys = EnrolmentKeys::open(&path, seal(), 4, Clock::system()).expect("reopen");
        let (r, ke) = keys.get("AA@m").expect("AA is back");
        assert_eq!(r, record("AA@m", far));
        assert_eq!(ke.expose(), &[0x5a; KE_LEN]);
        assert!(keys.get("BB@m").is_none(), "expired: not loaded");
        drop(keys);
        // Expiry is the clock's: two hours on, AA is not loaded either.
        let later = ManualClock::new();
        later.advance(Duration::from_secs(7200));
        let keys = EnrolmentKeys::open(&path, seal(), 4, later.clock()).expect("later");
        assert!(
            keys.get("AA@m").is_none(),
            "expired by the clock: not loaded"
        );
        drop(keys);

        // A sealed Ke moved to another KeID does not open: the start stops.
        std::fs::write(&path, text.replacen("\"AA@m\"", "\"CC@m\"", 1)).expect("tamper");
        let err = EnrolmentKeys::open(&path, seal(), 4, Clock::system())
            .map(|_| ())
            .expect_err("tampered");
        assert!(
            matches!(err, EnrolmentKeyError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let seal = seal_in_data_folder(dir.path()).expect("seal");
        let keys = EnrolmentKeys::in_memory(seal, 1);
        let far = Clock::system().unix() + 3600;
        keys.keep(record("01@m", far), &[1; KE_LEN]).expect("1");
        assert!(matches!(
            keys.keep(record("02@m", far), &[1; KE_LEN]),
            Err(EnrolmentKeyError::Full)
        ));
        assert_eq!(keys.len(), 1);
        // Once the clock passes the first one's expiry, it makes room.
        let clock = ManualClock::new();
        let keys = keys.with_clock(clock.clock());
        clock.advance(Duration::from_secs(7200));
        let later = clock.clock().unix() + 3600;
        keys.keep(record("02@m", later), &[1; KE_LEN])
            .expect("room");
        assert!(keys.get("01@m").is_none());
    }
}
