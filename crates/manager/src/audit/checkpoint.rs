//! Signed positions in the chain, kept in files beside the log.
//!
//! A hash chain shows every change inside the log but not entries cut off its end, and after
//! old segments are removed it no longer starts at the genesis hash. Two small files close
//! those gaps:
//!
//! * the **checkpoint** (`<log>.head` by default, or wherever `[audit] head_file` puts it):
//!   the last entry known to be on disk, rewritten after every sync. A log that ends before
//!   it was cut; [`super::AuditLog::open`] refuses it and `m2m audit verify` reports it. A
//!   copy kept by the admin (`m2m audit head`) catches a writer that also rewound this file.
//! * the **anchor** (`<log>.anchor`): the last entry of the newest segment that retention
//!   removed. The oldest kept segment must continue from exactly there, so removing further
//!   segments by hand shows.
//!
//! Both are signed with the audit key when the log is signed, under their own domain
//! prefixes, so neither can be made from an entry signature or from each other.
//!
//! With a TPM NV counter as anchor ([`super::anchor`]), the checkpoint also carries the
//! counter value it was written with, inside its signature (a prefix of its own, so a
//! checkpoint without a value cannot be turned into one with a value or back).

use super::{sync_parent, AuditError, AuditPublicKey, ChainHash, Head};
use keystore::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// What a signed position stands for; part of the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The last entry on disk (the checkpoint).
    Head,

    /// The last entry removed by retention (the anchor).
    Anchor,
}

impl Purpose {
    fn prefix(self) -> &'static [u8] {
        match self {
            Self::Head => b"secure-cse audit head v1",
            Self::Anchor => b"secure-cse audit anchor v1",
        }
    }
}

/// Prefix of a position that carries an anchor's counter value.
const COUNTED_PREFIX: &[u8] = b"secure-cse audit counted position v1 ";

/// A position in the chain (sequence number and hash), signed when the log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's hash.
    pub hash: ChainHash,
    /// The anchor's counter value this checkpoint was written with, when the log is
    /// anchored in a monotonic counter (see [`super::anchor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<u64>,
    /// ECDSA signature (DER, hex) over the purpose, `seq`, `hash` and `counter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

fn message(purpose: Purpose, seq: u64, hash: &ChainHash, counter: Option<u64>) -> Vec<u8> {
    let mut m = match counter {
        Some(_) => COUNTED_PREFIX.to_vec(),
        None => purpose.prefix().to_vec(),
    };
    // The purpose is part of the counted prefix's message too, after it.
    if counter.is_some() {
        m.extend_from_slice(purpose.prefix());
    }
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&hash.0);
    if let Some(counter) = counter {
        m.extend_from_slice(&counter.to_be_bytes());
    }
    m
}

impl Checkpoint {
    /// `head`, signed with `signer` when there is one.
    pub fn sign(
        head: Head,
        purpose: Purpose,
        signer: Option<&SigningKey>,
    ) -> Result<Self, AuditError> {
        Self::sign_counted(head, purpose, None, signer)
    }

    /// `head` with the anchor's `counter` value, signed with `signer` when there is one.
    pub fn sign_counted(
        head: Head,
        purpose: Purpose,
        counter: Option<u64>,
        signer: Option<&SigningKey>,
    ) -> Result<Self, AuditError> {
        let sig = match signer {
            Some(key) => Some(hex::encode(
                key.sign(&message(purpose, head.seq, &head.hash, counter))?
                    .as_der(),
            )),
            None => None,
        };
        Ok(Self {
            seq: head.seq,
            hash: head.hash,
            counter,
            sig,
        })
    }

    /// The position without its signature.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// Whether the signature is present and valid under `key` for `purpose`.
    pub fn verifies(&self, key: &AuditPublicKey, purpose: Purpose) -> bool {
        let digest = Sha256::digest(message(purpose, self.seq, &self.hash, self.counter));
        self.sig
            .as_deref()
            .is_some_and(|sig| key.verifies_digest(&digest.into(), sig))
    }

    /// Reads a checkpoint or anchor file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, AuditError> {
        match std::fs::read(path) {
            Ok(text) => serde_json::from_slice(&text)
                .map(Some)
                .map_err(|e| AuditError::BadHead {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuditError::io(path, e)),
        }
    }

    /// Writes the file durably (temporary file, fsync, rename, fsync of the directory), so a
    /// crash leaves the old or the new position, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), AuditError> {
        let text = serde_json::to_vec(self).map_err(AuditError::Encode)?;
        write_durably(path, &text)
    }
}

/// Replaces `path` with `bytes` durably (mode 600).
pub(super) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let io = |e| AuditError::io(path, e);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_parent(path)
}
