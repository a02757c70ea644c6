//! Shared test fixtures: skip-or-fail for missing services, SoftHSM tokens, swtpm instances.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used
)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
#[cfg(feature = "pkcs11")]
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// `None` when the service is there; otherwise skips (prints why and returns `Some(())`) or,
/// with `SECURE_CSE_REQUIRE_SERVICES` set, fails the test.
pub fn skip_unless(available: bool, what: &str) -> Option<()> {
    test_support::skip_unless(
        available,
        &format!("{what} (.ci/keystore-services.sh installs it)"),
    )
}

pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

pub fn write_private(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
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
    if skip_unless(
        Path::new(SOFTHSM_MODULE).exists(),
        "SoftHSMv2 (Debian package softhsm2)",
    )
    .is_some()
    {
        return None;
    }
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    Some(HSM.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Token directories of earlier runs (one per test process) older than an hour go.
        if let Ok(entries) = std::fs::read_dir(base) {
            for entry in entries.flatten() {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600))
                    .unwrap_or(false);
                if stale && entry.file_name().to_string_lossy().starts_with("softhsm-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        // NOTE(keystore tests): set once, before any thread of this test process loads the
        // module; every test calls `softhsm()` first, so they are all waiting on this
        // OnceLock while it runs.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        SoftHsm {
            dir,
            init_lock: Mutex::new(()),
        }
    }))
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

// === swtpm ===

pub struct Swtpm {
    child: Child,
    pub port: u16,
    pub state: tempfile::TempDir,
}

impl Swtpm {
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port pair `(p, p + 1)` below the kernel's ephemeral range. Ports from `bind(0)` are
/// ephemeral ones, which a busy machine leaves in TIME_WAIT by the thousand, and swtpm binds
/// without SO_REUSEADDR.
fn candidate_port(attempt: u32) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    (20_000 + (h.finish() % 12_000)) as u16
}

/// A software TPM on 127.0.0.1 with fresh state, or `None` (skipped) without swtpm.
pub fn swtpm() -> Option<Swtpm> {
    if skip_unless(
        on_path("swtpm"),
        "swtpm (Debian packages swtpm, swtpm-tools, libtss2-dev)",
    )
    .is_some()
    {
        return None;
    }
    for attempt in 0..30 {
        let state = tempfile::tempdir().unwrap();
        // The swtpm TCTI talks to the control channel on port + 1.
        let port = candidate_port(attempt);
        let ctrl = port + 1;
        if TcpListener::bind(("127.0.0.1", port)).is_err()
            || TcpListener::bind(("127.0.0.1", ctrl)).is_err()
        {
            continue;
        }
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: port taken, try again
            }
            // The TCTI opens both sockets; swtpm opens them one after the other, so ready
            // means both answer.
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && TcpStream::connect(("127.0.0.1", ctrl)).is_ok()
            {
                return Some(Swtpm { child, port, state });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("swtpm did not start");
}
