//! `bench`: measures the `cse` binary against a hello-world hyper server started in the same
//! run, so that the ratios mean something on a small, noisy machine.
//!
//! `bench` (no subcommand) runs every scenario and prints one table; `bench hello --listen ADDR`
//! is the baseline server, which the benchmark starts as a subprocess of itself so that both
//! servers run the same way (their own process, their own tokio runtime). See
//! `docs/benchmarks.md`.
#![forbid(unsafe_code)]

mod client;
mod hello;
mod load;
mod process;
mod report;
mod scenarios;
mod stats;

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
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Unmeasured seconds before each scenario (connections warm up, caches fill).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Rounds: every scenario is measured this many times, interleaved with the others, and
    /// the table shows the median round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Connection counts to measure, comma-separated. The targets use 1 and 16.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    conns: Vec<usize>,
    /// Worker threads of the load generator (it shares the CPU with the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The `cse` binary (default: `cse` next to this program, i.e. `target/release/cse`).
    #[arg(long)]
    cse: Option<PathBuf>,
    /// Print Markdown tables (for docs/benchmarks.md) instead of plain text.
    #[arg(long)]
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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        Some(Mode::Hello { listen }) => hello::serve(listen),
        None => bench(&args),
    }
}

/// Runs the whole benchmark and prints the report.
fn bench(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    anyhow::ensure!(args.warmup >= 0.0, "--warmup must not be negative");
    anyhow::ensure!(
        !args.conns.is_empty() && !args.conns.contains(&0),
        "--conns needs counts above 0"
    );
    let cse = match &args.cse {
        Some(p) => p.clone(),
        None => sibling("cse")?,
    };
    anyhow::ensure!(
        cse.is_file(),
        "{} not found: build it first with `cargo build --release -p cli` (or pass --cse PATH)",
        cse.display()
    );
    let plan = scenarios::Plan {
        me: std::env::current_exe().context("cannot locate the bench binary")?,
        cse,
        conns: args.conns.clone(),
        measure: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_secs_f64(args.warmup),
        rounds: args.rounds,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .context("cannot start the load generator's runtime")?;
    let outcome = runtime.block_on(scenarios::run(&plan))?;
    let style = if args.markdown {
        report::Style::Markdown
    } else {
        report::Style::Plain
    };
    print!("{}", report::render(&outcome, style));
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
