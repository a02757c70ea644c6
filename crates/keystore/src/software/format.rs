//! On-disk formats of the level-1 store: `keystore.json` (how the key-encryption key is made,
//! plus a check value) and one `<id>.key` file per key.
//!
//! A key file is two lines: a JSON header (format, id, role, algorithm, origin, created,
//! nonce) and the hex of `AES-256-GCM(KEK, nonce, aad = header line, key material)`. The
//! header is the associated data, so changing any metadata byte (say, turning an audit key
//! into a CA key) breaks the tag; the id in the header must match the file name, so renaming
//! a file is detected too.

use crate::handle::KeyOrigin;
use crate::types::{Algorithm, KeyId, KeyRole};
use serde::{Deserialize, Serialize};

pub(crate) const STORE_FILE: &str = "keystore.json";
pub(crate) const STORE_FORMAT: &str = "secure-cse-keystore/1";
pub(crate) const KEY_FORMAT: &str = "secure-cse-key/1";
pub(crate) const KEY_SUFFIX: &str = ".key";

/// Argon2id cost parameters, recorded in `keystore.json` when the store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Parallelism.
    pub p: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

/// How the key-encryption key is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum KekKind {
    Argon2id,
    KeyFile,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreHeader {
    pub(crate) format: String,
    pub(crate) kek: KekKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) argon2: Option<KdfParams>,
    pub(crate) salt: String,
    /// AES-GCM of the empty string under the KEK, with [`StoreHeader::check_aad`] as AAD.
    pub(crate) check: String,
}

impl StoreHeader {
    /// Everything except the check value, so altering the KDF parameters or salt fails the
    /// check just as a wrong passphrase does.
    pub(crate) fn check_aad(&self) -> Vec<u8> {
        let params = self
            .argon2
            .map(|p| format!("{}/{}/{}", p.m_kib, p.t, p.p))
            .unwrap_or_default();
        format!(
            "{}|check|{:?}|{}|{}",
            self.format, self.kek, params, self.salt
        )
        .into_bytes()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyHeader {
    pub(crate) format: String,
    pub(crate) id: KeyId,
    pub(crate) role: KeyRole,
    pub(crate) algorithm: Algorithm,
    pub(crate) origin: KeyOrigin,
    pub(crate) created: u64,
    pub(crate) nonce: String,
}
