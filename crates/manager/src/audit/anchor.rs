//! The checkpoint anchored in a key home, where whoever can rewrite the log's files cannot
//! roll it back (issue 9, M3).
//!
//! The checkpoint file shows entries cut off the end of the log, unless the same person
//! rewinds the file to an older signed checkpoint too. An anchor catches that:
//!
//! * **TPM NV counter** ([`HeadAnchor::Counter`], level 2). The counter only grows. Each
//!   anchoring writes the checkpoint carrying the *next* counter value (signed with it),
//!   then increments the counter; every checkpoint written in between carries the value of
//!   the last anchoring. At start the checkpoint's value `k` must be the counter's `C` or
//!   `C + 1`: below `C` the file was rewound to a checkpoint older than the last anchoring.
//!   `C + 1` is a crash (or a failed increment) between the two writes: the start accepts it
//!   and completes the increment. Writing first means no crash can leave a counter ahead of
//!   the file, so the start is never refused for a crash, and no older file passes: every
//!   checkpoint written before the last increment carries a value below `C`.
//! * **PKCS#11 record** ([`HeadAnchor::Record`], level 3). A private token object holds a
//!   copy of the signed checkpoint, replaced after the file at each anchoring. At start the
//!   log must reach the record's head with the same hash, and the file must not be older
//!   than the record. A crash between the two writes leaves the record older than the file,
//!   which is what normal operation looks like between anchorings.
//!
//! Both need a signed log: the checkpoint's counter value and the record are only worth
//! their signature. Anchoring happens at a bounded rate ([`Anchoring::interval`]) plus at
//! once after a batch with an event an administrator or the withdrawal of a credential
//! caused ([`super::Event::is_anchored_at_once`]), and when the log closes. What a writer
//! of the files can still cut is what came after the last anchoring.

use super::{AuditError, AuditPublicKey, Checkpoint, Head, Purpose};
use keystore::anchor::{AnchorRecord, MonotonicCounter};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Default shortest time between two anchorings for ordinary entries.
pub const DEFAULT_ANCHOR_INTERVAL: Duration = Duration::from_secs(300);

/// Where the checkpoint is anchored.
#[derive(Clone)]
pub enum HeadAnchor {
    /// A monotonic counter (TPM NV counter index) whose value the signed checkpoint carries.
    Counter(Arc<dyn MonotonicCounter>),
    /// A record (PKCS#11 data object) holding a copy of the signed checkpoint.
    Record(Arc<dyn AnchorRecord>),
}

impl HeadAnchor {
    /// The anchor's name, for messages.
    pub fn name(&self) -> String {
        match self {
            Self::Counter(c) => c.name(),
            Self::Record(r) => r.name(),
        }
    }
}

impl fmt::Debug for HeadAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An anchor and how often ordinary entries move it.
#[derive(Debug, Clone)]
pub struct Anchoring {
    /// The anchor.
    pub anchor: HeadAnchor,
    /// Shortest time between two anchorings when no entry asks for one at once.
    pub interval: Duration,
}

/// What the anchor says about a log's checkpoint, once judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// No counter yet and a checkpoint without a counter value: a log that was never
    /// anchored. The first anchoring creates the counter.
    CounterNew,
    /// The checkpoint carries the counter's value (`file == counter`) or the next one
    /// (`file == counter + 1`: a crash between writing the checkpoint and incrementing).
    Counter {
        /// The counter's value.
        counter: u64,
        /// The value the checkpoint carries.
        file: u64,
    },
    /// The record's signed checkpoint (`None`: no record yet). The log must reach its head.
    Record(Option<Checkpoint>),
}

impl Judged {
    /// A head the log must reach, besides its own checkpoint.
    pub fn head(&self) -> Option<Head> {
        match self {
            Self::Record(Some(c)) => Some(c.head()),
            _ => None,
        }
    }
}

/// Reads the anchor and checks the log's checkpoint against it: refuses a checkpoint older
/// than the anchor ([`AuditError::Rewound`]), a counter behind the checkpoint or missing
/// ([`AuditError::AnchorBehind`]) and a record whose signature does not verify under `key`
/// ([`AuditError::AnchorForged`]). `checkpoint_file` names the checkpoint in messages.
pub fn judge(
    anchor: &HeadAnchor,
    checkpoint: Option<&Checkpoint>,
    checkpoint_file: &Path,
    key: &AuditPublicKey,
) -> Result<Judged, AuditError> {
    let name = anchor.name();
    let rewound = |detail: String| AuditError::Rewound {
        checkpoint: checkpoint_file.to_owned(),
        anchor: name.clone(),
        detail,
    };
    match anchor {
        HeadAnchor::Counter(counter) => {
            let value = counter.read().map_err(|e| AuditError::anchor(&name, e))?;
            // A counter value counts only under a valid signature.
            let carried = checkpoint
                .filter(|c| c.verifies(key, Purpose::Head))
                .and_then(|c| c.counter);
            match (value, carried) {
                (None, None) => Ok(Judged::CounterNew),
                (None, Some(k)) => Err(AuditError::AnchorBehind {
                    anchor: name.clone(),
                    detail: format!(
                        "the checkpoint was anchored at counter value {k}, but the counter \
                         does not exist: it was deleted (which needs the TPM owner's \
                         authorisation) or this is another TPM"
                    ),
                }),
                (Some(c), None) => Err(rewound(format!(
                    "the counter is at {c} but the checkpoint carries no counter value: it \
                     was rewound to one written before the anchor was configured (or the \
                     first start with the anchor stopped between creating the counter and \
                     writing the first anchored checkpoint: verify the log against the \
                     admin's kept head, and if it is intact delete the counter with the \
                     owner's authorisation to anchor the log again)"
                ))),
                (Some(c), Some(k)) if k < c => Err(rewound(format!(
                    "it carries counter value {k} but the counter is at {c}: entries after \
                     it may have been cut off the end"
                ))),
                (Some(c), Some(k)) if k > c.saturating_add(1) => Err(AuditError::AnchorBehind {
                    anchor: name.clone(),
                    detail: format!(
                        "the checkpoint carries counter value {k} but the counter is at {c}: \
                         the counter was replaced or this is another TPM"
                    ),
                }),
                (Some(c), Some(k)) => Ok(Judged::Counter {
                    counter: c,
                    file: k,
                }),
            }
        }
        HeadAnchor::Record(record) => {
            let Some(bytes) = record.read().map_err(|e| AuditError::anchor(&name, e))? else {
                return Ok(Judged::Record(None));
            };
            let kept: Checkpoint =
                serde_json::from_slice(&bytes).map_err(|e| AuditError::AnchorForged {
                    anchor: name.clone(),
                    detail: format!("it does not hold a checkpoint: {e}"),
                })?;
            if !kept.verifies(key, Purpose::Head) {
                return Err(AuditError::AnchorForged {
                    anchor: name.clone(),
                    detail: "its signature does not verify under the audit public key".into(),
                });
            }
            match checkpoint {
                Some(c) if c.seq >= kept.seq => Ok(Judged::Record(Some(kept))),
                Some(c) => Err(rewound(format!(
                    "it is at entry {} but the anchor holds entry {}: entries after it may \
                     have been cut off the end",
                    c.seq, kept.seq
                ))),
                None => Err(rewound(format!(
                    "it is missing but the anchor holds entry {}",
                    kept.seq
                ))),
            }
        }
    }
}
