//! What can go wrong, one variant per cause. Messages name the key, home and file involved and
//! never contain secret material.
//!
//! A message includes its cause's text (an I/O error, a TPM answer) and therefore does not
//! also return it from `source()`: printers that walk the chain (`anyhow`'s `{:#}`) would
//! print the cause twice.

use crate::policy::PolicyViolation;
use crate::types::{Algorithm, HomeId, KeyId, KeyRole, Level};
use std::path::PathBuf;

/// Why a key-store operation was refused or failed. No variant leads to a fallback: a caller
/// that gets an error has no key, and the key store never retries at a lower level.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// A key identifier does not follow the [`KeyId`] rules.
    #[error("invalid key id {id:?}: {reason}")]
    InvalidKeyId {
        /// The rejected identifier.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The role does not accept the algorithm (for example an AES key as a CA key).
    #[error("a {role} key cannot be {algorithm}")]
    AlgorithmNotAllowedForRole {
        /// The requested role.
        role: KeyRole,
        /// The requested algorithm.
        algorithm: Algorithm,
    },
    /// The home cannot hold keys of this algorithm (for example AES-GCM in the TPM home).
    #[error("home {home} does not offer {algorithm} keys")]
    AlgorithmUnsupported {
        /// The home.
        home: HomeId,
        /// The algorithm.
        algorithm: Algorithm,
    },
    /// The operation does not fit the key's algorithm (signing with an HMAC key, ...).
    #[error("key {key} is {algorithm}: it cannot {operation}")]
    OperationUnsupported {
        /// The key.
        key: KeyId,
        /// Its algorithm.
        algorithm: Algorithm,
        /// The refused operation.
        operation: &'static str,
    },
    /// The home refuses imported keys, or refuses this import.
    #[error("home {home} ({level}) refuses to import key {key}: {reason}")]
    ImportRefused {
        /// The home.
        home: HomeId,
        /// Its level.
        level: Level,
        /// The key.
        key: KeyId,
        /// Why.
        reason: String,
    },
    /// Key material handed to `import` is not what the algorithm needs.
    #[error("cannot import key {key} as {algorithm}: {reason}")]
    InvalidKeyMaterial {
        /// The key.
        key: KeyId,
        /// The declared algorithm.
        algorithm: Algorithm,
        /// What is wrong with it (never the bytes).
        reason: String,
    },
    /// A key with this identifier already exists in the home; it is never overwritten.
    #[error("key {key} already exists in home {home}")]
    KeyExists {
        /// The home.
        home: HomeId,
        /// The key.
        key: KeyId,
    },
    /// The home has no key with this identifier. Other homes are not searched.
    #[error("key {key} not found in home {home}")]
    KeyNotFound {
        /// The home.
        home: HomeId,
        /// The key.
        key: KeyId,
    },
    /// A handle was used with a home that did not issue it.
    #[error("key {key} belongs to home {key_home}, not to home {asked_home}")]
    WrongHome {
        /// The key.
        key: KeyId,
        /// The home the handle came from.
        key_home: HomeId,
        /// The home that was asked.
        asked_home: HomeId,
    },
    /// The key store has no home of this name.
    #[error("no key home named {home} is configured")]
    UnknownHome {
        /// The name.
        home: HomeId,
    },
    /// The stored key has a different role from the one the caller expects.
    #[error("key {key} in home {home} is a {stored} key, not a {expected} key")]
    RoleMismatch {
        /// The key.
        key: KeyId,
        /// Its home.
        home: HomeId,
        /// The stored role.
        stored: KeyRole,
        /// The role the caller asked for.
        expected: KeyRole,
    },
    /// The key's home is below the minimum level of its role.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// The passphrase or key-encryption key file does not open this software store.
    #[error(
        "wrong passphrase or key-encryption key for the key store in {dir} \
         (or its keystore.json was altered)"
    )]
    WrongPassphrase {
        /// The store's directory.
        dir: PathBuf,
    },
    /// The directory holds no key store yet.
    #[error("no key store in {dir}: create one first")]
    NotInitialised {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory or secret file can be read or written by group or others.
    #[error("{path} has mode {mode:o}: group and others must have no access (chmod go-rwx)")]
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A stored key (or store header) fails its integrity check or does not parse.
    #[error("{path} is corrupted or was tampered with: {reason}")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A file system operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error (in the message, not a `source()`: see the module documentation).
        error: std::io::Error,
    },
    /// A PIN or passphrase cannot be read from where the configuration says it is.
    #[error("cannot read the {what} from {source_desc}: {reason}")]
    SecretUnavailable {
        /// "PIN", "passphrase", ...
        what: &'static str,
        /// "environment variable X" or "file Y".
        source_desc: String,
        /// Why.
        reason: String,
    },
    /// The PKCS#11 module cannot be loaded or initialised.
    #[error("cannot load PKCS#11 module {module}: {reason}")]
    ModuleUnavailable {
        /// The module path.
        module: PathBuf,
        /// Why.
        reason: String,
    },
    /// No initialised token with this label is present.
    #[error("no PKCS#11 token labelled {label:?} in module {module} (tokens present: {present})")]
    TokenNotFound {
        /// The module path.
        module: PathBuf,
        /// The configured label.
        label: String,
        /// The labels that are present, for the operator.
        present: String,
    },
    /// The token refused the user PIN.
    #[error("the PKCS#11 token {label:?} refused the PIN (wrong PIN)")]
    WrongPin {
        /// The token label.
        label: String,
    },
    /// The token locked the user PIN after too many failures.
    #[error("the user PIN of PKCS#11 token {label:?} is locked")]
    PinLocked {
        /// The token label.
        label: String,
    },
    /// A level-3 key's token would hand out its private value: it is not usable as level 3.
    #[error(
        "key {key} in home {home} is extractable or not sensitive: refusing it as a level-3 key"
    )]
    KeyExtractable {
        /// The home.
        home: HomeId,
        /// The key.
        key: KeyId,
    },
    /// The TPM cannot be reached (connection refused, device missing, TPM gone): no answer
    /// came from the TPM itself.
    #[error("TPM {tcti} unreachable: {reason}")]
    TpmUnreachable {
        /// The TCTI configuration string.
        tcti: String,
        /// Why.
        reason: String,
    },
    /// The TPM answered a command with an error (other than refusing a key's blob or its
    /// binding, which is [`KeyStoreError::Corrupted`]). The message gives the TPM's response
    /// code and its meaning, and what to do where there is something to do.
    #[error("TPM {tcti} refused to {operation}: {answer}")]
    TpmRefused {
        /// The TCTI configuration string.
        tcti: String,
        /// What was asked.
        operation: &'static str,
        /// The response code, its meaning and, where there is one, the remedy.
        answer: String,
    },
    /// The home was closed ([`crate::KeyHome::close`]): the program is stopping.
    #[error("key home {home} is closed")]
    HomeClosed {
        /// The home.
        home: HomeId,
    },
    /// A signature does not verify.
    #[error("signature does not verify under key {key}")]
    SignatureInvalid {
        /// The key.
        key: KeyId,
    },
    /// AEAD decryption failed: wrong key, wrong associated data, or altered ciphertext.
    #[error(
        "decryption with key {key} failed: wrong key or associated data, or altered ciphertext"
    )]
    DecryptFailed {
        /// The key.
        key: KeyId,
    },
    /// The input is longer than the home accepts for this operation.
    #[error("{operation} input of {len} bytes exceeds the limit of {limit} bytes of home {home}")]
    InputTooLong {
        /// The home.
        home: HomeId,
        /// The operation.
        operation: &'static str,
        /// The input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// An anchor (a TPM NV counter, a token record) cannot be used as one: its name does
    /// not fit the home, or something else occupies it.
    #[error("{anchor} cannot be used as an anchor: {reason}")]
    AnchorUnusable {
        /// The anchor, as named by its home.
        anchor: String,
        /// Why.
        reason: String,
    },
    /// The backend failed in a way not covered above. Kept as a catch-all because PKCS#11
    /// modules and TPMs return many vendor-specific codes; the message carries the backend's
    /// own code so an operator can look it up.
    #[error("{home}: {operation} failed: {reason}")]
    Backend {
        /// The home.
        home: HomeId,
        /// The operation.
        operation: &'static str,
        /// The backend's message or code.
        reason: String,
    },
}

impl KeyStoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        KeyStoreError::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn corrupted(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        KeyStoreError::Corrupted {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn backend(home: &HomeId, operation: &'static str, reason: impl ToString) -> Self {
        KeyStoreError::Backend {
            home: home.clone(),
            operation,
            reason: reason.to_string(),
        }
    }
}
