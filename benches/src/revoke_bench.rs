//! `bench revoke`: how long a revocation takes to cut off a credential's live associations.
//!
//! Each round opens N TLS-PSK connections with one credential, each serving one request and
//! then left open, revokes the credential through the admin interface, and times (from the
//! moment the admin request is sent) the admin's answer and the end of the last of the N
//! connections. The baseline, in the same round, is the same revocation of a credential with
//! no live association: what the durable journal and the audit log cost alone.

use crate::process::Server;
use anyhow::Context;
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug)]
pub(crate) struct RevokePlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// `scripts/make-test-pki.sh`.
    pub(crate) pki_script: PathBuf,
    /// Live associations per round.
    pub(crate) associations: usize,
    /// Rounds.
    pub(crate) rounds: usize,
}

/// One round's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RevokeRound {
    /// Revoking a credential without associations: until the admin's answer.
    pub(crate) idle_ack: Duration,
    /// Revoking a credential with N live associations: until the admin's answer.
    pub(crate) ack: Duration,
    /// ... until the last of the N connections ended.
    pub(crate) last_closed: Duration,
    /// Associations the CSE reported closed.
    pub(crate) closed: usize,
}

/// A PSK: identity and key.
struct Psk {
    identity: String,
    key: Vec<u8>,
}

/// Runs every round against one CSE.
pub(crate) async fn run(plan: &RevokePlan) -> anyhow::Result<Vec<RevokeRound>> {
    let dir = tempfile::tempdir()?;
    let pki = dir.path().join("tls");
    let out = std::process::Command::new("bash")
        .arg(&plan.pki_script)
        .arg(&pki)
        .output()
        .context("cannot run the PKI script")?;
    anyhow::ensure!(
        out.status.success(),
        "PKI script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sp = "secure-cse.example";
    // One credential per round and per role (busy, idle), plus the admin's.
    let mut credentials = String::new();
    let mut psks = Vec::new();
    for i in 0..plan.rounds * 2 {
        let key: Vec<u8> = (0..16)
            .map(|b| (b as u8).wrapping_mul(31) ^ i as u8)
            .collect();
        let identity = format!("bench-{i}@{sp}");
        credentials += &format!(
            "[[psk]]\nidentity = \"{identity}\"\nkey_hex = \"{}\"\nallowed_aes = [\"C*\"]\n\n",
            hex(&key)
        );
        psks.push(Psk { identity, key });
    }
    let admin_key: Vec<u8> = (0..32).map(|b| b as u8 ^ 0x5a).collect();
    credentials += &format!(
        "[[psk]]\nidentity = \"admin@{sp}\"\nkey_hex = \"{}\"\nae = \"CAdmin\"\nadmin = true\n",
        hex(&admin_key)
    );
    let credentials_path = dir.path().join("credentials.toml");
    write_private(&credentials_path, &credentials)?;
    let config = format!(
        "[cse]\nsp_id = \"{sp}\"\n[security]\ncredentials = \"{}\"\n[[tls]]\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\nmax_handshakes_per_ip = {}\n",
        credentials_path.display(),
        plan.associations.max(16) * 2
    );
    let config_path = dir.path().join("cse.toml");
    std::fs::write(&config_path, config)?;
    let data = dir.path().join("data");
    let data_arg = data.to_str().context("path")?.to_owned();
    let config_arg = config_path.to_str().context("path")?.to_owned();
    let server = Server::start_with_tls(
        &plan.cse,
        &[
            "--http",
            "127.0.0.1:0",
            "--data",
            &data_arg,
            "--config",
            &config_arg,
        ],
        dir.path().join("cse.log"),
    )
    .await?;
    let tls = server.https.context("the CSE has no TLS listener")?;
    let admin = Psk {
        identity: format!("admin@{sp}"),
        key: admin_key,
    };
    let mut rounds = Vec::new();
    for round in 0..plan.rounds {
        let (busy, idle) = (&psks[round * 2], &psks[round * 2 + 1]);
        let round_result = tokio::task::block_in_place(|| {
            let idle_ack = revoke(tls, &admin, &idle.identity)?.0;
            let (tx, rx) = mpsc::channel();
            let mut handles = Vec::new();
            for _ in 0..plan.associations {
                let (tx, identity, key) = (tx.clone(), busy.identity.clone(), busy.key.clone());
                let ready = mpsc::channel::<()>();
                handles.push(ready.1);
                std::thread::spawn(move || {
                    let outcome = hold_open(tls, &identity, &key, ready.0);
                    let _ = tx.send(outcome.map(|()| Instant::now()));
                });
            }
            for ready in handles {
                ready
                    .recv_timeout(Duration::from_secs(30))
                    .context("a connection did not get its answer")?;
            }
            let started = Instant::now();
            let (ack, closed) = revoke(tls, &admin, &busy.identity)?;
            let mut last = started;
            for _ in 0..plan.associations {
                let ended = rx
                    .recv_timeout(Duration::from_secs(30))
                    .context("a revoked connection stayed open for 30 s")??;
                last = last.max(ended);
            }
            anyhow::Ok(RevokeRound {
                idle_ack,
                ack,
                last_closed: last - started,
                closed,
            })
        })?;
        rounds.push(round_result);
    }
    server.stop().await?;
    Ok(rounds)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// A TLS 1.3 PSK connection to the CSE.
fn connect(
    addr: SocketAddr,
    identity: &str,
    key: &[u8],
) -> anyhow::Result<openssl::ssl::SslStream<TcpStream>> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_ciphersuites("TLS_AES_128_GCM_SHA256")?;
    let (identity, key) = (identity.to_owned(), key.to_vec());
    b.set_psk_client_callback(move |_, _, id_out, key_out| {
        let id = identity.as_bytes();
        if id.len() >= id_out.len() || key.len() > key_out.len() {
            return Ok(0);
        }
        id_out[..id.len()].copy_from_slice(id);
        id_out[id.len()] = 0;
        key_out[..key.len()].copy_from_slice(&key);
        Ok(key.len())
    });
    let mut config = b.build().configure()?;
    config.set_verify_hostname(false);
    config.set_use_server_name_indication(false);
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    Ok(config.connect("cse", tcp)?)
}

/// One request, then the connection stays open until the server ends it.
fn hold_open(
    addr: SocketAddr,
    identity: &str,
    key: &[u8],
    ready: mpsc::Sender<()>,
) -> anyhow::Result<()> {
    let mut tls = connect(addr, identity, key)?;
    tls.write_all(
        b"GET /cse-in HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: C\r\nX-M2M-RI: r\r\nX-M2M-RVI: 3\r\n\r\n",
    )?;
    let mut buf = [0u8; 4096];
    let n = tls.read(&mut buf)?;
    anyhow::ensure!(n > 0, "no answer");
    let _ = ready.send(());
    loop {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Revokes `credential` as the admin; returns the time to the answer and the associations
/// the CSE closed.
fn revoke(addr: SocketAddr, admin: &Psk, identity: &str) -> anyhow::Result<(Duration, usize)> {
    let mut tls = connect(addr, &admin.identity, &admin.key)?;
    let request = format!(
        "POST /.admin/revoke?credential=12-{identity}&reason=bench HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: CAdmin\r\nX-M2M-RI: r\r\nX-M2M-RVI: 3\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let started = Instant::now();
    tls.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    anyhow::ensure!(text.contains("X-M2M-RSC: 2000"), "revoke refused: {text}");
    let closed = text
        .split("\"associationsClosed\":")
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((elapsed, closed))
}
