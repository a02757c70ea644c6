//! Files that hold secrets on the client side (derived keys, enrolee keys): written mode 600
//! and synced, read only when nobody but the owner can read them. And the CSE's data folder,
//! which holds the database, the journals, the audit log and sealed keys: private (mode 700).

use anyhow::{anyhow, bail, Context};
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Writes `text` to `path` with mode 600 (also when the file already existed), synced.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Makes `dir` (and its missing parents) mode 700, or, when it exists with access for group
/// or others (an older CSE created it 755), takes that access away and says so in the log.
/// Everything the CSE creates inside is mode 600 as well; a private folder also covers what
/// an older version left readable.
pub fn private_folder(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_folder(dir),
        Err(e) => Err(e).with_context(|| format!("{}", dir.display())),
        Ok(meta) if !meta.is_dir() => bail!("{} is not a directory", dir.display()),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            let was = meta.permissions().mode() & 0o777;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot chmod 700 {}", dir.display()))?;
            tracing::warn!(folder = %dir.display(), was = format!("{was:o}"), "the data folder was accessible by group or others; it is now mode 700");
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// Creates `dir` and its missing parents mode 700 (a folder that exists is left as it is):
/// for folders the CSE makes for its own files, such as the audit log's.
pub fn create_private_folder(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Reads a key file of hex digits that only its owner can read; `what` names the key in
/// errors ("an enrolee key"), which must have 16 bytes or more.
pub fn read_hex_key(path: &Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} holds a secret but is accessible by group or others (chmod 600)",
            path.display()
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?,
    );
    let key = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| anyhow!("{} is not hex digits", path.display()))?,
    );
    if key.len() < 16 {
        bail!("{}: {what} has 16 bytes or more", path.display());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_round_trip_and_open_files_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("k.hex");
        write_private(&path, "00112233445566778899aabbccddeeff\n").expect("write");
        assert_eq!(read_hex_key(&path, "a key").expect("read").len(), 16);
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&path).expect("meta").permissions(),
            0o644,
        );
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        assert!(read_hex_key(&path, "a key").is_err());
        write_private(&path, "0011").expect("rewrite (mode 600 again)");
        let err = read_hex_key(&path, "an enrolee key").expect_err("short");
        assert!(err.to_string().contains("an enrolee key"), "{err}");
    }
}
