//! Anchors: small pieces of state kept inside a home, where whoever can rewrite the CSE's
//! files cannot roll them back. The audit log keeps its signed checkpoint in one, so that a
//! checkpoint file rewound together with the log shows at the next start.
//!
//! Two kinds, because the homes offer different things:
//!
//! * a [`MonotonicCounter`]: a TPM NV index of type counter (level 2). It can only grow; a
//!   TPM does not let it be decremented, and a counter index defined again after being
//!   deleted starts above the highest value any counter of that TPM ever had.
//! * an [`AnchorRecord`]: a private token object (PKCS#11 `CKO_DATA`, level 3) holding a
//!   few bytes that only a session logged in with the token's user PIN can read or replace.
//!
//! Neither holds key material; both are named by the configuration (`[audit] head_anchor`).

use crate::error::KeyStoreError;
use std::fmt;

/// A counter that only grows, kept in a home (a TPM NV counter index).
pub trait MonotonicCounter: Send + Sync + fmt::Debug {
    /// A name for messages, e.g. `TPM NV counter 0x01800100`.
    fn name(&self) -> String;

    /// The current value; `None` when the counter does not exist yet.
    fn read(&self) -> Result<Option<u64>, KeyStoreError>;

    /// Creates the counter and makes it readable (one increment), returning its value.
    /// Refuses ([`KeyStoreError::AnchorUnusable`]) when something else already occupies the
    /// name.
    fn create(&self) -> Result<u64, KeyStoreError>;

    /// Adds one and returns the new value.
    fn increment(&self) -> Result<u64, KeyStoreError>;
}

/// A small record kept in a home (a private PKCS#11 data object) that only the home's
/// authenticated user can read or replace.
pub trait AnchorRecord: Send + Sync + fmt::Debug {
    /// A name for messages, e.g. `PKCS#11 data object audit-head on token cse`.
    fn name(&self) -> String;

    /// The stored bytes; `None` when there is no record yet.
    fn read(&self) -> Result<Option<Vec<u8>>, KeyStoreError>;

    /// Replaces (or creates) the record; returns once the home has it.
    fn write(&self, value: &[u8]) -> Result<(), KeyStoreError>;
}
