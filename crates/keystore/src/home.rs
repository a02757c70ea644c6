//! The operations every home offers, behind one object-safe trait.

use crate::crypto;
use crate::error::KeyStoreError;
use crate::handle::{KeyHandle, KeyMetadata};
use crate::secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature, SignatureValid};
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use std::fmt;

/// Whether a home accepts key material from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPolicy {
    /// Imported keys are stored like generated ones (level 1).
    Allowed,
    /// Imported keys become sensitive, non-extractable token objects (level 3). Their metadata
    /// records [`crate::KeyOrigin::Imported`].
    NonExtractableOnly,
    /// The home holds only keys generated inside it (level 2: see [`crate::tpm`]).
    Refused,
}

/// A home for keys at one security level. Callers hold [`KeyHandle`]s; long-term secret and
/// private keys of level-2 and level-3 homes never leave the home in clear.
///
/// Every operation checks that the handle was issued by this home (else
/// [`KeyStoreError::WrongHome`]) and that its algorithm fits the operation (else
/// [`KeyStoreError::OperationUnsupported`]). Nothing falls back to another home.
///
/// Material formats for [`KeyHome::import`]: PKCS#8 DER for ECDSA P-256; the raw key (32-64
/// bytes) for HMAC-SHA-256; exactly 32 bytes for AES-256-GCM.
pub trait KeyHome: Send + Sync + fmt::Debug {
    /// The home's name; handles carry it.
    fn id(&self) -> &HomeId;

    /// The home's security level.
    fn level(&self) -> Level;

    /// The algorithms this home can hold.
    fn algorithms(&self) -> &'static [Algorithm];

    /// Whether and how the home accepts imported keys.
    fn import_policy(&self) -> ImportPolicy;

    /// Generates a new key inside the home. Refuses an existing identifier.
    fn generate(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
    ) -> Result<KeyHandle, KeyStoreError>;

    /// Stores key material generated elsewhere, where the home allows it.
    fn import(
        &self,
        id: &KeyId,
        role: KeyRole,
        algorithm: Algorithm,
        material: SecretBytes,
    ) -> Result<KeyHandle, KeyStoreError>;

    /// Looks up a key of this home (and checks that it is intact and usable).
    fn key(&self, id: &KeyId) -> Result<KeyHandle, KeyStoreError>;

    /// Metadata of every key in the home; never secrets.
    fn list(&self) -> Result<Vec<KeyMetadata>, KeyStoreError>;

    /// Destroys a key.
    fn delete(&self, key: &KeyHandle) -> Result<(), KeyStoreError>;

    /// The public key of an ECDSA key, as SubjectPublicKeyInfo DER.
    fn public_key(&self, key: &KeyHandle) -> Result<PublicKeyDer, KeyStoreError>;

    /// Signs a SHA-256 digest with an ECDSA P-256 key (DER signature out). For TLS, which
    /// hands over the digest it wants signed.
    fn sign_digest(&self, key: &KeyHandle, digest: &[u8; 32]) -> Result<Signature, KeyStoreError>;

    /// HMAC-SHA-256 over `data`, computed inside the home.
    fn hmac(&self, key: &KeyHandle, data: &[u8]) -> Result<Mac, KeyStoreError>;

    /// AES-256-GCM with a fresh random nonce, for wrapping small secrets.
    fn encrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, KeyStoreError>;

    /// The inverse of [`KeyHome::encrypt`]; [`KeyStoreError::DecryptFailed`] when the tag,
    /// key or associated data do not match.
    fn decrypt(
        &self,
        key: &KeyHandle,
        aad: &[u8],
        sealed: &Sealed,
    ) -> Result<SecretBytes, KeyStoreError>;

    /// ECDSA P-256 over SHA-256 of `message`: hashed here, signed inside the home.
    fn sign(&self, key: &KeyHandle, message: &[u8]) -> Result<Signature, KeyStoreError> {
        self.sign_digest(key, &crypto::sha256(message))
    }

    /// Verifies a DER signature over `message` with the key's public half (in software: it is
    /// a public-key operation).
    fn verify(
        &self,
        key: &KeyHandle,
        message: &[u8],
        signature: &Signature,
    ) -> Result<SignatureValid, KeyStoreError> {
        let public = self.public_key(key)?;
        if crypto::verify(&public, &crypto::sha256(message), signature)? {
            Ok(SignatureValid(()))
        } else {
            Err(KeyStoreError::SignatureInvalid {
                key: key.id().clone(),
            })
        }
    }

    /// Releases what the home holds outside this process, on the way out of a program: a
    /// TPM home flushes the objects it loaded into the TPM, whose few object slots would
    /// otherwise stay taken after the process ends (with a TCTI that has no resource
    /// manager). Idempotent; every later operation fails with
    /// [`KeyStoreError::HomeClosed`]. Homes that hold nothing outside the process keep the
    /// default, which does nothing.
    fn close(&self) {}

    /// HKDF-Expand (RFC 5869 section 2.3) with the HMAC key as PRK: `len` bytes (at most
    /// 8160) of key material bound to `info`. Each HMAC runs inside the home, so the master
    /// key never leaves it; the derived output is the caller's to protect.
    ///
    /// Extract is left out on purpose: the master key is already uniformly random, and
    /// Extract would need it as HMAC *input*, which a level-2/3 home cannot supply.
    fn derive(
        &self,
        key: &KeyHandle,
        info: &[u8],
        len: usize,
    ) -> Result<SecretBytes, KeyStoreError> {
        crypto::hkdf_expand(key, info, len, |data| self.hmac(key, data))
    }
}

/// Checks shared by all homes before a key is created.
pub(crate) fn check_new_key(
    home: &dyn KeyHome,
    role: KeyRole,
    algorithm: Algorithm,
) -> Result<(), KeyStoreError> {
    if !role.allows(algorithm) {
        return Err(KeyStoreError::AlgorithmNotAllowedForRole { role, algorithm });
    }
    if !home.algorithms().contains(&algorithm) {
        return Err(KeyStoreError::AlgorithmUnsupported {
            home: home.id().clone(),
            algorithm,
        });
    }
    Ok(())
}

/// Refuses a handle issued by another home.
pub(crate) fn check_home(home: &HomeId, key: &KeyHandle) -> Result<(), KeyStoreError> {
    if key.home() == home {
        Ok(())
    } else {
        Err(KeyStoreError::WrongHome {
            key: key.id().clone(),
            key_home: key.home().clone(),
            asked_home: home.clone(),
        })
    }
}

/// Refuses an operation that does not fit the key's algorithm.
pub(crate) fn check_algorithm(
    key: &KeyHandle,
    expected: Algorithm,
    operation: &'static str,
) -> Result<(), KeyStoreError> {
    if key.algorithm() == expected {
        Ok(())
    } else {
        Err(KeyStoreError::OperationUnsupported {
            key: key.id().clone(),
            algorithm: key.algorithm(),
            operation,
        })
    }
}
