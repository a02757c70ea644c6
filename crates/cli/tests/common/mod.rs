//! Starts the real `cse` binary on an ephemeral port with its own data folder.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub addr: String,
    /// Every `listening on URL` line, in order (plaintext first, then TLS listeners).
    pub urls: Vec<String>,
    pub data: PathBuf,
}

impl Server {
    /// Starts `cse --http 127.0.0.1:0 --data DIR` and waits for it to listen.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        Self::start_listeners(data, extra, 1)
    }

    /// Starts the binary and waits for `listeners` `listening on` lines.
    pub fn start_listeners(data: &Path, extra: &[&str], listeners: usize) -> Self {
        std::fs::create_dir_all(data).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("cse.log"))
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cse"))
            .args(["--http", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start cse");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut urls = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .expect("read the listening line");
            let url = line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected line {line:?}; log: {}", log_of(data)))
                .to_owned();
            urls.push(url);
        }
        let addr = urls[0].split("://").nth(1).unwrap_or_default().to_owned();
        Self {
            child,
            addr,
            urls,
            data: data.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self) -> client::Client {
        client::Client::new(&self.url()).expect("client")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        log_of(&self.data)
    }

    /// The log once it contains `needle` (waiting at most 20 s): the server logs some
    /// events, such as a refused handshake, only after the client has seen their effect.
    pub fn log_with(&self, needle: &str) -> String {
        self.log_with_count(needle, 1)
    }

    /// The log once `needle` occurs at least `count` times (waiting at most 20 s).
    pub fn log_with_count(&self, needle: &str, count: usize) -> String {
        eventually(|| self.log(), &[(needle, count)])
    }
}

/// What `read` returns once every needle occurs at least its count of times, or after 20 s
/// (then the caller's assertion says what is missing): servers log some events, such as a
/// refused handshake, only after the client has seen their effect.
pub fn eventually(read: impl Fn() -> String, needles: &[(&str, usize)]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = read();
        let all = needles.iter().all(|(n, c)| text.matches(n).count() >= *c);
        if all || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn log_of(data: &Path) -> String {
    std::fs::read_to_string(data.join("cse.log")).unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs curl with the given arguments; returns (headers+body) as text.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .arg("-s")
        .arg("-i")
        .args(args)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether curl exists; CI installs it, a laptop may not have it.
pub fn have_curl() -> bool {
    let ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SECURE_CSE_REQUIRE_SERVICES").is_none(),
            "curl is required (SECURE_CSE_REQUIRE_SERVICES is set)"
        );
        eprintln!("skipping: curl is not installed");
    }
    ok
}

/// Makes the test PKI (`scripts/make-test-pki.sh`) in `dir`: CA, CSE and client
/// certificates, pre-shared keys and a `cse.toml` with one TLS listener on 127.0.0.1:8443.
pub fn test_pki(dir: &Path) -> PathBuf {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/make-test-pki.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .output()
        .expect("run the PKI script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.to_owned()
}

/// Whether `tool --version`-like `args` runs; CI (SECURE_CSE_REQUIRE_SERVICES) must have it,
/// a laptop may skip with a printed reason.
pub fn have_tool(tool: &str, args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SECURE_CSE_REQUIRE_SERVICES").is_none(),
            "{tool} is required (SECURE_CSE_REQUIRE_SERVICES is set)"
        );
        eprintln!("skipping: {tool} is not installed");
    }
    ok
}
