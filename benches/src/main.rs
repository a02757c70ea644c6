//! `bench`: measures the `cse` binary against a hello-world hyper server started in the same
//! run, so that the ratios mean something on a small, noisy machine.
//!
//! `bench` (no subcommand) runs every scenario and prints one table; `bench hello --listen ADDR`
//! is the baseline server, which the benchmark starts as a subprocess of itself so that both
//! servers run the same way (their own process, their own tokio runtime). `bench tls` measures
//! the CSE's TLS listener next to `openssl s_server` and plaintext; `bench tls-keyhome` its
//! handshakes with the server key in each key home (levels 1-3) next to a key file, and each
//! home's raw sign rate. See `docs/benchmarks.md`.
//!
//! Unsafe code is denied, with one exception: offering a TLS session for resumption
//! (`tls_client::offer_session`), which the `openssl` crate only has as an `unsafe fn`.
#![deny(unsafe_code)]

mod acp_bench;
mod anchor_bench;
mod client;
mod enrol_bench;
mod hello;
mod keyhome_bench;
mod keyhome_report;
mod load;
mod polling_bench;
mod process;
mod report;
mod revoke_bench;
mod rotate_bench;
mod scenarios;
mod sign_rate;
mod soak_bench;
mod stats;
mod tls_bench;
mod tls_client;
mod tls_report;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Throughput and latency of the CSE over HTTP/1.1, next to a hello-world baseline.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Run one server instead of the benchmark.
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Measured seconds of each scenario.
    #[arg(long, global = true, default_value_t = 5.0)]
    seconds: f64,
    /// Unmeasured seconds before each scenario (connections warm up, caches fill).
    #[arg(long, global = true, default_value_t = 1.0)]
    warmup: f64,
    /// Rounds: every scenario is measured this many times, interleaved with the others, and
    /// the table shows the median round.
    #[arg(long, global = true, default_value_t = 3)]
    rounds: usize,
    /// Connection counts to measure, comma-separated. The targets use 1 and 16.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    conns: Vec<usize>,
    /// Worker threads of the load generator (it shares the CPU with the server).
    #[arg(long, global = true, default_value_t = 1)]
    client_threads: usize,
    /// The `cse` binary (default: `cse` next to this program, i.e. `target/release/cse`).
    #[arg(long, global = true)]
    cse: Option<PathBuf>,
    /// Print Markdown tables (for docs/benchmarks.md) instead of plain text.
    #[arg(long, global = true)]
    markdown: bool,
}

/// A single-server mode of the same binary.
#[derive(Debug, Subcommand)]
enum Mode {
    /// The baseline: answers every request with "Hello, World!".
    Hello {
        /// Address to listen on; port 0 picks a free port, printed as `listening on http://ADDR`.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// TLS: handshakes/s of the CSE next to `openssl s_server`, and requests over TLS next to
    /// plaintext.
    Tls(TlsArgs),
    /// Access control: RETRIEVE by an AE admitted by the last of N ACP rules, next to the
    /// same RETRIEVE by the admin originator (no access control), in one run.
    Acp(AcpArgs),
    /// TLS handshakes/s with the CSE's server key in each key home (levels 1-3) next to a
    /// key file, and each home's raw sign rate, in one run.
    TlsKeyhome(KeyhomeArgs),
    /// Revocation: the time from an admin's revoke to the end of the last of N live
    /// associations of the revoked credential, next to revoking an unused credential.
    Revoke(RevokeArgs),
    /// Enrolments/s end to end (MEF), next to the enrolment listener's bare handshakes/s.
    Enrol(EnrolArgs),
    /// AE-ID rotation: its time as the AE's data grows, next to an UPDATE of the same AE
    Rotate(RotateArgs),
    /// Soak: RSS of the CSE sampled under a long mixed load (reads of `la`, creates into a
    /// container capped by `mni`), which must stay flat after the warm-up.
    Soak(SoakArgs),
    /// Polling channels: the memory of N AEs waiting on their channels, and the time from a
    /// notification to its waiting poller, next to the same CSE with no poll waiting.
    Polling(PollingArgs),
    /// The audit checkpoint's anchor: one update of a TPM NV counter (swtpm) and of a
    /// PKCS#11 record (SoftHSM), and an append anchored at once next to a plain one.
    Anchor(anchor_bench::AnchorArgs),
    /// One home's ECDSA sign rate, raw and through the key store (run by tls-keyhome).
    #[command(hide = true)]
    SignRate(sign_rate::SignRateArgs),
}

/// Options of `bench tls-keyhome` (besides the common ones: --seconds, --warmup, --rounds,
/// --client-threads, --cse, --markdown).
#[derive(Debug, clap::Args)]
struct KeyhomeArgs {
    /// Concurrent handshake loops, comma-separated; every mode and key is measured with each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    loops: Vec<usize>,
    /// Handshake modes, comma-separated: cert12 (TLS 1.2 ECDHE-ECDSA), cert13 (TLS 1.3).
    #[arg(long, value_delimiter = ',', default_values_t = ["cert12".to_owned(), "cert13".to_owned()])]
    handshakes: Vec<String>,
    /// Seconds of each raw and key-store sign rate.
    #[arg(long, default_value_t = 2.0)]
    sign_seconds: f64,
    /// The `m2m` binary (default: `m2m` next to this program).
    #[arg(long)]
    m2m: Option<PathBuf>,
    /// The openssl command (issues the homes' certificates).
    #[arg(long, default_value = "openssl")]
    openssl: PathBuf,
}

/// Options of `bench enrol` (besides the common ones: --seconds, --rounds, --cse).
#[derive(Debug, clap::Args)]
struct EnrolArgs {
    /// Concurrent enrolees, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    clients: Vec<usize>,
}

/// Options of `bench soak` (besides the common ones: --client-threads, --cse, --markdown).
#[derive(Debug, clap::Args)]
struct SoakArgs {
    /// Seconds under load (10 minutes by default; e.g. 120 for a quick look).
    #[arg(long, default_value_t = 600.0)]
    duration: f64,
    /// Seconds between RSS samples (one row of the table each).
    #[arg(long, default_value_t = 30.0)]
    sample: f64,
    /// Seconds from the start whose samples are not judged (the container fills to mni).
    #[arg(long, default_value_t = 60.0)]
    warm: f64,
    /// Connections reading the container's latest contentInstance (`la`).
    #[arg(long, default_value_t = 8)]
    readers: usize,
    /// Connections creating contentInstances.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// The container's mni (the data set's bound).
    #[arg(long, default_value_t = 1000)]
    mni: u64,
}

/// Options of `bench polling` (besides the common ones: --client-threads, --cse).
#[derive(Debug, clap::Args)]
struct PollingArgs {
    /// AEs with a channel and a waiting poll each.
    #[arg(long, default_value_t = 10_000)]
    aes: usize,
    /// Notifications whose time to the poller is measured.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Connections registering the AEs.
    #[arg(long, default_value_t = 16)]
    setup_conns: usize,
}

/// Options of `bench rotate` (besides the common ones: --rounds, --cse).
#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// contentInstances below the AE at each measurement, comma-separated, ascending.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000, 100_000])]
    instances: Vec<usize>,
}

/// Options of `bench revoke` (besides the common ones: --rounds, --cse).
#[derive(Debug, clap::Args)]
struct RevokeArgs {
    /// Live associations of the revoked credential.
    #[arg(long, default_value_t = 100)]
    associations: usize,
}

/// Options of `bench acp` (besides the common ones).
#[derive(Debug, clap::Args)]
struct AcpArgs {
    /// Rules in the container's ACP; the reader is admitted by the last one.
    #[arg(long, default_value_t = 10)]
    rules: usize,
    /// Connection counts, comma-separated.
    #[arg(long = "conns", value_delimiter = ',', default_values_t = [1, 16])]
    acp_conns: Vec<usize>,
}

/// Options of `bench tls` (besides the common ones: --seconds, --warmup, --rounds,
/// --client-threads, --cse, --markdown).
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// Concurrent handshake loops, comma-separated; every handshake mode is measured with each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    loops: Vec<usize>,
    /// Handshake modes, comma-separated (psk12, ecdhe-psk12, psk13, cert12, cert13, resume12,
    /// resume13), or "none".
    #[arg(long, value_delimiter = ',', default_value = "all")]
    handshakes: Vec<String>,
    /// Keep-alive connections of the request rows, comma-separated; 0 skips them.
    #[arg(long, value_delimiter = ',', default_values_t = [16])]
    request_conns: Vec<usize>,
    /// `max_handshakes_per_ip` of the CSE's TLS listener (every handshake comes from
    /// 127.0.0.1; the default cap of 16 would refuse handshakes beyond 16 loops).
    #[arg(long, default_value_t = 64)]
    handshakes_per_ip: usize,
    /// The openssl command, for `s_server` and `speed`.
    #[arg(long, default_value = "openssl")]
    openssl: PathBuf,
    /// The script that makes the test PKI (default: the workspace's
    /// scripts/make-test-pki.sh).
    #[arg(long)]
    pki_script: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.mode {
        Some(Mode::Hello { listen }) => hello::serve(*listen),
        Some(Mode::Tls(tls)) => bench_tls(&args, tls),
        Some(Mode::Acp(acp)) => bench_acp(&args, acp),
        Some(Mode::Revoke(revoke)) => bench_revoke(&args, revoke),
        Some(Mode::Enrol(enrol)) => bench_enrol(&args, enrol),
        Some(Mode::Rotate(rotate)) => bench_rotate(&args, rotate),
        Some(Mode::Soak(soak)) => bench_soak(&args, soak),
        Some(Mode::Polling(polling)) => bench_polling(&args, polling),
        Some(Mode::TlsKeyhome(kh)) => bench_tls_keyhome(&args, kh),
        Some(Mode::SignRate(sr)) => sign_rate::run(sr),
        Some(Mode::Anchor(anchor)) => anchor_bench::run(anchor, args.rounds),
        None => bench(&args),
    }
}

/// Checks the options every benchmark shares and finds the `cse` binary.
fn common(args: &Args) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(args.warmup >= 0.0, "--warmup must not be negative");
    let cse = match &args.cse {
        Some(p) => p.clone(),
        None => sibling("cse")?,
    };
    anyhow::ensure!(
        cse.is_file(),
        "{} not found: build it first with `cargo build --release -p cli` (or pass --cse PATH)",
        cse.display()
    );
    Ok(cse)
}

/// The load generator's runtime.
fn client_runtime(args: &Args) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")
}

fn style(args: &Args) -> report::Style {
    if args.markdown {
        report::Style::Markdown
    } else {
        report::Style::Plain
    }
}

/// Runs `bench tls` and prints its report.
fn bench_tls(args: &Args, tls: &TlsArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        !tls.loops.is_empty() && !tls.loops.contains(&0),
        "--loops needs counts above 0"
    );
    let modes = if tls.handshakes.iter().any(|h| h == "all") {
        tls_client::MODES.to_vec()
    } else if tls.handshakes.iter().any(|h| h == "none") {
        Vec::new()
    } else {
        tls.handshakes
            .iter()
            .map(|key| {
                tls_client::MODES
                    .iter()
                    .find(|m| m.key == key)
                    .copied()
                    .with_context(|| format!("unknown handshake mode {key:?}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let plan = tls_bench::TlsPlan {
        cse,
        openssl: tls.openssl.clone(),
        pki_script: match &tls.pki_script {
            Some(p) => p.clone(),
            None => PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/make-test-pki.sh"
            )),
        },
        modes,
        loops: tls.loops.clone(),
        request_conns: tls
            .request_conns
            .iter()
            .copied()
            .filter(|&n| n > 0)
            .collect(),
        handshakes_per_ip: tls.handshakes_per_ip.max(1),
        measure: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rounds: args.rounds,
    };
    anyhow::ensure!(
        plan.pki_script.is_file(),
        "{} not found (pass --pki-script PATH)",
        plan.pki_script.display()
    );
    let outcome = client_runtime(args)?.block_on(tls_bench::run(&plan))?;
    print!("{}", tls_report::render(&outcome, style(args)));
    Ok(())
}

/// Runs `bench tls-keyhome` and prints its report.
fn bench_tls_keyhome(args: &Args, kh: &KeyhomeArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        !kh.loops.is_empty() && !kh.loops.contains(&0),
        "--loops needs counts above 0"
    );
    anyhow::ensure!(kh.sign_seconds > 0.0, "--sign-seconds must be positive");
    let modes = kh
        .handshakes
        .iter()
        .map(|key| {
            tls_client::MODES
                .iter()
                .find(|m| {
                    m.key == key && !m.resume && m.credential == tls_client::Credential::Certificate
                })
                .copied()
                .with_context(|| format!("handshake mode {key:?} is not cert12 or cert13"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let m2m = match &kh.m2m {
        Some(p) => p.clone(),
        None => sibling("m2m")?,
    };
    anyhow::ensure!(
        m2m.is_file(),
        "{} not found: build it first with `cargo build --release -p cli` (or pass --m2m PATH)",
        m2m.display()
    );
    let plan = keyhome_bench::KeyhomePlan {
        cse,
        m2m,
        me: std::env::current_exe().context("cannot locate the bench binary")?,
        openssl: kh.openssl.clone(),
        pki_script: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/make-test-pki.sh"
        )),
        modes,
        loops: kh.loops.clone(),
        handshakes_per_ip: 64,
        measure: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rounds: args.rounds,
        sign_secs: kh.sign_seconds,
    };
    let outcome = client_runtime(args)?.block_on(keyhome_bench::run(&plan))?;
    print!("{}", keyhome_report::render(&outcome, style(args)));
    Ok(())
}

/// Runs `bench acp` and prints its report.
fn bench_acp(args: &Args, acp: &AcpArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(acp.rules > 0, "--rules must be at least 1");
    anyhow::ensure!(
        !acp.acp_conns.is_empty() && !acp.acp_conns.contains(&0),
        "--conns needs counts above 0"
    );
    let plan = acp_bench::AcpPlan {
        cse,
        conns: acp.acp_conns.clone(),
        rules: acp.rules,
        measure: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rounds: args.rounds,
    };
    let report = client_runtime(args)?.block_on(acp_bench::run(&plan))?;
    print!("{report}");
    Ok(())
}

fn bench_enrol(args: &Args, enrol: &EnrolArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        !enrol.clients.is_empty() && !enrol.clients.contains(&0),
        "--clients needs counts above 0"
    );
    let plan = enrol_bench::EnrolPlan {
        cse,
        clients: enrol.clients.clone(),
        measure: Duration::from_secs_f64(args.seconds),
        rounds: args.rounds,
    };
    let rows = client_runtime(args)?.block_on(enrol_bench::run(&plan))?;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
    };
    println!(
        "enrolment (MEF) over TLS 1.3 PSK, {} round(s) of {} s, median",
        plan.rounds, args.seconds
    );
    println!("| enrolees | handshakes alone /s | enrolments /s | enrolment/handshake |");
    println!("|---:|---:|---:|---:|");
    for r in &rows {
        let (h, e) = (median(&r.handshakes), median(&r.enrolments));
        let ratio = if h > 0.0 { e / h } else { 0.0 };
        println!("| {} | {h:.0} | {e:.0} | {ratio:.2} |", r.clients);
    }
    Ok(())
}

/// Runs `bench soak` and prints its report.
fn bench_soak(args: &Args, soak: &SoakArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        soak.sample > 0.0 && soak.duration >= soak.sample,
        "--sample must be positive and --duration at least one sample"
    );
    anyhow::ensure!(soak.warm >= 0.0, "--warm must not be negative");
    anyhow::ensure!(
        soak.readers > 0 && soak.writers > 0 && soak.mni > 0,
        "--readers, --writers and --mni must be at least 1"
    );
    let plan = soak_bench::SoakPlan {
        cse,
        duration: Duration::from_secs_f64(soak.duration),
        sample: Duration::from_secs_f64(soak.sample),
        warmup: Duration::from_secs_f64(soak.warm),
        readers: soak.readers,
        writers: soak.writers,
        mni: soak.mni,
    };
    let outcome = client_runtime(args)?.block_on(soak_bench::run(&plan))?;
    print!("{}", soak_bench::render(&plan, &outcome, args.markdown));
    Ok(())
}

/// Runs `bench polling` and prints its report.
fn bench_polling(args: &Args, polling: &PollingArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        polling.aes > 0 && polling.samples > 0 && polling.samples <= polling.aes,
        "--aes and --samples must be at least 1, and --samples at most --aes"
    );
    let plan = polling_bench::PollingPlan {
        cse,
        aes: polling.aes,
        samples: polling.samples,
        setup_conns: polling.setup_conns,
    };
    let outcome = client_runtime(args)?.block_on(polling_bench::run(&plan))?;
    print!("{}", polling_bench::render(&plan, &outcome));
    Ok(())
}

/// Runs `bench rotate` and prints its report.
fn bench_rotate(args: &Args, rotate: &RotateArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        rotate.instances.windows(2).all(|w| w[0] < w[1]) && rotate.instances[0] >= 1,
        "--instances must be ascending and at least 1"
    );
    let plan = rotate_bench::RotatePlan {
        cse,
        sizes: rotate.instances.clone(),
        rounds: args.rounds,
    };
    let rows = client_runtime(args)?.block_on(rotate_bench::run(&plan))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "AE-ID rotation next to an UPDATE of the same AE, median of {} rounds (ms)",
        plan.rounds
    );
    println!("| contentInstances | database | UPDATE of the AE | rotation | rotation / UPDATE | rotation per 1,000 instances |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (update, rotation) = (
            rotate_bench::median(&r.update),
            rotate_bench::median(&r.rotate),
        );
        let ratio = if update.is_zero() {
            0.0
        } else {
            rotation.as_secs_f64() / update.as_secs_f64()
        };
        println!(
            "| {} | {:.1} MiB | {:.2} | {:.1} | {ratio:.0}x | {:.2} |",
            r.instances,
            r.db_bytes as f64 / (1024.0 * 1024.0),
            ms(update),
            ms(rotation),
            ms(rotation) * 1000.0 / r.instances as f64
        );
    }
    Ok(())
}

fn bench_revoke(args: &Args, revoke: &RevokeArgs) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(revoke.associations > 0, "--associations must be at least 1");
    let plan = revoke_bench::RevokePlan {
        cse,
        pki_script: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/make-test-pki.sh"
        )),
        associations: revoke.associations,
        rounds: args.rounds,
    };
    let rounds = client_runtime(args)?.block_on(revoke_bench::run(&plan))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "revocation with {} live associations, {} rounds (ms)",
        plan.associations, plan.rounds
    );
    println!("| round | revoke unused credential: answer | revoke: answer | revoke: last association closed | closed |");
    println!("|---:|---:|---:|---:|---:|");
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {} |",
            i + 1,
            ms(r.idle_ack),
            ms(r.ack),
            ms(r.last_closed),
            r.closed
        );
    }
    let mut last: Vec<Duration> = rounds.iter().map(|r| r.last_closed).collect();
    last.sort();
    if let Some(median) = last.get(last.len() / 2) {
        println!(
            "median time to the last closed association: {:.1} ms (target: under 1000 ms)",
            ms(*median)
        );
    }
    Ok(())
}

/// Runs the whole benchmark and prints the report.
fn bench(args: &Args) -> anyhow::Result<()> {
    let cse = common(args)?;
    anyhow::ensure!(
        !args.conns.is_empty() && !args.conns.contains(&0),
        "--conns needs counts above 0"
    );
    let plan = scenarios::Plan {
        me: std::env::current_exe().context("cannot locate the bench binary")?,
        cse,
        conns: args.conns.clone(),
        measure: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rounds: args.rounds,
    };
    let outcome = client_runtime(args)?.block_on(scenarios::run(&plan))?;
    print!("{}", report::render(&outcome, style(args)));
    Ok(())
}

/// A file next to the running executable (both binaries live in `target/release`).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate the bench binary")?;
    let dir = me
        .parent()
        .context("the bench binary has no parent folder")?;
    Ok(dir.join(name))
}
