//! What can go wrong in the certificate authority, one variant per cause.

use keystore::{Algorithm, KeyRole, KeyStoreError};
use std::path::PathBuf;

/// Why the certificate authority refused or failed an operation. Nothing is issued, recorded
/// or changed when an operation returns one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The key store refused or failed an operation on the CA key: the key's home is below the
    /// policy's minimum for `ca-signing`, the PIN is wrong, the token or TPM is gone, ... The
    /// inner error names the key and the cause; fix the key store, there is no fallback.
    /// (The message includes the key store's, so it is not also a `source()`: chain printers
    /// would repeat it.)
    #[error("the CA key: {0}")]
    KeyStore(KeyStoreError),
    /// The key handle given as the CA key was made for another role: a TLS key must not
    /// become a CA key by accident. Generate a key with role `ca-signing`.
    #[error("key {key} has role {role}; a CA key must have role ca-signing")]
    WrongKeyRole {
        /// The key.
        key: String,
        /// Its role.
        role: KeyRole,
    },
    /// The CA key is not an ECDSA P-256 key (TS-0003 clause 10.1.1 allows no other).
    #[error("key {key} is a {algorithm} key; the CA signs with ECDSA P-256/SHA-256 only")]
    WrongKeyAlgorithm {
        /// The key.
        key: String,
        /// Its algorithm.
        algorithm: Algorithm,
    },
    /// The CA certificate in the directory was not made for this key: the directory or the
    /// key configuration points at the wrong CA.
    #[error("the CA certificate {path} does not belong to key {key}: the public keys differ")]
    KeyMismatch {
        /// The CA certificate file.
        path: PathBuf,
        /// The configured CA key.
        key: String,
    },
    /// `create` was asked to make a CA in a directory that already holds one; use `open`.
    #[error("{dir} already holds a certificate authority (ca.pem); open it instead")]
    AlreadyExists {
        /// The CA directory.
        dir: PathBuf,
    },
    /// `open` found no CA certificate in the directory; use `create` first.
    #[error("no certificate authority in {dir} (ca.pem is missing)")]
    NotFound {
        /// The CA directory.
        dir: PathBuf,
    },
    /// Reading or writing a file of the CA directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate file cannot be used as this CA's certificate (not PEM, not a CA,
    /// expired, no key identifier, ...).
    #[error("the CA certificate {path} cannot be used: {reason}")]
    InvalidCaCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The issued-certificate records (SQLite) failed; the operation was rolled back.
    #[error("the certificate records: {0}")]
    Records(#[from] rusqlite::Error),
    /// A record holds a value this version cannot read (the file was edited or damaged).
    #[error("the certificate records are damaged: {0}")]
    CorruptRecords(String),
    /// The configuration cannot produce a working CA; the message says which option.
    #[error("invalid CA configuration: {0}")]
    Config(String),
    /// The CSR is not a PKCS#10 request (PEM or DER) this CA reads.
    #[error("the CSR cannot be read: {0}")]
    InvalidCsr(String),
    /// The CSR's self-signature does not verify: whoever sent it does not hold the private key
    /// of the public key it carries.
    #[error("the CSR's signature does not verify: it was not signed with the key it carries")]
    CsrSignature,
    /// The CSR's public key is not an ECDSA P-256 key with an uncompressed point, or it is
    /// not signed with ECDSA/SHA-256 (TS-0003 clause 10.1.1.1).
    #[error("the CSR's key is not accepted: {0}")]
    UnsupportedKey(String),
    /// The CSR's subjectAltName names an identity other than the one the caller authorised.
    /// The CA never certifies a name just because a CSR asks for it.
    #[error("the CSR names {requested}, but the identity authorised is {authorised}")]
    IdentityMismatch {
        /// The identity the caller authorised.
        authorised: String,
        /// The name found in the CSR.
        requested: String,
    },
    /// The identity is not an AE-ID or CSE-ID of this SP that the CA can certify.
    #[error("{identity:?} cannot be certified: {reason}")]
    InvalidIdentity {
        /// What was given.
        identity: String,
        /// Why it is refused.
        reason: String,
    },
    /// The certificate's name lies outside the CA certificate's name constraints, so every
    /// relying party would refuse it.
    #[error("{name} is outside the CA's name constraints ({constraints})")]
    OutsideNameConstraints {
        /// The name.
        name: String,
        /// The CA's permitted subtrees.
        constraints: String,
    },
    /// The requested not-before/not-after cannot be used.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// No certificate with this serial number was issued by this CA.
    #[error("no certificate with serial {serial} was issued by this CA")]
    UnknownSerial {
        /// The serial number asked for.
        serial: String,
    },
    /// The text is not a serial number (1 to 20 bytes of hex, `:` separators allowed).
    #[error("{serial:?} is not a certificate serial number (1 to 20 bytes of hex)")]
    InvalidSerial {
        /// What was given.
        serial: String,
    },
    /// The certificate's status does not allow the operation (revoking a revoked certificate,
    /// resuming one that is not suspended, renewing a revoked one).
    #[error("certificate {serial} is {status}: cannot {operation} it")]
    InvalidTransition {
        /// The certificate.
        serial: String,
        /// Its status now.
        status: &'static str,
        /// The operation refused.
        operation: &'static str,
    },
    /// Building a certificate or CRL failed for a reason other than the key store (an rcgen
    /// encoding error); a bug or an impossible value, reported rather than hidden.
    #[error("encoding failed: {0}")]
    Encoding(String),
}

impl From<KeyStoreError> for CaError {
    fn from(e: KeyStoreError) -> Self {
        Self::KeyStore(e)
    }
}

impl CaError {
    pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CaError {
        let path = path.into();
        move |source| CaError::Io { path, source }
    }
}
