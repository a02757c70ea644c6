//! Servers under test, each run as a child process.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server process. Killed when dropped, so an early error leaves no orphan.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    pid: u32,
    /// Where the server listens, from its `listening on http://ADDR` line.
    pub(crate) addr: SocketAddr,
    /// The server's standard error, kept for a post-mortem.
    pub(crate) log: PathBuf,
}

impl Server {
    /// Starts `program args...`, with standard error going to `log`, and waits for the
    /// `listening on http://ADDR` line on its standard output.
    pub(crate) async fn start(program: &Path, args: &[&str], log: PathBuf) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                    return Ok(Some(addr.to_owned()));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let addr = match first {
            Ok(Ok(Some(a))) => a,
            Ok(Ok(None)) => anyhow::bail!(
                "{} exited before listening; see {}",
                program.display(),
                tail(&log)
            ),
            Ok(Err(e)) => return Err(e).context("cannot read the server's stdout"),
            Err(_) => anyhow::bail!(
                "{} did not listen within {START_TIMEOUT:?}",
                program.display()
            ),
        };
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("bad listening address {addr:?}"))?;
        // Keep draining stdout so that a later print cannot block or fail in the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            pid,
            addr,
            log,
        })
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM line in /proc/PID/status")
    }

    /// Asks the server to shut down (SIGTERM), then kills it if it does not exit in time.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        if matches!(term, Ok(s) if s.success()) {
            if let Ok(status) = tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
                status.context("cannot wait for the server")?;
                return Ok(());
            }
        }
        self.child.kill().await.context("cannot kill the server")
    }
}

/// The last lines of a log file, for an error message.
pub(crate) fn tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(10);
            format!("{}:\n{}", log.display(), lines[start..].join("\n"))
        }
        Err(e) => format!("{} ({e})", log.display()),
    }
}
