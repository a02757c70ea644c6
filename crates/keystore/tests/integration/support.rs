//! Shared test fixtures over `keystore::testing` (the stand-ins the other crates' tests use
//! too): skip-or-fail for missing services, swtpm instances, and one SoftHSM configuration
//! for the whole test process with a token per test.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
#[cfg(feature = "pkcs11")]
use std::sync::{Mutex, OnceLock};

pub use keystore::testing::{on_path, skip_unless, Swtpm, SOFTHSM_MODULE};

pub fn write_private(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A software TPM on 127.0.0.1 with fresh state, or `None` (skipped) without swtpm.
pub fn swtpm() -> Option<Swtpm> {
    Swtpm::start()
}

// === SoftHSM ===

#[cfg(feature = "pkcs11")]
pub struct SoftHsm {
    pub dir: PathBuf,
    init_lock: Mutex<()>,
}

/// SoftHSM with a token directory of its own. The module reads `SOFTHSM2_CONF` once, at
/// `C_Initialize`, so one configuration serves the whole test process; each test makes its own
/// token in it.
#[cfg(feature = "pkcs11")]
pub fn softhsm() -> Option<&'static SoftHsm> {
    // The same check as `keystore::testing::SoftHsm::new`, made by every test so that each
    // one that skips says why.
    if skip_unless(
        Path::new(SOFTHSM_MODULE).exists() && on_path("softhsm2-util"),
        "SoftHSMv2 (Debian package softhsm2)",
    )
    .is_some()
    {
        return None;
    }
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Token directories of earlier runs (one per test process) older than an hour go.
        if let Ok(entries) = std::fs::read_dir(base) {
            for entry in entries.flatten() {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default().as_secs() > 3600)
                    .unwrap_or(false);
                if stale && entry.file_name().to_string_lossy().starts_with("softhsm-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hsm = keystore::testing::SoftHsm::new(&dir)?;
        // NOTE(keystore tests): set once, before any thread of this test process loads the
        // module; every test calls `softhsm()` first, so they are all waiting on this
        // OnceLock while it runs.
        hsm.use_in_this_process();
        Some(SoftHsm {
            dir,
            init_lock: Mutex::new(()),
        })
    })
    .as_ref()
}

#[cfg(feature = "pkcs11")]
impl SoftHsm {
    /// Initialises a fresh token; returns the path of a PIN file holding `pin`.
    pub fn token(&self, label: &str, pin: &str) -> PathBuf {
        let _guard = self.init_lock.lock().unwrap();
        keystore::pkcs11::init_token(
            Path::new(SOFTHSM_MODULE),
            label,
            &keystore::SecretBytes::from_slice(b"so-pin-5678"),
            &keystore::SecretBytes::from_slice(pin.as_bytes()),
        )
        .unwrap();
        let pin_file = self.dir.join(format!("{label}.pin"));
        write_private(&pin_file, format!("{pin}\n").as_bytes());
        pin_file
    }
}
