//! Level 2: keys inside a TPM 2.0 (swtpm in tests and CI).
//!
//! * Configuration names the TCTI (`swtpm:host=127.0.0.1,port=2321`, `device:/dev/tpmrm0`,
//!   `tabrmd:`) and a directory (mode 0700) for the wrapped key blobs.
//! * At open, a storage primary key (ECC P-256, restricted decryption, AES-128-CFB) is
//!   created under the owner hierarchy. It is derived from the owner seed, so it is the same
//!   key on every start and no persistent handle is needed.
//! * Keys are created *inside* the TPM under that primary: ECDSA P-256 signing keys and
//!   HMAC-SHA-256 keyed-hash keys, both `fixedTPM`/`fixedParent`/`sensitiveDataOrigin`. Only
//!   the TPM-wrapped private blob (encrypted and integrity-protected under the primary) and
//!   the public area are stored, in `<id>.tpmkey`; the blob is useless outside this TPM.
//! * The key's auth value is SHA-256 of its metadata (id, role, algorithm, origin,
//!   creation time), so editing the metadata in the file makes the TPM refuse the key
//!   (reported as [`KeyStoreError::Corrupted`](crate::KeyStoreError::Corrupted)). The auth value is a binding, not a secret;
//!   the objects are `noDA` so refusals do not trip the TPM's lockout.
//! * **No import**: a key that existed in clear outside the TPM would be labelled level 2
//!   while its history is level 1, so [`KeyHome::import`](crate::KeyHome::import) is refused
//!   ([`ImportPolicy::Refused`](crate::ImportPolicy::Refused)). Generate the key in the TPM instead.
//! * **No AES-GCM**: TPM 2.0 has no AEAD. Wrap secrets with a level-1 or level-3 AES key, or
//!   derive a wrapping key with [`KeyHome::derive`](crate::KeyHome::derive) from a TPM HMAC key.
//! * HMAC input is limited to 1024 bytes (one `TPM2_HMAC` command).
//!
//! All TPM commands run on one thread (the TSS context is not `Send`).
//!
//! The home links the TSS2 libraries of the system (`libtss2-esys`), so it is the cargo
//! feature `tpm`, off by default: a default build needs no TPM software at all. The
//! configuration shape ([`TpmConfig`]) exists in every build, so that a program built without
//! the feature can still read a configuration that names a TPM home and say what to rebuild
//! ([`BUILT`] tells it).

#[cfg(feature = "tpm")]
mod counter;
#[cfg(feature = "tpm")]
mod home;
#[cfg(feature = "tpm")]
mod worker;

#[cfg(feature = "tpm")]
pub use counter::{parse_nv_index, TpmNvCounter, OWNER_NV_FIRST, OWNER_NV_LAST};
#[cfg(feature = "tpm")]
pub use home::{TpmHome, HMAC_INPUT_LIMIT};

use serde::Deserialize;
use std::path::PathBuf;

/// Whether this build has the TPM home (cargo feature `tpm`).
pub const BUILT: bool = cfg!(feature = "tpm");

/// Configuration of a level-2 home.
///
/// ```toml
/// tcti = "device:/dev/tpmrm0"        # swtpm: "swtpm:host=127.0.0.1,port=2321"
/// dir = "/var/lib/cse/tpm-keys"
/// ```
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TpmConfig {
    /// The TCTI configuration string (as for `TPM2TOOLS_TCTI`).
    pub tcti: String,
    /// Directory of the wrapped key blobs (mode 0700; created if missing).
    pub dir: PathBuf,
}
