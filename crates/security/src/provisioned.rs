//! Pre-shared keys the MEF provisioned (Kpsa from an enrolment, TS-0003 clauses 8.3.2.1 and
//! 10.3.3), durable, and a [`CredentialStore`] that layers them over another one.
//!
//! Each issued key is one JSON line appended to a journal in the data folder (mode 600) and
//! synced before [`ProvisionedKeys::issue`] returns, so a key the enrolee was told about
//! survives a crash. A last line cut short by a crash was never acknowledged: opening drops
//! it. Any other line that does not parse stops the start.
//!
//! NOTE(provisioned-level): the journal holds the keys in hex, protected by the file's mode
//! only: the CSE side of an enrolled Kpsa is a level-1 (software) key. The binding's `level`
//! is the enrolee's, as its entry in the enrolee file declares.
//!
//! Expiry is enforced at the handshake: an expired key is a known identity whose key is
//! unavailable, so the handshake is refused with that reason (and a resumed TLS 1.2 session
//! of it is refused too, since resumption asks for the binding again).

use crate::association::{CredentialBinding, Level, PeerIdentity};
use crate::credentials::{valid_kpsa_id, CredentialStore, PskCredential, PskUnavailable, Secret};
use crate::enrolment::{rfc3339, unix};
use crate::revocation::Withdrawal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use zeroize::{Zeroize, Zeroizing};

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
    key: Secret,
    issued: Issued,
}

/// One journal line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kpsa_id: String,
    key_hex: String,
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

impl Line {
    fn into_entry(self) -> Result<(String, Entry), String> {
        if !valid_kpsa_id(&self.kpsa_id) {
            return Err("kpsa_id is not relative@fqdn".into());
        }
        let key = Zeroizing::new(hex::decode(&self.key_hex).map_err(|_| "key_hex is not hex")?);
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
                key: Secret::new(key.to_vec()),
                issued,
            },
        ))
    }
}

/// Shortest key accepted (a Kpsa is 32 bytes).
const MIN_KEY: usize = 32;

/// The keys the MEF issued, durable in a journal (or in memory only, for tests).
pub struct ProvisionedKeys {
    journal: Option<(PathBuf, Mutex<File>)>,
    keys: RwLock<HashMap<String, Entry>>,
}

impl std::fmt::Debug for ProvisionedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionedKeys")
            .field("journal", &self.journal.as_ref().map(|(p, _)| p))
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
        }
    }

    /// Opens the journal at `path` (created, mode 600, when missing) and replays it. A last
    /// line without its newline is a write a crash cut short: it is dropped from the file.
    pub fn open(path: &Path) -> Result<Self, ProvisionError> {
        let io = |source| ProvisionError::Io {
            path: path.to_owned(),
            source,
        };
        // The journal's directory entry is durable too, before any key is issued.
        let (file, text) = crate::journal::open(path, "provisioned key").map_err(io)?;
        let complete = text.len();
        let mut keys = HashMap::new();
        for (i, raw) in text[..complete].lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let corrupt = |message: String| ProvisionError::Corrupt {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            // serde_json's message names a position, never the value.
            let line: Line = serde_json::from_str(raw).map_err(|e| corrupt(e.to_string()))?;
            let (id, entry) = line.into_entry().map_err(corrupt)?;
            keys.insert(id, entry);
        }
        Ok(Self {
            journal: Some((path.to_owned(), Mutex::new(file))),
            keys: RwLock::new(keys),
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
        if let Some((path, file)) = &self.journal {
            let io = |source| ProvisionError::Io {
                path: path.clone(),
                source,
            };
            let line = Line {
                kpsa_id: issued.kpsa_id.clone(),
                key_hex: hex::encode(key),
                expires: issued.expires,
                enrolee: issued.enrolee.clone(),
                ke_id: issued.ke_id.clone(),
                ae,
                allowed_aes,
                allowed_apps: issued.binding.allowed_apps.clone(),
                level: issued.binding.level,
                at: unix(SystemTime::now()),
            };
            let mut bytes =
                Zeroizing::new(
                    serde_json::to_vec(&line).map_err(|e| ProvisionError::Corrupt {
                        path: path.clone(),
                        line: 0,
                        message: e.to_string(),
                    })?,
                );
            bytes.push(b'\n');
            let file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // One write of the whole line: a crash leaves it whole or torn at the end.
            crate::journal::append(&file, &bytes).map_err(io)?;
        }
        let id = issued.kpsa_id.clone();
        keys.insert(
            id,
            Entry {
                key: Secret::new(key.to_vec()),
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
            key: Secret::new(entry.key.expose().to_vec()),
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
        match self.keys.lookup_at(identity, SystemTime::now())? {
            Some(found) => Ok(Some(found)),
            None => self.inner.lookup_psk(identity),
        }
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        match self.keys.lookup_at(identity, SystemTime::now()) {
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

    #[test]
    fn issued_keys_survive_a_reopen_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("provisioned.jsonl");
        let keys = ProvisionedKeys::open(&path).expect("open");
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
        let keys = ProvisionedKeys::open(&path).expect("reopen");
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
        assert_eq!(ProvisionedKeys::open(&path).expect("reopen").len(), 2);
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
        let err = ProvisionedKeys::open(&path).expect_err("corrupt");
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
