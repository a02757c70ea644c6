//! `bench soak`: whether the CSE's memory stays flat under a long mixed load whose data set is
//! bounded.
//!
//! One CSE on its plaintext listener, one AE with a container capped at `mni`
//! contentInstances, so that once the cap is reached every create deletes the oldest instance
//! and the database stops growing. `readers` keep-alive connections RETRIEVE the latest
//! instance (`la`) while `writers` CREATE instances, in back-to-back windows of `sample`; after
//! each window the CSE's resident set (`VmRSS`) is read. Memory kept per create shows as RSS
//! rising window after window long after the warm-up; a CSE without such a leak plateaus.

use crate::client::Connector;
use crate::load::{self, LoadResult, Watch};
use crate::process::Server;
use crate::scenarios;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// What to run.
#[derive(Debug)]
pub(crate) struct SoakPlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// Total time under load.
    pub(crate) duration: Duration,
    /// Length of each window (one RSS sample and one row of rates per window).
    pub(crate) sample: Duration,
    /// Time from the start whose samples are shown but not judged (the container fills to
    /// `mni`, caches and allocator arenas reach their working size).
    pub(crate) warmup: Duration,
    /// Connections reading `la`.
    pub(crate) readers: usize,
    /// Connections creating contentInstances.
    pub(crate) writers: usize,
    /// The container's `mni`.
    pub(crate) mni: u64,
}

/// One window of the soak.
#[derive(Debug)]
pub(crate) struct Sample {
    /// Time under load at the end of the window.
    pub(crate) at: Duration,
    /// The CSE's resident set at the end of the window, KiB.
    pub(crate) rss_kib: u64,
    /// RETRIEVEs of `la` in the window.
    pub(crate) reads: LoadResult,
    /// CREATEs in the window.
    pub(crate) creates: LoadResult,
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct SoakOutcome {
    /// The CSE's resident set before the load, KiB.
    pub(crate) idle_rss_kib: u64,
    /// Every window, in order.
    pub(crate) samples: Vec<Sample>,
    /// The database files' size at the end (bytes).
    pub(crate) db_bytes: u64,
}

impl SoakOutcome {
    /// The samples after the warm-up.
    fn settled<'a>(&'a self, plan: &SoakPlan) -> impl Iterator<Item = &'a Sample> + 'a {
        let warmup = plan.warmup;
        self.samples.iter().filter(move |s| s.at > warmup)
    }

    /// RSS growth after the warm-up: from the first settled sample to the last and to the
    /// highest, in percent.
    pub(crate) fn growth(&self, plan: &SoakPlan) -> Option<(f64, f64)> {
        let settled: Vec<_> = self.settled(plan).collect();
        let first = settled.first()?.rss_kib as f64;
        let last = settled.last()?.rss_kib as f64;
        let max = settled.iter().map(|s| s.rss_kib).max()? as f64;
        if first <= 0.0 {
            return None;
        }
        Some((
            (last - first) / first * 100.0,
            (max - first) / first * 100.0,
        ))
    }
}

/// Runs the soak against one CSE.
pub(crate) async fn run(plan: &SoakPlan) -> anyhow::Result<SoakOutcome> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let data_arg = data.to_str().context("path")?.to_owned();
    let server = Server::start(
        &plan.cse,
        &["--http", "127.0.0.1:0", "--data", &data_arg],
        dir.path().join("cse.log"),
    )
    .await?;
    let target = scenarios::setup(server.addr, &Connector::Plain, "soak").await?;
    scenarios::limit_instances(&target, plan.mni).await?;
    let reads = scenarios::latest_workload(&target)?;
    let creates = scenarios::create_workload(&target);
    let idle_rss_kib = server.rss_kib()?;
    let windows = (plan.duration.as_secs_f64() / plan.sample.as_secs_f64()).ceil() as u32;
    let mut samples = Vec::new();
    let mut at = Duration::ZERO;
    for window in 1..=windows {
        let (r, c) = tokio::join!(
            load::run(
                server.addr,
                &Connector::Plain,
                plan.readers,
                Duration::ZERO,
                plan.sample,
                &reads,
                Watch::none(),
            ),
            load::run(
                server.addr,
                &Connector::Plain,
                plan.writers,
                Duration::ZERO,
                plan.sample,
                &creates,
                Watch::none(),
            ),
        );
        let (reads, creates) = (r?, c?);
        at += plan.sample;
        let rss_kib = server.rss_kib()?;
        eprintln!(
            "bench: soak window {window}/{windows}: RSS {} KiB, {:.0} reads/s, {:.0} creates/s",
            rss_kib,
            reads.rate(),
            creates.rate()
        );
        samples.push(Sample {
            at,
            rss_kib,
            reads,
            creates,
        });
    }
    let db_bytes = std::fs::read_dir(&data)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("cse.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    server.stop().await?;
    Ok(SoakOutcome {
        idle_rss_kib,
        samples,
        db_bytes,
    })
}

/// The report: one row per window, then the verdict on the RSS after the warm-up.
pub(crate) fn render(plan: &SoakPlan, o: &SoakOutcome, markdown: bool) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Soak: {} connections reading `la` and {} creating contentInstances (mni = {}), {:.0} s, RSS sampled every {:.0} s; warm-up {:.0} s",
        plan.readers,
        plan.writers,
        plan.mni,
        plan.duration.as_secs_f64(),
        plan.sample.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
    let _ = writeln!(s);
    let header = ["time", "RSS", "reads/s", "creates/s", "errors", ""];
    if markdown {
        let _ = writeln!(s, "| {} |", header.join(" | "));
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|:--|");
    } else {
        let _ = writeln!(
            s,
            "{:>7} {:>10} {:>9} {:>9} {:>7}",
            header[0], header[1], header[2], header[3], header[4]
        );
    }
    let _ = if markdown {
        writeln!(s, "| 0 s | {:.1} MiB | | | | idle |", mib(o.idle_rss_kib))
    } else {
        writeln!(s, "{:>5} s {:>6.1} MiB   idle", 0, mib(o.idle_rss_kib))
    };
    for sample in &o.samples {
        let note = if sample.at <= plan.warmup {
            "warm-up"
        } else {
            ""
        };
        let errors = sample.reads.errors + sample.creates.errors;
        let _ = if markdown {
            writeln!(
                s,
                "| {:.0} s | {:.1} MiB | {:.0} | {:.0} | {} | {note} |",
                sample.at.as_secs_f64(),
                mib(sample.rss_kib),
                sample.reads.rate(),
                sample.creates.rate(),
                errors
            )
        } else {
            writeln!(
                s,
                "{:>5.0} s {:>6.1} MiB {:>9.0} {:>9.0} {:>7} {note}",
                sample.at.as_secs_f64(),
                mib(sample.rss_kib),
                sample.reads.rate(),
                sample.creates.rate(),
                errors
            )
        };
    }
    let _ = writeln!(s);
    let created: u64 = o.samples.iter().map(|x| x.creates.ok).sum();
    let read: u64 = o.samples.iter().map(|x| x.reads.ok).sum();
    let _ = writeln!(
        s,
        "{created} contentInstances created, {read} reads; database at the end {:.1} MiB.",
        o.db_bytes as f64 / (1024.0 * 1024.0)
    );
    let _ = match o.growth(plan) {
        Some((last, max)) => writeln!(
            s,
            "RSS after the warm-up: {last:+.1} % from the first settled sample to the last ({max:+.1} % to the highest); flat means within 5 %: {}.",
            if max.abs() <= 5.0 && last.abs() <= 5.0 { "FLAT" } else { "GROWING" }
        ),
        None => writeln!(s, "No sample after the warm-up: run longer than --warm."),
    };
    s
}
