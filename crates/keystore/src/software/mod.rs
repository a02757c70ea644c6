//! Level 1: keys in files, encrypted at rest.
//!
//! * Each key is one file `<id>.key`, sealed with AES-256-GCM under a key-encryption key (KEK)
//!   with the file's metadata as associated data (see `format.rs` for the layout).
//! * The KEK comes from a passphrase through Argon2id (salt and cost in `keystore.json`), or
//!   from a 32-byte key file (raw, or 64 hex digits).
//! * The directory, `keystore.json`, every key file and the KEK or passphrase file must give
//!   group and others no access; the store refuses to open otherwise.
//! * Writes are atomic and never overwrite (temporary file, fsync, link, fsync directory).
//! * Decrypted keys stay in memory in zeroizing buffers (OpenSSL clears EC private scalars and
//!   HMAC keys when it frees them) for the life of the home.
//!
//! Level 1 is the only home from which key material could in principle be read by the
//! process; the API still hands out only handles, and `import` is allowed.

mod format;

pub use format::KdfParams;

use crate::crypto;
use crate::error::KeyStoreError;
use crate::fsutil;
use crate::handle::{from_unix, to_unix, KeyHandle, KeyMetadata, KeyOrigin, UsageLog};
use crate::home::{check_algorithm, check_home, check_new_key, ImportPolicy, KeyHome};
use crate::secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature};
use crate::source::SecretSource;
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use format::{KekKind, KeyHeader, StoreHeader, KEY_FORMAT, KEY_SUFFIX, STORE_FILE, STORE_FORMAT};
use openssl::ec::EcKey;
use openssl::pkey::{PKey, Private};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use zeroize::Zeroizing;

/// Where the key-encryption key comes from.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum KekSource {
    /// A passphrase, stretched with Argon2id: `kek = { passphrase = { env = "VAR" } }`.
    Passphrase(SecretSource),
    /// A file holding 32 random bytes (raw or as 64 hex digits): `kek = { key-file = "/p" }`.
    KeyFile(PathBuf),
}

/// Configuration of a level-1 home.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SoftwareConfig {
    /// The store's directory (mode 0700).
    pub dir: PathBuf,
    /// Where the key-encryption key comes from.
    pub kek: KekSource,
}

/// A level-1 home: encrypted key files in one directory.
pub struct SoftwareHome {
    id: HomeId,
    dir: PathBuf,
    kek: Zeroizing<[u8; 32]>,
    keys: RwLock<HashMap<KeyId, Arc<LoadedKey>>>,
    usage: UsageLog,
}

struct LoadedKey {
    header: KeyHeader,
    material: Material,
}

enum Material {
    Ecdsa(EcKey<Private>),
    Hmac {
        raw: Zeroizing<Vec<u8>>,
        pkey: PKey<Private>,
    },
    Aes(Zeroizing<[u8; 32]>),
}

impl fmt::Debug for SoftwareHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareHome")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const ALGORITHMS: &[Algorithm] = &[
    Algorithm::EcdsaP256Sha256,
    Algorithm::HmacSha256,
    Algorithm::Aes256Gcm,
];

impl SoftwareHome {
    /// Creates a new, empty store in `config.dir` (created with mode 0700 if missing) with the
    /// default Argon2id cost. Refuses a directory that already holds a store.
    pub fn create(config: &SoftwareConfig) -> Result<Self, KeyStoreError> {
        Self::create_with(config, KdfParams::default())
    }

    /// [`SoftwareHome::create`] with explicit Argon2id cost (ignored for a key-file KEK).
    pub fn create_with(config: &SoftwareConfig, params: KdfParams) -> Result<Self, KeyStoreError> {
        let dir = &config.dir;
        fsutil::ensure_private_dir(dir)?;
        let salt: [u8; 16] = crypto::random()?;
        let (kind, argon2) = match config.kek {
            KekSource::Passphrase(_) => (KekKind::Argon2id, Some(params)),
            KekSource::KeyFile(_) => (KekKind::KeyFile, None),
        };
        let mut header = StoreHeader {
            format: STORE_FORMAT.into(),
            kek: kind,
            argon2,
            salt: hex::encode(salt),
            check: String::new(),
        };
        let kek = derive_kek(&config.kek, &header, &dir.join(STORE_FILE))?;
        header.check = hex::encode(crypto::aes_gcm_seal(&kek, &header.check_aad(), b"")?);
        let json = serde_json::to_vec_pretty(&header)
            .map_err(|e| KeyStoreError::corrupted(dir.join(STORE_FILE), e.to_string()))?;
        fsutil::write_new(dir, STORE_FILE, &json, || KeyStoreError::Io {
            path: dir.join(STORE_FILE),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a key store already exists here",
            ),
        })?;
        Ok(Self::with_kek(dir, kek))
    }

    /// Opens an existing store: checks permissions, derives the KEK and verifies it against
    /// the store's check value ([`KeyStoreError::WrongPassphrase`] if it does not match).
    pub fn open(config: &SoftwareConfig) -> Result<Self, KeyStoreError> {
        let dir = &config.dir;
        fsutil::check_private_dir(dir).map_err(|e| match e {
            KeyStoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                KeyStoreError::NotInitialised { dir: dir.clone() }
            }
            other => other,
        })?;
        let path = dir.join(STORE_FILE);
        let bytes = fsutil::read_private(&path).map_err(|e| match e {
            KeyStoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                KeyStoreError::NotInitialised { dir: dir.clone() }
            }
            other => other,
        })?;
        let header: StoreHeader = serde_json::from_slice(&bytes)
            .map_err(|e| KeyStoreError::corrupted(&path, e.to_string()))?;
        if header.format != STORE_FORMAT {
            return Err(KeyStoreError::corrupted(
                &path,
                format!("unknown format {:?}", header.format),
            ));
        }
        let expected_kind = match config.kek {
            KekSource::Passphrase(_) => KekKind::Argon2id,
            KekSource::KeyFile(_) => KekKind::KeyFile,
        };
        if header.kek != expected_kind {
            return Err(KeyStoreError::corrupted(
                &path,
                format!(
                    "the store's KEK is a {:?} but the configuration gives a {:?}",
                    header.kek, expected_kind
                ),
            ));
        }
        let kek = derive_kek(&config.kek, &header, &dir.join(STORE_FILE))?;
        let check = hex::decode(&header.check)
            .map_err(|_| KeyStoreError::corrupted(&path, "check value is not hex"))?;
        let sealed = Sealed::from_bytes(check);
        let (nonce, ct, tag) = sealed
            .parts()
            .ok_or_else(|| KeyStoreError::corrupted(&path, "check value too short"))?;
        if crypto::aes_gcm_open(&kek, &header.check_aad(), nonce, ct, tag).is_none() {
            return Err(KeyStoreError::WrongPassphrase { dir: dir.clone() });
        }
        Ok(Self::with_kek(dir, kek))
    }

    fn with_kek(dir: &Path, kek: Zeroizing<[u8; 32]>) -> Self {
        Self {
            id: HomeId::new("software", &dir.display().to_string()),
            dir: dir.to_path_buf(),
            kek,
            keys: RwLock::new(HashMap::new()),
            usage: UsageLog::default(),
        }
    }

    fn file_name(id: &KeyId) -> String {
        format!("{id}{KEY_SUFFIX}")
    }

    /// The key, from memory or decrypted from its file.
    fn load(&self, id: &KeyId) -> Result<Arc<LoadedKey>, KeyStoreError> {
        if let Some(key) = self.keys.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(key);
        }
        let path = self.dir.join(Self::file_name(id));
        let bytes = fsutil::read_private(&path).map_err(|e| match e {
            KeyStoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                KeyStoreError::KeyNotFound {
                    home: self.id.clone(),
                    key: id.clone(),
                }
            }
            other => other,
        })?;
        let key = Arc::new(self.open_file(&path, id, &bytes)?);
        if let Ok(mut map) = self.keys.write() {
            map.insert(id.clone(), key.clone());
        }
        Ok(key)
    }

    fn open_file(&self, path: &Path, id: &KeyId, bytes: &[u8]) -> Result<LoadedKey, KeyStoreError> {
        let bad = |reason: &str| KeyStoreError::corrupted(path, reason);
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
        let (header_line, body) = text.split_once('\n').ok_or_else(|| bad("no body line"))?;
        let header: KeyHeader = serde_json::from_str(header_line)
            .map_err(|e| KeyStoreError::corrupted(path, format!("header: {e}")))?;
        if header.format != KEY_FORMAT {
            return Err(bad("unknown key file format"));
        }
        if &header.id != id {
            return Err(KeyStoreError::corrupted(
                path,
                format!("the file is named for key {id} but holds key {}", header.id),
            ));
        }
        let nonce = hex::decode(&header.nonce).map_err(|_| bad("nonce is not hex"))?;
        let sealed = hex::decode(body.trim_end()).map_err(|_| bad("body is not hex"))?;
        if nonce.len() != Sealed::NONCE_LEN || sealed.len() < Sealed::TAG_LEN {
            return Err(bad("nonce or body has the wrong length"));
        }
        let (ct, tag) = sealed.split_at(sealed.len() - Sealed::TAG_LEN);
        let plain = crypto::aes_gcm_open(&self.kek, header_line.as_bytes(), &nonce, ct, tag)
            .ok_or_else(|| {
                bad("authentication tag does not verify (the file was altered, or it belongs to another key store)")
            })?;
        let material = material_from_bytes(header.algorithm, &plain)
            .map_err(|reason| KeyStoreError::corrupted(path, reason))?;
        Ok(LoadedKey { header, material })
    }

    fn store(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        origin: KeyOrigin,
        material: Material,
    ) -> Result<KeyHandle, KeyStoreError> {
        let nonce: [u8; 12] = crypto::random()?;
        let header = KeyHeader {
            format: KEY_FORMAT.into(),
            id: id.clone(),
            role,
            algorithm,
            origin,
            created: to_unix(SystemTime::now()),
            nonce: hex::encode(nonce),
        };
        let header_line = serde_json::to_string(&header)
            .map_err(|e| KeyStoreError::backend(&self.id, "generate", e))?;
        let plain = material_to_bytes(&material)?;
        let mut tag = [0u8; 16];
        let ct = openssl::symm::encrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            &*self.kek,
            Some(&nonce),
            header_line.as_bytes(),
            &plain,
            &mut tag,
        )
        .map_err(|e| crypto::crypto_error("AES-GCM", e))?;
        let mut file = header_line.into_bytes();
        file.push(b'\n');
        file.extend_from_slice(hex::encode([ct.as_slice(), &tag].concat()).as_bytes());
        file.push(b'\n');
        fsutil::write_new(&self.dir, &Self::file_name(id), &file, || {
            KeyStoreError::KeyExists {
                home: self.id.clone(),
                key: id.clone(),
            }
        })?;
        if let Ok(mut map) = self.keys.write() {
            map.insert(id.clone(), Arc::new(LoadedKey { header, material }));
        }
        Ok(self.handle(id, role, algorithm))
    }

    fn handle(&self, id: &KeyId, role: KeyRole, algorithm: Algorithm) -> KeyHandle {
        KeyHandle::new(
            id.clone(),
            role,
            algorithm,
            self.id.clone(),
            Level::Software,
        )
    }

    fn use_key(
        &self,
        key: &KeyHandle,
        algorithm: Algorithm,
        operation: &'static str,
    ) -> Result<Arc<LoadedKey>, KeyStoreError> {
        check_home(&self.id, key)?;
        check_algorithm(key, algorithm, operation)?;
        let loaded = self.load(key.id())?;
        if loaded.header.algorithm != algorithm {
            return Err(KeyStoreError::OperationUnsupported {
                key: key.id().clone(),
                algorithm: loaded.header.algorithm,
                operation,
            });
        }
        self.usage.touch(key.id());
        Ok(loaded)
    }
}

fn derive_kek(
    source: &KekSource,
    header: &StoreHeader,
    store_path: &Path,
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let mut kek = Zeroizing::new([0u8; 32]);
    match source {
        KekSource::Passphrase(passphrase) => {
            let passphrase = passphrase.read("passphrase")?;
            let p = header.argon2.unwrap_or_default();
            let salt = hex::decode(&header.salt).map_err(|_| KeyStoreError::Corrupted {
                path: store_path.to_path_buf(),
                reason: "salt is not hex".into(),
            })?;
            let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32)).map_err(|e| {
                KeyStoreError::Corrupted {
                    path: store_path.to_path_buf(),
                    reason: format!("Argon2 parameters: {e}"),
                }
            })?;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(passphrase.expose(), &salt, &mut *kek)
                .map_err(|e| KeyStoreError::Corrupted {
                    path: store_path.to_path_buf(),
                    reason: format!("Argon2: {e}"),
                })?;
        }
        KekSource::KeyFile(path) => {
            let bytes = fsutil::read_private(path)?;
            let text = std::str::from_utf8(&bytes).ok().map(str::trim_end);
            let mut hexbuf = Zeroizing::new([0u8; 32]);
            let raw: &[u8] = if bytes.len() == 32 {
                &bytes
            } else if let Some(Ok(())) = text
                .filter(|t| t.len() == 64)
                .map(|t| hex::decode_to_slice(t, &mut *hexbuf))
            {
                &*hexbuf
            } else {
                return Err(KeyStoreError::SecretUnavailable {
                    what: "key-encryption key",
                    source_desc: format!("file {}", path.display()),
                    reason: "it must hold exactly 32 bytes, raw or as 64 hex digits".into(),
                });
            };
            kek.copy_from_slice(raw);
        }
    }
    Ok(kek)
}

fn material_to_bytes(material: &Material) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    match material {
        Material::Ecdsa(key) => {
            let pkey =
                PKey::from_ec_key(key.clone()).map_err(|e| crypto::crypto_error("PKCS#8", e))?;
            crypto::ec_to_pkcs8(&pkey)
        }
        Material::Hmac { raw, .. } => Ok(raw.clone()),
        Material::Aes(key) => Ok(Zeroizing::new(key.to_vec())),
    }
}

fn material_from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Material, String> {
    match algorithm {
        Algorithm::EcdsaP256Sha256 => {
            let key = crypto::ec_from_pkcs8(bytes)?;
            Ok(Material::Ecdsa(key.ec_key().map_err(|e| e.to_string())?))
        }
        Algorithm::HmacSha256 => {
            if !(32..=64).contains(&bytes.len()) {
                return Err(format!(
                    "an HMAC-SHA-256 key needs 32-64 bytes, not {}",
                    bytes.len()
                ));
            }
            Ok(Material::Hmac {
                raw: Zeroizing::new(bytes.to_vec()),
                pkey: PKey::hmac(bytes).map_err(|e| e.to_string())?,
            })
        }
        Algorithm::Aes256Gcm => {
            let mut key = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(format!(
                    "an AES-256 key needs 32 bytes, not {}",
                    bytes.len()
                ));
            }
            key.copy_from_slice(bytes);
            Ok(Material::Aes(key))
        }
    }
}

impl KeyHome for SoftwareHome {
    fn id(&self) -> &HomeId {
        &self.id
    }

    fn level(&self) -> Level {
        Level::Software
    }

    fn algorithms(&self) -> &'static [Algorithm] {
        ALGORITHMS
    }

    fn import_policy(&self) -> ImportPolicy {
        ImportPolicy::Allowed
    }

    fn generate(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
    ) -> Result<KeyHandle, KeyStoreError> {
        check_new_key(self, role, algorithm)?;
        let material = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                let key = crypto::ec_generate()?;
                Material::Ecdsa(
                    key.ec_key()
                        .map_err(|e| crypto::crypto_error("keygen", e))?,
                )
            }
            Algorithm::HmacSha256 => {
                let bytes = Zeroizing::new(crypto::random::<32>()?);
                material_from_bytes(algorithm, &*bytes)
                    .map_err(|reason| KeyStoreError::backend(&self.id, "generate", reason))?
            }
            Algorithm::Aes256Gcm => Material::Aes(Zeroizing::new(crypto::random::<32>()?)),
        };
        self.store(id, role, algorithm, KeyOrigin::Generated, material)
    }

    fn import(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        material: SecretBytes,
    ) -> Result<KeyHandle, KeyStoreError> {
        check_new_key(self, role, algorithm)?;
        let material = material_from_bytes(algorithm, material.expose()).map_err(|reason| {
            KeyStoreError::InvalidKeyMaterial {
                key: id.clone(),
                algorithm,
                reason,
            }
        })?;
        self.store(id, role, algorithm, KeyOrigin::Imported, material)
    }

    fn key(&self, id: &KeyId) -> Result<KeyHandle, KeyStoreError> {
        let loaded = self.load(id)?;
        Ok(self.handle(id, loaded.header.role, loaded.header.algorithm))
    }

    fn list(&self) -> Result<Vec<KeyMetadata>, KeyStoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| KeyStoreError::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| KeyStoreError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name
                .to_str()
                .filter(|n| !n.starts_with('.'))
                .and_then(|n| n.strip_suffix(KEY_SUFFIX))
            else {
                continue;
            };
            let id = KeyId::new(stem)
                .map_err(|e| KeyStoreError::corrupted(entry.path(), e.to_string()))?;
            let loaded = self.load(&id)?;
            out.push(KeyMetadata {
                handle: self.handle(&id, loaded.header.role, loaded.header.algorithm),
                origin: loaded.header.origin,
                created: from_unix(loaded.header.created),
                last_used: self.usage.last_used(&id),
            });
        }
        out.sort_by(|a, b| a.handle.id().cmp(b.handle.id()));
        Ok(out)
    }

    fn delete(&self, key: &KeyHandle) -> Result<(), KeyStoreError> {
        check_home(&self.id, key)?;
        let name = Self::file_name(key.id());
        // NOTE(keystore): unlinking suffices: the file is ciphertext under the KEK.
        fsutil::remove(&self.dir, &name).map_err(|e| match e {
            KeyStoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                KeyStoreError::KeyNotFound {
                    home: self.id.clone(),
                    key: key.id().clone(),
                }
            }
            other => other,
        })?;
        if let Ok(mut map) = self.keys.write() {
            map.remove(key.id());
        }
        self.usage.forget(key.id());
        Ok(())
    }

    fn public_key(&self, key: &KeyHandle) -> Result<PublicKeyDer, KeyStoreError> {
        check_home(&self.id, key)?;
        check_algorithm(key, Algorithm::EcdsaP256Sha256, "export a public key")?;
        let loaded = self.load(key.id())?;
        match &loaded.material {
            Material::Ecdsa(ec) => {
                let public = EcKey::from_public_key(ec.group(), ec.public_key())
                    .and_then(PKey::from_ec_key)
                    .and_then(|k| k.public_key_to_der())
                    .map_err(|e| crypto::crypto_error("SPKI", e))?;
                Ok(PublicKeyDer::new(public))
            }
            _ => Err(KeyStoreError::OperationUnsupported {
                key: key.id().clone(),
                algorithm: loaded.header.algorithm,
                operation: "export a public key",
            }),
        }
    }

    fn sign_digest(&self, key: &KeyHandle, digest: &[u8; 32]) -> Result<Signature, KeyStoreError> {
        let loaded = self.use_key(key, Algorithm::EcdsaP256Sha256, "sign")?;
        match &loaded.material {
            Material::Ecdsa(ec) => crypto::ec_sign_digest(ec, digest),
            _ => unreachable_material(key, "sign"),
        }
    }

    fn hmac(&self, key: &KeyHandle, data: &[u8]) -> Result<Mac, KeyStoreError> {
        let loaded = self.use_key(key, Algorithm::HmacSha256, "compute an HMAC")?;
        match &loaded.material {
            Material::Hmac { pkey, .. } => crypto::hmac_sha256(pkey, data),
            _ => unreachable_material(key, "compute an HMAC"),
        }
    }

    fn encrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, KeyStoreError> {
        let loaded = self.use_key(key, Algorithm::Aes256Gcm, "encrypt")?;
        match &loaded.material {
            Material::Aes(k) => crypto::aes_gcm_seal(k, aad, plaintext).map(Sealed::from_bytes),
            _ => unreachable_material(key, "encrypt"),
        }
    }

    fn decrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<SecretBytes, KeyStoreError> {
        let loaded = self.use_key(key, Algorithm::Aes256Gcm, "decrypt")?;
        let failed = || KeyStoreError::DecryptFailed {
            key: key.id().clone(),
        };
        match &loaded.material {
            Material::Aes(k) => {
                let (nonce, ct, tag) = sealed.parts().ok_or_else(failed)?;
                let mut plain = crypto::aes_gcm_open(k, aad, nonce, ct, tag).ok_or_else(failed)?;
                Ok(SecretBytes::new(std::mem::take(&mut *plain)))
            }
            _ => unreachable_material(key, "decrypt"),
        }
    }
}

/// `use_key` already matched the stored algorithm; this keeps the match total without a panic.
fn unreachable_material<T>(key: &KeyHandle, operation: &'static str) -> Result<T, KeyStoreError> {
    Err(KeyStoreError::OperationUnsupported {
        key: key.id().clone(),
        algorithm: key.algorithm(),
        operation,
    })
}
