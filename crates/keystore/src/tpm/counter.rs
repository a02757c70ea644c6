//! The level-2 anchor: a TPM NV index of type counter (`TPM_NT_COUNTER`).
//!
//! * It is defined under the owner hierarchy (owner authorisation, as for the home's storage
//!   primary key), with `AUTHREAD | AUTHWRITE | OWNERREAD | NO_DA` and an empty index
//!   authorisation: reading and incrementing need no secret; defining and deleting need the
//!   owner's.
//! * Not `ORDERLY`: an orderly counter lives in RAM and, after a power loss, the TPM moves it
//!   ahead by up to its write-back interval, which would make an intact checkpoint look
//!   rewound. Each increment is therefore an NV write (TPMs rate their NV for a bounded
//!   number of writes: the caller increments at a bounded rate).
//! * Defining it increments it once: a counter index has no value until its first
//!   increment, which sets it above the highest value any counter of this TPM ever had. So
//!   deleting and re-defining the index does not take it back.

use super::worker::{NvCounterState, TpmFailure};
use super::TpmHome;
use crate::anchor::MonotonicCounter;
use crate::error::KeyStoreError;
use std::fmt;
use std::sync::Arc;

/// First NV index of the range the TCG leaves to the platform owner.
pub const OWNER_NV_FIRST: u32 = 0x0180_0000;
/// Last NV index of the owner's range.
pub const OWNER_NV_LAST: u32 = 0x01BF_FFFF;

/// An NV counter index of the TPM of a [`TpmHome`].
pub struct TpmNvCounter {
    home: Arc<TpmHome>,
    index: u32,
}

impl fmt::Debug for TpmNvCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Parses `0x01800100` (hex, the `0x` optional) as an NV index of the owner's range.
pub fn parse_nv_index(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let index = u32::from_str_radix(digits, 16)
        .map_err(|_| format!("{text:?} is not an NV index in hex (e.g. 0x01800100)"))?;
    if !(OWNER_NV_FIRST..=OWNER_NV_LAST).contains(&index) {
        return Err(format!(
            "{text:?} is outside the owner's NV index range \
             {OWNER_NV_FIRST:#010x}-{OWNER_NV_LAST:#010x}"
        ));
    }
    Ok(index)
}

impl TpmHome {
    /// The NV counter at `index` (`0x01800100`, in the owner's range); it need not exist yet.
    pub fn nv_counter(self: &Arc<Self>, index: &str) -> Result<TpmNvCounter, KeyStoreError> {
        let index = parse_nv_index(index).map_err(|reason| KeyStoreError::AnchorUnusable {
            anchor: format!("TPM NV index {index:?}"),
            reason,
        })?;
        Ok(TpmNvCounter {
            home: self.clone(),
            index,
        })
    }
}

impl TpmNvCounter {
    fn call<R: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut super::worker::Tpm) -> Result<R, TpmFailure> + Send + 'static,
    ) -> Result<R, KeyStoreError> {
        self.home.call(f).map_err(|e| match e {
            // The worker's own findings about the index (not a counter, orderly, missing).
            TpmFailure::Other(reason) => KeyStoreError::AnchorUnusable {
                anchor: self.name(),
                reason,
            },
            other => self.home.failure_of(operation, other),
        })
    }
}

impl MonotonicCounter for TpmNvCounter {
    fn name(&self) -> String {
        format!("TPM NV counter {:#010x}", self.index)
    }

    fn read(&self) -> Result<Option<u64>, KeyStoreError> {
        let index = self.index;
        match self.call("read an NV counter", move |tpm| tpm.nv_counter_read(index))? {
            None => Ok(None),
            Some(NvCounterState::Value(v)) => Ok(Some(v)),
            // Defined and never incremented (a crash right after defining it): give it its
            // first value now, as defining it would have.
            Some(NvCounterState::Unwritten) => self.increment().map(Some),
        }
    }

    fn create(&self) -> Result<u64, KeyStoreError> {
        let index = self.index;
        self.call("define an NV counter", move |tpm| {
            if tpm.nv_counter_read(index)?.is_some() {
                return Err(TpmFailure::Other(
                    "the NV index already exists: choose another index, or delete it with \
                     the owner's authorisation (tpm2_nvundefine) if nothing uses it"
                        .into(),
                ));
            }
            tpm.nv_counter_define(index)
        })
    }

    fn increment(&self) -> Result<u64, KeyStoreError> {
        let index = self.index;
        self.call("increment an NV counter", move |tpm| {
            tpm.nv_counter_increment(index)
        })
    }
}
