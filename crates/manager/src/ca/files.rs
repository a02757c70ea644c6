//! Writing the CA's files so that a crash leaves either the old or the new file, never half of
//! one: a temporary file in the same directory, fsync, then rename (or link, where an existing
//! file must not be replaced), then fsync of the directory.

use super::error::CaError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_synced(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(CaError::io(path))?;
    file.write_all(contents).map_err(CaError::io(path))?;
    file.sync_all().map_err(CaError::io(path))
}

fn sync_dir(path: &Path) -> Result<(), CaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(CaError::io(dir))
}

/// Replaces `path` with `contents` atomically and durably.
pub(super) fn replace(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let tmp = temporary(path);
    write_synced(&tmp, contents)?;
    std::fs::rename(&tmp, path).map_err(CaError::io(path))?;
    sync_dir(path)
}

/// Creates `path` with `contents` atomically and durably; fails with `AlreadyExists` (as an
/// I/O error) when it exists.
pub(super) fn create_new(path: &Path, contents: &[u8]) -> Result<(), CaError> {
    let tmp = temporary(path);
    write_synced(&tmp, contents)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(CaError::io(path))?;
    sync_dir(path)
}

/// PEM armour around DER bytes (64-character lines).
pub(super) fn pem(label: &str, der: &[u8]) -> String {
    let body = openssl::base64::encode_block(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
