//! The level-2 home itself: keys created in the TPM, wrapped blobs on disk.

use super::worker::{self, binding, Blob, TpmFailure, Worker};
use super::TpmConfig;
use crate::crypto;
use crate::error::KeyStoreError;
use crate::fsutil;
use crate::handle::{from_unix, to_unix, KeyHandle, KeyMetadata, KeyOrigin, UsageLog};
use crate::home::{check_algorithm, check_home, check_new_key, ImportPolicy, KeyHome};
use crate::secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature};
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};

const FORMAT: &str = "secure-cse-tpm-key/1";
const SUFFIX: &str = ".tpmkey";
/// Largest HMAC input (TPM2B_MAX_BUFFER).
pub const HMAC_INPUT_LIMIT: usize = 1024;

/// A level-2 home.
pub struct TpmHome {
    id: HomeId,
    tcti: String,
    dir: PathBuf,
    worker: Worker,
    keys: RwLock<HashMap<KeyId, Arc<StoredKey>>>,
    usage: UsageLog,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    id: KeyId,
    role: KeyRole,
    algorithm: Algorithm,
    origin: KeyOrigin,
    created: u64,
    public: String,
    private: String,
}

struct StoredKey {
    file: KeyFile,
    blob: Arc<Blob>,
}

impl fmt::Debug for TpmHome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmHome")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const ALGORITHMS: &[Algorithm] = &[Algorithm::EcdsaP256Sha256, Algorithm::HmacSha256];

fn auth_for(file: &KeyFile) -> [u8; 32] {
    let created = file.created.to_string();
    let origin = match file.origin {
        KeyOrigin::Generated => "generated",
        KeyOrigin::Imported => "imported",
    };
    binding(&[
        FORMAT,
        file.id.as_str(),
        file.role.name(),
        file.algorithm.name(),
        origin,
        &created,
    ])
}

impl TpmHome {
    /// Connects to the TPM and prepares the storage primary key. Fails with
    /// [`KeyStoreError::TpmUnreachable`] when the TPM does not answer, and with
    /// [`KeyStoreError::TpmRefused`] (what it answered) when it refuses.
    pub fn open(config: &TpmConfig) -> Result<Self, KeyStoreError> {
        fsutil::ensure_private_dir(&config.dir)?;
        let id = HomeId::new("tpm", &config.tcti);
        let worker = Worker::start(&config.tcti)
            .map_err(|f| failure(&config.tcti, &id, "create the storage primary key", None, f))?;
        Ok(Self {
            id,
            tcti: config.tcti.clone(),
            dir: config.dir.clone(),
            worker,
            keys: RwLock::new(HashMap::new()),
            usage: UsageLog::default(),
        })
    }

    fn path(&self, id: &KeyId) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }

    fn failure(&self, operation: &'static str, path: &Path, f: TpmFailure) -> KeyStoreError {
        failure(&self.tcti, &self.id, operation, Some(path), f)
    }

    fn read(&self, id: &KeyId) -> Result<Arc<StoredKey>, KeyStoreError> {
        if let Some(key) = self.keys.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(key);
        }
        let path = self.path(id);
        let bytes = fsutil::read_private(&path).map_err(|e| match e {
            KeyStoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
                KeyStoreError::KeyNotFound {
                    home: self.id.clone(),
                    key: id.clone(),
                }
            }
            other => other,
        })?;
        let bad = |reason: String| KeyStoreError::corrupted(&path, reason);
        let file: KeyFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if file.format != FORMAT {
            return Err(bad(format!("unknown format {:?}", file.format)));
        }
        if &file.id != id {
            return Err(bad(format!(
                "the file is named for key {id} but holds key {}",
                file.id
            )));
        }
        let public = hex::decode(&file.public)
            .ok()
            .and_then(|b| Public::unmarshall(&b).ok())
            .ok_or_else(|| bad("public area does not parse".into()))?;
        let private = hex::decode(&file.private)
            .ok()
            .and_then(|b| Private::try_from(b).ok())
            .ok_or_else(|| bad("private blob does not parse".into()))?;
        let auth = auth_for(&file);
        let key = Arc::new(StoredKey {
            file,
            blob: Arc::new(Blob {
                public,
                private,
                auth,
            }),
        });
        Ok(key)
    }

    fn remember(&self, key: &Arc<StoredKey>) {
        if let Ok(mut map) = self.keys.write() {
            map.insert(key.file.id.clone(), key.clone());
        }
    }

    /// Reads the key and has the TPM load and use it once, so a bad blob or altered metadata
    /// is found now (at start-up) rather than on first use.
    fn checked(&self, id: &KeyId) -> Result<Arc<StoredKey>, KeyStoreError> {
        if let Some(key) = self.keys.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(key);
        }
        let key = self.read(id)?;
        let blob = key.blob.clone();
        let key_id = id.clone();
        let ecdsa = key.file.algorithm == Algorithm::EcdsaP256Sha256;
        self.worker
            .call(move |tpm| tpm.probe(&key_id, &blob, ecdsa))
            .map_err(|f| self.failure("load key", &self.path(id), f))?;
        self.remember(&key);
        Ok(key)
    }

    fn handle(&self, file: &KeyFile) -> KeyHandle {
        KeyHandle::new(
            file.id.clone(),
            file.role,
            file.algorithm,
            self.id.clone(),
            Level::TrustedEnvironment,
        )
    }

    fn use_key(
        &self,
        key: &KeyHandle,
        algorithm: Algorithm,
        operation: &'static str,
    ) -> Result<Arc<StoredKey>, KeyStoreError> {
        check_home(&self.id, key)?;
        check_algorithm(key, algorithm, operation)?;
        let stored = self.checked(key.id())?;
        if stored.file.algorithm != algorithm {
            return Err(KeyStoreError::OperationUnsupported {
                key: key.id().clone(),
                algorithm: stored.file.algorithm,
                operation,
            });
        }
        self.usage.touch(key.id());
        Ok(stored)
    }
}

impl TpmHome {
    /// Runs `f` on the TPM thread, for an operation that uses no key (NV indices); the
    /// failure comes back as the worker saw it, for the caller to name what it concerns.
    pub(super) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut worker::Tpm) -> Result<R, TpmFailure> + Send + 'static,
    ) -> Result<R, TpmFailure> {
        self.worker.call(f)
    }

    /// The key store's error for a TPM failure of an operation that uses no key.
    pub(super) fn failure_of(&self, operation: &'static str, f: TpmFailure) -> KeyStoreError {
        failure(&self.tcti, &self.id, operation, None, f)
    }
}

/// The one mapping of a TPM failure to the key store's errors. `path` is the key file, when
/// the command used a key.
fn failure(
    tcti: &str,
    home: &HomeId,
    operation: &'static str,
    path: Option<&Path>,
    f: TpmFailure,
) -> KeyStoreError {
    match (f, path) {
        (TpmFailure::Unreachable(reason), _) => KeyStoreError::TpmUnreachable {
            tcti: tcti.to_owned(),
            reason,
        },
        (TpmFailure::Rejected(answer), Some(path)) => KeyStoreError::corrupted(
            path,
            format!(
                "the TPM refused the key (wrapped blob or metadata altered, or another TPM's \
                 key): {answer}"
            ),
        ),
        (TpmFailure::Rejected(answer) | TpmFailure::Answered(answer), _) => {
            KeyStoreError::TpmRefused {
                tcti: tcti.to_owned(),
                operation,
                answer,
            }
        }
        (TpmFailure::Closed, _) => KeyStoreError::HomeClosed { home: home.clone() },
        (TpmFailure::Other(reason), _) => KeyStoreError::backend(home, operation, reason),
    }
}

impl KeyHome for TpmHome {
    fn id(&self) -> &HomeId {
        &self.id
    }

    fn level(&self) -> Level {
        Level::TrustedEnvironment
    }

    fn algorithms(&self) -> &'static [Algorithm] {
        ALGORITHMS
    }

    fn import_policy(&self) -> ImportPolicy {
        ImportPolicy::Refused
    }

    fn generate(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
    ) -> Result<KeyHandle, KeyStoreError> {
        check_new_key(self, role, algorithm)?;
        let path = self.path(id);
        if path.exists() {
            return Err(KeyStoreError::KeyExists {
                home: self.id.clone(),
                key: id.clone(),
            });
        }
        let mut file = KeyFile {
            format: FORMAT.into(),
            id: id.clone(),
            role,
            algorithm,
            origin: KeyOrigin::Generated,
            created: to_unix(SystemTime::now()),
            public: String::new(),
            private: String::new(),
        };
        let auth = auth_for(&file);
        let ecdsa = algorithm == Algorithm::EcdsaP256Sha256;
        let (public, private) = self
            .worker
            .call(move |tpm| {
                let template = if ecdsa {
                    worker::ecdsa_template()
                } else {
                    worker::hmac_template()
                }
                .map_err(|e| TpmFailure::Other(e.to_string()))?;
                tpm.create(template, &auth)
            })
            .map_err(|f| self.failure("create key", &path, f))?;
        file.public = hex::encode(
            public
                .marshall()
                .map_err(|e| KeyStoreError::backend(&self.id, "create key", e))?,
        );
        file.private = hex::encode(private.value());
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| KeyStoreError::backend(&self.id, "create key", e))?;
        fsutil::write_new(&self.dir, &format!("{id}{SUFFIX}"), &json, || {
            KeyStoreError::KeyExists {
                home: self.id.clone(),
                key: id.clone(),
            }
        })?;
        let handle = self.handle(&file);
        self.remember(&Arc::new(StoredKey {
            file,
            blob: Arc::new(Blob {
                public,
                private,
                auth,
            }),
        }));
        Ok(handle)
    }

    fn import(
        &self,
        id: &KeyId,
        _role: KeyRole,
        _algorithm: Algorithm,
        _material: SecretBytes,
    ) -> Result<KeyHandle, KeyStoreError> {
        Err(KeyStoreError::ImportRefused {
            home: self.id.clone(),
            level: Level::TrustedEnvironment,
            key: id.clone(),
            reason: "the TPM home holds only keys generated inside the TPM: an imported key \
                     existed in clear outside it and would not deserve level 2"
                .into(),
        })
    }

    fn key(&self, id: &KeyId) -> Result<KeyHandle, KeyStoreError> {
        let stored = self.checked(id)?;
        Ok(self.handle(&stored.file))
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
                .and_then(|n| n.strip_suffix(SUFFIX))
            else {
                continue;
            };
            let id = KeyId::new(stem)
                .map_err(|e| KeyStoreError::corrupted(entry.path(), e.to_string()))?;
            let stored = self.read(&id)?;
            out.push(KeyMetadata {
                handle: self.handle(&stored.file),
                origin: stored.file.origin,
                created: from_unix(stored.file.created),
                last_used: self.usage.last_used(&id),
            });
        }
        out.sort_by(|a, b| a.handle.id().cmp(b.handle.id()));
        Ok(out)
    }

    fn close(&self) {
        self.worker.close();
    }

    fn delete(&self, key: &KeyHandle) -> Result<(), KeyStoreError> {
        check_home(&self.id, key)?;
        let id = key.id().clone();
        let _ = self.worker.call(move |tpm| {
            tpm.forget(&id);
            Ok(())
        });
        // NOTE(keystore): the blob is only usable with this TPM's owner seed; removing the
        // file removes the key.
        fsutil::remove(&self.dir, &format!("{}{SUFFIX}", key.id())).map_err(|e| match e {
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
        let stored = self.checked(key.id())?;
        match &stored.blob.public {
            Public::Ecc { unique, .. } => {
                crypto::spki_from_coordinates(unique.x().value(), unique.y().value())
                    .map_err(|e| KeyStoreError::backend(&self.id, "export a public key", e))
            }
            _ => Err(KeyStoreError::corrupted(
                self.path(key.id()),
                "public area is not an ECC key",
            )),
        }
    }

    fn sign_digest(&self, key: &KeyHandle, digest: &[u8; 32]) -> Result<Signature, KeyStoreError> {
        let stored = self.use_key(key, Algorithm::EcdsaP256Sha256, "sign")?;
        let blob = stored.blob.clone();
        let id = key.id().clone();
        let digest = *digest;
        let (r, s) = self
            .worker
            .call(move |tpm| tpm.sign(&id, &blob, &digest))
            .map_err(|f| self.failure("sign", &self.path(key.id()), f))?;
        crypto::ecdsa_rs_to_der(&r, &s).map_err(|e| KeyStoreError::backend(&self.id, "sign", e))
    }

    fn hmac(&self, key: &KeyHandle, data: &[u8]) -> Result<Mac, KeyStoreError> {
        if data.len() > HMAC_INPUT_LIMIT {
            return Err(KeyStoreError::InputTooLong {
                home: self.id.clone(),
                operation: "HMAC",
                len: data.len(),
                limit: HMAC_INPUT_LIMIT,
            });
        }
        let stored = self.use_key(key, Algorithm::HmacSha256, "compute an HMAC")?;
        let blob = stored.blob.clone();
        let id = key.id().clone();
        let data = data.to_vec();
        let tag = self
            .worker
            .call(move |tpm| tpm.hmac(&id, &blob, &data))
            .map_err(|f| self.failure("compute an HMAC", &self.path(key.id()), f))?;
        Ok(Mac::new(tag))
    }

    fn encrypt(
        &self,
        key: &KeyHandle,
        _aad: &[u8],
        _plaintext: &[u8],
    ) -> Result<Sealed, KeyStoreError> {
        check_home(&self.id, key)?;
        Err(KeyStoreError::AlgorithmUnsupported {
            home: self.id.clone(),
            algorithm: Algorithm::Aes256Gcm,
        })
    }

    fn decrypt(
        &self,
        key: &KeyHandle,
        _aad: &[u8],
        _sealed: &Sealed,
    ) -> Result<SecretBytes, KeyStoreError> {
        check_home(&self.id, key)?;
        Err(KeyStoreError::AlgorithmUnsupported {
            home: self.id.clone(),
            algorithm: Algorithm::Aes256Gcm,
        })
    }
}
