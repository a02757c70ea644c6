//! The names of things: key identifiers, roles, algorithms, homes and their security levels.

use crate::error::KeyStoreError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The name of a key inside its home: 1-64 characters from `A-Z a-z 0-9 . _ -`, not starting
/// with `.` or `-`.
///
/// The same string is the file name stem at levels 1 and 2 and the `CKA_LABEL`/`CKA_ID` at
/// level 3, which is why the alphabet is restricted: no path separators, no shell or URI
/// metacharacters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Longest accepted identifier.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps an identifier.
    pub fn new(id: impl Into<String>) -> Result<Self, KeyStoreError> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > Self::MAX_LEN {
            Some("it is longer than 64 characters")
        } else if id.starts_with('.') || id.starts_with('-') {
            Some("it starts with '.' or '-'")
        } else if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(KeyStoreError::InvalidKeyId { id, reason }),
            None => Ok(Self(id)),
        }
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = KeyStoreError;
    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.0
    }
}

impl FromStr for KeyId {
    type Err = KeyStoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:?})", self.0)
    }
}

/// What a key is for. The policy sets a minimum [`Level`] per role, and each role accepts only
/// the algorithms that make sense for it ([`KeyRole::allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyRole {
    /// The CSE's TLS/DTLS server (and client) certificate key: signs handshakes.
    TlsServer,
    /// The security manager's certificate authority key: signs certificates and CRLs.
    CaSigning,
    /// A pre-shared-key master (TS-0003 Km): PSKs are derived from it by HMAC/HKDF.
    PskMaster,
    /// The audit log's chaining/sealing key (HMAC chain or signature over the chain head).
    AuditLog,
    /// Protects the pseudonym-to-identity mapping (AEAD) or derives pseudonyms (HMAC).
    PseudonymMapping,
}

impl KeyRole {
    /// Every role, in a fixed order (for listings and tests).
    pub const ALL: [KeyRole; 5] = [
        KeyRole::TlsServer,
        KeyRole::CaSigning,
        KeyRole::PskMaster,
        KeyRole::AuditLog,
        KeyRole::PseudonymMapping,
    ];

    /// The role's configuration name (`tls-server`, `ca-signing`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyRole::TlsServer => "tls-server",
            KeyRole::CaSigning => "ca-signing",
            KeyRole::PskMaster => "psk-master",
            KeyRole::AuditLog => "audit-log",
            KeyRole::PseudonymMapping => "pseudonym-mapping",
        }
    }

    /// Whether a key of this role may use `algorithm`. Refusing the odd pairs (an AES key as a
    /// CA key) turns configuration mistakes into start-up errors.
    pub fn allows(self, algorithm: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyRole::TlsServer | KeyRole::CaSigning => algorithm == EcdsaP256Sha256,
            KeyRole::PskMaster => algorithm == HmacSha256,
            KeyRole::AuditLog => matches!(algorithm, HmacSha256 | EcdsaP256Sha256),
            KeyRole::PseudonymMapping => matches!(algorithm, Aes256Gcm | HmacSha256),
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyRole::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown key role {s:?}"))
    }
}

/// A key's algorithm. Every home offers the same operations for the same algorithm, so a key
/// can move between levels by configuration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on NIST P-256 over SHA-256. Signatures are DER `Ecdsa-Sig-Value`, public keys
    /// X.509 SubjectPublicKeyInfo DER.
    EcdsaP256Sha256,
    /// HMAC-SHA-256 with a 256-bit key; also the PRK of HKDF-Expand ([`crate::KeyHome::derive`]).
    HmacSha256,
    /// AES-256-GCM with a 96-bit random nonce and a 128-bit tag, for wrapping small secrets.
    Aes256Gcm,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::EcdsaP256Sha256,
        Algorithm::HmacSha256,
        Algorithm::Aes256Gcm,
    ];

    /// The algorithm's configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::Aes256Gcm => "aes256-gcm",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A security level of the seed (6.3.1.x) and TS-0003: how well a home protects its keys.
/// Ordered: `Software < TrustedEnvironment < Hsm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Level {
    /// Level 1: software only (our encrypted key files).
    Software = 1,
    /// Level 2: a trusted execution environment with a hardware root of trust (a TPM 2.0).
    TrustedEnvironment = 2,
    /// Level 3: a tamper-resistant hardware security module (a PKCS#11 token).
    Hsm = 3,
}

impl Level {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        self as u8
    }

    fn words(self) -> &'static str {
        match self {
            Level::Software => "software",
            Level::TrustedEnvironment => "TPM / trusted environment",
            Level::Hsm => "HSM",
        }
    }
}

impl TryFrom<u8> for Level {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        match n {
            1 => Ok(Level::Software),
            2 => Ok(Level::TrustedEnvironment),
            3 => Ok(Level::Hsm),
            n => Err(format!("security level must be 1, 2 or 3, not {n}")),
        }
    }
}

impl From<Level> for u8 {
    fn from(level: Level) -> Self {
        level.number()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {} ({})", self.number(), self.words())
    }
}

/// Names one home: its kind and where it is, for example `software:/var/lib/cse/keys`,
/// `pkcs11:cse-token` or `tpm:swtpm:host=127.0.0.1,port=2321`. Handles carry it, so an
/// operation on a handle from another home is refused instead of silently run elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HomeId(String);

impl HomeId {
    /// Builds a home name from its kind and location.
    pub fn new(kind: &str, location: &str) -> Self {
        Self(format!("{kind}:{location}"))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HomeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_checked() {
        for ok in ["a", "tls-server", "ca.2026", "A_b-c.d", &"x".repeat(64)] {
            assert!(KeyId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "ü",
            "../x",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(KeyId::new(bad), Err(KeyStoreError::InvalidKeyId { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn levels_are_ordered_and_parsed() {
        assert!(Level::Software < Level::TrustedEnvironment);
        assert!(Level::TrustedEnvironment < Level::Hsm);
        assert_eq!(Level::try_from(2), Ok(Level::TrustedEnvironment));
        assert!(Level::try_from(0).is_err());
        assert!(Level::try_from(4).is_err());
        assert_eq!(Level::Hsm.to_string(), "level 3 (HSM)");
    }

    #[test]
    fn roles_accept_only_fitting_algorithms() {
        assert!(KeyRole::CaSigning.allows(Algorithm::EcdsaP256Sha256));
        assert!(!KeyRole::CaSigning.allows(Algorithm::HmacSha256));
        assert!(KeyRole::PskMaster.allows(Algorithm::HmacSha256));
        assert!(!KeyRole::PskMaster.allows(Algorithm::Aes256Gcm));
        assert!(KeyRole::PseudonymMapping.allows(Algorithm::Aes256Gcm));
        for role in KeyRole::ALL {
            assert_eq!(role.name().parse::<KeyRole>(), Ok(role));
        }
    }
}
