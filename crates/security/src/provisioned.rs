//! Pre-shared keys the MEF provisioned (Kpsa from an enrolment, TS-0003 clauses 8.3.2.1 and
//! 10.3.3), durable, and a [`CredentialStore`] that layers them over another one.
//!
//! Each issued key is one JSON line appended to a journal in the data folder (mode 600) and
//! synced before [`ProvisionedKeys::issue`] returns, so a key the enrolee was told about
//! survives a crash. A last line cut short by a crash was never acknowledged: opening drops
//! it. Any other line that does not parse stops the start.
//!
//! Each key is sealed at rest like the other journals' secrets ([`crate::sealing`]): AES-256-GCM
//! under a key derived inside a key-store home (by default [`seal_in_data_folder`], a level-1
//! home in the data folder), with everything else on the line (KpsaID, enrolee, KeID,
//! expiry, binding) as associated data, so a sealed key cannot be moved to another line or
//! given another binding. A journal an older version wrote with the keys in clear
//! (`key_hex`) is read once and rewritten sealed, atomically, when it is opened.
//!
//! NOTE(provisioned-level): the CSE side of an enrolled Kpsa is a level-1 (software) key in
//! memory whatever home seals it at rest. The binding's `level` is the enrolee's, as its
//! entry in the enrolee file declares.
//!
//! Expiry is enforced at the handshake: an expired key is a known identity whose key is
//! unavailable, so the handshake is refused with that reason (and a resumed TLS 1.2 session
//! of it is refused too, since resumption asks for the binding again).

use crate::association::{CredentialBinding, Level, PeerIdentity};
use crate::credentials::{valid_kpsa_id, CredentialStore, PskCredential, PskUnavailable};
use crate::enrolment::{rfc3339, unix};
use crate::journal::{self, Journal};
use crate::revocation::Withdrawal;
use crate::sealing::{data_folder_key, Sealer};
use keystore::SecretBytes;
use model::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use zeroize::{Zeroize, Zeroizing};

/// What the sealing keys of the journal are derived with (HKDF-Expand inside the home).
const SEAL_INFO: &[u8] = b"secure-cse provisioned key seal/1";

/// The default sealer of a data folder: an HMAC key `provisioned-seal` (role `psk-master`) in a
/// level-1 home `DIR/provisioned-keys` (key-encryption key `DIR/provisioned-keys.kek`), made
/// on first use.
pub fn seal_in_data_folder(dir: &Path) -> Result<Sealer, keystore::KeyStoreError> {
    let (store, key) = data_folder_key(
        dir,
        "provisioned-keys",
        "provisioned-seal",
        keystore::KeyRole::PskMaster,
    )?;
    Ok(Sealer::new(store, key, SEAL_INFO))
}

/// Why a provisioned key cannot be recorded or the journal cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The journal cannot be read or written; nothing was issued.
    #[error("provisioned key journal {path}: {source}")]
    Io {
        /// The journal.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A journal line (not the last, torn one) does not parse: the start stops.
    #[error("provisioned key journal {path}, line {line}: {message}")]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong (never a key).
        message: String,
    },
    /// The KpsaID is already issued: identifiers are never reused.
    #[error("KpsaID {0} is already issued")]
    AlreadyIssued(String),
    /// The KpsaID is not `relative@issuer-FQDN` (TS-0003 clause 10.5).
    #[error("invalid KpsaID {0:?}")]
    InvalidId(String),
    /// A provisioned key must be 32 bytes or more and cannot be an admin credential.
    #[error("refused: {0}")]
    Refused(&'static str),
    /// The key could not be sealed (the sealing key's home failed): nothing was issued.
    #[error("sealing a provisioned key failed: {0}")]
    Seal(String),
}

/// One issued key, as the journal and the caller see it (the key itself aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// KpsaID, the `psk_identity` of the PSK framework.
    pub kpsa_id: String,
    /// Until when (seconds since the Unix epoch).
    pub expires: u64,
    /// The enrolee it was issued to (its KpmID).
    pub enrolee: String,
    /// The KeID of the Enrolment Key it was derived from.
    pub ke_id: String,
    /// What an association using it is bound to.
    pub binding: CredentialBinding,
}

struct Entry {
    key: SecretBytes,
    issued: Issued,
}

/// One journal line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kpsa_id: String,
    /// nonce (12) || ciphertext || tag (16) of the key, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    /// The key in clear, as versions before sealing wrote it: read once, then rewritten.
    #[serde(default, skip_serializing)]
    key_hex: Option<String>,
    expires: u64,
    enrolee: String,
    ke_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ae: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_aes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
    at: u64,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.key_hex.zeroize();
    }
}

/// What a sealed key is bound to: everything on its line but the seal and the time.
#[derive(Serialize)]
struct Bound<'a> {
    kpsa_id: &'a str,
    expires: u64,
    enrolee: &'a str,
    ke_id: &'a str,
    ae: &'a Option<String>,
    allowed_aes: &'a [String],
    allowed_apps: &'a [String],
    level: &'a Option<Level>,
}

impl Line {
    /// The associated data of this line's sealed key.
    fn aad(&self) -> Vec<u8> {
        let bound = Bound {
            kpsa_id: &self.kpsa_id,
            expires: self.expires,
            enrolee: &self.enrolee,
            ke_id: &self.ke_id,
            ae: &self.ae,
            allowed_aes: &self.allowed_aes,
            allowed_apps: &self.allowed_apps,
            level: &self.level,
        };
        let mut aad = b"provisioned-psk\0".to_vec();
        // Serializing plain strings and numbers cannot fail.
        aad.extend(serde_json::to_vec(&bound).unwrap_or_default());
        aad
    }

    /// The key, opened with `seal` (or read in clear from an old line).
    fn key(&self, seal: &Sealer) -> Result<Zeroizing<Vec<u8>>, String> {
        match (&self.sealed, &self.key_hex) {
            (Some(sealed), None) => {
                let sealed = hex::decode(sealed).map_err(|_| "the sealed key is not hex")?;
                seal.open(&self.aad(), &sealed).map_err(|e| e.to_string())
            }
            (None, Some(clear)) => Ok(Zeroizing::new(
                hex::decode(clear).map_err(|_| "key_hex is not hex")?,
            )),
            _ => Err("needs exactly one of sealed or key_hex".into()),
        }
    }

    /// Seals `key` into this line (dropping any clear copy) and returns the line, newline
    /// included.
    fn sealed_line(mut self, key: &[u8], seal: &Sealer) -> Result<Zeroizing<Vec<u8>>, String> {
        self.key_hex.zeroize();
        let sealed = seal.seal(&self.aad(), key).map_err(|e| e.to_string())?;
        self.sealed = Some(hex::encode(sealed));
        let mut bytes = Zeroizing::new(serde_json::to_vec(&self).map_err(|e| e.to_string())?);
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The entry this line and its (opened) key make.
    fn entry(&self, key: &[u8]) -> Result<(String, Entry), String> {
        if !valid_kpsa_id(&self.kpsa_id) {
            return Err("kpsa_id is not relative@fqdn".into());
        }
        if key.len() < MIN_KEY {
            return Err("the key is too short".into());
        }
        let identity = match (&self.ae, self.allowed_aes.is_empty()) {
            (Some(ae), true) => PeerIdentity::Ae(ae.clone()),
            (None, false) => PeerIdentity::AllowedAes(self.allowed_aes.clone()),
            _ => return Err("needs exactly one of ae or allowed_aes".into()),
        };
        let issued = Issued {
            kpsa_id: self.kpsa_id.clone(),
            expires: self.expires,
            enrolee: self.enrolee.clone(),
            ke_id: self.ke_id.clone(),
            binding: CredentialBinding {
                identity,
                admin: false,
                allowed_apps: self.allowed_apps.clone(),
                level: self.level,
            },
        };
        Ok((
            self.kpsa_id.clone(),
            Entry {
                key: SecretBytes::new(key.to_vec()),
                issued,
            },
        ))
    }
}

/// Shortest key accepted (a Kpsa is 32 bytes).
const MIN_KEY: usize = 32;

/// The keys the MEF issued, durable in a sealed journal (or in memory only, for tests).
pub struct ProvisionedKeys {
    journal: Option<(Journal, Sealer)>,
    keys: RwLock<HashMap<String, Entry>>,
    /// Decides whether a key has expired.
    clock: Clock,
}

impl std::fmt::Debug for ProvisionedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionedKeys")
            .field("journal", &self.journal.as_ref().map(|(j, _)| j.path()))
            .field("seal", &self.journal.as_ref().map(|(_, s)| s))
            .field("keys", &self.len())
            .finish()
    }
}

impl ProvisionedKeys {
    /// Keys in memory only: nothing survives the process (tests).
    pub fn in_memory() -> Self {
        Self {
            journal: None,
            keys: RwLock::default(),
            clock: Clock::system(),
        }
    }

    /// The same keys, their expiry decided by `clock` (the CSE's).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the journal at `path` (created, mode 600, when missing) and replays it, opening
    /// each key with `seal`. A last line without its newline is a write a crash cut short: it
    /// is dropped from the file. Keys an older version wrote in clear are sealed and the
    /// journal rewritten (atomically) before this returns.
    pub fn open(path: &Path, seal: Sealer) -> Result<Self, ProvisionError> {
        let io = |source| ProvisionError::Io {
            path: path.to_owned(),
            source,
        };
        // The journal's directory entry is durable too, before any key is issued.
        let (journal, text) = Journal::open(path, "provisioned key", 0).map_err(io)?;
        let mut keys = HashMap::new();
        // The journal with every key sealed, and how many were in clear.
        let mut rewritten = Zeroizing::new(Vec::with_capacity(text.len()));
        let mut in_clear = 0usize;
        let corrupt = |line, message| ProvisionError::Corrupt {
            path: path.to_owned(),
            line,
            message,
        };
        journal::replay(&text, corrupt, |line: Line, raw| {
            let key = line.key(&seal)?;
            let (id, entry) = line.entry(&key)?;
            keys.insert(id, entry);
            if line.key_hex.is_some() {
                in_clear += 1;
                rewritten.extend_from_slice(&line.sealed_line(&key, &seal)?);
            } else {
                rewritten.extend_from_slice(raw.as_bytes());
                rewritten.push(b'\n');
            }
            Ok(())
        })?;
        if in_clear > 0 {
            journal.replace(&rewritten).map_err(io)?;
            tracing::warn!(journal = %path.display(), keys = in_clear, "provisioned keys an older version kept in clear are now sealed");
        }
        Ok(Self {
            journal: Some((journal, seal)),
            keys: RwLock::new(keys),
            clock: Clock::system(),
        })
    }

    /// Records a newly derived key. Durable (written and synced) when it returns `Ok`;
    /// on `Err` nothing was issued.
    pub fn issue(&self, issued: Issued, key: &[u8]) -> Result<(), ProvisionError> {
        if !valid_kpsa_id(&issued.kpsa_id) {
            return Err(ProvisionError::InvalidId(issued.kpsa_id));
        }
        if key.len() < MIN_KEY {
            return Err(ProvisionError::Refused(
                "a provisioned key has 32 bytes or more",
            ));
        }
        if issued.binding.admin {
            return Err(ProvisionError::Refused(
                "an enrolled key is never an admin credential",
            ));
        }
        let (ae, allowed_aes) = match &issued.binding.identity {
            PeerIdentity::Ae(ae) => (Some(ae.clone()), Vec::new()),
            PeerIdentity::AllowedAes(list) if !list.is_empty() => (None, list.clone()),
            _ => {
                return Err(ProvisionError::Refused(
                    "an enrolled key is bound to an AE-ID or a list of allowed AE-IDs",
                ))
            }
        };
        // The write lock is held across the journal write, so two enrolments cannot both
        // take one KpsaID.
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.contains_key(&issued.kpsa_id) {
            return Err(ProvisionError::AlreadyIssued(issued.kpsa_id));
        }
        if let Some((journal, seal)) = &self.journal {
            let io = |source| ProvisionError::Io {
                path: journal.path().to_owned(),
                source,
            };
            let line = Line {
                kpsa_id: issued.kpsa_id.clone(),
                sealed: None,
                key_hex: None,
                expires: issued.expires,
                enrolee: issued.enrolee.clone(),
                ke_id: issued.ke_id.clone(),
                ae,
                allowed_aes,
                allowed_apps: issued.binding.allowed_apps.clone(),
                level: issued.binding.level,
                at: self.clock.unix(),
            };
            let bytes = line.sealed_line(key, seal).map_err(ProvisionError::Seal)?;
            // One write of the whole line: a crash leaves it whole or torn at the end.
            journal.append(&bytes).map_err(io)?;
        }
        let id = issued.kpsa_id.clone();
        keys.insert(
            id,
            Entry {
                key: SecretBytes::new(key.to_vec()),
                issued,
            },
        );
        Ok(())
    }

    /// Number of keys issued (expired ones included).
    pub fn len(&self) -> usize {
        self.keys.read().map(|k| k.len()).unwrap_or_default()
    }

    /// Whether none was issued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The KpsaIDs issued to the enrolee `kpm_id`, sorted.
    pub fn issued_to(&self, kpm_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .keys
            .read()
            .map(|k| {
                k.values()
                    .filter(|e| e.issued.enrolee == kpm_id)
                    .map(|e| e.issued.kpsa_id.clone())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// What was issued under `kpsa_id`, without the key.
    pub fn issued(&self, kpsa_id: &str) -> Option<Issued> {
        self.keys
            .read()
            .ok()
            .and_then(|k| k.get(kpsa_id).map(|e| e.issued.clone()))
    }

    /// The key of `kpsa_id` as a handshake at `now` sees it: unknown, usable, or expired.
    pub fn lookup_at(
        &self,
        kpsa_id: &str,
        now: SystemTime,
    ) -> Result<Option<PskCredential>, PskUnavailable> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = keys.get(kpsa_id) else {
            return Ok(None);
        };
        if unix(now) >= entry.issued.expires {
            return Err(PskUnavailable::new(format!(
                "the provisioned key {kpsa_id:?} expired at {}",
                rfc3339(entry.issued.expires)
            )));
        }
        Ok(Some(PskCredential {
            identity: kpsa_id.to_owned(),
            key: SecretBytes::new(entry.key.expose().to_vec()),
            binding: entry.issued.binding.clone(),
        }))
    }
}

/// A credential store with the MEF's provisioned keys in front of `inner` (the credential
/// file). Identities are looked up among the provisioned keys first; the rest, certificate
/// bindings and withdrawals, come from `inner`. Wrap it in a
/// [`Withdrawable`](crate::revocation::Withdrawable) so enrolled keys can be revoked too.
#[derive(Debug)]
pub struct WithProvisioned {
    inner: Arc<dyn CredentialStore>,
    keys: Arc<ProvisionedKeys>,
}

impl WithProvisioned {
    /// `keys` layered over `inner`.
    pub fn new(inner: Arc<dyn CredentialStore>, keys: Arc<ProvisionedKeys>) -> Self {
        Self { inner, keys }
    }
}

impl CredentialStore for WithProvisioned {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        self.lookup_psk(identity).ok().flatten()
    }

    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding> {
        self.inner.certificate_binding(credential_id)
    }

    fn withdrawn(&self, credential_id: &str) -> Option<Withdrawal> {
        self.inner.withdrawn(credential_id)
    }

    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        match self
            .keys
            .lookup_at(identity, self.keys.clock.system_time())?
        {
            Some(found) => Ok(Some(found)),
            None => self.inner.lookup_psk(identity),
        }
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        match self.keys.lookup_at(identity, self.keys.clock.system_time()) {
            Ok(Some(found)) => Some(found.binding),
            // Expired: a resumed session of it is refused like a new handshake.
            Err(_) => None,
            Ok(None) => self.inner.psk_binding(identity),
        }
    }
}

/// The rule that makes an enrolled key derive from the enrolee key that obtained it:
/// `12-<KpsaID>` from `10-<KpmID>`. Installed (`[enrolment] withdraw_enrolled`), withdrawing
/// an enrolee key withdraws every key it enrolled, and a resumed suspension brings them
/// back; without it those keys stay until withdrawn on their own.
#[derive(Debug)]
pub struct EnrolledBy(pub Arc<ProvisionedKeys>);

impl crate::revocation::DerivedCredentials for EnrolledBy {
    fn parent(&self, credential_id: &str) -> Option<String> {
        let kpsa_id = credential_id.strip_prefix("12-")?;
        self.0
            .issued(kpsa_id)
            .map(|issued| format!("10-{}", issued.enrolee))
    }

    fn derived_from(&self, parent: &str) -> Vec<String> {
        let Some(kpm_id) = parent.strip_prefix("10-") else {
            return Vec::new();
        };
        self.0
            .issued_to(kpm_id)
            .into_iter()
            .map(|kpsa_id| format!("12-{kpsa_id}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::FileCredentials;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::{Duration, UNIX_EPOCH};

    fn issued(id: &str, expires: u64) -> Issued {
        Issued {
            kpsa_id: id.to_owned(),
            expires,
            enrolee: "dev@mef.example".into(),
            ke_id: "00112233445566778899AABBCCDDEEFF@mef.example".into(),
            binding: CredentialBinding {
                identity: PeerIdentity::AllowedAes(vec!["C*".into()]),
                admin: false,
                allowed_apps: vec!["Nsensor".into()],
                level: Some(Level::TrustedEnvironment),
            },
        }
    }

    const FAR: u64 = 4_000_000_000;

    fn seal(dir: &Path) -> Sealer {
        seal_in_data_folder(dir).expect("sealing key")
    }

    #[test]
    fn keys_are_sealed_on_disk_and_bound_to_their_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("provisioned-psk.jsonl");
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("open");
        let key = [0x5au8; 32];
        keys.issue(issued("a@cse.example", FAR), &key)
            .expect("issue");
        drop(keys);
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&hex::encode(key)), "{text}");
        assert!(!bytes.windows(key.len()).any(|w| w == key), "raw key bytes");
        assert!(
            !text.contains("key_hex") && text.contains("\"sealed\""),
            "{text}"
        );
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("reopen");
        let found = keys
            .lookup_at("a@cse.example", SystemTime::now())
            .expect("usable")
            .expect("known");
        assert_eq!(found.key.expose(), &key);
        drop(keys);
        // The seal binds the key to its line: another binding does not open.
        std::fs::write(&path, text.replace("\"C*\"", "\"Cother\"")).expect("write");
        let err = ProvisionedKeys::open(&path, seal(dir.path())).expect_err("moved");
        assert!(
            matches!(err, ProvisionError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_journal_with_keys_in_clear_is_sealed_once_when_opened() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("provisioned-psk.jsonl");
        let old = |id: &str, key: &str| {
            format!(
                "{{\"kpsa_id\":\"{id}\",\"key_hex\":\"{key}\",\"expires\":{FAR},\"enrolee\":\"dev@mef.example\",\"ke_id\":\"00112233445566778899AABBCCDDEEFF@mef.example\",\"allowed_aes\":[\"C*\"],\"at\":1}}\n"
            )
        };
        let (ka, kb) = ("11".repeat(32), "22".repeat(32));
        std::fs::write(
            &path,
            old("a@cse.example", &ka) + &old("b@cse.example", &kb),
        )
        .expect("write");
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("migrate");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&ka) && !text.contains(&kb), "{text}");
        assert!(!text.contains("key_hex"), "{text}");
        assert_eq!(text.lines().count(), 2);
        assert_eq!(
            keys.lookup_at("b@cse.example", SystemTime::now())
                .expect("usable")
                .expect("known")
                .key
                .expose(),
            &[0x22u8; 32]
        );
        // The journal goes on after the rewrite, and replays.
        keys.issue(issued("c@cse.example", FAR), &[0x33u8; 32])
            .expect("issue");
        drop(keys);
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("reopen");
        assert_eq!(keys.len(), 3);
        assert_eq!(
            keys.lookup_at("a@cse.example", SystemTime::now())
                .expect("usable")
                .expect("known")
                .key
                .expose(),
            &[0x11u8; 32]
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn issued_keys_survive_a_reopen_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("provisioned.jsonl");
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("open");
        keys.issue(issued("a@cse.example", FAR), &[7u8; 32])
            .expect("issue");
        assert!(matches!(
            keys.issue(issued("a@cse.example", FAR), &[8u8; 32]),
            Err(ProvisionError::AlreadyIssued(_))
        ));
        assert!(matches!(
            keys.issue(issued("nope", FAR), &[8u8; 32]),
            Err(ProvisionError::InvalidId(_))
        ));
        assert!(matches!(
            keys.issue(issued("b@cse.example", FAR), &[8u8; 16]),
            Err(ProvisionError::Refused(_))
        ));
        drop(keys);
        // A crash in the middle of the next line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"{\"kpsa_id\":\"b@cse.exa").expect("torn");
        drop(f);
        let keys = ProvisionedKeys::open(&path, seal(dir.path())).expect("reopen");
        assert_eq!(keys.len(), 1);
        let found = keys
            .lookup_at("a@cse.example", SystemTime::now())
            .expect("usable")
            .expect("known");
        assert_eq!(found.key.expose(), &[7u8; 32]);
        assert_eq!(found.binding, issued("a@cse.example", FAR).binding);
        assert!(std::fs::read_to_string(&path)
            .expect("read")
            .ends_with('\n'));
        // Issuing after the repair gives a journal that replays.
        keys.issue(issued("b@cse.example", FAR), &[9u8; 32])
            .expect("issue");
        drop(keys);
        assert_eq!(
            ProvisionedKeys::open(&path, seal(dir.path()))
                .expect("reopen")
                .len(),
            2
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_line_in_the_middle_stops_the_start() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j");
        std::fs::write(&path, "{\"kpsa_id\":1}\n{}\n").expect("write");
        let err = ProvisionedKeys::open(&path, seal(dir.path())).expect_err("corrupt");
        assert!(
            matches!(err, ProvisionError::Corrupt { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn expired_keys_are_refused_and_the_file_credentials_stay_reachable() {
        let keys = Arc::new(ProvisionedKeys::in_memory());
        keys.issue(issued("a@cse.example", 1_000), &[7u8; 32])
            .expect("issue");
        let before = UNIX_EPOCH + Duration::from_secs(999);
        let at = UNIX_EPOCH + Duration::from_secs(1_000);
        assert!(keys
            .lookup_at("a@cse.example", before)
            .expect("ok")
            .is_some());
        let err = keys
            .lookup_at("a@cse.example", at)
            .map(|_| ())
            .expect_err("expired");
        assert!(
            err.to_string().contains("expired at 1970-01-01T00:16:40Z"),
            "{err}"
        );
        let file = FileCredentials::parse(
            "[[psk]]\nidentity = \"f@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cf\"\n",
        )
        .expect("file");
        let store = WithProvisioned::new(Arc::new(file), keys);
        // Expired now (1970): refused with the reason, binding gone for resumption.
        assert!(store.lookup_psk("a@cse.example").is_err());
        assert!(store.psk_binding("a@cse.example").is_none());
        assert!(store.psk("f@sp.example").is_some());
        assert!(matches!(store.lookup_psk("z@sp.example"), Ok(None)));
    }

    #[test]
    fn the_layer_decides_expiry_by_the_keys_clock() {
        let clock = model::clock::ManualClock::new();
        let keys = Arc::new(ProvisionedKeys::in_memory().with_clock(clock.clock()));
        let expires = clock.clock().unix() + 60;
        keys.issue(issued("a@cse.example", expires), &[7u8; 32])
            .expect("issue");
        let store = WithProvisioned::new(Arc::new(FileCredentials::default()), keys);
        assert!(store.lookup_psk("a@cse.example").expect("usable").is_some());
        assert!(store.psk_binding("a@cse.example").is_some());
        clock.advance(Duration::from_secs(61));
        let err = store
            .lookup_psk("a@cse.example")
            .map(|_| ())
            .expect_err("expired");
        assert!(err.to_string().contains("expired at"), "{err}");
        assert!(store.psk_binding("a@cse.example").is_none());
    }

    #[test]
    fn enrolled_keys_derive_from_their_enrolee_key_under_the_rule() {
        use crate::revocation::{DerivedRules, Revocations};
        let keys = Arc::new(ProvisionedKeys::in_memory());
        keys.issue(issued("a@cse.example", FAR), &[7u8; 32])
            .expect("issue");
        keys.issue(issued("b@cse.example", FAR), &[8u8; 32])
            .expect("issue");
        let r = Revocations::default();
        r.set_derived(Some(Arc::new(DerivedRules(vec![Arc::new(EnrolledBy(
            keys.clone(),
        ))]))));
        assert_eq!(
            r.derived_from("10-dev@mef.example"),
            vec!["12-a@cse.example", "12-b@cse.example"]
        );
        assert!(r.derived_from("10-other@mef.example").is_empty());
        r.revoke("10-dev@mef.example", "leaked").expect("revoke");
        let w = r.effective("12-a@cse.example").expect("withdrawn with it");
        assert!(w.reason.contains("10-dev@mef.example"), "{}", w.reason);
        assert!(r.covers("10-dev@mef.example", "12-b@cse.example"));
        assert!(
            r.effective("12-c@cse.example").is_none(),
            "not enrolled by it"
        );
    }
}
