//! One writer per audit log, across processes.
//!
//! [`AuditLog`](super::AuditLog) keeps the chain's head (sequence number and hash) in memory,
//! so two writers appending to one file would fork the chain, and the next open would refuse
//! the log as tampered. Every writer therefore holds an exclusive advisory lock (`flock`) on
//! the log for as long as it appends: [`AuditLog::open_with`](super::AuditLog::open_with)
//! takes it and the log keeps it until it is dropped, so no caller can forget it. The `cse`
//! binary holds it while it runs; `m2m ca` and `cse init` append only when they can take it.
//!
//! The lock is on `<log>.lock` ([`lock_file`](super::lock_file)), not on the log itself,
//! because the log file is renamed into a segment when it reaches its size
//! ([`Layout`](super::Layout)).

use super::{lock_file, AuditError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock on one audit log: the right to append to it. Released when dropped (or when the
/// process ends).
#[derive(Debug)]
pub struct WriterLock {
    log: PathBuf,
    _file: File,
}

impl WriterLock {
    /// Takes the exclusive lock on the audit log at `log` without waiting, creating its lock
    /// file (mode 600) if needed. `Ok(None)` when another writer holds it: a running CSE,
    /// or another open [`AuditLog`](super::AuditLog) of this process.
    pub fn try_take(log: &Path) -> Result<Option<Self>, AuditError> {
        let path = lock_file(log);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AuditError::io(&path, e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self {
                log: log.to_owned(),
                _file: file,
            })),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(AuditError::io(&path, e.into())),
        }
    }

    /// The audit log this lock is for.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.log");
        let first = WriterLock::try_take(&path).expect("lock").expect("free");
        assert!(WriterLock::try_take(&path).expect("lock").is_none(), "held");
        drop(first);
        assert!(
            WriterLock::try_take(&path).expect("lock").is_some(),
            "released"
        );
    }
}
