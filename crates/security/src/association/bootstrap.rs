//! The exporter value an enrolment association carries to the one request it may serve
//! (TS-0003 clauses 8.3.2.1, 10.3.1): computed by the enrolment listener after the handshake,
//! emptied by the MEF exactly once, so one association can enrol once and never twice.

use std::fmt;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Length of the exporter output an enrolment association carries (clause 10.3.1).
pub const BOOTSTRAP_EXPORTER_LEN: usize = 48;

/// The label of the exporter computed after an enrolment handshake (clause 10.3.1).
pub const BOOTSTRAP_EXPORTER_LABEL: &str = "EXPORTER-oneM2M-Bootstrap";

/// The `EXPORTER-oneM2M-Bootstrap` output of one enrolment association, usable once.
///
/// Clones share the one cell: whichever request takes it first gets the bytes, every later
/// one gets `None` (one Enrolment Exchange per MEF handshake). The bytes are zeroized when
/// taken and dropped, or when the association ends unused. `Debug` says only whether the
/// value is still there; equality is identity of the cell.
#[derive(Clone)]
pub struct BootstrapExporter(Arc<Mutex<Option<Zeroizing<[u8; BOOTSTRAP_EXPORTER_LEN]>>>>);

impl BootstrapExporter {
    /// Wraps the exporter output of a finished enrolment handshake.
    pub fn new(bytes: Zeroizing<[u8; BOOTSTRAP_EXPORTER_LEN]>) -> Self {
        Self(Arc::new(Mutex::new(Some(bytes))))
    }

    /// The exporter output, the first time only.
    pub fn take(&self) -> Option<Zeroizing<[u8; BOOTSTRAP_EXPORTER_LEN]>> {
        // A poisoned lock only means a holder panicked; the cell itself is still sound.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Whether the value was already taken.
    pub fn is_used(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_none()
    }
}

impl fmt::Debug for BootstrapExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_used() { "used" } else { "unused" };
        write!(f, "BootstrapExporter({state})")
    }
}

impl PartialEq for BootstrapExporter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BootstrapExporter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_is_taken_once_and_never_printed() {
        let mut bytes = Zeroizing::new([0u8; BOOTSTRAP_EXPORTER_LEN]);
        bytes[0] = 0xab;
        let cell = BootstrapExporter::new(bytes);
        let shared = cell.clone();
        assert_eq!(cell, shared);
        assert_eq!(format!("{cell:?}"), "BootstrapExporter(unused)");
        assert_eq!(shared.take().map(|b| b[0]), Some(0xab));
        assert!(cell.take().is_none(), "a clone cannot take it again");
        assert_eq!(format!("{cell:?}"), "BootstrapExporter(used)");
        let other = BootstrapExporter::new(Zeroizing::new([0u8; BOOTSTRAP_EXPORTER_LEN]));
        assert_ne!(cell, other);
    }
}
