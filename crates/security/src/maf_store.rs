//! The key registrations of the CSE's M2M Authentication Function (MAF, TS-0003 clause 8.8):
//! symmetric keys that one AE registered for others to retrieve (trust scenario 2: the
//! service provider distributes keys between applications), durable and sealed at rest.
//!
//! Each change is one JSON line appended to a journal (mode 600) and synced before the
//! method returns: a registration, or the deletion of one. A last line cut short by a crash
//! was never acknowledged; opening drops it. Any other line that does not parse stops the
//! start. Opening also rewrites the journal without deleted and expired registrations when
//! they make up most of it, so the file does not grow without bound.
//!
//! The key value of a registration is never in the journal in clear: it is sealed with
//! AES-256-GCM under a key that [`KeySeal`] derives inside a key-store home (HKDF-Expand of
//! an HMAC key of role `psk-master`), with the registration's identifier, source, SUID and
//! expiry as associated data, so a sealed value cannot be moved to another line. The
//! default home is a level-1 home in the data folder ([`KeySeal::in_data_folder`]); a key in
//! a TPM or HSM home protects the journal better.
//!
//! Memory is bounded: at most `max_keys` registrations in all and `max_per_source` per
//! registering AE; expired registrations are dropped before a new one is refused.

use crate::journal::{self, Journal};
use crate::sealing::{data_folder_key, SealError, Sealer};
use keystore::SecretBytes;
use model::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use zeroize::Zeroizing;

/// Length of a registered key value (HMAC-SHA-256 / AES-256 sized).
pub const KEY_LEN: usize = 32;

/// What the sealing key is derived with (HKDF-Expand inside the home).
const SEAL_INFO: &[u8] = b"secure-cse maf key seal/1";

/// Why a registration cannot be stored, found or removed, or the journal cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MafStoreError {
    /// The journal cannot be read or written; nothing changed.
    #[error("MAF key journal {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A journal line (not the last, torn one) does not parse or does not open: the start
    /// stops.
    #[error("MAF key journal {path}, line {line}: {message}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong (never a key).
        message: String,
    },
    /// The identifier is already registered: identifiers are never reused.
    #[error("key {0} is already registered")]
    AlreadyRegistered(String),
    /// The store holds as many registrations as it may (in all, or for this source).
    #[error("too many key registrations ({0})")]
    Full(&'static str),
    /// The sealing key's home refused or failed. The message includes the key store's, so it
    /// is not also a `source()` (chain printers would repeat it).
    #[error("MAF sealing key: {0}")]
    KeyStore(keystore::KeyStoreError),
    /// The sealing key is not an HMAC-SHA-256 key of role `psk-master`.
    #[error("the MAF sealing key must be an HMAC-SHA-256 key of role psk-master")]
    WrongKey,
    /// AES-GCM failed (sealing), or a sealed value does not open (altered or moved).
    #[error("sealing a MAF key failed")]
    Seal,
}

impl From<keystore::KeyStoreError> for MafStoreError {
    fn from(e: keystore::KeyStoreError) -> Self {
        Self::KeyStore(e)
    }
}

/// One registration as callers see it: everything but the key value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The relative key identifier (32 upper-case hex digits, the KcID part of the MAF key
    /// identifier `HEX@maf-fqdn`).
    pub relative_id: String,
    /// The AE-ID (or CSE-ID) of the Source MAF Client that registered it.
    pub source: String,
    /// The Target MAF Clients allowed to retrieve it.
    pub targets: Vec<String>,
    /// The Security Usage Identifier the key is limited to.
    pub suid: u8,
    /// When it expires (seconds since the Unix epoch).
    pub expires: u64,
    /// Labels to aid discovery.
    pub labels: Vec<String>,
}

struct Entry {
    registration: Registration,
    key: SecretBytes,
}

/// One journal line.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
enum Line {
    Register {
        id: String,
        source: String,
        targets: Vec<String>,
        suid: u8,
        expires: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        labels: Vec<String>,
        /// nonce (12) || ciphertext || tag (16), in hex.
        sealed: String,
        at: u64,
    },
    Delete {
        id: String,
        at: u64,
    },
}

/// The associated data that binds a sealed key to its registration.
fn aad(r: &Registration) -> Vec<u8> {
    format!(
        "maf-key\0{}\0{}\0{}\0{}",
        r.relative_id, r.source, r.suid, r.expires
    )
    .into_bytes()
}

/// Seals and opens registered key values under a key derived inside a key-store home
/// ([`crate::sealing`]).
pub struct KeySeal(Sealer);

impl fmt::Debug for KeySeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeySeal").field(&self.0).finish()
    }
}

impl KeySeal {
    /// Seals with `key` (role `psk-master`, HMAC-SHA-256) in `store`.
    pub fn new(store: keystore::KeyStore, key: keystore::KeyHandle) -> Result<Self, MafStoreError> {
        if key.role() != keystore::KeyRole::PskMaster
            || key.algorithm() != keystore::Algorithm::HmacSha256
        {
            return Err(MafStoreError::WrongKey);
        }
        Ok(Self(Sealer::new(store, key, SEAL_INFO)))
    }

    /// The default sealing key of a data folder: a level-1 home in `DIR/maf-keys` (see
    /// [`crate::sealing::data_folder_key`]). It protects the journal as well as the data
    /// folder is protected.
    pub fn in_data_folder(dir: &Path) -> Result<Self, MafStoreError> {
        let (store, key) =
            data_folder_key(dir, "maf-keys", "maf-seal", keystore::KeyRole::PskMaster)?;
        Self::new(store, key)
    }

    /// Where the key lives (for the start-up log).
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, MafStoreError> {
        self.0.seal(aad, plain).map_err(seal_error)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, MafStoreError> {
        self.0.open(aad, sealed).map_err(seal_error)
    }
}

fn seal_error(e: SealError) -> MafStoreError {
    match e {
        SealError::KeyStore(e) => MafStoreError::KeyStore(e),
        _ => MafStoreError::Seal,
    }
}

/// Limits on what the store holds (attacker-keyed: any authenticated AE can register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Registrations in all.
    pub max_keys: usize,
    /// Registrations per source.
    pub max_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_keys: 10_000,
            max_per_source: 64,
        }
    }
}

/// The MAF's key registrations, durable in a sealed journal (or in memory only, for tests).
pub struct MafKeys {
    journal: Option<Journal>,
    seal: KeySeal,
    limits: Limits,
    entries: RwLock<HashMap<String, Entry>>,
    /// Decides which registrations have expired.
    clock: Clock,
}

impl fmt::Debug for MafKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MafKeys")
            .field("journal", &self.journal.as_ref().map(Journal::path))
            .field("seal", &self.seal)
            .field("limits", &self.limits)
            .field("registrations", &self.len())
            .finish()
    }
}

impl MafKeys {
    /// Registrations in memory only: nothing survives the process (tests).
    pub fn in_memory(seal: KeySeal, limits: Limits) -> Self {
        Self {
            journal: None,
            seal,
            limits,
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
    /// every sealed key (a value that does not open stops the start). Expired registrations
    /// are not loaded (by `clock`, which decides expiry from then on).
    pub fn open(
        path: &Path,
        seal: KeySeal,
        limits: Limits,
        clock: Clock,
    ) -> Result<Self, MafStoreError> {
        let io = |source| MafStoreError::Io {
            path: path.to_owned(),
            source,
        };
        let (journal, text) = Journal::open(path, "MAF key", 0).map_err(io)?;
        let now = clock.unix();
        let mut entries = HashMap::new();
        let corrupt = |line, message| MafStoreError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        };
        let lines = journal::replay(&text, corrupt, |line: Line, _| {
            match line {
                Line::Register {
                    id,
                    source,
                    targets,
                    suid,
                    expires,
                    labels,
                    sealed,
                    at: _,
                } => {
                    let registration = Registration {
                        relative_id: id.clone(),
                        source,
                        targets,
                        suid,
                        expires,
                        labels,
                    };
                    let key = journal::open_sealed_key(&sealed, KEY_LEN, |sealed| {
                        seal.open(&aad(&registration), sealed)
                    })?;
                    if expires > now {
                        entries.insert(id, Entry { registration, key });
                    }
                }
                Line::Delete { id, at: _ } => {
                    entries.remove(&id);
                }
            }
            Ok(())
        })?;
        let keys = Self {
            journal: Some(journal),
            seal,
            limits,
            entries: RwLock::new(entries),
            clock,
        };
        if journal::worth_compacting(lines, keys.len()) {
            keys.compact()?;
        }
        Ok(keys)
    }

    /// Rewrites the journal with the live registrations only (a new file, synced, renamed
    /// over the old one): deleted and expired ones leave the disk.
    fn compact(&self) -> Result<(), MafStoreError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let io = |source| MafStoreError::Io {
            path: journal.path().to_owned(),
            source,
        };
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut text = Zeroizing::new(Vec::new());
        for entry in entries.values() {
            text.extend_from_slice(&self.line_for(&entry.registration, entry.key.expose())?);
        }
        journal.replace(&text).map_err(io)?;
        Ok(())
    }

    /// The journal line of a registration, with its key sealed, newline included.
    fn line_for(&self, r: &Registration, key: &[u8]) -> Result<Vec<u8>, MafStoreError> {
        let sealed = self.seal.seal(&aad(r), key)?;
        let line = Line::Register {
            id: r.relative_id.clone(),
            source: r.source.clone(),
            targets: r.targets.clone(),
            suid: r.suid,
            expires: r.expires,
            labels: r.labels.clone(),
            sealed: hex::encode(sealed),
            at: self.clock.unix(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|_| MafStoreError::Seal)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Appends one line and syncs it.
    fn append(&self, bytes: &[u8]) -> Result<(), MafStoreError> {
        if let Some(journal) = &self.journal {
            let io = |source| MafStoreError::Io {
                path: journal.path().to_owned(),
                source,
            };
            // One write of the whole line: a crash leaves it whole or torn at the end.
            journal.append(bytes).map_err(io)?;
        }
        Ok(())
    }

    /// Stores a new registration with its key. Durable when it returns `Ok`; on `Err`
    /// nothing was stored.
    pub fn register(
        &self,
        registration: Registration,
        key: &[u8; KEY_LEN],
    ) -> Result<(), MafStoreError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.contains_key(&registration.relative_id) {
            return Err(MafStoreError::AlreadyRegistered(registration.relative_id));
        }
        let now = self.clock.unix();
        let per_source = |entries: &HashMap<String, Entry>| {
            entries
                .values()
                .filter(|e| e.registration.source == registration.source)
                .count()
        };
        if entries.len() >= self.limits.max_keys
            || per_source(&entries) >= self.limits.max_per_source
        {
            // Expired registrations go first; they leave the disk at the next compaction.
            entries.retain(|_, e| e.registration.expires > now);
        }
        if entries.len() >= self.limits.max_keys {
            return Err(MafStoreError::Full("in all"));
        }
        if per_source(&entries) >= self.limits.max_per_source {
            return Err(MafStoreError::Full("for this source"));
        }
        let line = Zeroizing::new(self.line_for(&registration, key)?);
        self.append(&line)?;
        entries.insert(
            registration.relative_id.clone(),
            Entry {
                registration,
                key: SecretBytes::new(key.to_vec()),
            },
        );
        Ok(())
    }

    /// The registration `relative_id` and a copy of its key, if registered and not deleted
    /// (expired ones included: the caller decides, and says why).
    pub fn get(&self, relative_id: &str) -> Option<(Registration, SecretBytes)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(relative_id).map(|e| {
            (
                e.registration.clone(),
                SecretBytes::new(e.key.expose().to_vec()),
            )
        })
    }

    /// The registration `relative_id`, without its key.
    pub fn registration(&self, relative_id: &str) -> Option<Registration> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(relative_id).map(|e| e.registration.clone())
    }

    /// Removes a registration, durably. `Ok(None)` when there was none.
    pub fn delete(&self, relative_id: &str) -> Result<Option<Registration>, MafStoreError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if !entries.contains_key(relative_id) {
            return Ok(None);
        }
        let line = Line::Delete {
            id: relative_id.to_owned(),
            at: self.clock.unix(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|_| MafStoreError::Seal)?;
        bytes.push(b'\n');
        self.append(&bytes)?;
        Ok(entries.remove(relative_id).map(|e| e.registration))
    }

    /// Number of registrations held (expired ones not yet dropped included).
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

    fn registration(id: &str, source: &str, expires: u64) -> Registration {
        Registration {
            relative_id: id.to_owned(),
            source: source.to_owned(),
            targets: vec!["Cb".to_owned()],
            suid: 32,
            expires,
            labels: vec!["demo".to_owned()],
        }
    }

    #[test]
    fn registrations_survive_reopening_sealed_and_deletions_stick() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("maf-keys.jsonl");
        let far = Clock::system().unix() + 3600;
        let keys = MafKeys::open(
            &path,
            KeySeal::in_data_folder(dir.path()).expect("seal"),
            Limits::default(),
            model::clock::Clock::system(),
        )
        .expect("open");
        keys.register(registration("AA", "Ca", far), &[0x5a; KEY_LEN])
            .expect("register");
        keys.register(registration("BB", "Ca", far), &[0x6b; KEY_LEN])
            .expect("register");
        assert!(matches!(
            keys.register(registration("AA", "Ca", far), &[1; KEY_LEN]),
            Err(MafStoreError::AlreadyRegistered(_))
        ));
        assert_eq!(
            keys.delete("BB").expect("delete").map(|r| r.source),
            Some("Ca".into())
        );
        assert_eq!(keys.delete("BB").expect("delete again"), None);
        let text = std::fs::read_to_string(&path).expect("journal");
        assert!(
            !text.contains(&hex::encode([0x5a; KEY_LEN])),
            "sealed at rest"
        );
        assert!(!format!("{keys:?}").contains("5a5a"));
        drop(keys);

        let keys = MafKeys::open(
            &path,
            KeySeal::in_data_folder(dir.path()).expect("seal"),
            Limits::default(),
            model::clock::Clock::system(),
        )
        .expect("reopen");
        let (r, key) = keys.get("AA").expect("AA is back");
        assert_eq!(r, registration("AA", "Ca", far));
        assert_eq!(key.expose(), &[0x5a; KEY_LEN]);
        assert!(keys.get("BB").is_none(), "the deletion is durable");
        drop(keys);

        // A sealed value moved to another identifier does not open: the start stops.
        let moved = text.replacen("\"id\":\"AA\"", "\"id\":\"CC\"", 1);
        std::fs::write(&path, moved).expect("tamper");
        let err = MafKeys::open(
            &path,
            KeySeal::in_data_folder(dir.path()).expect("seal"),
            Limits::default(),
            model::clock::Clock::system(),
        )
        .map(|_| ())
        .expect_err("tampered");
        assert!(
            matches!(err, MafStoreError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn memory_is_bounded_per_source_and_in_all() {
        let dir = tempfile::tempdir().expect("tmp");
        let seal = KeySeal::in_data_folder(dir.path()).expect("seal");
        let keys = MafKeys::in_memory(
            seal,
            Limits {
                max_keys: 3,
                max_per_source: 2,
            },
        );
        let far = Clock::system().unix() + 3600;
        keys.register(registration("01", "Ca", far), &[1; KEY_LEN])
            .expect("1");
        keys.register(registration("02", "Ca", far), &[1; KEY_LEN])
            .expect("2");
        assert!(matches!(
            keys.register(registration("03", "Ca", far), &[1; KEY_LEN]),
            Err(MafStoreError::Full("for this source"))
        ));
        // An expired registration makes room.
        keys.register(registration("04", "Cx", 1), &[1; KEY_LEN])
            .expect("expired one");
        keys.register(registration("05", "Cy", far), &[1; KEY_LEN])
            .expect("replaces the expired one");
        assert!(keys.get("04").is_none());
        assert!(matches!(
            keys.register(registration("06", "Cz", far), &[1; KEY_LEN]),
            Err(MafStoreError::Full("in all"))
        ));
        assert_eq!(keys.len(), 3);
    }
}
