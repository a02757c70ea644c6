//! Privacy of what the CSE writes about its peers (seed 6.4, TS-0003 clause 11).
//!
//! AE-IDs are pseudonyms: the CSE assigns them at random, and nothing it writes may link one
//! to the real identity behind it: a network address, a credential's name (a PSK identity is
//! often a device identifier) or a certificate. Log lines therefore name peers and
//! credentials by [`Tag`]s: a keyed hash, stable within one key (so an operator can follow one
//! peer through the log) and meaningless without it. The key is random per process unless
//! the operator installs one, so tags from two runs do not link either.

use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The keyed hash that turns identifying values into log tags.
pub struct LogPseudonyms {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for LogPseudonyms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogPseudonyms(..)")
    }
}

/// A pseudonym for a peer or credential in log lines (`peer-3f9a1c0b72de`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    kind: &'static str,
    digest: [u8; 6],
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.kind)?;
        self.digest.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl LogPseudonyms {
    /// Tags under a fresh random key: unlinkable to anything outside this process.
    pub fn random() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, key.as_mut());
        Self { key }
    }

    /// Tags under an operator's key (for logs that must correlate across restarts).
    pub fn with_key(key: Zeroizing<[u8; 32]>) -> Self {
        Self { key }
    }

    /// The tag of a peer: of its IP address only, so one host's connections share a tag.
    pub fn peer(&self, addr: IpAddr) -> Tag {
        let bytes = match addr {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.octets().to_vec(),
                None => v6.octets().to_vec(),
            },
        };
        self.tag("peer", &bytes)
    }

    /// The tag of a credential, by its Credential-ID.
    pub fn credential(&self, credential_id: &str) -> Tag {
        self.tag("cred", credential_id.as_bytes())
    }

    fn tag(&self, kind: &'static str, value: &[u8]) -> Tag {
        // HMAC pads a short key with zeros to the hash's block; doing it here gives the
        // fixed-size key type, whose constructor cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(self.key.as_ref());
        let mut mac = <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(block.as_ref()));
        // Domain separation: a peer and a credential with equal bytes get unrelated tags.
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        let out = mac.finalize().into_bytes();
        let mut digest = [0u8; 6];
        digest.copy_from_slice(&out[..6]);
        Tag { kind, digest }
    }
}

static LOG_PSEUDONYMS: OnceLock<LogPseudonyms> = OnceLock::new();

/// Installs the operator's tag key; call before anything is logged. False when tags are
/// already in use (then the key in use stays, so one log never mixes two keys).
pub fn install(pseudonyms: LogPseudonyms) -> bool {
    LOG_PSEUDONYMS.set(pseudonyms).is_ok()
}

/// The process's log tags (a random key unless [`install`] came first).
pub fn log_tags() -> &'static LogPseudonyms {
    LOG_PSEUDONYMS.get_or_init(LogPseudonyms::random)
}

/// The log form of an optional peer address: its tag, or `-`.
pub fn peer_tag(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "-".to_owned(), |p| log_tags().peer(p.ip()).to_string())
}

/// The log form of a Credential-ID: its tag.
pub fn credential_tag(credential_id: &str) -> Tag {
    log_tags().credential(credential_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_per_key_and_hide_the_value() {
        let p = LogPseudonyms::with_key(Zeroizing::new([7; 32]));
        let a: IpAddr = "192.0.2.10".parse().expect("ip");
        let tag = p.peer(a).to_string();
        assert_eq!(tag, p.peer(a).to_string());
        assert!(tag.starts_with("peer-") && tag.len() == 17, "{tag}");
        assert!(!tag.contains("192"));
        // The port does not matter; the address does; an IPv4-mapped IPv6 is the same host.
        assert_eq!(p.peer("::ffff:192.0.2.10".parse().expect("ip")), p.peer(a));
        assert_ne!(p.peer("192.0.2.11".parse().expect("ip")), p.peer(a));
        // Another key gives unrelated tags.
        let q = LogPseudonyms::with_key(Zeroizing::new([8; 32]));
        assert_ne!(q.peer(a), p.peer(a));
        let c = p.credential("12-sensor-1@sp.example").to_string();
        assert!(c.starts_with("cred-") && !c.contains("sensor"), "{c}");
        assert_eq!(format!("{p:?}"), "LogPseudonyms(..)");
    }

    #[test]
    fn peer_and_credential_tags_are_separated() {
        let p = LogPseudonyms::with_key(Zeroizing::new([1; 32]));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let as_credential = p.credential("\u{a}\u{0}\u{0}\u{1}");
        assert_ne!(p.peer(ip).digest, as_credential.digest);
        assert_eq!(peer_tag(None), "-");
    }
}

/// The link between a pseudonym (an AE-ID the CSE assigned to a credential) and the real
/// identity behind it (the Credential-ID), kept so that only an authorised role can follow
/// it: the store finds an AE-ID by a keyed *lookup* of the credential (an HMAC made inside
/// the key's home), and keeps the Credential-ID itself only *sealed* (AES-256-GCM under a key
/// derived inside that home, bound to the AE-ID). Neither reveals the credential to someone
/// who reads the database.
pub struct PseudonymVault {
    sealer: crate::sealing::Sealer,
    lookups: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl fmt::Debug for PseudonymVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymVault")
            .field("key", &self.sealer)
            .finish()
    }
}

/// Lookups remembered per process (a lookup in a TPM costs a round trip).
const LOOKUP_CACHE: usize = 4096;
/// Prefix of lookup keys, so that they never collide with a plain Credential-ID.
const LOOKUP_PREFIX: &str = "p1-";
/// What the sealing key is derived with (HKDF-Expand inside the home).
const SEAL_INFO: &[u8] = b"secure-cse pseudonym seal/1";

/// Why the vault cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The key's home refused or failed. The message includes the key store's, so it is not
    /// also a `source()` (chain printers would repeat it).
    #[error("pseudonym mapping key: {0}")]
    KeyStore(keystore::KeyStoreError),
    /// The key is not an HMAC key of role `pseudonym-mapping`.
    #[error("the pseudonym mapping key must be an HMAC-SHA-256 key of role pseudonym-mapping")]
    WrongKey,
    /// A sealed identity does not open (altered, or sealed for another AE-ID or key).
    #[error("a sealed identity does not open under this key for this AE-ID")]
    Unsealable,
    /// OpenSSL failed.
    #[error("AES-GCM: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl From<keystore::KeyStoreError> for VaultError {
    fn from(e: keystore::KeyStoreError) -> Self {
        Self::KeyStore(e)
    }
}

impl From<crate::sealing::SealError> for VaultError {
    fn from(e: crate::sealing::SealError) -> Self {
        match e {
            crate::sealing::SealError::KeyStore(e) => Self::KeyStore(e),
            crate::sealing::SealError::Crypto(e) => Self::Crypto(e),
            _ => Self::Unsealable,
        }
    }
}

impl PseudonymVault {
    /// A vault over `key` (role `pseudonym-mapping`, HMAC-SHA-256) in `store`.
    pub fn new(store: keystore::KeyStore, key: keystore::KeyHandle) -> Result<Self, VaultError> {
        if key.role() != keystore::KeyRole::PseudonymMapping
            || key.algorithm() != keystore::Algorithm::HmacSha256
        {
            return Err(VaultError::WrongKey);
        }
        Ok(Self {
            sealer: crate::sealing::Sealer::new(store, key, SEAL_INFO),
            lookups: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The default vault of a data folder: its key in a level-1 home in `DIR/privacy-keys`
    /// (see [`crate::sealing::data_folder_key`]). That protects the mapping as well as the
    /// data folder itself is protected; a key in a TPM or HSM home protects it better.
    pub fn in_data_folder(dir: &Path) -> Result<Self, VaultError> {
        let (store, key) = crate::sealing::data_folder_key(
            dir,
            "privacy-keys",
            "pseudonym-mapping",
            keystore::KeyRole::PseudonymMapping,
        )?;
        Self::new(store, key)
    }

    /// Where the key lives (for the start-up log).
    pub fn describe(&self) -> String {
        self.sealer.describe()
    }

    /// An HMAC inside the key's home.
    fn mac(&self, data: &[u8]) -> Result<keystore::Mac, VaultError> {
        let (store, key) = self.sealer.key();
        Ok(store.hmac(key, data)?)
    }

    /// The store's key for a credential: an HMAC, so equal credentials meet and nobody
    /// without the key can tell which credential it is.
    pub fn lookup(&self, credential_id: &str) -> Result<String, VaultError> {
        if let Some(hit) = self
            .lookups
            .lock()
            .ok()
            .and_then(|l| l.get(credential_id).cloned())
        {
            return Ok(hit);
        }
        let mut data = b"lookup\0".to_vec();
        data.extend_from_slice(credential_id.as_bytes());
        let mac = self.mac(&data)?;
        let lookup = format!("{LOOKUP_PREFIX}{}", hex::encode(mac.expose()));
        if let Ok(mut lookups) = self.lookups.lock() {
            if lookups.len() >= LOOKUP_CACHE {
                lookups.clear();
            }
            lookups.insert(credential_id.to_owned(), lookup.clone());
        }
        Ok(lookup)
    }

    /// The AE-ID `ae_id` as the party at `target` sees it (an `https://host:port` origin, a
    /// CSE-ID, ...): an AE-ID-shaped alias (`C` and 20 base-36 characters) that is stable for
    /// that party and unrelated between parties, so two of them cannot link one AE's
    /// activity by its identifier.
    pub fn alias(&self, target: &str, ae_id: &str) -> Result<String, VaultError> {
        let cache_key = format!("alias\0{target}\0{ae_id}");
        if let Some(hit) = self
            .lookups
            .lock()
            .ok()
            .and_then(|l| l.get(&cache_key).cloned())
        {
            return Ok(hit);
        }
        let mac = self.mac(cache_key.as_bytes())?;
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        // 20 characters from 20 MAC bytes: a small bias towards the first 4 characters of
        // the alphabet (256 = 7 * 36 + 4), irrelevant for an identifier.
        let alias: String = std::iter::once('C')
            .chain(
                mac.expose()[..20]
                    .iter()
                    .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char),
            )
            .collect();
        if let Ok(mut lookups) = self.lookups.lock() {
            if lookups.len() >= LOOKUP_CACHE {
                lookups.clear();
            }
            lookups.insert(cache_key, alias.clone());
        }
        Ok(alias)
    }

    /// Whether a stored key is a lookup (rather than a Credential-ID kept in clear by an
    /// older version).
    pub fn is_lookup(key: &str) -> bool {
        key.starts_with(LOOKUP_PREFIX)
    }

    /// The Credential-ID sealed for `ae_id` (see [`crate::sealing`]).
    pub fn seal(&self, credential_id: &str, ae_id: &str) -> Result<Vec<u8>, VaultError> {
        Ok(self
            .sealer
            .seal(ae_id.as_bytes(), credential_id.as_bytes())?)
    }

    /// Opens what [`PseudonymVault::seal`] sealed for `ae_id`.
    pub fn open(&self, sealed: &[u8], ae_id: &str) -> Result<String, VaultError> {
        let plain = self.sealer.open(ae_id.as_bytes(), sealed)?;
        String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Unsealable)
    }
}

#[cfg(test)]
mod vault_tests {
    use super::*;

    #[test]
    fn lookups_are_stable_and_sealed_identities_open_only_for_their_ae() {
        let dir = tempfile::tempdir().expect("tmp");
        let vault = PseudonymVault::in_data_folder(dir.path()).expect("vault");
        let a = vault.lookup("12-alice@sp").expect("lookup");
        assert!(PseudonymVault::is_lookup(&a) && !a.contains("alice"), "{a}");
        assert_eq!(a, vault.lookup("12-alice@sp").expect("again"));
        assert_ne!(a, vault.lookup("12-bob@sp").expect("bob"));
        let sealed = vault.seal("12-alice@sp", "Cabc").expect("seal");
        assert!(!String::from_utf8_lossy(&sealed).contains("alice"));
        assert_eq!(vault.open(&sealed, "Cabc").expect("open"), "12-alice@sp");
        assert!(matches!(
            vault.open(&sealed, "Cother"),
            Err(VaultError::Unsealable)
        ));
        let mut altered = sealed.clone();
        altered[14] ^= 1;
        assert!(matches!(
            vault.open(&altered, "Cabc"),
            Err(VaultError::Unsealable)
        ));
        assert!(matches!(
            vault.open(&[1, 2, 3], "Cabc"),
            Err(VaultError::Unsealable)
        ));
        // The same folder opens the same key again: lookups and seals still match.
        drop(vault);
        let again = PseudonymVault::in_data_folder(dir.path()).expect("reopen");
        assert_eq!(again.lookup("12-alice@sp").expect("lookup"), a);
        assert_eq!(again.open(&sealed, "Cabc").expect("open"), "12-alice@sp");
        assert!(format!("{again:?}").contains("level"));
        // Aliases: stable per party, different between parties and from the AE-ID.
        let a1 = again.alias("https://a.example:443", "Cabc").expect("alias");
        assert_eq!(
            a1,
            again.alias("https://a.example:443", "Cabc").expect("alias")
        );
        assert_ne!(
            a1,
            again.alias("https://b.example:443", "Cabc").expect("alias")
        );
        assert_ne!(
            a1,
            again.alias("https://a.example:443", "Cabd").expect("alias")
        );
        assert!(
            a1.starts_with('C') && a1.len() == 21 && a1 != "Cabc",
            "{a1}"
        );
        // Another folder, another key: the lookup differs.
        let other = tempfile::tempdir().expect("tmp");
        let stranger = PseudonymVault::in_data_folder(other.path()).expect("vault");
        assert_ne!(stranger.lookup("12-alice@sp").expect("lookup"), a);
        assert!(stranger.open(&sealed, "Cabc").is_err());
    }
}
