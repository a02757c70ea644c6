//! The files of one audit log: closed segments, the active file, the checkpoint and the
//! anchor, and how large and how many the segments may grow.
//!
//! The active file is the configured path (`audit.log`); when it reaches
//! [`Layout::segment_bytes`] it is closed by renaming it to `audit.log.<first seq>` (20
//! digits, so names sort in chain order) and a new active file continues the chain: the
//! first entry of a segment names the last of the one before as its `prev`. With
//! [`Layout::keep_segments`] set, the oldest closed segments beyond that number are removed
//! after the anchor is moved past them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Default size at which the active file is closed into a segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Default number of closed segments kept (64 of 16 MiB: at most about 1 GiB of audit log).
pub const DEFAULT_KEEP_SEGMENTS: usize = 64;

/// Where the files of a log are and how much of it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Close the active file into a segment once it holds this many bytes.
    pub segment_bytes: u64,
    /// Closed segments kept; the oldest beyond this are removed (0: keep every segment).
    pub keep_segments: usize,
    /// The checkpoint file (the last entry on disk, signed when the log is).
    pub head_file: PathBuf,
}

impl Layout {
    /// The defaults for the log at `log`: 16 MiB segments, 64 kept, checkpoint at
    /// `<log>.head`.
    pub fn for_log(log: &Path) -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            keep_segments: DEFAULT_KEEP_SEGMENTS,
            head_file: sibling(log, "head"),
        }
    }
}

/// `<log>.<suffix>` in the log's folder.
fn sibling(log: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = log.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The anchor file of the log at `log`.
pub fn anchor_file(log: &Path) -> PathBuf {
    sibling(log, "anchor")
}

/// The file that one writer locks for as long as it appends to the log at `log` (the log
/// itself is renamed when it is closed into a segment, so it cannot carry the lock).
pub fn lock_file(log: &Path) -> PathBuf {
    sibling(log, "lock")
}

/// The name a segment whose first entry is `first_seq` gets when it is closed.
pub fn segment_file(log: &Path, first_seq: u64) -> PathBuf {
    sibling(log, &format!("{first_seq:020}"))
}

/// The closed segments of the log at `log`, oldest first, with their first sequence numbers.
pub fn closed_segments(log: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let dir = match log.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(base) = log.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = digits.parse() {
                out.push((seq, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}
