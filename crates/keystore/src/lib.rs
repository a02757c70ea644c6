//! Key homes at the three security levels of the oneM2M security architecture, behind one
//! handle-based API.
//!
//! Every key has a *home*, and every home has a [`Level`]:
//!
//! | level | home | module |
//! |---|---|---|
//! | 1, software | key files encrypted at rest (AES-256-GCM under an Argon2id or key-file KEK) | [`software`] |
//! | 2, TPM | TPM 2.0 keys; only TPM-wrapped blobs are stored on disk | [`tpm`] (feature `tpm`, off by default) |
//! | 3, HSM | PKCS#11 token objects, generated sensitive and non-extractable | [`pkcs11`] (feature `pkcs11`) |
//!
//! Callers hold [`KeyHandle`]s, never key bytes: signing, HMAC, key derivation and AEAD run
//! inside the home through the [`KeyHome`] trait. The [`KeyStore`] assembles the configured
//! homes with a [`KeyStorePolicy`] (a minimum level per [`KeyRole`]) and refuses any key
//! below its role's minimum with an error that names the key, role, configured level and
//! required level. No operation ever falls back to another home or a lower level.
//!
//! ```no_run
//! use keystore::{Algorithm, KeyId, KeyRole, KeyStore, KeyStorePolicy, KeyHome};
//! use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
//! use keystore::SecretSource;
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), keystore::KeyStoreError> {
//! let config = SoftwareConfig {
//!     dir: "/var/lib/cse/keys".into(),
//!     kek: KekSource::Passphrase(SecretSource::Env("CSE_KEYSTORE_PASSPHRASE".into())),
//! };
//! let home = Arc::new(SoftwareHome::open(&config)?);
//! let store = KeyStore::new(KeyStorePolicy::default()).with_home(home.clone());
//! let tls = store.open(home.id(), &KeyId::new("tls")?, KeyRole::TlsServer)?;
//! let signature = store.sign(&tls, b"to be signed")?;
//! # let _ = (signature, Algorithm::EcdsaP256Sha256); Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod anchor;
mod crypto;
mod error;
mod fsutil;
mod handle;
mod home;
mod policy;
mod secret;
mod source;
mod store;
mod types;

#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod software;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tpm;

pub use error::KeyStoreError;
pub use handle::{KeyHandle, KeyMetadata, KeyOrigin};
pub use home::{ImportPolicy, KeyHome};
pub use policy::{KeyStorePolicy, PolicyViolation};
pub use secret::{Mac, PublicKeyDer, Sealed, SecretBytes, Signature, SignatureValid};
pub use source::SecretSource;
pub use store::{KeyStore, SigningKey};
pub use types::{Algorithm, HomeId, KeyId, KeyRole, Level};
