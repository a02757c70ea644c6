//! Sealing small secrets at rest under a key that stays in its key-store home: the AES-256-GCM
//! key is derived inside the home (HKDF-Expand of an HMAC key) for each operation and
//! zeroized after it; the sealed form is `nonce (12) || ciphertext || tag (16)`, bound to
//! associated data that names what it belongs to. The pseudonym vault and the MAF's key
//! journal keep their secrets this way.

use keystore::{Algorithm, KeyHandle, KeyHome, KeyId, KeyRole, KeyStore, KeyStoreError};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Why a seal could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key's home refused or failed. The message includes the key store's, so it is not
    /// also a `source()` (chain printers would repeat it).
    #[error("sealing key: {0}")]
    KeyStore(KeyStoreError),
    /// What was given does not open under this key with this associated data (altered, cut,
    /// or sealed for something else).
    #[error("a sealed value does not open under this key for this use")]
    Unsealable,
    /// OpenSSL failed to seal.
    #[error("AES-256-GCM: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl From<KeyStoreError> for SealError {
    fn from(e: KeyStoreError) -> Self {
        Self::KeyStore(e)
    }
}

/// An HMAC key in a home, and the label its sealing keys are derived with.
pub struct Sealer {
    store: KeyStore,
    key: KeyHandle,
    info: &'static [u8],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key", &self.key.id())
            .field("home", &self.key.home())
            .field("level", &self.key.level())
            .finish()
    }
}

impl Sealer {
    /// Seals with AES-256-GCM keys derived from `key` (an HMAC-SHA-256 key) with `info`.
    pub fn new(store: KeyStore, key: KeyHandle, info: &'static [u8]) -> Self {
        Self { store, key, info }
    }

    /// The key store and the HMAC key, for other operations inside the same home.
    pub fn key(&self) -> (&KeyStore, &KeyHandle) {
        (&self.store, &self.key)
    }

    /// Where the key lives, for start-up logs.
    pub fn describe(&self) -> String {
        format!(
            "{} in {} (level {})",
            self.key.id(),
            self.key.home(),
            self.key.level().number()
        )
    }

    /// Seals `plain`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = self.store.derive(&self.key, self.info, 32)?;
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let mut tag = [0u8; 16];
        let sealed = openssl::symm::encrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            key.expose(),
            Some(&nonce),
            aad,
            plain,
            &mut tag,
        )?;
        Ok([&nonce[..], &sealed, &tag].concat())
    }

    /// Opens what [`Sealer::seal`] sealed with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 12 + 16 {
            return Err(SealError::Unsealable);
        }
        let (nonce, rest) = sealed.split_at(12);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let key = self.store.derive(&self.key, self.info, 32)?;
        openssl::symm::decrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            key.expose(),
            Some(nonce),
            aad,
            body,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Unsealable)
    }
}

/// An HMAC key of `role` named `key_id` in a level-1 home of the data folder: the home in
/// `DIR/NAME`, its key-encryption key in the file `DIR/NAME.kek`, both made on first use
/// (mode 700/600). Such a key protects what it seals as well as the data folder is protected;
/// a key in a TPM or HSM home, named in the configuration, protects it better.
pub fn data_folder_key(
    dir: &Path,
    name: &str,
    key_id: &str,
    role: KeyRole,
) -> Result<(KeyStore, KeyHandle), KeyStoreError> {
    use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
    let kek = dir.join(format!("{name}.kek"));
    if !kek.exists() {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, bytes.as_mut());
        write_new_private(&kek, bytes.as_ref()).map_err(|error| KeyStoreError::Io {
            path: kek.clone(),
            error,
        })?;
    }
    let config = SoftwareConfig {
        dir: dir.join(name),
        kek: KekSource::KeyFile(kek),
    };
    let home = match SoftwareHome::open(&config) {
        Ok(home) => home,
        Err(KeyStoreError::NotInitialised { .. }) => SoftwareHome::create(&config)?,
        Err(e) => return Err(e),
    };
    let home: Arc<dyn KeyHome> = Arc::new(home);
    let store = KeyStore::new(keystore::KeyStorePolicy::default()).with_home(home.clone());
    let id = KeyId::new(key_id)?;
    let key = match store.open(home.id(), &id, role) {
        Ok(key) => key,
        Err(KeyStoreError::KeyNotFound { .. }) => {
            store.generate(home.id(), &id, role, Algorithm::HmacSha256)?
        }
        Err(e) => return Err(e),
    };
    Ok((store, key))
}

/// Writes a new file, mode 600, synced; refuses an existing one.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_their_associated_data_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, key) =
            data_folder_key(dir.path(), "k", "seal", KeyRole::PskMaster).expect("key");
        let sealer = Sealer::new(store, key, b"test seal/1");
        let sealed = sealer.seal(b"for a", b"secret").expect("seal");
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"));
        assert_eq!(
            sealer.open(b"for a", &sealed).expect("open").as_slice(),
            b"secret"
        );
        assert!(matches!(
            sealer.open(b"for b", &sealed),
            Err(SealError::Unsealable)
        ));
        let mut altered = sealed.clone();
        altered[13] ^= 1;
        assert!(matches!(
            sealer.open(b"for a", &altered),
            Err(SealError::Unsealable)
        ));
        assert!(matches!(
            sealer.open(b"for a", &[0; 5]),
            Err(SealError::Unsealable)
        ));
        // The same folder gives the same key back; another label derives another key.
        let (store, key) =
            data_folder_key(dir.path(), "k", "seal", KeyRole::PskMaster).expect("reopen");
        let again = Sealer::new(store, key, b"test seal/1");
        assert_eq!(
            again.open(b"for a", &sealed).expect("open").as_slice(),
            b"secret"
        );
        let (store, key) =
            data_folder_key(dir.path(), "k", "seal", KeyRole::PskMaster).expect("reopen");
        let other = Sealer::new(store, key, b"other/1");
        assert!(other.open(b"for a", &sealed).is_err());
        assert!(format!("{again:?}").contains("level"));
    }
}
