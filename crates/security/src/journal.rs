//! The file side of the CSE's small durable journals (keys the MEF provisioned, Ke kept for
//! enrolment targets, MAF key registrations): JSON lines, mode 600, appended and synced before
//! the write is acknowledged; a last line cut short by a crash (never acknowledged) is dropped
//! when the journal is opened; compaction rewrites it whole and atomically.
//!
//! A journal can keep space reserved past its end ([`reserve`]): blocks allocated to the file
//! without changing its length, which later appends fill without asking the file system for
//! more. A security journal so reserved still takes its next lines when the disk is full
//! (a flood filling the data volume must not stop a revocation from persisting).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Opens (or creates, mode 600) the journal at `path` for appending and returns it with its
/// complete lines. A torn last line is cut off the file (`what` names the journal in the
/// warning); the directory entry is synced so that a new journal survives a crash.
pub(crate) fn open(path: &Path, what: &str) -> std::io::Result<(File, Zeroizing<String>)> {
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    sync_dir(path)?;
    let mut text = Zeroizing::new(String::new());
    file.read_to_string(&mut text)?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        tracing::warn!(journal = %path.display(), "dropping a {what} line cut short by a crash (never acknowledged)");
        file.set_len(complete as u64)?;
        file.sync_all()?;
        text.truncate(complete);
    }
    Ok((file, text))
}

/// Appends `bytes` (whole lines) and syncs them: durable when it returns `Ok`.
pub(crate) fn append(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = file;
    f.write_all(bytes)?;
    file.sync_data()
}

/// Replaces the journal with `text` atomically (a new file, synced, renamed over the old one,
/// the directory synced) and returns the new file opened for appending.
pub(crate) fn replace(path: &Path, text: &[u8]) -> std::io::Result<File> {
    let tmp = path.with_extension("compact");
    let _ = std::fs::remove_file(&tmp);
    crate::sealing::write_new_private(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    OpenOptions::new().read(true).append(true).open(path)
}

/// Keeps at least `bytes` allocated to `file` past its current end (fallocate with
/// `KEEP_SIZE`: the length, and so what a reader sees, does not change). Allocating what is
/// already allocated costs nothing, so calling it after every append tops the reserve up.
/// Fails with `ENOSPC` when the disk cannot hold the whole reserve (the journal keeps
/// whatever it had), and with `EOPNOTSUPP` on file systems that cannot preallocate.
pub(crate) fn reserve(file: &File, bytes: u64) -> std::io::Result<()> {
    let end = file.metadata()?.len();
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, end, bytes)
        .map_err(std::io::Error::from)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir).and_then(|d| d.sync_all()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_lines_go_and_replacement_is_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j.jsonl");
        let (file, text) = open(&path, "test").expect("open");
        assert!(text.is_empty());
        append(&file, b"{\"a\":1}\n").expect("append");
        drop(file);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"b\":"))
            .expect("torn");
        let (file, text) = open(&path, "test").expect("reopen");
        assert_eq!(text.as_str(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":1}\n");
        drop(file);
        let file = replace(&path, b"{\"c\":3}\n").expect("replace");
        append(&file, b"{\"d\":4}\n").expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"c\":3}\n{\"d\":4}\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
