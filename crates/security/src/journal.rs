//! The CSE's durable journals (withdrawn credentials, keys the MEF provisioned, Ke kept for
//! enrolment targets, MAF key registrations) are one type, [`Journal`]: JSON lines, mode 600,
//! appended and synced before the write is acknowledged; a last line cut short by a crash
//! (never acknowledged) is dropped when the journal is opened, and a failed append is cut back
//! so that no torn line is ever buried under a later one; compaction rewrites it whole and
//! atomically. What each line means stays with its owner.
//!
//! A journal can keep space reserved past its end ([`Journal::open`]'s `reserve`): blocks
//! allocated to the file without changing its length, which later appends fill without asking
//! the file system for more. A security journal so reserved still takes its next lines when
//! the disk is full (a flood filling the data volume must not stop a revocation from
//! persisting); lines it cannot take yet can be held ([`Writer::hold`]) and written later.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use zeroize::Zeroizing;

/// One append-only journal file, its writes serialized by its own lock.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    what: &'static str,
    /// Bytes kept allocated past the end (0: none).
    reserve: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// The length of the journal's complete, synced lines: a failed append is cut back to it.
    end: u64,
    /// Lines held (in force for their owner) but not yet written, oldest first.
    held: Vec<Vec<u8>>,
}

/// The journal locked for writing: what an owner does while holding it is ordered with its
/// lines.
pub(crate) struct Writer<'a> {
    journal: &'a Journal,
    state: MutexGuard<'a, State>,
}

impl Journal {
    /// Opens (or creates, mode 600) the journal at `path` and returns it with its complete
    /// lines. A torn last line is cut off the file (`what` names the journal in the warning);
    /// the directory entry is synced so that a new journal survives a crash. With `reserve`
    /// above zero, that much space is kept allocated past the end from now on.
    pub(crate) fn open(
        path: &Path,
        what: &'static str,
        reserve: u64,
    ) -> std::io::Result<(Self, Zeroizing<String>)> {
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
        let journal = Self {
            path: path.to_owned(),
            what,
            reserve,
            state: Mutex::new(State {
                file,
                end: text.len() as u64,
                held: Vec::new(),
            }),
        };
        journal.lock().keep_reserve();
        Ok((journal, text))
    }

    /// Where the journal lives (for error messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the journal's lock.
    pub(crate) fn lock(&self) -> Writer<'_> {
        Writer {
            journal: self,
            state: self.state.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Appends `bytes` (whole lines) and syncs them: durable when it returns `Ok`.
    pub(crate) fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.lock().append(bytes)
    }

    /// Replaces the journal with `text` atomically (a new file, synced, renamed over the old
    /// one, the directory synced); later appends go to the new file.
    pub(crate) fn replace(&self, text: &[u8]) -> std::io::Result<()> {
        let mut writer = self.lock();
        let tmp = self.path.with_extension("compact");
        let _ = std::fs::remove_file(&tmp);
        crate::sealing::write_new_private(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        writer.state.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)?;
        writer.state.end = text.len() as u64;
        writer.keep_reserve();
        Ok(())
    }

    /// How many held lines are not yet written.
    pub(crate) fn held(&self) -> usize {
        self.lock().state.held.len()
    }

    /// Points the journal at `file` whose complete lines end at `end` (tests: a device that
    /// refuses writes, as if the disk filled).
    #[cfg(test)]
    pub(crate) fn swap_file(&self, file: File, end: u64) {
        let mut writer = self.lock();
        writer.state.file = file;
        writer.state.end = end;
    }
}

impl Writer<'_> {
    /// Appends `bytes` (whole lines) in one write and syncs them: durable when it returns
    /// `Ok`. On failure the file is cut back to its last complete line.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let state = &mut *self.state;
        if state.file.metadata()?.len() != state.end {
            // What an earlier failed append left behind.
            state.file.set_len(state.end)?;
        }
        let mut file = &state.file;
        if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_data()) {
            // Never leave a torn line that a later append would bury in the middle.
            let _ = state.file.set_len(state.end);
            return Err(e);
        }
        state.end += bytes.len() as u64;
        self.keep_reserve();
        Ok(())
    }

    /// Holds `line` after any line already held, to be written by [`Writer::flush`].
    pub(crate) fn hold(&mut self, line: Vec<u8>) {
        self.state.held.push(line);
    }

    /// How many held lines are not yet written.
    pub(crate) fn held(&self) -> usize {
        self.state.held.len()
    }

    /// Writes the held lines (in one append, synced). On failure they stay held.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        if self.state.held.is_empty() {
            return Ok(());
        }
        let bytes = self.state.held.concat();
        self.append(&bytes)?;
        self.state.held.clear();
        Ok(())
    }

    /// Keeps at least the journal's reserve allocated past the file's current end
    /// (fallocate with `KEEP_SIZE`: the length, and so what a reader sees, does not change).
    /// Allocating what is already allocated costs nothing, so it runs after every append.
    /// A disk that cannot hold the whole reserve (`ENOSPC`) or a file system that cannot
    /// preallocate (`EOPNOTSUPP`) is logged; the journal keeps whatever it had.
    fn keep_reserve(&self) {
        if self.journal.reserve == 0 {
            return;
        }
        let reserved = self.state.file.metadata().and_then(|m| {
            rustix::fs::fallocate(
                &self.state.file,
                rustix::fs::FallocateFlags::KEEP_SIZE,
                m.len(),
                self.journal.reserve,
            )
            .map_err(std::io::Error::from)
        });
        if let Err(e) = reserved {
            let what = self.journal.what;
            tracing::warn!(journal = %self.journal.path.display(), error = %e, "cannot reserve space for the {what} journal; its lines may not persist while the disk is full");
        }
    }
}

/// Replays a journal's complete lines (the text [`Journal::open`] returned) in order: each
/// non-blank line is read as one JSON `L` and handed to `each` with its text. A line that
/// does not parse, or that `each` refuses, stops the replay with the owner's error,
/// `corrupt(line number from 1, why)`. Returns how many lines there were, what
/// [`worth_compacting`] weighs. serde_json's message names a position, never the value, so
/// no key reaches an error.
pub(crate) fn replay<L: serde::de::DeserializeOwned, E>(
    text: &str,
    corrupt: impl Fn(usize, String) -> E,
    mut each: impl FnMut(L, &str) -> Result<(), String>,
) -> Result<usize, E> {
    let mut lines = 0;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        lines += 1;
        let line = serde_json::from_str(raw).map_err(|e| corrupt(i + 1, e.to_string()))?;
        each(line, raw).map_err(|why| corrupt(i + 1, why))?;
    }
    Ok(lines)
}

/// Whether a journal of `lines` lines that holds `live` records is worth rewriting: when
/// most of it is records that no longer count (deleted, expired), and it is not tiny.
pub(crate) fn worth_compacting(lines: usize, live: usize) -> bool {
    lines > 64 && lines > 2 * live
}

/// Opens the sealed key of a journal line: `sealed` in hex, opened by `open` (which binds
/// it to its line's associated data), `len` bytes long. The error says what is wrong, never
/// the key.
pub(crate) fn open_sealed_key<E: std::fmt::Display>(
    sealed: &str,
    len: usize,
    open: impl FnOnce(&[u8]) -> Result<Zeroizing<Vec<u8>>, E>,
) -> Result<keystore::SecretBytes, String> {
    let sealed = hex::decode(sealed).map_err(|_| "the sealed key is not hex".to_owned())?;
    let key = open(&sealed).map_err(|e| e.to_string())?;
    if key.len() != len {
        return Err(format!("the key is not {len} bytes"));
    }
    Ok(keystore::SecretBytes::new(key.to_vec()))
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
        let (journal, text) = Journal::open(&path, "test", 0).expect("open");
        assert!(text.is_empty());
        journal.append(b"{\"a\":1}\n").expect("append");
        drop(journal);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"b\":"))
            .expect("torn");
        let (journal, text) = Journal::open(&path, "test", 0).expect("reopen");
        assert_eq!(text.as_str(), "{\"a\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"a\":1}\n");
        journal.replace(b"{\"c\":3}\n").expect("replace");
        journal.append(b"{\"d\":4}\n").expect("append");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"c\":3}\n{\"d\":4}\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_append_leaves_no_torn_line_and_held_lines_wait_for_space() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("j.jsonl");
        let (journal, _) = Journal::open(&path, "test", 0).expect("open");
        journal.append(b"{\"a\":1}\n").expect("append");
        let full = OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .expect("/dev/full");
        journal.swap_file(full, 0);
        assert!(journal.append(b"{\"b\":2}\n").is_err(), "the disk is full");
        {
            let mut writer = journal.lock();
            writer.hold(b"{\"c\":3}\n".to_vec());
            assert!(writer.flush().is_err());
            assert_eq!(writer.held(), 1);
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .expect("reopen");
        journal.swap_file(file, 8);
        journal.lock().flush().expect("space is back");
        assert_eq!(journal.held(), 0);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"a\":1}\n{\"c\":3}\n"
        );
    }

    /// Copies `from` to `to`, every file mode 600 and directory 700 (git keeps no modes).
    fn copy_private(from: &Path, to: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(to).expect("dir");
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).expect("700");
        for entry in std::fs::read_dir(from).expect("fixture") {
            let entry = entry.expect("entry");
            let target = to.join(entry.file_name());
            if entry.file_type().expect("type").is_dir() {
                copy_private(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))
                    .expect("600");
            }
        }
    }

    /// A data folder whose four journals the code before [`Journal`] wrote
    /// (`tests/fixtures/journals-v1`): every record is still there, and the journals keep
    /// taking lines.
    #[test]
    fn journals_written_before_the_journal_type_open_with_every_record() {
        use crate::credentials::WithdrawalKind;
        let dir = tempfile::tempdir().expect("tmp");
        copy_private(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journals-v1"),
            dir.path(),
        );
        let d = dir.path();

        let r = crate::revocation::Revocations::open(&d.join("revocations.jsonl")).expect("r");
        assert_eq!(r.list().len(), 2);
        assert_eq!(
            r.status("12-aa@sp").map(|w| w.kind),
            Some(WithdrawalKind::Revoked)
        );
        assert_eq!(
            r.status("33-bb").map(|w| w.kind),
            Some(WithdrawalKind::Suspended)
        );
        assert!(r.status("33-cc").is_none(), "resumed");
        r.revoke("12-dd@sp", "new").expect("revoke");

        let p = crate::provisioned::ProvisionedKeys::open(
            &d.join("provisioned-keys.jsonl"),
            crate::provisioned::seal_in_data_folder(d).expect("seal"),
        )
        .expect("p");
        assert_eq!(p.len(), 2);
        for (id, byte) in [("kpsa-1@mef.example", 0x11u8), ("kpsa-2@mef.example", 0x22)] {
            let issued = p.issued(id).expect("issued");
            assert_eq!(issued.expires, 4_000_000_000);
            assert_eq!(issued.binding.allowed_apps, vec!["Nsensor".to_owned()]);
            let psk = p
                .lookup_at(id, std::time::UNIX_EPOCH)
                .expect("not expired")
                .expect("key");
            assert_eq!(psk.key.expose(), &[byte; 32]);
        }

        let e = crate::enrolment_keys::EnrolmentKeys::open(
            &d.join("enrolment-keys.jsonl"),
            crate::enrolment_keys::seal_in_data_folder(d).expect("seal"),
            16,
            model::clock::Clock::system(),
        )
        .expect("e");
        assert_eq!(e.len(), 2);
        for (id, byte) in [("AA@mef.example", 0x5au8), ("BB@mef.example", 0x6b)] {
            let (record, ke) = e.get(id).expect("kept");
            assert_eq!(record.targets, vec!["Cmaf1".to_owned()]);
            assert_eq!(ke.expose(), &[byte; 32]);
        }

        let m = crate::maf_store::MafKeys::open(
            &d.join("maf-keys.jsonl"),
            crate::maf_store::KeySeal::in_data_folder(d).expect("seal"),
            crate::maf_store::Limits::default(),
            model::clock::Clock::system(),
        )
        .expect("m");
        assert_eq!(m.len(), 2);
        assert!(m.get("BB").is_none(), "deleted");
        for (id, byte) in [("AA", 0x7cu8), ("CC", 0x9e)] {
            let (registration, key) = m.get(id).expect("registered");
            assert_eq!(registration.suid, 32);
            assert_eq!(key.expose(), &[byte; 32]);
        }
        drop((r, p, e, m));

        let r = crate::revocation::Revocations::open(&d.join("revocations.jsonl")).expect("r");
        assert_eq!(r.list().len(), 3, "old and new lines replay together");
    }
}
