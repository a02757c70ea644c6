//! What a credential store says about a withdrawn credential
//! ([`super::CredentialStore::withdrawn`]); the list of withdrawn credentials itself is
//! [`crate::revocation`]. Kept here, below both, so that neither imports the other.

use serde::{Deserialize, Serialize};

/// How a credential is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WithdrawalKind {
    /// For good.
    Revoked,
    /// Until resumed.
    Suspended,
}

impl WithdrawalKind {
    /// `revoked` or `suspended`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
        }
    }
}

/// Why and since when a credential is withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// Revoked or suspended.
    pub kind: WithdrawalKind,
    /// The reason given.
    pub reason: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}
