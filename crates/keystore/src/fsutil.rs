//! File-system rules for secrets: no access for group or others, atomic no-clobber writes
//! (temporary file, fsync, link into place, fsync the directory).

use crate::error::KeyStoreError;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

fn check_mode(path: &Path, mode: u32) -> Result<(), KeyStoreError> {
    if mode & 0o077 != 0 {
        Err(KeyStoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        })
    } else {
        Ok(())
    }
}

/// Checks that `dir` is a directory (not a symlink) that group and others cannot access.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), KeyStoreError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| KeyStoreError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(KeyStoreError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory"),
        ));
    }
    check_mode(dir, meta.permissions().mode())
}

/// Creates `dir` (mode 0700) if missing, then checks it.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), KeyStoreError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| KeyStoreError::io(dir, e))?;
    }
    check_private_dir(dir)
}

/// Reads a file that group and others cannot access; the mode is checked on the opened file.
pub(crate) fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let mut file = File::open(path).map_err(|e| KeyStoreError::io(path, e))?;
    let meta = file.metadata().map_err(|e| KeyStoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(KeyStoreError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    check_mode(path, meta.permissions().mode())?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.read_to_end(&mut bytes)
        .map_err(|e| KeyStoreError::io(path, e))?;
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<(), KeyStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyStoreError::io(dir, e))
}

/// Writes `dir/name` (mode 0600) atomically and never over an existing file: the bytes go to
/// a temporary file that is fsynced, hard-linked to the final name (which fails if it
/// exists), unlinked, and the directory is fsynced. `exists` builds the error for a taken
/// name.
pub(crate) fn write_new(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    exists: impl FnOnce() -> KeyStoreError,
) -> Result<PathBuf, KeyStoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| KeyStoreError::io(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| KeyStoreError::io(&tmp, e))?;
        match fs::hard_link(&tmp, &target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists()),
            Err(e) => Err(KeyStoreError::io(&target, e)),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    sync_dir(dir)?;
    Ok(target)
}

/// Removes `dir/name` and fsyncs the directory.
pub(crate) fn remove(dir: &Path, name: &str) -> Result<(), KeyStoreError> {
    let path = dir.join(name);
    fs::remove_file(&path).map_err(|e| KeyStoreError::io(&path, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_private_and_never_clobber() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_new(dir.path(), "k", b"one", || KeyStoreError::NotInitialised {
            dir: PathBuf::new(),
        })
        .expect("write");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(&*read_private(&path).expect("read"), b"one");
        let again = write_new(dir.path(), "k", b"two", || KeyStoreError::NotInitialised {
            dir: PathBuf::new(),
        });
        assert!(matches!(again, Err(KeyStoreError::NotInitialised { .. })));
        assert_eq!(&*read_private(&path).expect("read"), b"one");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn group_or_other_access_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"x").expect("write");
        for mode in [0o640, 0o604, 0o660, 0o666] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            assert!(matches!(
                read_private(&path),
                Err(KeyStoreError::InsecurePermissions { .. })
            ));
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(matches!(
            check_private_dir(dir.path()),
            Err(KeyStoreError::InsecurePermissions { .. })
        ));
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(check_private_dir(dir.path()).is_ok());
    }
}
