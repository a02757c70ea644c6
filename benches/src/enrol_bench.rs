//! `bench enrol`: enrolments per second end to end (TLS-PSK handshake with the enrolee key,
//! the bootstrap exporter, one enrolment request: key derivation on both sides, the
//! provisioned key and the audit entries synced), next to the same handshake alone against
//! the same listener, in one run.

use crate::process::Server;
use anyhow::Context;
use cli::enrol_cmd::EnrolmentClient;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What to run.
#[derive(Debug)]
pub(crate) struct EnrolPlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// Concurrent clients, each row.
    pub(crate) clients: Vec<usize>,
    /// Measured time of each row.
    pub(crate) measure: Duration,
    /// Rounds (interleaved).
    pub(crate) rounds: usize,
}

/// One row: enrolments/s and handshakes/s at one client count, one value per round.
#[derive(Debug)]
pub(crate) struct EnrolRow {
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// Enrolments/s per round.
    pub(crate) enrolments: Vec<f64>,
    /// Handshakes alone per second, per round.
    pub(crate) handshakes: Vec<f64>,
}

const KPM_ID: &str = "bench-device@mef.example";
const KPM_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Runs every row against one CSE.
pub(crate) async fn run(plan: &EnrolPlan) -> anyhow::Result<Vec<EnrolRow>> {
    let dir = tempfile::tempdir()?;
    let enrolees = dir.path().join("enrolees.toml");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&enrolees)?;
        writeln!(
            f,
            "[[enrolee]]\nidentity = \"{KPM_ID}\"\nkey_hex = \"{KPM_HEX}\"\nallowed_aes = [\"C*\"]"
        )?;
    }
    let config = dir.path().join("cse.toml");
    std::fs::write(
        &config,
        format!(
            "[[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\nmax_handshakes_per_ip = 256\n\n\
             [enrolment]\nlisten = \"127.0.0.1:0\"\nenrolees = \"{}\"\n",
            enrolees.display()
        ),
    )?;
    let data = dir.path().join("data");
    let (data_arg, config_arg) = (
        data.to_str().context("path")?.to_owned(),
        config.to_str().context("path")?.to_owned(),
    );
    let server = Server::start_with_env(
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
        2,
        &[],
    )
    .await?;
    let mef = *server
        .https_all
        .last()
        .context("the CSE printed no enrolment listener")?;
    let url = format!("https://{mef}");
    let mut rows: Vec<EnrolRow> = plan
        .clients
        .iter()
        .map(|&clients| EnrolRow {
            clients,
            enrolments: Vec::new(),
            handshakes: Vec::new(),
        })
        .collect();
    for _ in 0..plan.rounds {
        for row in &mut rows {
            let (clients, measure) = (row.clients, plan.measure);
            let u = url.clone();
            let handshakes = tokio::task::block_in_place(|| rate(clients, measure, &u, false))?;
            let enrolments = tokio::task::block_in_place(|| rate(clients, measure, &u, true))?;
            row.handshakes.push(handshakes);
            row.enrolments.push(enrolments);
        }
    }
    server.stop().await?;
    Ok(rows)
}

/// Completed operations per second with `clients` threads for `measure`.
fn rate(clients: usize, measure: Duration, url: &str, enrol: bool) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let key = hex_key()?;
    let mut threads = Vec::new();
    let started = Instant::now();
    for _ in 0..clients {
        let (stop, done, url, key) = (stop.clone(), done.clone(), url.to_owned(), key.clone());
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            // One TLS configuration per enrolee, as a device keeps it.
            let enrolee = EnrolmentClient::new(&url, KPM_ID, key, false, Duration::from_secs(10))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            while !stop.load(Ordering::Relaxed) {
                let mut session = enrolee.connect().map_err(|e| anyhow::anyhow!("{e}"))?;
                if enrol {
                    session.enrol(None).map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    std::thread::sleep(measure);
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
    }
    Ok(count as f64 / elapsed.as_secs_f64())
}

fn hex_key() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    (0..KPM_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&KPM_HEX[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map(Zeroizing::new)
        .context("the benchmark's enrolee key is not hex")
}
