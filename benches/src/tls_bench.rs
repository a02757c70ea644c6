//! `bench tls`: TLS handshake rates of the CSE next to `openssl s_server` (the same TLS
//! library's own server, same key, certificate, PSK and suites), and requests over
//! established TLS connections next to plaintext, all in one run.

use crate::client::Connector;
use crate::load::{self, LoadResult, Watch};
use crate::process::Server;
use crate::scenarios::{self, Target};
use crate::tls_client::{self, Credential, HandshakeResult, Mode, Pki};
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run, resolved from the command line.
#[derive(Debug)]
pub(crate) struct TlsPlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// The `openssl` command (for `s_server` and `speed`).
    pub(crate) openssl: PathBuf,
    /// `scripts/make-test-pki.sh`.
    pub(crate) pki_script: PathBuf,
    /// Handshake modes to measure.
    pub(crate) modes: Vec<Mode>,
    /// Concurrent handshake loops, each measured for every mode.
    pub(crate) loops: Vec<usize>,
    /// Connection counts of the request rows (empty: no request rows).
    pub(crate) request_conns: Vec<usize>,
    /// `max_handshakes_per_ip` of the CSE's TLS listener.
    pub(crate) handshakes_per_ip: usize,
    /// Measured time of each row.
    pub(crate) measure: Duration,
    /// Unmeasured time before each row.
    pub(crate) warmup: Duration,
    /// How many times every row is measured, interleaved.
    pub(crate) rounds: usize,
}

/// Which server a handshake measurement ran against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeServer {
    /// `openssl s_server`.
    SServer,
    /// The CSE's TLS listener.
    Cse,
}

/// One handshake mode at one loop count, measured against both servers once per round.
#[derive(Debug)]
pub(crate) struct HandshakeRow {
    /// The mode.
    pub(crate) mode: Mode,
    /// Concurrent handshake loops.
    pub(crate) loops: usize,
    /// One measurement per round against the CSE.
    pub(crate) cse: Vec<HandshakeResult>,
    /// One measurement per round against `openssl s_server`.
    pub(crate) s_server: Vec<HandshakeResult>,
}

/// The run with the median rate (the lower median for an even count).
pub(crate) fn median_handshakes(runs: &[HandshakeResult]) -> Option<&HandshakeResult> {
    let mut by_rate: Vec<&HandshakeResult> = runs.iter().collect();
    by_rate.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    by_rate.get(by_rate.len().saturating_sub(1) / 2).copied()
}

/// Slowest and fastest rate over the rounds.
pub(crate) fn spread_handshakes(runs: &[HandshakeResult]) -> (f64, f64) {
    let lo = runs
        .iter()
        .map(HandshakeResult::rate)
        .fold(f64::INFINITY, f64::min);
    let hi = runs.iter().map(HandshakeResult::rate).fold(0.0, f64::max);
    (if lo.is_finite() { lo } else { 0.0 }, hi)
}

/// A request row's workload and connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// RETRIEVE of a contentInstance on the plaintext listener.
    Plain,
    /// The same over TLS 1.3 with the AE certificate.
    TlsCertificate,
    /// The same over TLS 1.2 with the PSK and the mandatory PSK suite (CBC and HMAC).
    TlsPsk,
    /// The same PSK and AE over TLS 1.2 with the AEAD suite the CSE prefers.
    TlsPskGcm,
    /// The same PSK and AE over TLS 1.3 (external PSK with (EC)DHE, AES-128-GCM).
    TlsPsk13,
}

impl RequestKind {
    /// Name for the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RequestKind::Plain => "RETRIEVE cin, plaintext",
            RequestKind::TlsCertificate => "RETRIEVE cin, TLS 1.3 AE certificate",
            RequestKind::TlsPsk => "RETRIEVE cin, TLS 1.2 PSK-AES128-CBC-SHA256",
            RequestKind::TlsPskGcm => "RETRIEVE cin, TLS 1.2 PSK-AES128-GCM-SHA256",
            RequestKind::TlsPsk13 => "RETRIEVE cin, TLS 1.3 PSK AES128-GCM",
        }
    }
}

/// One request row: a kind at one connection count, once per round.
#[derive(Debug)]
pub(crate) struct RequestRow {
    /// What was measured.
    pub(crate) kind: RequestKind,
    /// Keep-alive connections.
    pub(crate) conns: usize,
    /// One measurement per round.
    pub(crate) runs: Vec<LoadResult>,
}

impl RequestRow {
    /// The median round, as in the plain benchmark.
    pub(crate) fn median(&self) -> Option<&LoadResult> {
        let mut by_rate: Vec<&LoadResult> = self.runs.iter().collect();
        by_rate.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        by_rate.get(by_rate.len().saturating_sub(1) / 2).copied()
    }
}

/// `openssl speed` figures, for context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Speed {
    /// ECDSA P-256 signatures per second (one core).
    pub(crate) ecdsa_sign: f64,
    /// ECDSA P-256 verifications per second.
    pub(crate) ecdsa_verify: f64,
    /// X25519 key agreements per second.
    pub(crate) x25519: Option<f64>,
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct TlsOutcome {
    /// Measured seconds per row and round.
    pub(crate) measure: Duration,
    /// Rounds run.
    pub(crate) rounds: usize,
    /// Handshake rows, in the order they ran.
    pub(crate) handshakes: Vec<HandshakeRow>,
    /// Request rows, in the order they ran.
    pub(crate) requests: Vec<RequestRow>,
    /// `openssl version`.
    pub(crate) openssl_version: String,
    /// `openssl speed ecdsap256 ecdhx25519`, if it ran.
    pub(crate) speed: Option<Speed>,
    /// `max_handshakes_per_ip` given to the CSE.
    pub(crate) handshakes_per_ip: usize,
    /// Peak RSS of the CSE, KiB.
    pub(crate) cse_rss_kib: Option<u64>,
    /// `/proc/loadavg` before and after.
    pub(crate) load: (String, String),
    /// Remarks: how servers closed, refusals in the CSE log, setup facts.
    pub(crate) notes: Vec<String>,
}

/// Makes the PKI, starts the CSE and two `openssl s_server`s, runs the rounds.
pub(crate) async fn run(plan: &TlsPlan) -> anyhow::Result<TlsOutcome> {
    let tmp = tempfile::Builder::new()
        .prefix("cse-bench-tls-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let load_before = scenarios::loadavg();
    let openssl_version = command_output(&plan.openssl, &["version"])
        .map(|s| s.trim().to_owned())
        .with_context(|| format!("cannot run {} version", plan.openssl.display()))?;
    eprintln!(
        "bench: making the test PKI with {}",
        plan.pki_script.display()
    );
    let pki = Pki::make(&plan.pki_script, &tmp.path().join("pki"))?;
    eprintln!("bench: openssl speed ecdsap256 ecdhx25519");
    let speed = openssl_speed(&plan.openssl);

    let config = cse_config(&pki, plan.handshakes_per_ip)?;
    let data = tmp.path().join("data");
    let data = data
        .to_str()
        .context("the temp folder's path is not UTF-8")?;
    eprintln!(
        "bench: starting {} and openssl s_server",
        plan.cse.display()
    );
    let cse = Server::start_with_tls(
        &plan.cse,
        &[
            "--config",
            config
                .to_str()
                .context("the temp folder's path is not UTF-8")?,
            "--http",
            "127.0.0.1:0",
            "--data",
            data,
        ],
        tmp.path().join("cse.log"),
    )
    .await?;
    let cert_server = s_server(plan, &pki, Credential::Certificate, tmp.path()).await?;
    let psk_server = s_server(plan, &pki, Credential::Psk, tmp.path()).await?;

    let result = rounds(plan, &pki, &cse, &cert_server, &psk_server).await;
    let cse_rss_kib = cse.peak_rss_kib().ok();
    let cse_log = crate::process::tail(&cse.log);
    let log_notes = refusals(&cse.log);
    cse.stop().await?;
    cert_server.stop().await?;
    psk_server.stop().await?;
    let (handshakes, requests, mut notes) = result.with_context(|| format!("CSE log {cse_log}"))?;
    notes.extend(log_notes);
    Ok(TlsOutcome {
        measure: plan.measure,
        rounds: plan.rounds,
        handshakes,
        requests,
        openssl_version,
        speed,
        handshakes_per_ip: plan.handshakes_per_ip,
        cse_rss_kib,
        load: (load_before, scenarios::loadavg()),
        notes,
    })
}

/// The PKI script's `cse.toml`, with its TLS listener on a free port and the handshake cap
/// per address raised (every handshake of the benchmark comes from 127.0.0.1).
fn cse_config(pki: &Pki, handshakes_per_ip: usize) -> anyhow::Result<PathBuf> {
    let text =
        std::fs::read_to_string(pki.file("cse.toml")).context("the PKI script made no cse.toml")?;
    // The appended keys land in the last table, which must be the [[tls]] listener.
    let last_table = text
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| l.starts_with('['));
    anyhow::ensure!(
        last_table == Some("[[tls]]") && text.contains("127.0.0.1:8443"),
        "cse.toml of the PKI script no longer ends with a [[tls]] listener on 127.0.0.1:8443"
    );
    let text = text.replace("127.0.0.1:8443", "127.0.0.1:0")
        + &format!("max_handshakes_per_ip = {handshakes_per_ip}\nsession_resumption = true\n");
    let path = pki.file("bench.toml");
    std::fs::write(&path, text).context("cannot write the CSE configuration")?;
    Ok(path)
}

/// `openssl s_server` with the CSE's own key material: for certificates the CSE's
/// certificate and key, client certificates required and checked against the same CA and
/// CRL (`-crl_check_all`, as the CSE does); for PSK the same identity and key, no certificate,
/// and no TLS 1.3 tickets (the CSE gives external-PSK sessions none).
async fn s_server(
    plan: &TlsPlan,
    pki: &Pki,
    credential: Credential,
    tmp: &Path,
) -> anyhow::Result<Server> {
    let addr = crate::process::free_local_addr()?;
    let accept = addr.to_string();
    let mut args: Vec<String> = ["s_server", "-accept", &accept, "-quiet", "-serverpref"]
        .map(str::to_owned)
        .to_vec();
    // The suites of this credential's modes, each once, in table order.
    let suites = |version| {
        let mut out: Vec<&str> = Vec::new();
        for m in tls_client::MODES {
            if m.credential == credential && m.version == version && !out.contains(&m.suite) {
                out.push(m.suite);
            }
        }
        out
    };
    let tls12 = suites(tls_client::Version::Tls12);
    let tls13 = suites(tls_client::Version::Tls13);
    args.extend(["-cipher".to_owned(), tls12.join(":")]);
    args.extend(["-ciphersuites".to_owned(), tls13.join(":")]);
    let name = match credential {
        Credential::Certificate => {
            args.extend(
                [
                    ("-cert", "cse.pem"),
                    ("-key", "cse.key"),
                    ("-CAfile", "ca.pem"),
                    ("-CRL", "ca.crl"),
                ]
                .iter()
                .flat_map(|(flag, file)| [Ok((*flag).to_owned()), pki.arg(file)])
                .collect::<anyhow::Result<Vec<_>>>()?,
            );
            args.extend(["-Verify", "4", "-crl_check_all", "-verify_quiet"].map(str::to_owned));
            "s_server-cert"
        }
        Credential::Psk => {
            args.extend([
                "-nocert".to_owned(),
                "-psk".to_owned(),
                pki.psk_hex.clone(),
                "-psk_identity".to_owned(),
                pki.psk_identity.clone(),
                "-num_tickets".to_owned(),
                "0".to_owned(),
            ]);
            "s_server-psk"
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_at(&plan.openssl, &args, tmp.join(format!("{name}.log")), addr)
        .await
        .with_context(|| format!("cannot start openssl {}", args.join(" ")))
}

type Rows = (Vec<HandshakeRow>, Vec<RequestRow>, Vec<String>);

/// The setup of the request rows, then the measured rounds.
async fn rounds(
    plan: &TlsPlan,
    pki: &Pki,
    cse: &Server,
    cert_server: &Server,
    psk_server: &Server,
) -> anyhow::Result<Rows> {
    let https = cse.https.context("the CSE printed no https address")?;
    let contexts: Vec<_> = plan
        .modes
        .iter()
        .map(|m| tls_client::context(m, pki).with_context(|| format!("client context {}", m.name)))
        .collect::<anyhow::Result<_>>()?;
    let mut notes = Vec::new();

    // Request rows: one AE per connection kind, each with its container and contentInstance.
    let mut targets: Vec<(RequestKind, std::net::SocketAddr, Connector, Target)> = Vec::new();
    if !plan.request_conns.is_empty() {
        let mode = |key: &str| {
            tls_client::MODES
                .iter()
                .find(|m| m.key == key)
                .context("no such mode")
        };
        let kinds = [
            (RequestKind::Plain, cse.addr, Connector::Plain, "bench"),
            (
                RequestKind::TlsCertificate,
                https,
                Connector::Tls(tls_client::context(mode("cert13")?, pki)?),
                "benchcert",
            ),
            (
                RequestKind::TlsPsk,
                https,
                Connector::Tls(tls_client::context(mode("psk12")?, pki)?),
                "benchpsk",
            ),
        ];
        for (kind, addr, connector, rn) in kinds {
            let target = scenarios::setup(addr, &connector, rn)
                .await
                .with_context(|| format!("setting up {}", kind.name()))?;
            notes.push(format!(
                "{}: AE /cse-in/{rn} registered as {}",
                kind.name(),
                target.origin()
            ));
            targets.push((kind, addr, connector, target));
        }
        // The PSK's AE again, over the AEAD suites: the credential keeps one AE-ID, so these
        // rows read the same contentInstance as the CBC row.
        let psk_gcm = tls_client::Mode {
            key: "psk12-gcm",
            name: "TLS 1.2 PSK-AES128-GCM-SHA256",
            suite: "PSK-AES128-GCM-SHA256",
            ..*mode("psk12")?
        };
        let psk_target = targets
            .iter()
            .find(|(kind, ..)| *kind == RequestKind::TlsPsk)
            .map(|(.., target)| target.clone())
            .context("no PSK target")?;
        for (kind, mode) in [
            (RequestKind::TlsPskGcm, &psk_gcm),
            (RequestKind::TlsPsk13, mode("psk13")?),
        ] {
            let connector = Connector::Tls(tls_client::context(mode, pki)?);
            targets.push((kind, https, connector, psk_target.clone()));
        }
    }

    let mut handshakes: Vec<HandshakeRow> = plan
        .modes
        .iter()
        .flat_map(|mode| {
            plan.loops.iter().map(|&loops| HandshakeRow {
                mode: *mode,
                loops,
                cse: Vec::new(),
                s_server: Vec::new(),
            })
        })
        .collect();
    let mut requests: Vec<RequestRow> = plan
        .request_conns
        .iter()
        .flat_map(|&conns| {
            targets.iter().map(move |(kind, ..)| RequestRow {
                kind: *kind,
                conns,
                runs: Vec::new(),
            })
        })
        .collect();
    let mut closes: BTreeMap<(&'static str, tls_client::Close), u64> = BTreeMap::new();

    for round in 1..=plan.rounds {
        for (mode, context) in plan.modes.iter().zip(&contexts) {
            for &loops in &plan.loops {
                for server in [HandshakeServer::SServer, HandshakeServer::Cse] {
                    let (addr, watched, label) = match (server, mode.credential) {
                        (HandshakeServer::Cse, _) => (https, cse, "cse"),
                        (HandshakeServer::SServer, Credential::Certificate) => {
                            (cert_server.addr, cert_server, "s_server")
                        }
                        (HandshakeServer::SServer, Credential::Psk) => {
                            (psk_server.addr, psk_server, "s_server")
                        }
                    };
                    eprintln!(
                        "bench: round {round}/{}: {} x{loops} against {label}",
                        plan.rounds, mode.name
                    );
                    let result = tls_client::run(
                        addr,
                        context,
                        mode,
                        loops,
                        plan.warmup,
                        plan.measure,
                        Watch::server(watched),
                    )
                    .await;
                    for (close, n) in &result.closes {
                        *closes.entry((label, *close)).or_default() += n;
                    }
                    if let Some(row) = handshakes
                        .iter_mut()
                        .find(|r| r.mode == *mode && r.loops == loops)
                    {
                        match server {
                            HandshakeServer::Cse => row.cse.push(result),
                            HandshakeServer::SServer => row.s_server.push(result),
                        }
                    }
                }
            }
        }
        for &conns in &plan.request_conns {
            for (kind, addr, connector, target) in &targets {
                eprintln!(
                    "bench: round {round}/{}: {} with {conns} connection(s)",
                    plan.rounds,
                    kind.name()
                );
                let result = load::run(
                    *addr,
                    connector,
                    conns,
                    plan.warmup,
                    plan.measure,
                    &scenarios::retrieve_workload(target),
                    Watch::server(cse),
                )
                .await
                .with_context(|| format!("{} with {conns} connection(s)", kind.name()))?;
                if let Some(row) = requests
                    .iter_mut()
                    .find(|r| r.kind == *kind && r.conns == conns)
                {
                    row.runs.push(result);
                }
            }
        }
    }
    for label in ["cse", "s_server"] {
        let mine: Vec<String> = closes
            .iter()
            .filter(|((l, _), _)| *l == label)
            .map(|((_, close), n)| format!("{n} x {}", close.describe()))
            .collect();
        if !mine.is_empty() {
            notes.push(format!(
                "{label} ended the connections after the client's close_notify with: {}",
                mine.join(", ")
            ));
        }
    }
    Ok((handshakes, requests, notes))
}

/// Handshakes the CSE refused, from its log: how many, and the first distinct reasons.
pub(crate) fn refusals(log: &Path) -> Vec<String> {
    let Ok(file) = std::fs::File::open(log) else {
        return vec![format!("cannot read the CSE log {}", log.display())];
    };
    let mut opened = 0u64;
    let mut closed = 0u64;
    let mut refused = 0u64;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if line.contains("security association opened") {
            opened += 1;
        } else if line.contains("security association closed") {
            closed += 1;
        } else if line.contains("security association refused") {
            refused += 1;
            let reason = line
                .split_once("reason=")
                .map_or("?", |(_, r)| r)
                .chars()
                .take(160)
                .collect::<String>();
            if reasons.len() < 5 || reasons.contains_key(&reason) {
                *reasons.entry(reason).or_default() += 1;
            }
        }
    }
    let mut out = vec![format!(
        "CSE log: {opened} security associations opened and {closed} closed (an info line \
         each), {refused} refused"
    )];
    for (reason, n) in reasons {
        out.push(format!("CSE refused {n} x: {reason}"));
    }
    out
}

/// Standard output of a short command.
pub(crate) fn command_output(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    anyhow::ensure!(out.status.success(), "exit status {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `openssl speed -seconds 1 ecdsap256 ecdhx25519` (one core), or `None` if it fails.
fn openssl_speed(openssl: &Path) -> Option<Speed> {
    let out = command_output(
        openssl,
        &["speed", "-seconds", "1", "ecdsap256", "ecdhx25519"],
    )
    .ok()?;
    parse_speed(&out)
}

fn parse_speed(out: &str) -> Option<Speed> {
    let numbers = |line: &str| -> Vec<f64> {
        line.split_whitespace()
            .filter_map(|w| w.parse::<f64>().ok())
            .collect()
    };
    let ecdsa = out.lines().find(|l| l.contains("ecdsa (nistp256)"))?;
    let ecdsa = numbers(ecdsa);
    let [.., sign, verify] = ecdsa.as_slice() else {
        return None;
    };
    let x25519 = out
        .lines()
        .find(|l| l.contains("ecdh (X25519)"))
        .and_then(|l| numbers(l).last().copied());
    Some(Speed {
        ecdsa_sign: *sign,
        ecdsa_verify: *verify,
        x25519,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_output() {
        let out = "                              sign    verify    sign/s verify/s\n \
                   256 bits ecdsa (nistp256)   0.0000s   0.0001s  32456.6  10461.0\n\
                   \x20                             op      op/s\n \
                   253 bits ecdh (X25519)   0.0000s  25950.0\n";
        let s = parse_speed(out).expect("parsed");
        assert_eq!(s.ecdsa_sign, 32456.6);
        assert_eq!(s.ecdsa_verify, 10461.0);
        assert_eq!(s.x25519, Some(25950.0));
        assert!(parse_speed("nothing").is_none());
    }
}
