//! One writer per audit log, across processes.
//!
//! `manager::audit::AuditLog` keeps the chain's head (sequence number and hash) in memory, so
//! two processes appending to one file would fork the chain, and the next `cse` start would
//! refuse the log as tampered. The `cse` binary therefore holds an exclusive advisory lock
//! (`flock`) on its audit log for as long as it runs, and `m2m ca` and `cse init` append only
//! when they can take the same lock. A CSE that finds the lock taken refuses to start.
//!
//! The lock is on `<log>.lock`, not on the log itself, because the log file is renamed into
//! a segment when it reaches its size (`manager::audit::Layout`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The lock on one audit log; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct AuditLock {
    _file: File,
}

/// Takes the exclusive lock on the audit log at `path` without waiting, creating its lock
/// file (mode 600) if needed. `Ok(None)` when another process holds it: a running CSE.
pub fn try_lock(path: &Path) -> io::Result<Option<AuditLock>> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(manager::audit::lock_file(path))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(AuditLock { _file: file })),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let first = try_lock(&path).expect("lock").expect("free");
        assert!(try_lock(&path).expect("lock").is_none(), "held");
        drop(first);
        assert!(try_lock(&path).expect("lock").is_some(), "released");
    }
}
