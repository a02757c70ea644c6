//! The TLS client: one OpenSSL client context per handshake mode, and the closed handshake
//! loop that `bench tls` runs against the CSE and against `openssl s_server`.
//!
//! Every handshake is a new TCP connection (`TCP_NODELAY`), a TLS handshake, then a clean
//! close: the client sends `close_notify` (and a TCP FIN) and reads until the server has
//! closed too, so a loop never has more than one connection open and the server has finished
//! with a connection before the loop starts the next one. No HTTP request is sent.

use crate::stats::Latency;
use anyhow::Context;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslOptions, SslSession,
    SslSessionCacheMode, SslSessionRef, SslVerifyMode, SslVersion,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// A handshake (connect, TLS, close) that takes longer than this is an error.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The name the client asks for (SNI) and checks in the server's certificate; the CSE's test
/// certificate names `localhost`.
const SERVER_NAME: &str = "localhost";

/// TLS version of a mode; each mode offers exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// TLS 1.2 (TS-0003 clause 10.2.1).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// How the client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The AE certificate `ae1.pem` (mutual TLS, ECDSA P-256).
    Certificate,
    /// The pre-shared key of `sensor-1` (TLS-PSK).
    Psk,
}

/// One kind of handshake the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    /// Short name for `--handshakes`.
    pub(crate) key: &'static str,
    /// Name for the table.
    pub(crate) name: &'static str,
    /// The one version offered.
    pub(crate) version: Version,
    /// The one suite offered (OpenSSL name; a TLS 1.3 ciphersuite for TLS 1.3).
    pub(crate) suite: &'static str,
    /// How the client authenticates.
    pub(crate) credential: Credential,
    /// Resume a session (TLS 1.2: session id, TLS 1.3: ticket) instead of a full handshake.
    pub(crate) resume: bool,
}

/// The TLS 1.2 suite of the certificate rows: the one TS-0003 clause 10.2.3 makes mandatory.
const ECDSA_TLS12: &str = "ECDHE-ECDSA-AES128-SHA256";
/// The TLS 1.3 suite of every TLS 1.3 row (also the only one a TLS 1.3 PSK can use here).
const TLS13_SUITE: &str = "TLS_AES_128_GCM_SHA256";

/// Every mode, in table order.
pub(crate) const MODES: &[Mode] = &[
    Mode {
        key: "psk12",
        name: "TLS 1.2 PSK-AES128-CBC-SHA256",
        version: Version::Tls12,
        suite: "PSK-AES128-CBC-SHA256",
        credential: Credential::Psk,
        resume: false,
    },
    Mode {
        key: "ecdhe-psk12",
        name: "TLS 1.2 ECDHE-PSK-AES128-CBC-SHA256",
        version: Version::Tls12,
        suite: "ECDHE-PSK-AES128-CBC-SHA256",
        credential: Credential::Psk,
        resume: false,
    },
    Mode {
        key: "psk13",
        name: "TLS 1.3 PSK (psk_dhe_ke) AES128-GCM",
        version: Version::Tls13,
        suite: TLS13_SUITE,
        credential: Credential::Psk,
        resume: false,
    },
    Mode {
        key: "cert12",
        name: "TLS 1.2 mTLS ECDHE-ECDSA-AES128-SHA256",
        version: Version::Tls12,
        suite: ECDSA_TLS12,
        credential: Credential::Certificate,
        resume: false,
    },
    Mode {
        key: "cert13",
        name: "TLS 1.3 mTLS ECDSA AES128-GCM",
        version: Version::Tls13,
        suite: TLS13_SUITE,
        credential: Credential::Certificate,
        resume: false,
    },
    Mode {
        key: "resume12",
        name: "TLS 1.2 mTLS resumed (session id)",
        version: Version::Tls12,
        suite: ECDSA_TLS12,
        credential: Credential::Certificate,
        resume: true,
    },
    Mode {
        key: "resume13",
        name: "TLS 1.3 mTLS resumed (ticket)",
        version: Version::Tls13,
        suite: TLS13_SUITE,
        credential: Credential::Certificate,
        resume: true,
    },
];

/// The test PKI made by `scripts/make-test-pki.sh`.
#[derive(Clone)]
pub(crate) struct Pki {
    /// The folder with `ca.pem`, `cse.pem`, `ae1.pem`, ... and `cse.toml`.
    pub(crate) dir: PathBuf,
    /// The KpsaID of `sensor-1`.
    pub(crate) psk_identity: String,
    /// Its key, as hex (for `openssl s_server -psk`).
    pub(crate) psk_hex: String,
    psk: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("psk_identity", &self.psk_identity)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Runs the PKI script into `dir` and reads the PSK it made.
    pub(crate) fn make(script: &Path, dir: &Path) -> anyhow::Result<Self> {
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(dir)
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let psk_hex = std::fs::read_to_string(dir.join("sensor-1.psk"))
            .context("the PKI script made no sensor-1.psk")?
            .trim()
            .to_owned();
        let psk = decode_hex(&psk_hex).context("sensor-1.psk is not hex")?;
        // The script names the identity after SP_ID; read it back from the credentials.
        let credentials = std::fs::read_to_string(dir.join("credentials.toml"))
            .context("the PKI script made no credentials.toml")?;
        let psk_identity = credentials
            .lines()
            .filter_map(|l| l.trim().strip_prefix("identity = \""))
            .map(|l| l.trim_end_matches('"'))
            .find(|id| id.starts_with("sensor-1@"))
            .context("credentials.toml has no sensor-1 identity")?
            .to_owned();
        Ok(Pki {
            dir: dir.to_owned(),
            psk_identity,
            psk_hex,
            psk,
        })
    }

    /// A file of the PKI folder.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A file of the PKI folder as a command-line argument.
    pub(crate) fn arg(&self, name: &str) -> anyhow::Result<String> {
        self.file(name)
            .to_str()
            .map(str::to_owned)
            .context("the PKI folder's path is not UTF-8")
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 == 1 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The client context of `mode`: exactly one version and one suite, the server verified
/// against `ca.pem` (and its name), the AE certificate or the PSK as credential. Sessions
/// are only kept for the resumption modes (TLS 1.2 then resumes by session id: no ticket
/// extension is sent).
pub(crate) fn context(mode: &Mode, pki: &Pki) -> anyhow::Result<SslContext> {
    let mut b = SslContextBuilder::new(SslMethod::tls_client())?;
    let version = match mode.version {
        Version::Tls12 => SslVersion::TLS1_2,
        Version::Tls13 => SslVersion::TLS1_3,
    };
    b.set_min_proto_version(Some(version))?;
    b.set_max_proto_version(Some(version))?;
    match mode.version {
        Version::Tls12 => b.set_cipher_list(mode.suite)?,
        Version::Tls13 => b.set_ciphersuites(mode.suite)?,
    }
    b.set_ca_file(pki.file("ca.pem"))
        .context("cannot read ca.pem")?;
    b.set_verify(SslVerifyMode::PEER);
    match mode.credential {
        Credential::Certificate => {
            b.set_certificate_file(pki.file("ae1.pem"), SslFiletype::PEM)
                .context("cannot read ae1.pem")?;
            b.set_private_key_file(pki.file("ae1.key"), SslFiletype::PEM)
                .context("cannot read ae1.key")?;
            b.check_private_key()?;
        }
        Credential::Psk => {
            let mut identity = pki.psk_identity.clone().into_bytes();
            identity.push(0);
            let key = pki.psk.clone();
            b.set_psk_client_callback(move |_ssl, _hint, id_out, key_out| {
                if identity.len() > id_out.len() || key.len() > key_out.len() {
                    return Ok(0);
                }
                id_out[..identity.len()].copy_from_slice(&identity);
                key_out[..key.len()].copy_from_slice(&key);
                Ok(key.len())
            });
        }
    }
    if mode.resume {
        b.set_session_cache_mode(SslSessionCacheMode::CLIENT);
        if mode.version == Version::Tls12 {
            b.set_options(SslOptions::NO_TICKET);
        }
    } else {
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::NO_TICKET);
    }
    Ok(b.build())
}

/// A client connection of `context`, with SNI and the server name check, offering `session`
/// for resumption if given.
pub(crate) fn new_ssl(
    context: &SslContext,
    session: Option<&SslSessionRef>,
) -> anyhow::Result<Ssl> {
    let mut ssl = Ssl::new(context)?;
    ssl.set_hostname(SERVER_NAME)?;
    ssl.param_mut().set_host(SERVER_NAME)?;
    if let Some(session) = session {
        offer_session(&mut ssl, session)?;
    }
    Ok(ssl)
}

/// Offers `session` for resumption.
#[allow(unsafe_code)]
fn offer_session(ssl: &mut Ssl, session: &SslSessionRef) -> anyhow::Result<()> {
    // SAFETY: `SSL_set_session` needs a session made with the same `SSL_CTX` as `ssl`. The
    // only sessions offered are those of earlier connections of the same handshake loop,
    // which makes all its connections from one context (see `run_loop`). This is the one
    // unsafe call of the benchmark: the `openssl` crate has no safe way to resume.
    unsafe { ssl.set_session(session) }.context("cannot offer the session")
}

/// How the server ended a connection after the client's `close_notify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Close {
    /// It answered with its own `close_notify`.
    Notify,
    /// It closed the TCP connection without `close_notify`.
    Eof,
    /// It reset the TCP connection.
    Reset,
    /// Some other error while reading.
    Error,
    /// It did not close within the timeout.
    Timeout,
}

impl Close {
    /// For the report.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Close::Notify => "close_notify",
            Close::Eof => "TCP close without close_notify",
            Close::Reset => "TCP reset",
            Close::Error => "read error",
            Close::Timeout => "no close within 10 s",
        }
    }
}

/// One finished handshake.
struct Done {
    /// From the TCP connect to the end of the client's side of the handshake.
    latency: Duration,
    /// Whether OpenSSL reports the session as reused.
    resumed: bool,
    close: Close,
    /// The session to offer next time (resumption modes).
    session: Option<SslSession>,
}

async fn handshake(
    addr: SocketAddr,
    context: &SslContext,
    session: Option<&SslSessionRef>,
) -> anyhow::Result<Done> {
    let began = Instant::now();
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let ssl = new_ssl(context, session)?;
    let mut stream = SslStream::new(ssl, tcp).context("cannot set up the TLS connection")?;
    Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("handshake failed: {}", describe_ssl_error(&e)))?;
    let latency = began.elapsed();
    let resumed = stream.ssl().session_reused();
    let close = close(&mut stream).await;
    let session = stream.ssl().session().map(ToOwned::to_owned);
    Ok(Done {
        latency,
        resumed,
        close,
        session,
    })
}

/// An OpenSSL error in a few words: the reason strings of its error stack, or the I/O error.
fn describe_ssl_error(e: &openssl::ssl::Error) -> String {
    if let Some(io) = e.io_error() {
        return format!("{:?}", io.kind());
    }
    match e.ssl_error() {
        Some(stack) if !stack.errors().is_empty() => stack
            .errors()
            .iter()
            .map(|x| x.reason().unwrap_or("unknown").to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        _ => format!("{:?}", e.code()),
    }
}

/// Sends `close_notify` and a FIN, then reads (TLS 1.3 session tickets, the server's
/// `close_notify`) until the server has closed.
async fn close(stream: &mut SslStream<TcpStream>) -> Close {
    if stream.shutdown().await.is_err() {
        return Close::Error;
    }
    let mut buf = [0u8; 2048];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                // OpenSSL 3 reports an end of stream as 0 only after close_notify.
                Ok(0) => return Close::Notify,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Close::Reset,
                Err(e) if e.to_string().contains("unexpected eof") => return Close::Eof,
                Err(_) => return Close::Error,
            }
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, read_all)
        .await
        .unwrap_or(Close::Timeout)
}

/// What the handshake loops of one row saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandshakeResult {
    /// Handshakes started within the measured window that succeeded (resumed ones only in
    /// the resumption modes).
    pub(crate) ok: u64,
    /// Failed handshakes within the window.
    pub(crate) errors: u64,
    /// From the end of the warm-up to the end of the last counted handshake.
    pub(crate) elapsed: Duration,
    /// Connect + handshake time of the successful handshakes.
    pub(crate) latency: Latency,
    /// Failures by kind.
    pub(crate) error_kinds: BTreeMap<String, u64>,
    /// How the server closed, over all successful handshakes (warm-up included).
    pub(crate) closes: BTreeMap<Close, u64>,
    /// CPU time over the window.
    pub(crate) cpu: Option<crate::load::CpuUse>,
}

impl HandshakeResult {
    /// Successful handshakes per second.
    pub(crate) fn rate(&self) -> f64 {
        crate::load::per_second(self.ok, self.elapsed)
    }
}

#[derive(Debug, Default)]
struct LoopResult {
    ok: u64,
    errors: u64,
    samples: Vec<u64>,
    error_kinds: BTreeMap<String, u64>,
    closes: BTreeMap<Close, u64>,
    last_end: Option<Instant>,
}

impl LoopResult {
    fn fail(&mut self, counted: bool, kind: String) {
        if counted {
            self.errors += 1;
            *self.error_kinds.entry(kind).or_default() += 1;
        }
    }
}

/// Runs `loops` closed handshake loops against `addr`: `warmup` unmeasured, then `measure`
/// measured; handshakes started within the window are awaited and counted.
pub(crate) async fn run(
    addr: SocketAddr,
    context: &SslContext,
    mode: &Mode,
    loops: usize,
    warmup: Duration,
    measure: Duration,
    watch: crate::load::Watch<'_>,
) -> HandshakeResult {
    let start = Instant::now() + warmup;
    let deadline = start + measure;
    let tasks: Vec<_> = (0..loops)
        .map(|_| tokio::spawn(run_loop(addr, context.clone(), *mode, start, deadline)))
        .collect();
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = watch.read();
    let mut total = HandshakeResult::default();
    let mut samples = Vec::new();
    let mut last_end = start;
    for task in tasks {
        let r = match task.await {
            Ok(r) => r,
            Err(e) => {
                total.errors += 1;
                *total
                    .error_kinds
                    .entry(format!("handshake loop failed: {e}"))
                    .or_default() += 1;
                continue;
            }
        };
        total.ok += r.ok;
        total.errors += r.errors;
        samples.extend_from_slice(&r.samples);
        for (kind, n) in r.error_kinds {
            *total.error_kinds.entry(kind).or_default() += n;
        }
        for (close, n) in r.closes {
            *total.closes.entry(close).or_default() += n;
        }
        last_end = last_end.max(r.last_end.unwrap_or(start));
    }
    total.cpu = watch.since(cpu_before);
    total.elapsed = last_end.saturating_duration_since(start);
    total.latency = Latency::from_nanos(&mut samples);
    total
}

/// One closed loop: a new connection and handshake as soon as the previous one is closed.
/// In a resumption mode the loop first makes a full handshake (not counted) and then
/// offers the newest session it holds each time.
async fn run_loop(
    addr: SocketAddr,
    context: SslContext,
    mode: Mode,
    start: Instant,
    deadline: Instant,
) -> LoopResult {
    let mut out = LoopResult {
        samples: Vec::with_capacity(1 << 14),
        ..LoopResult::default()
    };
    let mut session: Option<SslSession> = None;
    loop {
        let began = Instant::now();
        if began >= deadline {
            break;
        }
        let counted = began >= start;
        let offered = session.is_some();
        let outcome = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            handshake(addr, &context, session.as_deref()),
        )
        .await;
        let done = match outcome {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                out.fail(counted, format!("{e:#}"));
                session = None;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) => {
                out.fail(
                    counted,
                    format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                );
                session = None;
                continue;
            }
        };
        *out.closes.entry(done.close).or_default() += 1;
        if mode.resume {
            session = done.session;
            if !offered {
                // The full handshake that gets the first session: not a resumption.
                continue;
            }
        }
        // OpenSSL calls a TLS 1.3 external PSK "reused"; only certificates say anything.
        let wrong = match (mode.credential, mode.resume, done.resumed) {
            (Credential::Certificate, true, false) => Some("session offered but not resumed"),
            (Credential::Certificate, false, true) => {
                Some("resumed although no session was offered")
            }
            _ => None,
        };
        if let Some(kind) = wrong {
            out.fail(counted, kind.to_owned());
            continue;
        }
        if counted {
            out.ok += 1;
            out.last_end = Some(Instant::now());
            out.samples
                .push(u64::try_from(done.latency.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn mode_keys_are_unique() {
        let mut keys: Vec<&str> = MODES.iter().map(|m| m.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), MODES.len());
    }
}
