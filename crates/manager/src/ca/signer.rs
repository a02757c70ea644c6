//! The CA key as rcgen sees it: an rcgen remote key pair whose `sign` goes to the key store.
//! rcgen builds the to-be-signed bytes; [`KeyStore::sign`] hashes them (SHA-256) and signs
//! inside the key's home, after checking the key against the policy on every call. No private
//! key byte ever reaches this crate.

use super::csr::P256PublicKey;
use super::error::CaError;
use keystore::{KeyHandle, KeyStore, KeyStoreError};
use rcgen::{KeyPair, RemoteKeyPair, SignatureAlgorithm};
use std::sync::{Arc, Mutex};

/// The key store and the CA key's handle.
#[derive(Debug, Clone)]
pub(super) struct CaKey {
    pub(super) store: Arc<KeyStore>,
    pub(super) handle: KeyHandle,
    pub(super) public: P256PublicKey,
}

impl CaKey {
    /// Runs one rcgen operation with the CA key, turning a key-store failure back into the
    /// typed [`KeyStoreError`] that rcgen's error type cannot carry.
    pub(super) fn with_signer<T>(
        &self,
        operation: impl FnOnce(&KeyPair) -> Result<T, rcgen::Error>,
    ) -> Result<T, CaError> {
        let failure = Arc::new(Mutex::new(None));
        let signer = StoreSigner {
            key: self.clone(),
            failure: failure.clone(),
        };
        let key_pair =
            KeyPair::from_remote(Box::new(signer)).map_err(|e| CaError::Encoding(e.to_string()))?;
        operation(&key_pair).map_err(|e| {
            let stored = failure.lock().ok().and_then(|mut slot| slot.take());
            match (e, stored) {
                (rcgen::Error::RemoteKeyError, Some(cause)) => CaError::KeyStore(cause),
                (e, _) => CaError::Encoding(e.to_string()),
            }
        })
    }

    /// A key pair with the CA's public key that cannot sign: rcgen needs an issuer
    /// `Certificate` object to sign with, and rebuilding one from a loaded CA certificate must
    /// not cost (or leave behind) a signature by the CA key.
    pub(super) fn public_only(&self) -> Result<KeyPair, CaError> {
        KeyPair::from_remote(Box::new(PublicOnly(self.public.clone())))
            .map_err(|e| CaError::Encoding(e.to_string()))
    }
}

struct StoreSigner {
    key: CaKey,
    failure: Arc<Mutex<Option<KeyStoreError>>>,
}

impl RemoteKeyPair for StoreSigner {
    fn public_key(&self) -> &[u8] {
        self.key.public.point()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self.key.store.sign(&self.key.handle, message) {
            Ok(signature) => Ok(signature.as_der().to_vec()),
            Err(e) => {
                if let Ok(mut slot) = self.failure.lock() {
                    *slot = Some(e);
                }
                Err(rcgen::Error::RemoteKeyError)
            }
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

struct PublicOnly(P256PublicKey);

impl RemoteKeyPair for PublicOnly {
    fn public_key(&self) -> &[u8] {
        self.0.point()
    }

    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // The issuer template's own signature is never used or written anywhere.
        Ok(Vec::new())
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}
