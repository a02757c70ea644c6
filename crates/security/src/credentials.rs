//! Credentials: the secrets and the bindings the handshake code looks up. Files are the
//! source today; the security manager (issuing and revoking at run time) implements the same
//! [`CredentialStore`] trait, so the handshake code does not change when it arrives.
//!
//! A PSK entry holds its key either in the file (`key_hex`) or names a master key in a key
//! home (`derive_from`, [`PskMaster`]): the device's PSK is then derived inside the home for
//! each handshake ([`derive_kpsa`]), and exists in memory only while OpenSSL uses it.

use crate::association::{CredentialBinding, Level, PeerIdentity};
use keystore::{Algorithm, KeyHandle, KeyId, KeyRole, KeyStore, KeyStoreError};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

mod withdrawal;
/// Key bytes (zeroized on drop, redacted `Debug`, constant-time `ct_eq`): the key store's own
/// secret type, so a key crosses from a key home to a handshake without changing type.
pub use keystore::SecretBytes;
pub use withdrawal::{Withdrawal, WithdrawalKind};

/// A provisioned pre-shared key (Kpsa) and what it may be used as.
#[derive(Debug)]
pub struct PskCredential {
    /// KpsaID, the TLS `psk_identity`.
    pub identity: String,
    /// Kpsa.
    pub key: SecretBytes,
    /// What an association using it is bound to.
    pub binding: CredentialBinding,
}

/// Where the handshake finds credentials.
pub trait CredentialStore: Send + Sync + fmt::Debug + 'static {
    /// The PSK for a `psk_identity`, if the identity is known and usable now.
    fn psk(&self, identity: &str) -> Option<PskCredential>;
    /// The binding for a certificate whose subjectAltName does not itself name an AE or CSE
    /// (for example a device certificate), by Credential-ID.
    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding>;

    /// Whether the credential is withdrawn (revoked or suspended), and why; a withdrawn
    /// credential gets no association. None by default: see [`crate::revocation`].
    fn withdrawn(&self, _credential_id: &str) -> Option<Withdrawal> {
        None
    }

    /// Like [`CredentialStore::psk`], but tells an unknown identity (`Ok(None)`) from a known
    /// one whose key cannot be produced now (`Err`, for example a key home that fails to
    /// derive it), so that the handshake is refused with that reason rather than as an
    /// unknown identity. The PSK callback calls this one.
    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        Ok(self.psk(identity))
    }

    /// The binding of a PSK identity without its key: all a resumed TLS 1.2 PSK session
    /// needs, so resuming never asks a key home to derive a key.
    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        self.psk(identity).map(|c| c.binding)
    }
}

/// A known PSK identity whose key cannot be produced now; the reason names the master key
/// and its home, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PskUnavailable(String);

impl PskUnavailable {
    /// Wraps a reason (for other [`CredentialStore`] implementations).
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// The fixed label in front of the KpsaID in the HKDF `info` of a derived PSK. Changing it
/// changes every derived PSK, hence the version.
pub const KPSA_INFO_LABEL: &[u8] = b"secure-cse Kpsa v1:";

/// Length of a derived PSK: 32 bytes, one HMAC-SHA-256 block.
pub const DERIVED_PSK_LEN: usize = 32;

/// Derives the PSK (Kpsa) of the device `kpsa_id` from a master key, inside the master's
/// home: `Kpsa = HKDF-Expand(master, info = KPSA_INFO_LABEL || KpsaID, 32)` (RFC 5869; with
/// 32 bytes that is `HMAC-SHA-256(master, info || 0x01)`). The CSE and
/// `m2m keys derive-psk` both call this, so a provisioned device and the CSE agree.
pub fn derive_kpsa(
    store: &KeyStore,
    master: &KeyHandle,
    kpsa_id: &str,
) -> Result<SecretBytes, KeyStoreError> {
    let mut info = Vec::with_capacity(KPSA_INFO_LABEL.len() + kpsa_id.len());
    info.extend_from_slice(KPSA_INFO_LABEL);
    info.extend_from_slice(kpsa_id.as_bytes());
    let okm = store.derive(master, &info, DERIVED_PSK_LEN)?;
    Ok(okm)
}

/// A PSK master key (TS-0003 Km: role `psk-master`, HMAC-SHA-256) in a key home, from which
/// per-device PSKs are derived inside the home. Holds the key store and a handle, never key
/// bytes; cheap to clone.
#[derive(Clone)]
pub struct PskMaster {
    store: Arc<KeyStore>,
    handle: KeyHandle,
}

impl PskMaster {
    /// A master from an opened handle (see `KeyStore::open`, which checks the policy). Refuses
    /// a key that is not a `psk-master` HMAC-SHA-256 key.
    pub fn new(store: Arc<KeyStore>, handle: KeyHandle) -> Result<Self, KeyStoreError> {
        if handle.role() != KeyRole::PskMaster {
            return Err(KeyStoreError::RoleMismatch {
                key: handle.id().clone(),
                home: handle.home().clone(),
                stored: handle.role(),
                expected: KeyRole::PskMaster,
            });
        }
        if handle.algorithm() != Algorithm::HmacSha256 {
            return Err(KeyStoreError::OperationUnsupported {
                key: handle.id().clone(),
                algorithm: handle.algorithm(),
                operation: "derive PSKs",
            });
        }
        Ok(Self { store, handle })
    }

    /// The master's handle.
    pub fn handle(&self) -> &KeyHandle {
        &self.handle
    }

    /// The level of the master's home: the default `level` of the PSKs derived from it.
    pub fn level(&self) -> Level {
        self.handle.level()
    }

    /// The PSK of `kpsa_id` ([`derive_kpsa`]).
    pub fn derive(&self, kpsa_id: &str) -> Result<SecretBytes, KeyStoreError> {
        derive_kpsa(&self.store, &self.handle, kpsa_id)
    }
}

impl fmt::Debug for PskMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PskMaster(key {} in home {})",
            self.handle.id(),
            self.handle.home()
        )
    }
}

/// Opens the master keys that `derive_from` entries name. The `cli` crate implements it over
/// the configured key homes; [`NoKeyHomes`] refuses every entry.
pub trait PskMasterSource {
    /// The master `id` in the home called `home` (`software`, `tpm`, `pkcs11`), opened as a
    /// `psk-master` key and checked against the key store's policy, or why not (naming the
    /// home and key).
    fn psk_master(&self, home: &str, id: &KeyId) -> Result<PskMaster, String>;
}

/// No key home is configured: a `derive_from` entry is an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeyHomes;

impl PskMasterSource for NoKeyHomes {
    fn psk_master(&self, home: &str, id: &KeyId) -> Result<PskMaster, String> {
        Err(format!(
            "derive_from names key {id} in home {home}, but no key home is configured ([keystore.{home}])"
        ))
    }
}

/// Why a credential file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid credential file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret itself).
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    psk: Vec<RawPsk>,
    #[serde(default)]
    certificate: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPsk {
    identity: String,
    key_hex: Option<String>,
    derive_from: Option<RawMasterRef>,
    #[serde(flatten)]
    binding: RawBinding,
}

/// `derive_from = { home = "pkcs11", id = "psk-master" }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasterRef {
    home: String,
    id: KeyId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    credential_id: String,
    #[serde(flatten)]
    binding: RawBinding,
}

#[derive(Deserialize)]
struct RawBinding {
    ae: Option<String>,
    cse: Option<String>,
    #[serde(default)]
    allowed_aes: Vec<String>,
    #[serde(default)]
    allowed_apps: Vec<String>,
    #[serde(default)]
    admin: bool,
    /// The level of the home that holds the peer's key (1, 2 or 3).
    level: Option<Level>,
}

impl RawBinding {
    fn resolve(
        self,
        what: &str,
        default_level: Option<Level>,
    ) -> Result<CredentialBinding, String> {
        let identity = match (self.ae, self.cse, self.allowed_aes.is_empty()) {
            (Some(ae), None, true) => PeerIdentity::Ae(ae),
            (None, Some(cse), true) => PeerIdentity::Cse(cse),
            (None, None, false) => PeerIdentity::AllowedAes(self.allowed_aes),
            _ => {
                return Err(format!(
                    "{what}: give exactly one of ae, cse or allowed_aes"
                ))
            }
        };
        Ok(CredentialBinding {
            identity,
            admin: self.admin,
            allowed_apps: self.allowed_apps,
            level: self.level.or(default_level),
        })
    }
}

/// A KpsaID: `relative@issuer-FQDN` with the characters TS-0003 clause 10.5 allows.
pub fn valid_kpsa_id(id: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    matches!(id.split_once('@'), Some((rel, fqdn)) if ok(rel) && ok(fqdn))
}

/// Credentials read from a TOML file:
///
/// ```toml
/// [[psk]]
/// identity = "sensor-1@sp.example"   # KpsaID
/// key_hex = "00112233445566778899aabbccddeeff"
/// allowed_aes = ["C*"]               # or ae = "Cabc", or cse = "/id-mn"
/// allowed_apps = ["Nsensor"]         # optional
/// admin = false                      # optional
/// level = 3                          # optional: level of the home holding the peer's key (default 1)
///
/// [[psk]]
/// identity = "sensor-7@sp.example"
/// derive_from = { home = "pkcs11", id = "psk-master" }  # instead of key_hex: derived inside the home
/// ae = "Csensor7"                    # level defaults to the master's home level (here 3)
///
/// [[certificate]]
/// credential_id = "31-<digest>"     # a certificate without an AE-ID/CSE-ID name (m2m credentials id)
/// ae = "Cdevice"
/// level = 2                          # optional: level of the device's key home (default: not recorded)
/// ```
///
/// `level` is what provisioning declares about the peer's key home (1 software, 2 TPM or
/// trusted environment, 3 HSM or secure element); it becomes the association's credential
/// level, which access decisions may require. A derived PSK's `level` defaults to the level
/// of the master's home instead: the CSE side of that credential is held there.
///
/// `derive_from` names a `psk-master` key (HMAC-SHA-256) in a configured key home
/// (`software`, `tpm` or `pkcs11`); the device's PSK is [`derive_kpsa`] of its KpsaID,
/// computed inside the home at each handshake and zeroized after it. `m2m keys derive-psk`
/// prints the same key for provisioning the device.
#[derive(Debug, Default)]
pub struct FileCredentials {
    psks: HashMap<String, (PskKey, CredentialBinding)>,
    certificates: HashMap<String, CredentialBinding>,
}

/// Where a PSK entry's key comes from.
#[derive(Debug)]
enum PskKey {
    /// `key_hex`: held in (zeroizing) memory.
    Stored(SecretBytes),
    /// `derive_from`: derived in the master's home when needed.
    Derived(PskMaster),
}

impl FileCredentials {
    /// Reads and checks a credential file without key homes (a `derive_from` entry is an
    /// error). Key files must not be readable by others.
    pub fn load(path: &Path) -> Result<Self, CredentialError> {
        Self::load_with(path, &NoKeyHomes)
    }

    /// Reads and checks a credential file; `masters` opens the master keys `derive_from`
    /// entries name (each once), so an unknown or unusable master is an error here, at
    /// start-up, not at the first handshake.
    pub fn load_with(path: &Path, masters: &dyn PskMasterSource) -> Result<Self, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid {
            path: path.to_owned(),
            message,
        };
        check_permissions(path).map_err(invalid)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CredentialError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::parse_with(&text, masters).map_err(invalid)
    }

    /// The `allowed_apps` of every entry that has some, as (Credential-ID, App-ID patterns):
    /// `12-<identity>` for a PSK entry (the Credential-ID of a KpsaID, TS-0003 clause
    /// 10.4), the `credential_id` of a certificate entry. The CSE seeds its
    /// `<serviceSubscribedAppRule>`s from these. Reads the file without opening any key.
    pub fn app_rules(path: &Path) -> Result<Vec<(String, Vec<String>)>, CredentialError> {
        let invalid = |message: String| CredentialError::Invalid {
            path: path.to_owned(),
            message,
        };
        check_permissions(path).map_err(invalid)?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CredentialError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        Self::app_rules_in(&text).map_err(invalid)
    }

    /// [`FileCredentials::app_rules`] of the TOML text of a credential file.
    pub fn app_rules_in(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!("syntax error at bytes {}..{}", span.start, span.end),
            None => "syntax error".to_owned(),
        })?;
        let psks = raw.psk.into_iter().map(|p| {
            let _key = p.key_hex.map(Zeroizing::new);
            (format!("12-{}", p.identity), p.binding.allowed_apps)
        });
        let certificates = raw
            .certificate
            .into_iter()
            .map(|c| (c.credential_id, c.binding.allowed_apps));
        Ok(psks
            .chain(certificates)
            .filter(|(_, apps)| !apps.is_empty())
            .collect())
    }

    /// Parses the TOML text of a credential file without key homes.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_with(text, &NoKeyHomes)
    }

    /// Parses the TOML text of a credential file, opening `derive_from` masters through
    /// `masters`.
    pub fn parse_with(text: &str, masters: &dyn PskMasterSource) -> Result<Self, String> {
        // The parser's error message can quote the offending line: never pass it on as is.
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!("syntax error at bytes {}..{}", span.start, span.end),
            None => "syntax error".to_owned(),
        })?;
        let mut out = Self::default();
        let mut opened: HashMap<(String, KeyId), PskMaster> = HashMap::new();
        for p in raw.psk {
            if !valid_kpsa_id(&p.identity) {
                return Err(format!(
                    "psk identity '{}' is not relative@issuer-fqdn",
                    p.identity
                ));
            }
            let what = format!("psk '{}'", p.identity);
            let (key, default_level) = match (p.key_hex, p.derive_from) {
                (Some(key_hex), None) => {
                    let key_hex = Zeroizing::new(key_hex);
                    let key = Zeroizing::new(
                        hex::decode(key_hex.trim())
                            .map_err(|_| format!("{what}: key_hex is not hex"))?,
                    );
                    if key.len() < 16 {
                        return Err(format!("{what}: keys must be at least 16 bytes"));
                    }
                    // A PSK whose peer side nobody vouches for is a software key: level 1.
                    (
                        PskKey::Stored(SecretBytes::new(key.to_vec())),
                        Level::Software,
                    )
                }
                (None, Some(from)) => {
                    let master = match opened.get(&(from.home.clone(), from.id.clone())) {
                        Some(master) => master.clone(),
                        None => {
                            let master = masters
                                .psk_master(&from.home, &from.id)
                                .map_err(|e| format!("{what}: {e}"))?;
                            opened.insert((from.home, from.id), master.clone());
                            master
                        }
                    };
                    let level = master.level();
                    (PskKey::Derived(master), level)
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{what}: give either key_hex or derive_from, not both"
                    ))
                }
                (None, None) => return Err(format!("{what}: needs key_hex or derive_from")),
            };
            let binding = p.binding.resolve(&what, Some(default_level))?;
            if out
                .psks
                .insert(p.identity.clone(), (key, binding))
                .is_some()
            {
                return Err(format!("psk '{}' is listed twice", p.identity));
            }
        }
        for c in raw.certificate {
            let binding = c
                .binding
                .resolve(&format!("certificate '{}'", c.credential_id), None)?;
            out.certificates.insert(c.credential_id, binding);
        }
        Ok(out)
    }

    /// Number of PSKs.
    pub fn psk_count(&self) -> usize {
        self.psks.len()
    }

    /// Number of PSKs derived in a key home (`derive_from`).
    pub fn derived_psk_count(&self) -> usize {
        self.psks
            .values()
            .filter(|(key, _)| matches!(key, PskKey::Derived(_)))
            .count()
    }
}

/// Runs a key-home operation from inside a handshake. A TPM (level 2) answers in
/// milliseconds: on a multi-threaded tokio runtime its calls go through `block_in_place`, so
/// the worker's other tasks move elsewhere meanwhile. Level 1 and PKCS#11 tokens answer in
/// tens of microseconds and are called directly.
///
/// NOTE(block-in-place): handing the worker over costs more than such a call. Measured with
/// `bench tls-keyhome` (docs/benchmarks.md, "Handshakes with the server key in a key home"):
/// `block_in_place` around a level-1 signature made a one-loop handshake 13-19 % slower than
/// the same handshake with the key in memory; without it, -2 to -1 %.
pub(crate) fn home_call<T>(level: Level, f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h)
            if level == Level::TrustedEnvironment
                && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
        {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err("holds secrets but is readable by group or others (chmod 600)".into());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), String> {
    Ok(())
}

impl CredentialStore for FileCredentials {
    fn psk(&self, identity: &str) -> Option<PskCredential> {
        self.lookup_psk(identity).ok().flatten()
    }

    fn certificate_binding(&self, credential_id: &str) -> Option<CredentialBinding> {
        self.certificates.get(credential_id).cloned()
    }

    fn lookup_psk(&self, identity: &str) -> Result<Option<PskCredential>, PskUnavailable> {
        let Some((key, binding)) = self.psks.get(identity) else {
            return Ok(None);
        };
        let key = match key {
            PskKey::Stored(key) => SecretBytes::new(key.expose().to_vec()),
            PskKey::Derived(master) => home_call(master.level(), || master.derive(identity)).map_err(|e| {
                let (id, home) = (master.handle().id(), master.handle().home());
                tracing::error!(key = %id, %home, error = %e, "the PSK master key's home could not derive a PSK: handshake refused");
                PskUnavailable(format!(
                    "the PSK master key {id} in home {home} could not derive the key: {e}"
                ))
            })?,
        };
        Ok(Some(PskCredential {
            identity: identity.to_owned(),
            key,
            binding: binding.clone(),
        }))
    }

    fn psk_binding(&self, identity: &str) -> Option<CredentialBinding> {
        self.psks.get(identity).map(|(_, binding)| binding.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let ok = FileCredentials::parse(
            "[[psk]]\nidentity = \"a@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nallowed_aes = [\"C*\"]\n",
        )
        .expect("valid");
        let psk = ok.psk("a@sp.example").expect("found");
        assert_eq!(psk.key.expose().len(), 16);
        assert_eq!(
            psk.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()])
        );
        assert!(
            format!("{:?}", psk.key).contains("16 bytes")
                && !format!("{:?}", psk.key).contains("0011")
        );
        assert!(ok.psk("b@sp.example").is_none());
        for bad in [
            "[[psk]]\nidentity = \"nope\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"0011\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"zz112233445566778899aabbccddeeff\"\nae = \"C1\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"\ncse = \"/x\"",
            "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"\nbogus = 1",
        ] {
            let err = FileCredentials::parse(bad).map(|_| ()).expect_err(bad);
            assert!(!err.contains("00112233"), "no secret in errors: {err}");
        }
    }

    /// What seeds the CSE's `<serviceSubscribedAppRule>`s: entries with `allowed_apps`
    /// only, by Credential-ID.
    #[test]
    fn app_rules_are_the_entries_with_allowed_apps() {
        let text = "[[psk]]\nidentity = \"a@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nallowed_aes = [\"C*\"]\nallowed_apps = [\"Nsensor\", \"R1*\"]\n\n\
            [[psk]]\nidentity = \"b@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cb\"\n\n\
            [[certificate]]\ncredential_id = \"31-abcd\"\nae = \"Cdev\"\nallowed_apps = [\"Ndev\"]\n";
        let rules = FileCredentials::app_rules_in(text).expect("valid");
        assert_eq!(
            rules,
            vec![
                (
                    "12-a@sp.example".to_owned(),
                    vec!["Nsensor".to_owned(), "R1*".to_owned()]
                ),
                ("31-abcd".to_owned(), vec!["Ndev".to_owned()]),
            ]
        );
        assert!(FileCredentials::app_rules_in("[[psk]\n").is_err());
    }

    #[test]
    fn entries_record_the_level_of_the_peer_key_home() {
        let c = FileCredentials::parse(
            "[[psk]]\nidentity = \"a@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Ca\"\n\
             [[psk]]\nidentity = \"b@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cb\"\nlevel = 3\n\
             [[certificate]]\ncredential_id = \"31-aa\"\nae = \"Cd\"\nlevel = 2\n\
             [[certificate]]\ncredential_id = \"31-bb\"\nae = \"Ce\"\n",
        )
        .expect("valid");
        let level = |id: &str| c.psk(id).and_then(|p| p.binding.level);
        assert_eq!(level("a@sp.example"), Some(Level::Software));
        assert_eq!(level("b@sp.example"), Some(Level::Hsm));
        let cert = |id: &str| c.certificate_binding(id).and_then(|b| b.level);
        assert_eq!(cert("31-aa"), Some(Level::TrustedEnvironment));
        assert_eq!(cert("31-bb"), None);
        for bad in ["0", "4", "\"high\""] {
            let text = format!(
                "[[psk]]\nidentity = \"a@b\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"C1\"\nlevel = {bad}"
            );
            assert!(FileCredentials::parse(&text).is_err(), "{bad}");
        }
    }

    /// A level-1 home in a temporary folder holding the master `m` (imported, so the test
    /// knows its bytes) and a `tls` key of another role.
    struct TestMasters {
        store: Arc<KeyStore>,
        _dir: tempfile::TempDir,
    }

    const MASTER: [u8; 32] = [0x5a; 32];

    impl TestMasters {
        fn new() -> Self {
            use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().expect("tmp");
            let kek = dir.path().join("kek");
            std::fs::write(&kek, [9u8; 32]).expect("kek");
            std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            let home = SoftwareHome::create(&SoftwareConfig {
                dir: dir.path().join("keys"),
                kek: KekSource::KeyFile(kek),
            })
            .expect("home");
            let home: Arc<dyn keystore::KeyHome> = Arc::new(home);
            let store = KeyStore::new(keystore::KeyStorePolicy::default()).with_home(home.clone());
            let id = |s: &str| KeyId::new(s).expect("id");
            store
                .import(
                    home.id(),
                    &id("m"),
                    KeyRole::PskMaster,
                    Algorithm::HmacSha256,
                    keystore::SecretBytes::from_slice(&MASTER),
                )
                .expect("import the master");
            store
                .generate(
                    home.id(),
                    &id("tls"),
                    KeyRole::TlsServer,
                    Algorithm::EcdsaP256Sha256,
                )
                .expect("a tls key");
            Self {
                store: Arc::new(store),
                _dir: dir,
            }
        }

        fn handle(&self, id: &KeyId, role: KeyRole) -> Result<KeyHandle, String> {
            let home = self.store.homes().next().ok_or("no home")?.id().clone();
            self.store.open(&home, id, role).map_err(|e| e.to_string())
        }
    }

    impl PskMasterSource for TestMasters {
        fn psk_master(&self, home: &str, id: &KeyId) -> Result<PskMaster, String> {
            if home != "software" {
                return Err(format!("no [keystore.{home}] section"));
            }
            let handle = self.handle(id, KeyRole::PskMaster)?;
            PskMaster::new(self.store.clone(), handle).map_err(|e| e.to_string())
        }
    }

    /// RFC 5869 HKDF-Expand with L = 32: one block, HMAC-SHA-256(PRK, info || 0x01).
    fn expected_kpsa(identity: &str) -> Vec<u8> {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&MASTER).expect("key");
        mac.update(KPSA_INFO_LABEL);
        mac.update(identity.as_bytes());
        mac.update(&[1]);
        mac.finalize().into_bytes().to_vec()
    }

    const DERIVED: &str = "[[psk]]\nidentity = \"a@sp.example\"\nderive_from = { home = \"software\", id = \"m\" }\nae = \"Ca\"\n\
        [[psk]]\nidentity = \"b@sp.example\"\nderive_from = { home = \"software\", id = \"m\" }\nae = \"Cb\"\nlevel = 3\n\
        [[psk]]\nidentity = \"c@sp.example\"\nkey_hex = \"00112233445566778899aabbccddeeff\"\nae = \"Cc\"\n";

    #[test]
    fn derived_psks_are_hkdf_expand_of_the_kpsa_id_inside_the_home() {
        let masters = TestMasters::new();
        let c = FileCredentials::parse_with(DERIVED, &masters).expect("valid");
        assert_eq!((c.psk_count(), c.derived_psk_count()), (3, 2));
        let a = c.psk("a@sp.example").expect("a");
        let b = c.psk("b@sp.example").expect("b");
        assert_eq!(a.key.expose(), expected_kpsa("a@sp.example").as_slice());
        assert_eq!(b.key.expose(), expected_kpsa("b@sp.example").as_slice());
        assert!(!a.key.ct_eq(&b.key), "one key per device");
        // The same function as m2m keys derive-psk, straight from the store.
        let handle = masters
            .handle(&KeyId::new("m").expect("id"), KeyRole::PskMaster)
            .expect("master");
        let direct = derive_kpsa(&masters.store, &handle, "a@sp.example").expect("derive");
        assert!(direct.ct_eq(&a.key));
        // level: the master's home by default (level 1 here), or what the entry says.
        assert_eq!(a.binding.level, Some(Level::Software));
        assert_eq!(b.binding.level, Some(Level::Hsm));
        assert_eq!(
            c.psk("c@sp.example").map(|p| p.key.expose().len()),
            Some(16)
        );
        // Nothing secret in Debug output.
        let debug = format!("{c:?}");
        assert!(
            debug.contains("PskMaster(key m in home software:"),
            "{debug}"
        );
        assert!(!debug.contains(&hex::encode(expected_kpsa("a@sp.example"))));
        assert!(!debug.contains("00112233"), "{debug}");
    }

    #[test]
    fn unusable_derive_from_entries_are_refused_at_load() {
        let masters = TestMasters::new();
        let entry =
            |rest: &str| format!("[[psk]]\nidentity = \"a@sp.example\"\nae = \"Ca\"\n{rest}\n");
        for (text, needle) in [
            (entry("derive_from = { home = \"software\", id = \"nope\" }"), "key nope not found"),
            (entry("derive_from = { home = \"pkcs11\", id = \"m\" }"), "no [keystore.pkcs11] section"),
            (entry("derive_from = { home = \"software\", id = \"tls\" }"), "not a psk-master key"),
            (
                entry("derive_from = { home = \"software\", id = \"m\" }\nkey_hex = \"00112233445566778899aabbccddeeff\""),
                "not both",
            ),
            (entry(""), "needs key_hex or derive_from"),
            (entry("derive_from = { home = \"software\", id = \"../m\" }"), "syntax error"),
            (entry("derive_from = { home = \"software\", id = \"m\", pin = 1 }"), "syntax error"),
        ] {
            let err = FileCredentials::parse_with(&text, &masters).map(|_| ()).expect_err(&text);
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err =
            FileCredentials::parse(&entry("derive_from = { home = \"software\", id = \"m\" }"))
                .map(|_| ())
                .expect_err("no homes");
        assert!(err.contains("no key home is configured"), "{err}");
    }

    #[test]
    fn a_master_that_fails_makes_its_psks_unavailable_not_unknown() {
        let masters = TestMasters::new();
        let c = FileCredentials::parse_with(DERIVED, &masters).expect("valid");
        let handle = masters
            .handle(&KeyId::new("m").expect("id"), KeyRole::PskMaster)
            .expect("master");
        masters.store.delete(&handle).expect("delete the master");
        let err = c
            .lookup_psk("a@sp.example")
            .map(|_| ())
            .expect_err("home fails");
        assert!(err.to_string().contains("key m in home software:"), "{err}");
        assert!(c.psk("a@sp.example").is_none());
        assert!(matches!(c.lookup_psk("zz@sp.example"), Ok(None)));
        // The binding (all a resumed session needs) does not ask the home.
        assert_eq!(
            c.psk_binding("a@sp.example").map(|b| b.identity),
            Some(PeerIdentity::Ae("Ca".into()))
        );
        // Stored keys are unaffected.
        assert!(c.psk("c@sp.example").is_some());
    }

    #[test]
    fn secrets_compare_in_constant_time() {
        assert!(SecretBytes::new(vec![1, 2]).ct_eq(&SecretBytes::new(vec![1, 2])));
        assert!(!SecretBytes::new(vec![1, 2]).ct_eq(&SecretBytes::new(vec![1, 3])));
        assert!(!SecretBytes::new(vec![1]).ct_eq(&SecretBytes::new(vec![1, 2])));
    }
}
