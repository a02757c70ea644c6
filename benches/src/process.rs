//! Servers under test, each run as a child process.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

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
    /// Its TLS listener, from a `listening on https://ADDR` line, when one was awaited.
    pub(crate) https: Option<SocketAddr>,
    /// Every TLS listener awaited, in the order the server printed them.
    pub(crate) https_all: Vec<SocketAddr>,
    /// The server's standard error, kept for a post-mortem.
    pub(crate) log: PathBuf,
    /// Standard input of a server that must never see it end (`openssl s_server`).
    _stdin: Option<ChildStdin>,
}

impl Server {
    /// Starts `program args...`, with standard error going to `log`, and waits for the
    /// `listening on http://ADDR` line on its standard output.
    pub(crate) async fn start(program: &Path, args: &[&str], log: PathBuf) -> anyhow::Result<Self> {
        Self::start_listening(program, args, log, 0, &[]).await
    }

    /// Like [`Server::start`], and also waits for the `listening on https://ADDR` line of the
    /// server's (first) TLS listener.
    pub(crate) async fn start_with_tls(
        program: &Path,
        args: &[&str],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        Self::start_listening(program, args, log, 1, &[]).await
    }

    /// Like [`Server::start`], with `envs` added to the server's environment, and also waits
    /// for the `listening on https://ADDR` lines of `tls_listeners` TLS listeners.
    pub(crate) async fn start_with_env(
        program: &Path,
        args: &[&str],
        log: PathBuf,
        tls_listeners: usize,
        envs: &[(&str, &Path)],
    ) -> anyhow::Result<Self> {
        Self::start_listening(program, args, log, tls_listeners, envs).await
    }

    async fn start_listening(
        program: &Path,
        args: &[&str],
        log: PathBuf,
        want_https: usize,
        envs: &[(&str, &Path)],
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
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
            let (mut http, mut https) = (None, Vec::new());
            while let Some(line) = lines.next_line().await? {
                let line = line.trim();
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    http = Some(addr.to_owned());
                } else if let Some(addr) = line.strip_prefix("listening on https://") {
                    https.push(addr.to_owned());
                }
                if let Some(http) = &http {
                    if https.len() >= want_https {
                        return Ok(Some((http.clone(), https)));
                    }
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let (addr, https) = match first {
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
        let https_all: Vec<SocketAddr> = https
            .iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("bad listening address {a:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let https = https_all.first().copied();
        // Keep draining stdout so that a later print cannot block or fail in the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            pid,
            addr,
            https,
            https_all,
            log,
            _stdin: None,
        })
    }

    /// Starts a server that prints nothing useful (`openssl s_server -quiet`) and is told to
    /// listen on `addr`; ready once a TCP connection to `addr` succeeds. Its standard input
    /// is a pipe kept open (and never written) for as long as the server runs, its standard
    /// output is discarded and its standard error goes to `log`.
    pub(crate) async fn start_at(
        program: &Path,
        args: &[&str],
        log: PathBuf,
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdin = child.stdin.take();
        let until = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the server")? {
                anyhow::bail!(
                    "{} exited ({status}) before listening; see {}",
                    program.display(),
                    tail(&log)
                );
            }
            // The probe connection ends without a handshake; the server logs and goes on.
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < until,
                "{} did not listen on {addr} within {START_TIMEOUT:?}",
                program.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Server {
            child,
            pid,
            addr,
            https: None,
            https_all: Vec::new(),
            log,
            _stdin: stdin,
        })
    }

    /// CPU time the server used so far (user + system, all threads).
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        cpu_time(&format!("/proc/{}/stat", self.pid))
    }

    /// Peak resident set size so far (`VmHWM`), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident set size now (`VmRSS`), in KiB: what a soak watches for growth.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// A `... kB` field of `/proc/PID/status`.
    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} line in {path}"))
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

/// A port on 127.0.0.1 that was free a moment ago (for a server that cannot be told to pick
/// one and report it).
pub(crate) fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let probe =
        std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free local port")?;
    Ok(probe.local_addr()?)
}

/// CPU time another process (by id) used so far.
pub(crate) fn cpu_time_of(pid: u32) -> Option<Duration> {
    cpu_time(&format!("/proc/{pid}/stat"))
}

/// CPU time this process (the load generator) used so far.
pub(crate) fn own_cpu_time() -> Option<Duration> {
    cpu_time("/proc/self/stat")
}

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

/// `utime + stime` of a `/proc/PID/stat` file (fields 14 and 15, counted after the command
/// name, which may contain spaces and parentheses).
fn cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
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
