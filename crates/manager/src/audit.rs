//! The tamper-evident audit log of security events (the "supervise" part of the security
//! manager, seed 3.1).
//!
//! The log is an append-only file of JSON lines, one [`Entry`] per line:
//!
//! ```text
//! {"seq":1,"time":"2026-01-01T10:00:00.000000Z","event":{"kind":"association-refused","peer":"127.0.0.1:5555","credential":"12-dev1@sp.example","reason":"unknown PSK identity"},"prev":"0000…0000","hash":"9f1c…","sig":"3045…"}
//! ```
//!
//! * `seq` counts from 1 without gaps;
//! * `hash` is SHA-256 over the canonical JSON of `{seq, time, event, prev}`, and `prev` is the
//!   `hash` of the entry before (64 zeros for the first), so the entries form a hash chain;
//! * `sig`, when the log is opened with a key-store key of role [`KeyRole::AuditLog`], is an
//!   ECDSA P-256 signature (DER, hex) made inside the key's home over
//!   `"secure-cse audit entry v1" || hash`.
//!
//! [`verify`] re-reads the file and names the first entry that was changed, removed,
//! inserted or reordered. What a bare hash chain cannot show: an attacker who can write the
//! file may cut entries off its end, or rewrite an entry and recompute every later hash.
//! The first is caught by the signed checkpoint the log keeps beside it and, where the
//! attacker could rewind that too, by a [`Head`] kept somewhere else ([`verify_with_head`]);
//! the second by the signatures, whose key the attacker does not hold ([`checkpoint`]).
//!
//! The log grows in segments: the file closes into `<log>.<first seq>` at a configured size
//! and the chain continues in a new file; retention removes the oldest segments behind a
//! signed anchor ([`segments`]). Opening and verifying walk every kept segment.
//!
//! Durability: [`AuditLog::append`] returns only after the entry is on disk (`fdatasync`).
//! Appenders from many threads are serialised by one mutex for the write and share each
//! `fdatasync` (group commit): a thread whose entry another thread's sync already covered
//! does not sync again. A failed write or sync poisons the log, because after a failed
//! `fsync` the kernel may have dropped the data and later syncs can report success.
//!
//! Entries hold identifiers (peers, credential IDs, pseudonyms, actors) and reasons, never
//! key material: the event types have no field for it.

use keystore::{Algorithm, KeyRole, KeyStoreError, SigningKey};
use model::clock::Clock;
use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub mod anchor;
pub mod checkpoint;
pub mod lock;
pub mod segments;

pub use anchor::{Anchoring, HeadAnchor, DEFAULT_ANCHOR_INTERVAL};
pub use checkpoint::{Checkpoint, Purpose};
pub use lock::WriterLock;
pub use segments::{
    anchor_file, closed_segments, lock_file, segment_file, Layout, DEFAULT_KEEP_SEGMENTS,
    DEFAULT_SEGMENT_BYTES,
};

/// Longest line [`verify`] reads; audit entries are far shorter, so a longer line is damage.
pub const MAX_LINE: usize = 64 * 1024;

/// Domain-separation prefix of the signed message, so an audit signature cannot be
/// mistaken for a signature over anything else.
const SIGNED_PREFIX: &[u8] = b"secure-cse audit entry v1";

// === events ===

/// A security event. Each variant carries who and what (identifiers, never secrets) and, for
/// refusals and withdrawals, the reason. Serialized with a `kind` tag in kebab-case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Event {
    /// The CA issued a certificate.
    CertificateIssued {
        /// The identity in the certificate (CSE-ID or AE-ID in the subject alternative name).
        subject: String,
        /// The serial number (hex).
        serial: String,
        /// End of validity (RFC 3339).
        not_after: String,
    },
    /// A symmetric credential was issued or derived (Kpsa, Km, usage-constrained key),
    /// named by its Credential-ID.
    CredentialIssued {
        /// The Credential-ID (`12-...`, `11-...`).
        credential: String,
        /// Who receives it (CSE-ID, AE-ID, MAF-ID).
        holder: String,
        /// The key it was derived from (e.g. the KeID), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<String>,
    },
    /// An Enrolee completed enrolment with the MEF (clause 8.3).
    Enrolled {
        /// The Enrolee's identifier.
        enrolee: String,
        /// The KeID of the new Enrolment Key.
        ke_id: String,
    },
    /// A security association was opened.
    AssociationOpened {
        /// The peer's address.
        peer: String,
        /// The authenticated identity bound to it (AE-ID or CSE-ID, or a pseudonym).
        identity: String,
        /// The credential that authenticated it (Credential-ID or certificate serial).
        credential: String,
        /// The framework: `tls-cert`, `tls-psk`, ...
        framework: String,
    },
    /// A security association was refused.
    AssociationRefused {
        /// The peer's address.
        peer: String,
        /// The credential the peer offered, if it got that far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        /// Why.
        reason: String,
    },
    /// Further refusals of one source and reason within the refusal window, counted rather
    /// than written one by one (the first was written as an `association-refused` entry), so
    /// that a flood of refused handshakes costs the log a bounded number of entries.
    AssociationsRefused {
        /// The listener that refused.
        listener: String,
        /// The source: an IPv4 address, an IPv6 /64, or `other sources` when the flood came
        /// from more sources than the window counts one by one.
        source: String,
        /// The known credential the peers offered, if the refusals were about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        /// Why (the first reason, or `other reasons` for overflowing ones).
        reason: String,
        /// Refusals in the window, the first one included.
        count: u64,
        /// The first refusal (RFC 3339).
        first: String,
        /// The last refusal (RFC 3339).
        last: String,
    },
    /// A security association was closed.
    AssociationClosed {
        /// The peer's address.
        peer: String,
        /// The identity bound to it.
        identity: String,
        /// Why (peer closed, revoked, expired, idle, ...).
        reason: String,
    },
    /// A credential was revoked.
    Revoked {
        /// The credential (Credential-ID or certificate serial).
        credential: String,
        /// Who revoked it.
        actor: String,
        /// Why.
        reason: String,
    },
    /// A credential was suspended (may be resumed).
    Suspended {
        /// The credential.
        credential: String,
        /// Who suspended it.
        actor: String,
        /// Why.
        reason: String,
    },
    /// A suspended credential was resumed.
    Resumed {
        /// The credential.
        credential: String,
        /// Who resumed it.
        actor: String,
    },
    /// An administrator changed security configuration or material.
    AdminAction {
        /// Who.
        actor: String,
        /// What (`policy-update`, `key-rotate`, ...).
        action: String,
        /// On what, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// An authorised role resolved a pseudonym to the real identity (seed 6.4). The real
    /// identity is not logged: the log carries pseudonyms only.
    PseudonymResolved {
        /// Who asked.
        actor: String,
        /// The pseudonym that was resolved.
        pseudonym: String,
        /// The stated purpose.
        purpose: String,
    },
    /// A request to a key function was refused: a MAF key registration, retrieval or
    /// deletion, or a fetchCredentials of an Enrolment Target. Nothing was handed out.
    KeyRequestRefused {
        /// Who asked (AE-ID or CSE-ID).
        actor: String,
        /// What was refused (`maf-key-retrieval-refused`, `credential-fetch-refused`, ...).
        action: String,
        /// The key concerned and why, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// An AE took a fresh pseudonym (AE-ID rotation). Neither AE-ID is logged, so the log
    /// does not link the old pseudonym to the new one; an authorised resolution of either
    /// still leads to the same credential.
    PseudonymRotated {
        /// Who rotated: the AE, named by its credential's log tag (or as an AE on a trusted
        /// listener, when it has no credential).
        actor: String,
    },
    /// The supervision saw a pattern of use that an anomaly rule flags (one credential live
    /// from two addresses, repeated failed handshakes from one address, ...). At most one
    /// per rule and subject per alert interval, so a peer cannot flood the log with them.
    AnomalyDetected {
        /// The rule, e.g. `concurrent-peers` or `failed-handshakes`.
        rule: String,
        /// The credential concerned, if the rule names one (Credential-ID).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<String>,
        /// The peer address that triggered it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// What was seen (addresses, counts, the window).
        detail: String,
    },
    /// An originator the access control policies allow asked a managed device to act: an
    /// executable attribute of a `<mgmtObj>` (reboot, factory reset, firmware update,
    /// software install, ...) was set to true. The CSE acts on nothing itself; the request
    /// reaches the device through the notifications of its subscriptions.
    ManagementRequested {
        /// Who asked (AE-ID, CSE-ID or the admin originator).
        actor: String,
        /// The `<mgmtObj>` (structured resource name).
        target: String,
        /// The specialisation and the executable attributes set, e.g. `reboot: rbo`.
        action: String,
    },
}

impl Event {
    /// The `kind` tag, e.g. `association-refused` (for listings).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CertificateIssued { .. } => "certificate-issued",
            Event::CredentialIssued { .. } => "credential-issued",
            Event::Enrolled { .. } => "enrolled",
            Event::AssociationOpened { .. } => "association-opened",
            Event::AssociationRefused { .. } => "association-refused",
            Event::AssociationsRefused { .. } => "associations-refused",
            Event::AssociationClosed { .. } => "association-closed",
            Event::Revoked { .. } => "revoked",
            Event::Suspended { .. } => "suspended",
            Event::Resumed { .. } => "resumed",
            Event::AdminAction { .. } => "admin-action",
            Event::PseudonymResolved { .. } => "pseudonym-resolved",
            Event::PseudonymRotated { .. } => "pseudonym-rotated",
            Event::KeyRequestRefused { .. } => "key-request-refused",
            Event::AnomalyDetected { .. } => "anomaly-detected",
            Event::ManagementRequested { .. } => "management-requested",
        }
    }

    /// Whether a log with an anchor moves it as soon as this event is on disk rather than
    /// at the anchoring interval: withdrawals, resumptions, administrative actions and
    /// pseudonym resolutions, the entries a forger would most want to cut. They come from an
    /// administrator or a rule with its own rate limit, so they do not wear a TPM's NV.
    pub fn is_anchored_at_once(&self) -> bool {
        matches!(
            self,
            Event::Revoked { .. }
                | Event::Suspended { .. }
                | Event::Resumed { .. }
                | Event::AdminAction { .. }
                | Event::PseudonymResolved { .. }
        )
    }
}

// === entries and hashes ===

/// A SHA-256 chain hash, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev` of the first entry.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

impl Serialize for ChainHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| serde::de::Error::custom("a hash must be 64 hex digits"))?;
        Ok(ChainHash(out))
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// When it was appended (RFC 3339, UTC, microseconds).
    pub time: String,
    /// What happened.
    pub event: Event,
    /// The hash of the entry before.
    pub prev: ChainHash,
    /// SHA-256 over the canonical JSON of `{seq, time, event, prev}`.
    pub hash: ChainHash,
    /// ECDSA signature (DER, hex) over the hash, when the log is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// The hashed part of an entry, in the same field order.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    event: &'a Event,
    prev: &'a ChainHash,
}

impl Entry {
    /// Recomputes the hash of `{seq, time, event, prev}`.
    pub fn compute_hash(&self) -> Result<ChainHash, serde_json::Error> {
        let body = serde_json::to_vec(&Body {
            seq: self.seq,
            time: &self.time,
            event: &self.event,
            prev: &self.prev,
        })?;
        Ok(ChainHash(Sha256::digest(&body).into()))
    }

    /// This entry's position in the chain.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

/// The message an entry signature covers.
fn signed_message(hash: &ChainHash) -> Vec<u8> {
    let mut m = SIGNED_PREFIX.to_vec();
    m.extend_from_slice(&hash.0);
    m
}

/// The last entry of a log (sequence number and hash). Kept apart from the log (returned by
/// [`AuditLog::append`], saved with [`Head::save`] elsewhere), it lets [`verify_with_head`]
/// detect entries cut off the end, which the chain alone cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The sequence number of the last entry.
    pub seq: u64,
    /// Its hash.
    pub hash: ChainHash,
}

impl Head {
    /// Writes the head as JSON to `path` durably (temporary file, fsync, rename, fsync of
    /// the directory), so a crash leaves the old or the new head, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), AuditError> {
        let text = serde_json::to_vec(self).map_err(AuditError::Encode)?;
        checkpoint::write_durably(path, &text)
    }

    /// Reads a head written by [`Head::save`].
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read(path).map_err(|e| AuditError::io(path, e))?;
        serde_json::from_slice(&text).map_err(|e| AuditError::BadHead {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }
}

fn sync_parent(path: &Path) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

// === public key ===

/// The public half of the audit signing key (ECDSA P-256), for [`verify`]. Verification needs
/// no key store: the public key can be exported and checked anywhere.
pub struct AuditPublicKey(PKey<Public>);

impl AuditPublicKey {
    /// From SubjectPublicKeyInfo DER (what [`SigningKey::public_key`] gives).
    pub fn from_der(der: &[u8]) -> Result<Self, AuditError> {
        let key = PKey::public_key_from_der(der).map_err(|e| AuditError::BadPublicKey {
            reason: e.to_string(),
        })?;
        Self::checked(key)
    }

    /// From a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &[u8]) -> Result<Self, AuditError> {
        let key = PKey::public_key_from_pem(pem).map_err(|e| AuditError::BadPublicKey {
            reason: e.to_string(),
        })?;
        Self::checked(key)
    }

    fn checked(key: PKey<Public>) -> Result<Self, AuditError> {
        let p256 = key
            .ec_key()
            .ok()
            .and_then(|k| k.group().curve_name())
            .is_some_and(|nid| nid == Nid::X9_62_PRIME256V1);
        if p256 {
            Ok(Self(key))
        } else {
            Err(AuditError::BadPublicKey {
                reason: "not an ECDSA P-256 key".to_owned(),
            })
        }
    }

    /// The key as PEM, to hand to `m2m audit verify --public-key`.
    pub fn to_pem(&self) -> Result<String, AuditError> {
        let pem = self
            .0
            .public_key_to_pem()
            .map_err(|e| AuditError::BadPublicKey {
                reason: e.to_string(),
            })?;
        String::from_utf8(pem).map_err(|e| AuditError::BadPublicKey {
            reason: e.to_string(),
        })
    }

    /// Whether `sig_hex` is a valid signature over the entry hash.
    fn verifies(&self, hash: &ChainHash, sig_hex: &str) -> bool {
        self.verifies_digest(&Sha256::digest(signed_message(hash)).into(), sig_hex)
    }

    /// Whether `sig_hex` is a valid signature over the message whose SHA-256 is `digest`.
    fn verifies_digest(&self, digest: &[u8; 32], sig_hex: &str) -> bool {
        let Ok(der) = hex::decode(sig_hex) else {
            return false;
        };
        let Ok(sig) = EcdsaSig::from_der(&der) else {
            return false;
        };
        let Ok(ec) = self.0.ec_key() else {
            return false;
        };
        sig.verify(digest, &ec).unwrap_or(false)
    }
}

impl fmt::Debug for AuditPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = self.0.ec_key().ok().and_then(|k| {
            let mut ctx = BigNumContext::new().ok()?;
            k.public_key()
                .to_bytes(k.group(), PointConversionForm::COMPRESSED, &mut ctx)
                .ok()
        });
        match point {
            Some(p) => write!(f, "AuditPublicKey(P-256 {})", hex::encode(p)),
            None => f.write_str("AuditPublicKey(P-256)"),
        }
    }
}

// === errors ===

/// What is wrong with an entry, as [`verify`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The line is not an audit entry (bad JSON, unknown field or event kind, bad hex).
    #[error("not a valid audit entry ({0})")]
    Unparsable(String),
    /// The line parses but is not byte-for-byte what the log writes: bytes were added,
    /// removed or re-encoded.
    #[error("the line is not in the form the log writes: it was edited")]
    NotCanonical,
    /// The content does not match the stored hash: the entry was changed.
    #[error("its content does not match its hash (stored {stored}, computed {computed}): the entry was changed")]
    HashMismatch {
        /// The `hash` field.
        stored: ChainHash,
        /// The hash of the content.
        computed: ChainHash,
    },
    /// The sequence number is not the next one: entries were removed, inserted or reordered.
    #[error("expected sequence number {expected}, found {found}: entries were removed, inserted or reordered here")]
    UnexpectedSeq {
        /// The number that should be here.
        expected: u64,
        /// The number that is here.
        found: u64,
    },
    /// `prev` is not the hash of the entry before: entries were removed, inserted or
    /// reordered, or the chain was rebuilt from here.
    #[error("its prev hash {found} is not the hash {expected} of the entry before: the chain is broken here")]
    BrokenLink {
        /// The hash of the entry before.
        expected: ChainHash,
        /// The `prev` field.
        found: ChainHash,
    },
    /// Some entries are signed and others not.
    #[error("signed and unsigned entries are mixed: entries were forged or signatures stripped")]
    MixedSigning,
    /// A public key was given but the entry has no signature.
    #[error("the entry has no signature, but the log must be signed")]
    MissingSignature,
    /// The signature does not verify: the entry was forged or the chain rebuilt.
    #[error(
        "its signature does not verify under the audit public key: forged or re-chained entry"
    )]
    BadSignature,
    /// The last line has no newline: an interrupted write, or a cut file.
    #[error("the last line is incomplete (no final newline): an interrupted append or a cut file")]
    IncompleteLastLine,
    /// A line longer than [`MAX_LINE`].
    #[error("the line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// The log ends before the kept head: entries were cut off its end.
    #[error("the log ends at sequence number {last} but the kept head is at {head}: entries were cut off the end")]
    Truncated {
        /// The last sequence number in the file (0: empty).
        last: u64,
        /// The head's sequence number.
        head: u64,
    },
    /// A checkpoint or anchor signature does not verify under the audit public key.
    #[error("the signature of this checkpoint does not verify under the audit public key: forged")]
    BadCheckpointSignature,
    /// The entry at the kept head's sequence number has another hash: the log was rewritten.
    #[error("its hash differs from the kept head ({head}): the log was rewritten")]
    HeadMismatch {
        /// The head's hash.
        head: ChainHash,
    },
}

/// The first bad entry of a log: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {problem}", seq.map(|s| format!(" (seq {s})")).unwrap_or_default())]
pub struct Tampered {
    /// 1-based line number in the file.
    pub line: u64,
    /// The sequence number the line claims, when it could be read (for a truncation: the
    /// first missing one).
    pub seq: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

/// Why a log cannot be verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The log was tampered with (or damaged); the first bad entry is named.
    #[error("{path}: {tampered}")]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The first bad entry.
        tampered: Tampered,
    },
}

/// Why opening or appending failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The existing log does not verify; appending to it would hide the damage. Inspect it
    /// with `m2m audit verify` and move it aside.
    #[error("refusing to append to {path}: {tampered}")]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The first bad entry.
        tampered: Tampered,
    },
    /// The signing key is not an ECDSA key of role `audit-log`.
    #[error(
        "key {key} is a {role} {algorithm} key; the audit log needs an audit-log ECDSA P-256 key"
    )]
    NotAnAuditKey {
        /// The key.
        key: String,
        /// Its role.
        role: KeyRole,
        /// Its algorithm.
        algorithm: Algorithm,
    },
    /// A signed log was opened without a key, or an unsigned one with a key: the log would
    /// mix signed and unsigned entries.
    #[error("{path} is {} but was opened {}", if *signed { "signed" } else { "unsigned" }, if *signed { "without a signing key" } else { "with a signing key" })]
    SigningMismatch {
        /// The file.
        path: PathBuf,
        /// Whether the existing entries are signed.
        signed: bool,
    },
    /// The key store refused or failed to sign.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// An entry could not be encoded (not expected for the event types).
    #[error("cannot encode an audit entry: {0}")]
    Encode(serde_json::Error),
    /// A public key is not a usable P-256 key.
    #[error("bad audit public key: {reason}")]
    BadPublicKey {
        /// Why.
        reason: String,
    },
    /// A head file does not parse.
    #[error("{path} is not an audit head: {reason}")]
    BadHead {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The log has entries but its checkpoint file is missing, so entries cut off its end
    /// could not be told apart from an intact log. After checking the log with `m2m audit
    /// verify` (against the admin's kept head, if any), write the head it prints to the
    /// checkpoint file to adopt the log.
    #[error("{log} has entries but no checkpoint {checkpoint}: entries may have been cut off its end; check it with `m2m audit verify` and save the head it prints as {checkpoint} to adopt it")]
    MissingCheckpoint {
        /// The log.
        log: PathBuf,
        /// The checkpoint file.
        checkpoint: PathBuf,
    },
    /// Another writer holds the log's lock ([`WriterLock`]): appending too would fork the
    /// chain.
    #[error("the audit log {} is in use by another process (another CSE, or an m2m ca command)", path.display())]
    InUse {
        /// The log.
        path: PathBuf,
    },
    /// An anchor is configured for a log that is not signed: the checkpoint's counter value
    /// and the anchored copy are only worth their signature.
    #[error("the audit log {} has a head anchor ({anchor}) but no signing key: set [audit] signing_key", path.display())]
    AnchorNeedsSignature {
        /// The log.
        path: PathBuf,
        /// The anchor.
        anchor: String,
    },
    /// The checkpoint is older than what the anchor recorded: it was rewound, and entries
    /// after it may have been cut off the end of the log.
    #[error("the audit checkpoint {} was rewound ({anchor} says so): {detail}", checkpoint.display())]
    Rewound {
        /// The checkpoint file.
        checkpoint: PathBuf,
        /// The anchor.
        anchor: String,
        /// What each says.
        detail: String,
    },
    /// The anchor is behind the checkpoint or gone: it was deleted or replaced (which needs
    /// the TPM owner's authorisation), or it belongs to another TPM.
    #[error("the audit head anchor {anchor} does not fit the checkpoint: {detail}")]
    AnchorBehind {
        /// The anchor.
        anchor: String,
        /// What each says.
        detail: String,
    },
    /// The anchored copy of the checkpoint is not one the audit key signed.
    #[error("the audit head anchor {anchor} was forged: {detail}")]
    AnchorForged {
        /// The anchor.
        anchor: String,
        /// Why.
        detail: String,
    },
    /// The anchor's home failed (TPM unreachable, token logged out, ...).
    #[error("the audit head anchor {anchor}: {error}")]
    Anchor {
        /// The anchor.
        anchor: String,
        /// Why (boxed: the key store's errors are large).
        error: Box<KeyStoreError>,
    },
    /// An earlier write or sync failed; the log takes no more entries until it is reopened
    /// (which re-verifies it and cuts an incomplete last line).
    #[error("the audit log {path} failed earlier and takes no more entries; reopen it")]
    Poisoned {
        /// The file.
        path: PathBuf,
    },
}

impl AuditError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn anchor(anchor: &str, error: KeyStoreError) -> Self {
        AuditError::Anchor {
            anchor: anchor.to_owned(),
            error: Box::new(error),
        }
    }
}

// === reading and verifying ===

/// What scanning one file found.
#[derive(Debug)]
struct FileScan {
    /// The sequence number of the file's first entry, if it has one.
    first: Option<u64>,
    /// Length of the file up to the end of the last complete line.
    good_len: u64,
    /// Set when the last line is incomplete.
    torn: Option<Tampered>,
}

/// Checks one entry after another against the chain so far, across segments.
struct Chain<'a> {
    key: Option<&'a AuditPublicKey>,
    /// Whether every entry must carry a signature (`verify --public-key`); when opening, an
    /// unsigned log is refused as a signing mismatch instead.
    require_sig: bool,
    heads: Vec<Head>,
    count: u64,
    prev: ChainHash,
    signed: Option<bool>,
    last: Option<Head>,
}

impl<'a> Chain<'a> {
    /// A chain that starts after `anchor` (or at the genesis).
    fn new(key: Option<&'a AuditPublicKey>, anchor: Option<&Checkpoint>, heads: Vec<Head>) -> Self {
        Self {
            key,
            require_sig: false,
            heads,
            count: anchor.map_or(0, |a| a.seq),
            prev: anchor.map_or(ChainHash::GENESIS, |a| a.hash),
            signed: None,
            last: None,
        }
    }

    fn check(&mut self, line: u64, bytes: &[u8]) -> Result<Head, Tampered> {
        let fail = |seq, problem| Tampered { line, seq, problem };
        let entry: Entry = serde_json::from_slice(bytes)
            .map_err(|e| fail(None, Problem::Unparsable(e.to_string())))?;
        let seq = Some(entry.seq);
        match serde_json::to_vec(&entry) {
            Ok(canonical) if canonical == bytes => {}
            _ => return Err(fail(seq, Problem::NotCanonical)),
        }
        let computed = entry
            .compute_hash()
            .map_err(|e| fail(seq, Problem::Unparsable(e.to_string())))?;
        if computed != entry.hash {
            return Err(fail(
                seq,
                Problem::HashMismatch {
                    stored: entry.hash,
                    computed,
                },
            ));
        }
        let expected = self.count + 1;
        if entry.seq != expected {
            return Err(fail(
                seq,
                Problem::UnexpectedSeq {
                    expected,
                    found: entry.seq,
                },
            ));
        }
        if entry.prev != self.prev {
            return Err(fail(
                seq,
                Problem::BrokenLink {
                    expected: self.prev,
                    found: entry.prev,
                },
            ));
        }
        let signed = entry.sig.is_some();
        if let Some(key) = self.key {
            match &entry.sig {
                None if self.require_sig => return Err(fail(seq, Problem::MissingSignature)),
                None => {}
                Some(sig) if !key.verifies(&entry.hash, sig) => {
                    return Err(fail(seq, Problem::BadSignature))
                }
                Some(_) => {}
            }
        }
        if self.signed.is_some_and(|s| s != signed) {
            return Err(fail(seq, Problem::MixedSigning));
        }
        if let Some(head) = self.heads.iter().find(|h| h.seq == entry.seq) {
            if head.hash != entry.hash {
                return Err(fail(seq, Problem::HeadMismatch { head: head.hash }));
            }
        }
        self.signed = Some(signed);
        self.count = entry.seq;
        self.prev = entry.hash;
        self.last = Some(entry.head());
        Ok(entry.head())
    }

    /// After the last file: the log must reach every kept head.
    fn reaches_heads(&self, lines: u64) -> Result<(), Tampered> {
        match self.heads.iter().map(|h| h.seq).max() {
            Some(head) if self.count < head => Err(Tampered {
                line: lines + 1,
                seq: Some(self.count + 1),
                problem: Problem::Truncated {
                    last: self.count,
                    head,
                },
            }),
            _ => Ok(()),
        }
    }
}

/// Reads one file line by line (bounded line length) and checks every entry against `chain`.
/// Returns the number of lines read with the scan.
fn scan_file(
    file: &mut File,
    chain: &mut Chain<'_>,
) -> Result<Result<(u64, FileScan), Tampered>, std::io::Error> {
    let mut reader = BufReader::new(file);
    let mut first = None;
    let mut good_len = 0u64;
    let mut line = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.last() != Some(&b'\n') {
            let problem = if buf.len() > MAX_LINE {
                Problem::LineTooLong
            } else {
                Problem::IncompleteLastLine
            };
            let tampered = Tampered {
                line,
                seq: None,
                problem,
            };
            if buf.len() > MAX_LINE {
                return Ok(Err(tampered));
            }
            return Ok(Ok((
                line,
                FileScan {
                    first,
                    good_len,
                    torn: Some(tampered),
                },
            )));
        }
        match chain.check(line, &buf[..buf.len() - 1]) {
            Ok(h) => {
                first.get_or_insert(h.seq);
            }
            Err(t) => return Ok(Err(t)),
        }
        good_len += n as u64;
    }
    Ok(Ok((
        line,
        FileScan {
            first,
            good_len,
            torn: None,
        },
    )))
}

/// Where a walk over a log's files stopped.
enum WalkError {
    Io(PathBuf, std::io::Error),
    Tampered(PathBuf, Tampered),
}

impl From<WalkError> for VerifyError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Io(path, source) => VerifyError::Io { path, source },
            WalkError::Tampered(path, tampered) => VerifyError::Tampered { path, tampered },
        }
    }
}

impl From<WalkError> for AuditError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Io(path, source) => AuditError::Io { path, source },
            WalkError::Tampered(path, tampered) => AuditError::Tampered { path, tampered },
        }
    }
}

/// The anchor of the log at `path`, its signature checked when there is a key.
fn load_anchor(path: &Path, key: Option<&AuditPublicKey>) -> Result<Option<Checkpoint>, WalkError> {
    let file = anchor_file(path);
    let anchor = Checkpoint::load(&file).map_err(|e| match e {
        AuditError::Io { path, source } => WalkError::Io(path, source),
        other => WalkError::Tampered(
            file.clone(),
            Tampered {
                line: 1,
                seq: None,
                problem: Problem::Unparsable(other.to_string()),
            },
        ),
    })?;
    check_signature(&file, anchor.as_ref(), key, Purpose::Anchor)?;
    Ok(anchor)
}

/// A checkpoint or anchor that carries a signature must verify under `key`; a signed log's
/// anchor must be signed.
fn check_signature(
    file: &Path,
    point: Option<&Checkpoint>,
    key: Option<&AuditPublicKey>,
    purpose: Purpose,
) -> Result<(), WalkError> {
    if let (Some(point), Some(key)) = (point, key) {
        let required = purpose == Purpose::Anchor;
        if (point.sig.is_some() || required) && !point.verifies(key, purpose) {
            return Err(WalkError::Tampered(
                file.to_owned(),
                Tampered {
                    line: 1,
                    seq: Some(point.seq),
                    problem: Problem::BadCheckpointSignature,
                },
            ));
        }
    }
    Ok(())
}

/// Checks the closed segments of the log at `path`, oldest first, then the `active` file;
/// returns what the active file's scan found and how many segments were read.
fn walk(
    path: &Path,
    active: &mut File,
    chain: &mut Chain<'_>,
) -> Result<(FileScan, usize), WalkError> {
    let segments = closed_segments(path).map_err(|e| WalkError::Io(path.to_owned(), e))?;
    for (_, segment) in &segments {
        let io = |e| WalkError::Io(segment.clone(), e);
        let mut file = File::open(segment).map_err(io)?;
        let (_, scan) = scan_file(&mut file, chain)
            .map_err(io)?
            .map_err(|t| WalkError::Tampered(segment.clone(), t))?;
        if let Some(torn) = scan.torn {
            // Only the active file may end in an interrupted append.
            return Err(WalkError::Tampered(segment.clone(), torn));
        }
    }
    let (lines, scan) = scan_file(active, chain)
        .map_err(|e| WalkError::Io(path.to_owned(), e))?
        .map_err(|t| WalkError::Tampered(path.to_owned(), t))?;
    chain
        .reaches_heads(lines)
        .map_err(|t| WalkError::Tampered(path.to_owned(), t))?;
    Ok((scan, segments.len()))
}

/// What [`verify`] establishes about an intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Number of entries checked (in every kept segment).
    pub count: u64,
    /// The last entry's position, to keep as the head for the next verification.
    pub head: Option<Head>,
    /// Whether every signature was checked against a public key.
    pub signatures_checked: bool,
    /// Closed segments walked before the active file.
    pub segments: usize,
    /// Where the chain starts: after the anchor left by retention, if segments were removed.
    pub anchor: Option<Head>,
}

/// Verifies the hash chain of the log at `path` (its closed segments, then the file itself,
/// starting after the anchor that retention left) and, with a public key, every entry's
/// signature and the anchor's. Returns the entry count, or the first entry that is wrong.
/// Without a kept head it cannot see entries cut off the end (see [`verify_with_head`]).
pub fn verify(path: &Path, public_key: Option<&AuditPublicKey>) -> Result<Verified, VerifyError> {
    verify_with_heads(path, public_key, &[])
}

/// [`verify`], and also checks that the log reaches the kept `head` with the same hash, so a
/// cut-off tail or a rewritten log is caught.
pub fn verify_with_head(
    path: &Path,
    public_key: Option<&AuditPublicKey>,
    head: Option<&Head>,
) -> Result<Verified, VerifyError> {
    let heads: Vec<Head> = head.into_iter().copied().collect();
    verify_with_heads(path, public_key, &heads)
}

/// [`verify`] against several kept heads at once (the log's own checkpoint and the admin's
/// copy): the log must reach each of them with the same hash.
pub fn verify_with_heads(
    path: &Path,
    public_key: Option<&AuditPublicKey>,
    heads: &[Head],
) -> Result<Verified, VerifyError> {
    let anchor = load_anchor(path, public_key)?;
    let mut chain = Chain::new(public_key, anchor.as_ref(), heads.to_vec());
    chain.require_sig = public_key.is_some();
    let mut file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let (scan, segments) = walk(path, &mut file, &mut chain)?;
    if let Some(torn) = scan.torn {
        return Err(VerifyError::Tampered {
            path: path.to_owned(),
            tampered: torn,
        });
    }
    let start = anchor.as_ref().map_or(0, |a| a.seq);
    Ok(Verified {
        count: chain.count - start,
        head: chain.last,
        signatures_checked: public_key.is_some(),
        segments,
        anchor: anchor.map(|a| a.head()),
    })
}

/// Reads every entry of a log without verifying it (for listings such as `m2m audit tail`).
/// Lines that are not entries are returned as errors in place.
pub fn read_entries(path: &Path) -> Result<Vec<Result<Entry, String>>, VerifyError> {
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|source| VerifyError::Io {
            path: path.to_owned(),
            source,
        })?;
        out.push(serde_json::from_slice::<Entry>(&line).map_err(|e| e.to_string()));
    }
    Ok(out)
}

// === the writer ===

/// The single writer's state, behind the mutex.
struct Writer {
    file: File,
    next_seq: u64,
    prev: ChainHash,
    len: u64,
    /// The sequence number the active file starts with (its name once it is closed).
    first_seq: u64,
}

/// An open audit log: appends are durable and chained; many threads may append at once.
pub struct AuditLog {
    path: PathBuf,
    layout: Layout,
    writer: Mutex<Writer>,
    /// Serialises `fdatasync` calls and checkpoints; holds the highest sequence number known
    /// to be on disk.
    synced: Mutex<u64>,
    /// The last entry written (not necessarily synced).
    written: Mutex<Option<Head>>,
    /// The last checkpoint saved (the last entry known to be on disk, signed).
    checkpointed: Mutex<Option<Checkpoint>>,
    poisoned: AtomicBool,
    signer: Option<SigningKey>,
    /// A handle on the active file for syncing outside the writer's lock; replaced when the
    /// active file is closed into a segment.
    sync_file: Mutex<File>,
    recovered_bytes: u64,
    /// Each entry's time is read from it (the CSE's clock; the system clock otherwise).
    clock: Clock,
    /// The anchor of the checkpoint, when one is configured.
    anchored: Option<Anchored>,
    /// The right to append, held as long as the log is open.
    _lock: WriterLock,
}

/// The anchor of an open log and when it last moved.
struct Anchored {
    anchoring: Anchoring,
    clock: Mutex<AnchorClock>,
    /// The sequence number of the last entry written that asks for anchoring at once.
    urgent: AtomicU64,
}

#[derive(Debug)]
struct AnchorClock {
    /// The last attempt to move the anchor (or the open).
    last: Instant,
    /// The counter value the checkpoints carry (counter anchors): the counter's value, or
    /// the next one while an increment is outstanding.
    counter: Option<u64>,
    /// Whether `counter` is known to be the counter's value.
    counter_synced: bool,
    /// A checkpoint was saved that the anchor does not cover yet.
    pending: bool,
    /// The sequence number of the last checkpoint the anchor covers.
    anchored_seq: u64,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("written", &self.written.lock().ok().and_then(|w| *w))
            .field("signed", &self.signer.is_some())
            .field(
                "anchor",
                &self.anchored.as_ref().map(|a| a.anchoring.anchor.name()),
            )
            .finish()
    }
}

impl AuditLog {
    /// Opens the log at `path` with the default [`Layout`] (see [`AuditLog::open_with`]).
    pub fn open(path: &Path, signer: Option<SigningKey>) -> Result<Self, AuditError> {
        Self::open_with(path, signer, Layout::for_log(path))
    }

    /// Opens (or creates, mode 0600) the log at `path` and continues its chain. Every kept
    /// segment is verified first, from the anchor that retention left (or the genesis), with
    /// every signature checked when the log is signed; the log must reach its checkpoint
    /// with the same hash, and a log with entries must have one. A damaged, truncated or
    /// forged log is refused ([`AuditError::Tampered`], [`AuditError::MissingCheckpoint`])
    /// except for an incomplete last line, which only an interrupted, never acknowledged
    /// append leaves and which is cut off.
    ///
    /// With `signer` (a key of role [`KeyRole::AuditLog`], ECDSA P-256, in any home) every
    /// entry and checkpoint is signed inside the key's home; a log is signed from its first
    /// entry or never.
    ///
    /// The log's [`WriterLock`] is taken first and held until the log is dropped; another
    /// writer holding it is refused ([`AuditError::InUse`]).
    pub fn open_with(
        path: &Path,
        signer: Option<SigningKey>,
        layout: Layout,
    ) -> Result<Self, AuditError> {
        Self::open_with_anchor(path, signer, layout, None)
    }

    /// [`AuditLog::open_with`] with the checkpoint anchored in a key home (see
    /// [`AuditLog::open_anchored`]).
    pub fn open_with_anchor(
        path: &Path,
        signer: Option<SigningKey>,
        layout: Layout,
        anchoring: Option<Anchoring>,
    ) -> Result<Self, AuditError> {
        let lock = WriterLock::try_take(path)?.ok_or_else(|| AuditError::InUse {
            path: path.to_owned(),
        })?;
        Self::open_anchored(lock, signer, layout, anchoring)
    }

    /// Opens the log whose [`WriterLock`] the caller took earlier (to know it may write
    /// before doing what the entries will record), as [`AuditLog::open_with`] does.
    pub fn open_locked(
        lock: WriterLock,
        signer: Option<SigningKey>,
        layout: Layout,
    ) -> Result<Self, AuditError> {
        Self::open_anchored(lock, signer, layout, None)
    }

    /// [`AuditLog::open_locked`] with the checkpoint anchored in a key home ([`anchor`]):
    /// the log must be signed, the checkpoint must not be older than the anchor says
    /// ([`AuditError::Rewound`]), and the anchor moves with the checkpoint at the rate
    /// `anchoring` sets, at once for the entries that ask for it
    /// ([`Event::is_anchored_at_once`]), at [`AuditLog::anchor_pending`] and when the log
    /// is dropped. Opening anchors the checkpoint once (creating a counter the first time).
    pub fn open_anchored(
        lock: WriterLock,
        signer: Option<SigningKey>,
        layout: Layout,
        anchoring: Option<Anchoring>,
    ) -> Result<Self, AuditError> {
        let log_path = lock.log().to_owned();
        let path = log_path.as_path();
        if let Some(key) = &signer {
            let handle = key.handle();
            if handle.role() != KeyRole::AuditLog
                || handle.algorithm() != Algorithm::EcdsaP256Sha256
            {
                return Err(AuditError::NotAnAuditKey {
                    key: handle.id().to_string(),
                    role: handle.role(),
                    algorithm: handle.algorithm(),
                });
            }
        }
        let public = signer
            .as_ref()
            .map(|s| AuditPublicKey::from_der(s.public_key().as_der()))
            .transpose()?;
        let io = |e| AuditError::io(path, e);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        if !existed {
            file.sync_all().map_err(io)?;
            sync_parent(path)?;
        }
        let anchor = load_anchor(path, public.as_ref())?;
        let checkpoint = Checkpoint::load(&layout.head_file)?;
        check_signature(
            &layout.head_file,
            checkpoint.as_ref(),
            public.as_ref(),
            Purpose::Head,
        )?;
        let judged = match (&anchoring, &public) {
            (None, _) => None,
            (Some(a), None) => {
                return Err(AuditError::AnchorNeedsSignature {
                    path: path.to_owned(),
                    anchor: a.anchor.name(),
                })
            }
            (Some(a), Some(key)) => Some(anchor::judge(
                &a.anchor,
                checkpoint.as_ref(),
                &layout.head_file,
                key,
            )?),
        };
        let mut heads: Vec<Head> = checkpoint.iter().map(Checkpoint::head).collect();
        heads.extend(judged.as_ref().and_then(anchor::Judged::head));
        let mut chain = Chain::new(public.as_ref(), anchor.as_ref(), heads);
        let (scan, _) = walk(path, &mut file, &mut chain)?;
        if let Some(signed) = chain.signed {
            if signed != signer.is_some() {
                return Err(AuditError::SigningMismatch {
                    path: path.to_owned(),
                    signed,
                });
            }
        }
        let start = anchor.as_ref().map_or(0, |a| a.seq);
        if checkpoint.is_none() && chain.count > start {
            return Err(AuditError::MissingCheckpoint {
                log: path.to_owned(),
                checkpoint: layout.head_file.clone(),
            });
        }
        let file_len = file.metadata().map_err(io)?.len();
        let mut recovered_bytes = 0;
        if scan.torn.is_some() {
            recovered_bytes = file_len - scan.good_len;
            file.set_len(scan.good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let next_seq = chain.count + 1;
        let head = chain.last;
        let sync_file = file.try_clone().map_err(io)?;
        let (counter, counter_synced) = match &judged {
            Some(anchor::Judged::Counter { counter, file }) => (Some(*file), file == counter),
            _ => (None, false),
        };
        let anchored = anchoring.map(|anchoring| Anchored {
            anchoring,
            clock: Mutex::new(AnchorClock {
                last: Instant::now(),
                counter,
                counter_synced,
                pending: false,
                anchored_seq: 0,
            }),
            urgent: AtomicU64::new(0),
        });
        let log = Self {
            path: path.to_owned(),
            layout,
            writer: Mutex::new(Writer {
                file,
                next_seq,
                prev: chain.prev,
                len: scan.good_len,
                first_seq: scan.first.unwrap_or(next_seq),
            }),
            synced: Mutex::new(next_seq - 1),
            written: Mutex::new(head),
            checkpointed: Mutex::new(checkpoint.clone()),
            poisoned: AtomicBool::new(false),
            signer,
            sync_file: Mutex::new(sync_file),
            recovered_bytes,
            clock: Clock::system(),
            anchored,
            _lock: lock,
        };
        // Entries synced after the last checkpoint (a crash in between): move it up.
        if let Some(head) = head {
            if checkpoint.is_none_or(|c| c.seq != head.seq) {
                log.save_checkpoint(head)?;
            }
        } else if checkpoint.is_none() {
            // A log with no entries yet gets its checkpoint now, before its first entry: a
            // crash between the first sync and the first checkpoint then leaves a log longer
            // than its checkpoint (adopted above at the next start), never a log with entries
            // and no checkpoint, which only a deleted checkpoint can produce.
            log.save_checkpoint(Head {
                seq: start,
                hash: chain.prev,
            })?;
        }
        if let Some(anchored) = &log.anchored {
            let current = head.unwrap_or(Head {
                seq: start,
                hash: chain.prev,
            });
            match (&judged, &anchored.anchoring.anchor) {
                (Some(anchor::Judged::CounterNew), HeadAnchor::Counter(counter)) => {
                    // The first anchoring: the counter gets its first value, which the
                    // checkpoint then carries.
                    let name = counter.name();
                    let value = counter.create().map_err(|e| AuditError::anchor(&name, e))?;
                    log.save_signed(current, Some(value))?;
                    let mut clock = anchored.clock.lock().map_err(|_| log.poisoned())?;
                    clock.counter = Some(value);
                    clock.counter_synced = true;
                    clock.anchored_seq = current.seq;
                    clock.pending = false;
                }
                _ => log.checkpoint_and_anchor(current, true)?,
            }
        }
        Ok(log)
    }

    /// The same log, timing its entries by `clock` (the CSE's), so a test that moves the
    /// CSE's time sees the audit log move with it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of an incomplete last line that [`AuditLog::open`] cut off (0 normally).
    pub fn recovered_bytes(&self) -> u64 {
        self.recovered_bytes
    }

    /// The public key that verifies this log's signatures, when it is signed.
    pub fn public_key(&self) -> Option<Result<AuditPublicKey, AuditError>> {
        self.signer
            .as_ref()
            .map(|s| AuditPublicKey::from_der(s.public_key().as_der()))
    }

    /// The last entry's position, or `None` for an empty log.
    pub fn head(&self) -> Option<Head> {
        *self.written.lock().ok()?
    }

    /// The last checkpoint: the last entry known to be on disk, signed when the log is. An
    /// admin keeps a copy of it away from the CSE (`m2m audit head`) to catch later cuts.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpointed.lock().ok()?.clone()
    }

    fn poisoned(&self) -> AuditError {
        AuditError::Poisoned {
            path: self.path.clone(),
        }
    }

    /// Appends an event and returns once it is on disk, with the new head. Safe to call from
    /// many threads; concurrent calls share `fdatasync`s.
    pub fn append(&self, event: Event) -> Result<Head, AuditError> {
        let head = self.write(event)?;
        self.sync_through(head.seq)?;
        Ok(head)
    }

    /// Appends several events with one `fdatasync` and returns the new head (`None` for no
    /// events). A writer that takes what is queued and appends it this way keeps up with any
    /// rate the disk allows, where one sync per entry would fall behind.
    pub fn append_batch(
        &self,
        events: impl IntoIterator<Item = Event>,
    ) -> Result<Option<Head>, AuditError> {
        let mut head = None;
        for event in events {
            head = Some(self.write(event)?);
        }
        if let Some(h) = &head {
            self.sync_through(h.seq)?;
        }
        Ok(head)
    }

    /// Writes (without syncing) one chained, possibly signed entry; closes the active file
    /// into a segment when it has grown to the layout's size.
    fn write(&self, event: Event) -> Result<Head, AuditError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned());
        }
        let mut w = self.writer.lock().map_err(|_| self.poisoned())?;
        let mut entry = Entry {
            seq: w.next_seq,
            time: chrono::DateTime::<chrono::Utc>::from(self.clock.system_time())
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            event,
            prev: w.prev,
            hash: ChainHash::GENESIS,
            sig: None,
        };
        entry.hash = entry.compute_hash().map_err(AuditError::Encode)?;
        if let Some(signer) = &self.signer {
            let sig = signer.sign(&signed_message(&entry.hash))?;
            entry.sig = Some(hex::encode(sig.as_der()));
        }
        let mut line = serde_json::to_vec(&entry).map_err(AuditError::Encode)?;
        line.push(b'\n');
        if let Err(e) = w.file.write_all(&line) {
            // Cut a partial line so the file stays a valid chain; if even that fails, stop.
            let len = w.len;
            if w.file.set_len(len).is_err() {
                self.poisoned.store(true, Ordering::Release);
            }
            return Err(AuditError::io(&self.path, e));
        }
        w.len += line.len() as u64;
        w.next_seq += 1;
        if let Some(anchored) = &self.anchored {
            if entry.event.is_anchored_at_once() {
                anchored.urgent.fetch_max(entry.seq, Ordering::AcqRel);
            }
        }
        w.prev = entry.hash;
        if let Ok(mut written) = self.written.lock() {
            *written = Some(entry.head());
        }
        if w.len >= self.layout.segment_bytes {
            if let Err(e) = self.rotate(&mut w) {
                // The writer's files are in an unknown state: reopening re-verifies them.
                self.poisoned.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(entry.head())
    }

    /// Closes the active file into a segment named by its first sequence number, starts a
    /// new active file, and applies retention.
    fn rotate(&self, w: &mut Writer) -> Result<(), AuditError> {
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e| AuditError::io(&p, e)
        };
        w.file.sync_data().map_err(io(&self.path))?;
        let closed = segment_file(&self.path, w.first_seq);
        std::fs::rename(&self.path, &closed).map_err(io(&closed))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io(&self.path))?;
        sync_parent(&self.path)?;
        let handle = file.try_clone().map_err(io(&self.path))?;
        *self.sync_file.lock().map_err(|_| self.poisoned())? = handle;
        w.file = file;
        w.len = 0;
        w.first_seq = w.next_seq;
        self.apply_retention()
    }

    /// Removes the oldest closed segments beyond [`Layout::keep_segments`], after moving the
    /// anchor to the last entry they hold, so the kept chain stays verifiable and removing
    /// more by hand shows.
    fn apply_retention(&self) -> Result<(), AuditError> {
        let keep = self.layout.keep_segments;
        let segments = closed_segments(&self.path).map_err(|e| AuditError::io(&self.path, e))?;
        if keep == 0 || segments.len() <= keep {
            return Ok(());
        }
        let (gone, kept) = segments.split_at(segments.len() - keep);
        let first_kept = &kept[0].1;
        let mut line = Vec::new();
        BufReader::new(File::open(first_kept).map_err(|e| AuditError::io(first_kept, e))?)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| AuditError::io(first_kept, e))?;
        let entry: Entry =
            serde_json::from_slice(line.trim_ascii_end()).map_err(|e| AuditError::BadHead {
                path: first_kept.clone(),
                reason: e.to_string(),
            })?;
        let anchor = Head {
            seq: entry.seq - 1,
            hash: entry.prev,
        };
        Checkpoint::sign(anchor, Purpose::Anchor, self.signer.as_ref())?
            .save(&anchor_file(&self.path))?;
        for (_, segment) in gone {
            std::fs::remove_file(segment).map_err(|e| AuditError::io(segment, e))?;
        }
        sync_parent(&self.path)
    }

    /// Makes sure every entry up to `seq` is on disk (group commit), then moves the
    /// checkpoint to the last entry synced.
    fn sync_through(&self, seq: u64) -> Result<(), AuditError> {
        let mut synced = self.synced.lock().map_err(|_| self.poisoned())?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned());
        }
        if *synced >= seq {
            return Ok(());
        }
        // Everything written so far is covered by this sync, including other threads'
        // entries that are waiting for the lock.
        let Some(target) = *self.written.lock().map_err(|_| self.poisoned())? else {
            return Ok(());
        };
        let sync = self
            .sync_file
            .lock()
            .map_err(|_| self.poisoned())?
            .sync_data();
        if let Err(e) = sync {
            self.poisoned.store(true, Ordering::Release);
            return Err(AuditError::io(&self.path, e));
        }
        *synced = target.seq;
        self.save_checkpoint(target)
    }

    /// Signs and saves `head` as the checkpoint, and moves the anchor when it is due. An
    /// anchor that cannot be moved now is logged and tried again at the next checkpoint:
    /// the entries are on disk, and what is on disk stays consistent (see [`anchor`]).
    fn save_checkpoint(&self, head: Head) -> Result<(), AuditError> {
        match self.checkpoint_and_anchor(head, false) {
            Err(e @ (AuditError::Anchor { .. } | AuditError::AnchorBehind { .. })) => {
                tracing::error!(error = %e, "the audit checkpoint could not be anchored now; trying again at the next one");
                Ok(())
            }
            other => other,
        }
    }

    /// Signs `head` with the anchor's `counter` value, if any, and saves it as the
    /// checkpoint.
    fn save_signed(&self, head: Head, counter: Option<u64>) -> Result<Checkpoint, AuditError> {
        let checkpoint =
            Checkpoint::sign_counted(head, Purpose::Head, counter, self.signer.as_ref())?;
        checkpoint.save(&self.layout.head_file)?;
        if let Ok(mut kept) = self.checkpointed.lock() {
            *kept = Some(checkpoint.clone());
        }
        Ok(checkpoint)
    }

    /// Saves the checkpoint and, when `force`d or due, moves the anchor to it.
    fn checkpoint_and_anchor(&self, head: Head, force: bool) -> Result<(), AuditError> {
        let Some(anchored) = &self.anchored else {
            return self.save_signed(head, None).map(drop);
        };
        let mut clock = anchored.clock.lock().map_err(|_| self.poisoned())?;
        let urgent = anchored.urgent.load(Ordering::Acquire) > clock.anchored_seq;
        if !(force || urgent || clock.last.elapsed() >= anchored.anchoring.interval) {
            self.save_signed(head, clock.counter)?;
            clock.pending = true;
            return Ok(());
        }
        clock.pending = true;
        let moved = self.move_anchor(anchored, &mut clock, head);
        // A failed attempt is retried at the next checkpoint that asks for it at once, or
        // an interval later (not in a loop while the home is down).
        clock.last = Instant::now();
        if moved.is_ok() {
            clock.pending = false;
            clock.anchored_seq = head.seq;
        }
        moved
    }

    /// Saves the checkpoint and moves the anchor to it, in the order that keeps every crash
    /// in between acceptable to the next start (see [`anchor`]).
    fn move_anchor(
        &self,
        anchored: &Anchored,
        clock: &mut AnchorClock,
        head: Head,
    ) -> Result<(), AuditError> {
        let name = anchored.anchoring.anchor.name();
        match &anchored.anchoring.anchor {
            HeadAnchor::Counter(counter) => {
                let base = match clock.counter {
                    Some(value) if clock.counter_synced => value,
                    // After a failed increment: did it happen? The counter says.
                    _ => counter
                        .read()
                        .map_err(|e| AuditError::anchor(&name, e))?
                        .ok_or_else(|| AuditError::AnchorBehind {
                            anchor: name.clone(),
                            detail: "the counter disappeared while the log was open".into(),
                        })?,
                };
                let next = base
                    .checked_add(1)
                    .ok_or_else(|| AuditError::AnchorBehind {
                        anchor: name.clone(),
                        detail: "the counter is at its largest value".into(),
                    })?;
                // Write first: a crash before the increment leaves a checkpoint one ahead of
                // the counter, which the next start accepts and completes.
                self.save_signed(head, Some(next))?;
                clock.counter = Some(next);
                clock.counter_synced = false;
                let value = counter
                    .increment()
                    .map_err(|e| AuditError::anchor(&name, e))?;
                if value != next {
                    // Something else incremented the counter too: carry its value.
                    tracing::warn!(anchor = %name, expected = next, found = value, "the audit anchor's counter was moved by something other than this log");
                    self.save_signed(head, Some(value))?;
                }
                clock.counter = Some(value);
                clock.counter_synced = true;
            }
            HeadAnchor::Record(record) => {
                let checkpoint = self.save_signed(head, None)?;
                let bytes = serde_json::to_vec(&checkpoint).map_err(AuditError::Encode)?;
                record
                    .write(&bytes)
                    .map_err(|e| AuditError::anchor(&name, e))?;
            }
        }
        Ok(())
    }

    /// When the anchor falls due for a checkpoint it does not cover yet (`None`: nothing
    /// waits, or no anchor). The log's writer calls [`AuditLog::anchor_pending`] then, so
    /// that the last entries of a quiet period are anchored without a further entry.
    pub fn anchor_due(&self) -> Option<Instant> {
        let anchored = self.anchored.as_ref()?;
        let clock = anchored.clock.lock().ok()?;
        clock
            .pending
            .then(|| clock.last + anchored.anchoring.interval)
    }

    /// Moves the anchor to the current checkpoint if it does not cover it yet (at an
    /// orderly shutdown, and when [`AuditLog::anchor_due`] has come). Returns whether it
    /// moved.
    pub fn anchor_pending(&self) -> Result<bool, AuditError> {
        let Some(anchored) = &self.anchored else {
            return Ok(false);
        };
        let _synced = self.synced.lock().map_err(|_| self.poisoned())?;
        let pending = anchored.clock.lock().map_err(|_| self.poisoned())?.pending;
        let Some(head) = self.checkpoint().map(|c| c.head()) else {
            return Ok(false);
        };
        if !pending {
            return Ok(false);
        }
        self.checkpoint_and_anchor(head, true).map(|()| true)
    }

    /// Saves the current head to `path`, durably (a copy for [`verify_with_head`]). It
    /// catches truncation only where whoever can write the log cannot also rewrite the head
    /// (another machine, another account, write-once storage).
    pub fn checkpoint_head(&self, path: &Path) -> Result<Option<Head>, AuditError> {
        let head = self.head();
        if let Some(h) = &head {
            h.save(path)?;
        }
        Ok(head)
    }
}

impl Drop for AuditLog {
    /// Anchors what the anchor does not cover yet, so an orderly stop leaves no window.
    fn drop(&mut self) {
        if let Err(e) = self.anchor_pending() {
            tracing::error!(error = %e, "the last audit checkpoint could not be anchored");
        }
    }
}
