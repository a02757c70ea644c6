//! Real software stand-ins for the hardware homes, for the tests of crates that use the key
//! store (feature `testing`; never in a release build): a swtpm per test and SoftHSMv2 token
//! directories. Tests that need one and do not find it skip with a printed reason, unless the
//! environment variable `SECURE_CSE_REQUIRE_SERVICES` is set: then they fail.
#![allow(clippy::panic, missing_docs)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's SoftHSMv2 module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// `None` when the service is there; otherwise prints why and returns `Some(())` (the test
/// returns early), or panics when `SECURE_CSE_REQUIRE_SERVICES` is set.
pub fn skip_unless(available: bool, what: &str) -> Option<()> {
    test_support::skip_unless(
        available,
        &format!("{what} (.ci/keystore-services.sh installs it)"),
    )
}

/// Whether `tool` is an executable on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

// === SoftHSM ===

/// A SoftHSMv2 configuration with a token directory of its own. The module reads
/// `SOFTHSM2_CONF` once, when it is initialised: give [`SoftHsm::conf`] to a child process
/// in its environment, or call [`SoftHsm::use_in_this_process`] before the first home opens.
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
}

impl SoftHsm {
    /// A fresh configuration under `dir` (created), or `None` (skipped) without SoftHSMv2.
    pub fn new(dir: &Path) -> Option<Self> {
        if skip_unless(
            Path::new(SOFTHSM_MODULE).exists() && on_path("softhsm2-util"),
            "SoftHSMv2 (Debian package softhsm2)",
        )
        .is_some()
        {
            return None;
        }
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).ok()?;
        std::fs::write(
            dir.join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .ok()?;
        Some(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The configuration file (the value of `SOFTHSM2_CONF`).
    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    /// Initialises a token with `softhsm2-util` (SO PIN `so-pin-5678`).
    pub fn init_token(&self, label: &str, pin: &str) {
        let status = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "so-pin-5678", "--pin", pin])
            .stdout(Stdio::null())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "softhsm2-util --init-token failed: {status:?}"
        );
    }

    /// Points this process's PKCS#11 module at this configuration.
    ///
    /// NOTE(testing): `set_var` in a test process; call it once, before any thread loads the
    /// module (keep the `SoftHsm` in a `OnceLock` that every test of the binary goes
    /// through first).
    pub fn use_in_this_process(&self) {
        std::env::set_var("SOFTHSM2_CONF", self.conf());
    }
}

// === swtpm ===

/// A software TPM on 127.0.0.1 with fresh state, killed when dropped.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

impl Swtpm {
    /// Starts one, or returns `None` (skipped) without swtpm.
    pub fn start() -> Option<Self> {
        if skip_unless(
            on_path("swtpm"),
            "swtpm (Debian packages swtpm, swtpm-tools, libtss2-dev)",
        )
        .is_some()
        {
            return None;
        }
        for attempt in 0..30 {
            let Ok(state) = tempfile::tempdir() else {
                continue;
            };
            // The swtpm TCTI talks to the control channel on port + 1.
            let port = candidate_port(attempt);
            let ctrl = port + 1;
            if TcpListener::bind(("127.0.0.1", port)).is_err()
                || TcpListener::bind(("127.0.0.1", ctrl)).is_err()
            {
                continue;
            }
            let Ok(mut child) = Command::new("swtpm")
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
            else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: port taken, try again
                }
                // The TCTI opens both sockets; ready means both answer.
                if TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && TcpStream::connect(("127.0.0.1", ctrl)).is_ok()
                {
                    return Some(Self {
                        child,
                        port,
                        _state: state,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("swtpm did not start");
    }

    /// The TCTI configuration string for this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The process id (to kill it from outside in a test).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the TPM (a test of "TPM unreachable").
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

/// A port pair `(p, p + 1)` below the kernel's ephemeral range (swtpm binds without
/// SO_REUSEADDR, and ephemeral ports linger in TIME_WAIT).
fn candidate_port(attempt: u32) -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    (20_000 + (h.finish() % 12_000)) as u16
}
