//! The `[keystore]` section of the configuration: which key homes exist (levels 1-3), the
//! minimum level per key role, and the keys the CSE opens from them at start-up. The `cse`
//! binary and `m2m keys` open the homes the same way, through [`KeyHomes::open`].
//!
//! The home sections take the key store's own shapes (`crates/keystore/README.md`), so their
//! keys are kebab-case (`token-label`, `key-file`), like the role names of the policy.

use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
use keystore::software::{SoftwareConfig, SoftwareHome};
use keystore::tpm::TpmConfig;
#[cfg(feature = "tpm")]
use keystore::tpm::TpmHome;
use keystore::{
    HomeId, KeyHandle, KeyHome, KeyId, KeyRole, KeyStore, KeyStoreError, KeyStorePolicy, SigningKey,
};
use security::credentials::{PskMaster, PskMasterSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// `[keystore]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreSection {
    /// Minimum level per key role (`[keystore.policy]`).
    pub policy: Option<KeyStorePolicy>,
    /// The level-1 home (`[keystore.software]`).
    pub software: Option<SoftwareConfig>,
    /// The level-2 home (`[keystore.tpm]`).
    pub tpm: Option<TpmConfig>,
    /// The level-3 home (`[keystore.pkcs11]`).
    pub pkcs11: Option<Pkcs11Config>,
    /// The security manager's CA key, opened and checked (role `ca-signing`) at start-up.
    pub ca_key: Option<KeyRef>,
}

/// One of the configured homes, by the name of its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HomeKind {
    /// `[keystore.software]`, level 1.
    Software,
    /// `[keystore.tpm]`, level 2.
    Tpm,
    /// `[keystore.pkcs11]`, level 3.
    Pkcs11,
}

impl HomeKind {
    /// The section name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Tpm => "tpm",
            Self::Pkcs11 => "pkcs11",
        }
    }
}

impl fmt::Display for HomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for HomeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "software" => Ok(Self::Software),
            "tpm" => Ok(Self::Tpm),
            "pkcs11" => Ok(Self::Pkcs11),
            other => Err(format!(
                "unknown key home {other:?} (software, tpm, pkcs11)"
            )),
        }
    }
}

/// A key in a configured home: `{ home = "pkcs11", id = "tls" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRef {
    /// Which home holds it.
    pub home: HomeKind,
    /// Its identifier there.
    pub id: KeyId,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {} in home {}", self.id, self.home)
    }
}

/// Where the audit checkpoint is anchored (`[audit] head_anchor`): a TPM NV counter
/// (`{ home = "tpm", id = "0x01800100" }`, an NV index of the owner's range) or a PKCS#11
/// data object (`{ home = "pkcs11", id = "audit-head" }`, its label).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorRef {
    /// Which home holds it.
    pub home: HomeKind,
    /// The NV index (TPM) or the object's label (PKCS#11).
    pub id: String,
}

impl fmt::Display for AnchorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "anchor {} in home {}", self.id, self.home)
    }
}

impl AnchorRef {
    /// Checks, before anything opens, that the home can hold an anchor, has a section, and
    /// that the id fits it.
    pub fn check(&self, section: &KeystoreSection) -> Result<(), String> {
        match self.home {
            HomeKind::Software => {
                return Err(
                    "a level-1 home cannot anchor the checkpoint: its files are \
                            as easy to rewind as the checkpoint itself (use tpm or pkcs11)"
                        .into(),
                )
            }
            HomeKind::Tpm => {
                #[cfg(feature = "tpm")]
                keystore::tpm::parse_nv_index(&self.id)?;
            }
            HomeKind::Pkcs11 => {
                KeyId::new(self.id.as_str()).map_err(|e| e.to_string())?;
            }
        }
        if !section.has(self.home) {
            return Err(format!("there is no [keystore.{}] section", self.home));
        }
        Ok(())
    }
}

impl KeystoreSection {
    /// Whether `home` has a section (checked while resolving, before anything opens).
    pub fn has(&self, home: HomeKind) -> bool {
        match home {
            HomeKind::Software => self.software.is_some(),
            HomeKind::Tpm => self.tpm.is_some(),
            HomeKind::Pkcs11 => self.pkcs11.is_some(),
        }
    }

    /// Whether anything is configured at all.
    pub fn is_empty(&self) -> bool {
        self.software.is_none() && self.tpm.is_none() && self.pkcs11.is_none()
    }
}

/// Why the key store cannot be used. Each names the home or key, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyHomeError {
    /// A configured home cannot be opened (wrong PIN or passphrase, missing token or module,
    /// TPM unreachable, insecure permissions, corrupted store, ...).
    #[error("[keystore.{home}]: {error}")]
    Home {
        /// The home.
        home: HomeKind,
        /// Why (boxed: the key store's errors are large). In the message, not a `source()`,
        /// so that chain printers (`{:#}`) do not repeat it.
        error: Box<KeyStoreError>,
    },
    /// The configuration names a TPM home, and this build has none: the TPM home is the
    /// cargo feature `tpm`, off by default. Says how to get a build that has it.
    #[error(
        "[keystore.tpm]: this build of secure-cse has no TPM home (level 2). It is the cargo \
         feature `tpm`, off by default because it links the system's TSS2 libraries: install \
         them (Debian: apt-get install libtss2-dev pkg-config, or bash .ci/keystore-services.sh \
         as root) and rebuild with `cargo build --release -p cli --features tpm` \
         (docs/building.md)"
    )]
    TpmNotBuilt,
    /// A key names a home that has no section.
    #[error("{what}: {key}, but there is no [keystore.{}] section", key.home)]
    NotConfigured {
        /// Who asked for the key.
        what: String,
        /// The key.
        key: KeyRef,
    },
    /// The configured anchor cannot be used (its home is missing or cannot hold one, its
    /// id does not fit).
    #[error("{what}: {anchor}: {reason}")]
    Anchor {
        /// Who asked for it.
        what: String,
        /// The anchor.
        anchor: AnchorRef,
        /// Why.
        reason: String,
    },
    /// A configured key cannot be used (missing from its home, wrong role, below the
    /// policy's minimum, corrupted, home unreachable).
    #[error("{what}: {key}: {error}")]
    Key {
        /// Who asked for the key (`[[tls]] https`, `keystore.ca_key`).
        what: String,
        /// The key.
        key: KeyRef,
        /// Why (boxed: the key store's errors are large). In the message, not a `source()`,
        /// so that chain printers (`{:#}`) do not repeat it.
        error: Box<KeyStoreError>,
    },
}

/// The configured homes, opened, with the policy. The store is shared with the PSK masters
/// the credential file names (they derive keys through it at each handshake).
#[derive(Debug)]
pub struct KeyHomes {
    store: Arc<KeyStore>,
    ids: BTreeMap<HomeKind, HomeId>,
    /// The level-3 home as itself, for its anchor records.
    pkcs11: Option<Arc<Pkcs11Home>>,
    /// The level-2 home as itself, for its NV counters.
    #[cfg(feature = "tpm")]
    tpm: Option<Arc<TpmHome>>,
}

impl KeyHomes {
    /// Opens every configured home (an unusable one is an error: nothing falls back to
    /// another home). `create_software` creates an empty level-1 store where none exists
    /// yet (`m2m keys generate`); the CSE never does.
    pub fn open(section: &KeystoreSection, create_software: bool) -> Result<Self, KeyHomeError> {
        // A build without the TPM home refuses a configuration that names one before any
        // home opens: never served without the keys it names.
        if section.tpm.is_some() && !keystore::tpm::BUILT {
            return Err(KeyHomeError::TpmNotBuilt);
        }
        let mut store = KeyStore::new(section.policy.clone().unwrap_or_default());
        let mut ids = BTreeMap::new();
        let mut add = |kind: HomeKind, home: Result<Arc<dyn KeyHome>, KeyStoreError>| {
            let home = home.map_err(|error| KeyHomeError::Home {
                home: kind,
                error: Box::new(error),
            })?;
            ids.insert(kind, home.id().clone());
            store = std::mem::take(&mut store).with_home(home);
            Ok::<_, KeyHomeError>(())
        };
        if let Some(c) = &section.software {
            let home = match SoftwareHome::open(c) {
                Err(KeyStoreError::NotInitialised { .. }) if create_software => {
                    SoftwareHome::create(c)
                }
                other => other,
            };
            add(
                HomeKind::Software,
                home.map(|h| Arc::new(h) as Arc<dyn KeyHome>),
            )?;
        }
        #[cfg(feature = "tpm")]
        let mut tpm = None;
        #[cfg(feature = "tpm")]
        if let Some(c) = &section.tpm {
            let home = TpmHome::open(c).map(Arc::new);
            tpm = home.as_ref().ok().cloned();
            add(HomeKind::Tpm, home.map(|h| h as Arc<dyn KeyHome>))?;
        }
        let mut pkcs11 = None;
        if let Some(c) = &section.pkcs11 {
            let home = Pkcs11Home::open(c).map(Arc::new);
            pkcs11 = home.as_ref().ok().cloned();
            add(HomeKind::Pkcs11, home.map(|h| h as Arc<dyn KeyHome>))?;
        }
        Ok(Self {
            store: Arc::new(store),
            ids,
            pkcs11,
            #[cfg(feature = "tpm")]
            tpm,
        })
    }

    /// Closes every home ([`KeyStore::close`]): a TPM home flushes what it loaded into the
    /// TPM. For the exit path; see [`CloseOnExit`].
    pub fn close(&self) {
        self.store.close();
    }

    /// The key store (homes and policy).
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// The key store as a shared handle, for users that keep it (the certificate authority
    /// of `cse init` and `m2m ca`).
    pub fn shared_store(&self) -> Arc<KeyStore> {
        self.store.clone()
    }

    /// The name of a configured home.
    pub fn home_id(&self, home: HomeKind) -> Option<&HomeId> {
        self.ids.get(&home)
    }

    /// Which configured home a home name belongs to.
    pub fn kind_of(&self, id: &HomeId) -> Option<HomeKind> {
        self.ids.iter().find(|(_, h)| *h == id).map(|(k, _)| *k)
    }

    /// Opens a configured key for `role`: it must exist in exactly that home, have that
    /// role, and its home must meet the policy. `what` names the user of the key in errors.
    pub fn open_key(
        &self,
        what: &str,
        key: &KeyRef,
        role: KeyRole,
    ) -> Result<KeyHandle, KeyHomeError> {
        let home = self
            .ids
            .get(&key.home)
            .ok_or_else(|| KeyHomeError::NotConfigured {
                what: what.to_owned(),
                key: key.clone(),
            })?;
        self.store
            .open(home, &key.id, role)
            .map_err(|error| KeyHomeError::Key {
                what: what.to_owned(),
                key: key.clone(),
                error: Box::new(error),
            })
    }

    /// [`KeyHomes::open_key`] for a PSK master key (role `psk-master`), from which per-device
    /// PSKs are derived inside its home.
    pub fn psk_master(&self, what: &str, key: &KeyRef) -> Result<PskMaster, KeyHomeError> {
        let handle = self.open_key(what, key, KeyRole::PskMaster)?;
        PskMaster::new(self.store.clone(), handle).map_err(|error| KeyHomeError::Key {
            what: what.to_owned(),
            key: key.clone(),
            error: Box::new(error),
        })
    }

    /// The configured home that holds a key `id`, when exactly one does (`m2m keys
    /// derive-psk` without `--home`). A home that cannot be asked is an error.
    pub fn find(&self, id: &KeyId) -> Result<HomeKind, String> {
        let mut found = Vec::new();
        for (kind, home) in &self.ids {
            let home = self.store.home(home).map_err(|e| e.to_string())?;
            match home.key(id) {
                Ok(_) => found.push(*kind),
                Err(KeyStoreError::KeyNotFound { .. }) => {}
                Err(e) => return Err(format!("[keystore.{kind}]: {e}")),
            }
        }
        match found.as_slice() {
            [kind] => Ok(*kind),
            [] => Err(format!("no configured key home holds a key {id}")),
            several => Err(format!(
                "key {id} is in several homes ({}): name one with --home",
                several
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The configured anchor of the audit checkpoint (`[audit] head_anchor`), in its home.
    pub fn head_anchor(
        &self,
        what: &str,
        anchor: &AnchorRef,
    ) -> Result<manager::audit::HeadAnchor, KeyHomeError> {
        let unusable = |reason: String| KeyHomeError::Anchor {
            what: what.to_owned(),
            anchor: anchor.clone(),
            reason,
        };
        let missing = || unusable(format!("there is no [keystore.{}] section", anchor.home));
        match anchor.home {
            HomeKind::Software => Err(unusable("a level-1 home cannot hold an anchor".into())),
            HomeKind::Pkcs11 => {
                let home = self.pkcs11.as_ref().ok_or_else(missing)?;
                let record = home
                    .anchor_record(&anchor.id)
                    .map_err(|e| unusable(e.to_string()))?;
                Ok(manager::audit::HeadAnchor::Record(Arc::new(record)))
            }
            #[cfg(feature = "tpm")]
            HomeKind::Tpm => {
                let home = self.tpm.as_ref().ok_or_else(missing)?;
                let counter = home
                    .nv_counter(&anchor.id)
                    .map_err(|e| unusable(e.to_string()))?;
                Ok(manager::audit::HeadAnchor::Counter(Arc::new(counter)))
            }
            #[cfg(not(feature = "tpm"))]
            HomeKind::Tpm => Err(KeyHomeError::TpmNotBuilt),
        }
    }

    /// The anchoring of the audit log's checkpoint that `[audit]` configures, if any: the
    /// anchor in its home and the interval. The CSE and `m2m ca` open the log with it, so
    /// that every writer of the log moves the anchor.
    pub fn audit_anchoring(
        &self,
        audit: &crate::config::AuditSettings,
    ) -> Result<Option<manager::audit::Anchoring>, KeyHomeError> {
        audit
            .head_anchor
            .as_ref()
            .map(|anchor| {
                Ok(manager::audit::Anchoring {
                    anchor: self.head_anchor("audit.head_anchor", anchor)?,
                    interval: audit.anchor_interval,
                })
            })
            .transpose()
    }

    /// [`KeyHomes::open_key`] for a signing key (TLS server, CA).
    pub fn signing_key(
        &self,
        what: &str,
        key: &KeyRef,
        role: KeyRole,
    ) -> Result<SigningKey, KeyHomeError> {
        let handle = self.open_key(what, key, role)?;
        self.store
            .signing_key(&handle)
            .map_err(|error| KeyHomeError::Key {
                what: what.to_owned(),
                key: key.clone(),
                error: Box::new(error),
            })
    }
}

/// Closes the key homes when dropped, however many holders they still have (listeners, a
/// reloader): a program keeps one of these in `main` so that every exit path releases what
/// the homes hold outside the process (the TPM's few object slots).
#[derive(Debug)]
pub struct CloseOnExit(pub Arc<KeyHomes>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The `derive_from` entries of the credential file name their master by home section and
/// key id; they are opened like every other configured key (role `psk-master`, policy
/// checked), so an unknown master stops the CSE at start-up.
impl PskMasterSource for KeyHomes {
    fn psk_master(&self, home: &str, id: &KeyId) -> Result<PskMaster, String> {
        let home: HomeKind = home.parse()?;
        let key = KeyRef {
            home,
            id: id.clone(),
        };
        self.psk_master("derive_from", &key)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> KeyStoreError {
        KeyStoreError::KeyNotFound {
            home: HomeId::new("software", "/keys"),
            key: KeyId::new("ca").expect("id"),
        }
    }

    /// Printed as `cse` prints errors (anyhow's `{:#}` walks the `source()` chain), the
    /// key store's message appears once: the errors that include it in their own message do
    /// not also return it as their source.
    #[test]
    fn key_home_errors_print_their_cause_once() {
        let key = KeyRef {
            home: HomeKind::Software,
            id: KeyId::new("ca").expect("id"),
        };
        let errors: Vec<anyhow::Error> = vec![
            KeyHomeError::Key {
                what: "keystore.ca_key".into(),
                key: key.clone(),
                error: Box::new(missing()),
            }
            .into(),
            KeyHomeError::Home {
                home: HomeKind::Software,
                error: Box::new(missing()),
            }
            .into(),
            security::privacy::VaultError::from(missing()).into(),
            security::sealing::SealError::from(missing()).into(),
            security::maf_store::MafStoreError::from(missing()).into(),
            manager::ca::CaError::from(missing()).into(),
        ];
        for e in errors {
            let text = format!("{e:#}");
            assert_eq!(text.matches("not found in home").count(), 1, "{text}");
        }
        let policy = KeyStoreError::Policy(
            KeyStorePolicy::default()
                .check(
                    &KeyId::new("ca").expect("id"),
                    KeyRole::CaSigning,
                    &HomeId::new("software", "/keys"),
                    keystore::Level::Software,
                )
                .expect_err("below the policy"),
        );
        let text = format!(
            "{:#}",
            anyhow::Error::from(KeyHomeError::Key {
                what: "keystore.ca_key".into(),
                key,
                error: Box::new(policy),
            })
        );
        assert_eq!(text.matches("the policy requires").count(), 1, "{text}");
        let io = KeyStoreError::Io {
            path: "/keys/ca.key".into(),
            error: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        let text = format!("{:#}", anyhow::Error::from(io));
        assert_eq!(text.matches("denied").count(), 1, "{text}");
    }
}
