//! The key store: the configured homes plus the policy, assembled like a `CryptoProvider` (one
//! struct of trait objects). Every operation goes to the home named in the handle and is
//! checked against the policy first; a key is never looked for in another home.

use crate::error::KeyStoreError;
use crate::handle::{KeyHandle, KeyMetadata};
use crate::home::KeyHome;
use crate::policy::KeyStorePolicy;
use crate::secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature, SignatureValid};
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The configured homes and the policy.
#[derive(Debug, Default)]
pub struct KeyStore {
    homes: BTreeMap<HomeId, Arc<dyn KeyHome>>,
    policy: KeyStorePolicy,
}

impl KeyStore {
    /// An empty store with a policy.
    pub fn new(policy: KeyStorePolicy) -> Self {
        Self {
            homes: BTreeMap::new(),
            policy,
        }
    }

    /// Adds a home (replacing one of the same name).
    pub fn with_home(mut self, home: Arc<dyn KeyHome>) -> Self {
        self.homes.insert(home.id().clone(), home);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &KeyStorePolicy {
        &self.policy
    }

    /// The configured homes.
    pub fn homes(&self) -> impl Iterator<Item = &Arc<dyn KeyHome>> {
        self.homes.values()
    }

    /// A home by name.
    pub fn home(&self, id: &HomeId) -> Result<&Arc<dyn KeyHome>, KeyStoreError> {
        self.homes
            .get(id)
            .ok_or_else(|| KeyStoreError::UnknownHome { home: id.clone() })
    }

    fn route(&self, key: &KeyHandle) -> Result<&Arc<dyn KeyHome>, KeyStoreError> {
        let home = self.home(key.home())?;
        self.policy.check_handle(key)?;
        Ok(home)
    }

    fn check_placement(
        &self,
        home: &dyn KeyHome,
        id: &KeyId,
        role: KeyRole,
    ) -> Result<(), KeyStoreError> {
        Ok(self.policy.check(id, role, home.id(), home.level())?)
    }

    /// Generates a key in `home` after checking that the home meets the role's minimum level.
    pub fn generate(
        &self,
        home: &HomeId,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
    ) -> Result<KeyHandle, KeyStoreError> {
        let home = self.home(home)?;
        self.check_placement(home.as_ref(), id, role)?;
        home.generate(id, role, algorithm)
    }

    /// Imports key material into `home`, where the home and the policy allow it.
    pub fn import(
        &self,
        home: &HomeId,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        material: SecretBytes,
    ) -> Result<KeyHandle, KeyStoreError> {
        let home = self.home(home)?;
        self.check_placement(home.as_ref(), id, role)?;
        home.import(id, role, algorithm, material)
    }

    /// Opens a configured key at start-up: the key must exist in exactly the named home, have
    /// the expected role, and its home must meet the policy. Any failure is an error for the
    /// caller to report; there is no fallback. The checks run in that order, so that a key that
    /// is missing or of another role is reported as such, not as a policy refusal.
    pub fn open(
        &self,
        home: &HomeId,
        id: &KeyId,
        role: KeyRole,
    ) -> Result<KeyHandle, KeyStoreError> {
        let home = self.home(home)?;
        let handle = home.key(id)?;
        if handle.role() != role {
            return Err(KeyStoreError::RoleMismatch {
                key: id.clone(),
                home: home.id().clone(),
                stored: handle.role(),
                expected: role,
            });
        }
        self.check_placement(home.as_ref(), id, role)?;
        Ok(handle)
    }

    /// Closes every home ([`KeyHome::close`]): for the exit path of a program, whoever still
    /// holds the store.
    pub fn close(&self) {
        for home in self.homes.values() {
            home.close();
        }
    }

    /// Metadata of every key in every home (for `m2m keystore list`); never secrets.
    pub fn list(&self) -> Result<Vec<KeyMetadata>, KeyStoreError> {
        let mut all = Vec::new();
        for home in self.homes.values() {
            all.extend(home.list()?);
        }
        Ok(all)
    }

    /// Destroys a key in its home.
    pub fn delete(&self, key: &KeyHandle) -> Result<(), KeyStoreError> {
        self.home(key.home())?.delete(key)
    }

    /// See [`KeyHome::public_key`].
    pub fn public_key(&self, key: &KeyHandle) -> Result<PublicKeyDer, KeyStoreError> {
        self.route(key)?.public_key(key)
    }

    /// See [`KeyHome::sign`].
    pub fn sign(&self, key: &KeyHandle, message: &[u8]) -> Result<Signature, KeyStoreError> {
        self.route(key)?.sign(key, message)
    }

    /// See [`KeyHome::sign_digest`].
    pub fn sign_digest(
        &self,
        key: &KeyHandle,
        digest: &[u8; 32],
    ) -> Result<Signature, KeyStoreError> {
        self.route(key)?.sign_digest(key, digest)
    }

    /// See [`KeyHome::verify`].
    pub fn verify(
        &self,
        key: &KeyHandle,
        message: &[u8],
        signature: &Signature,
    ) -> Result<SignatureValid, KeyStoreError> {
        self.route(key)?.verify(key, message, signature)
    }

    /// See [`KeyHome::hmac`].
    pub fn hmac(&self, key: &KeyHandle, data: &[u8]) -> Result<Mac, KeyStoreError> {
        self.route(key)?.hmac(key, data)
    }

    /// See [`KeyHome::derive`].
    pub fn derive(
        &self,
        key: &KeyHandle,
        info: &[u8],
        len: usize,
    ) -> Result<SecretBytes, KeyStoreError> {
        self.route(key)?.derive(key, info, len)
    }

    /// See [`KeyHome::encrypt`].
    pub fn encrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, KeyStoreError> {
        self.route(key)?.encrypt(key, aad, plaintext)
    }

    /// See [`KeyHome::decrypt`].
    pub fn decrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<SecretBytes, KeyStoreError> {
        self.route(key)?.decrypt(key, aad, sealed)
    }

    /// A signing key for TLS or the CA: the public key plus signing inside the home.
    pub fn signing_key(&self, key: &KeyHandle) -> Result<SigningKey, KeyStoreError> {
        let home = self.route(key)?.clone();
        let public = home.public_key(key)?;
        Ok(SigningKey {
            home,
            handle: key.clone(),
            public,
        })
    }
}

/// An ECDSA P-256 key that signs inside its home: what TLS and the CA hold instead of a
/// private key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SigningKey {
    home: Arc<dyn KeyHome>,
    handle: KeyHandle,
    public: PublicKeyDer,
}

impl SigningKey {
    /// The key's handle.
    pub fn handle(&self) -> &KeyHandle {
        &self.handle
    }

    /// The level of the key's home (recorded with the credential).
    pub fn level(&self) -> Level {
        self.handle.level()
    }

    /// The public key (SubjectPublicKeyInfo DER), fetched once.
    pub fn public_key(&self) -> &PublicKeyDer {
        &self.public
    }

    /// Signs SHA-256(message).
    pub fn sign(&self, message: &[u8]) -> Result<Signature, KeyStoreError> {
        self.home.sign(&self.handle, message)
    }

    /// Signs a SHA-256 digest computed by the caller (TLS hands over digests).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Signature, KeyStoreError> {
        self.home.sign_digest(&self.handle, digest)
    }
}
