//! `bench rotate`: what an AE-ID rotation costs as the AE's data grows.
//!
//! One CSE on its plaintext listener (a trusted listener, so rotations are not rate limited),
//! one AE with a container that grows to each size in turn. At each size, every round times
//! an UPDATE of the AE (one durable write, the baseline) and then a rotation of its AE-ID
//! (a scan of the whole tree and a rewrite of every reference to the AE, every
//! contentInstance's `cr` included), both over one keep-alive connection per size.

use crate::client::{Conn, Connector};
use crate::process::Server;
use crate::scenarios;
use anyhow::Context;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug)]
pub(crate) struct RotatePlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// contentInstances in the AE's container at each measurement, ascending.
    pub(crate) sizes: Vec<usize>,
    /// Rounds at each size.
    pub(crate) rounds: usize,
}

/// The figures at one size.
#[derive(Debug)]
pub(crate) struct RotateRow {
    /// contentInstances below the AE.
    pub(crate) instances: usize,
    /// UPDATE of the AE, one per round.
    pub(crate) update: Vec<Duration>,
    /// AE-ID rotation, one per round.
    pub(crate) rotate: Vec<Duration>,
    /// The database files' size after the rounds (bytes).
    pub(crate) db_bytes: u64,
}

/// Runs every size against one CSE.
pub(crate) async fn run(plan: &RotatePlan) -> anyhow::Result<Vec<RotateRow>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let data_arg = data.to_str().context("path")?.to_owned();
    let server = Server::start(
        &plan.cse,
        &["--http", "127.0.0.1:0", "--data", &data_arg],
        dir.path().join("cse.log"),
    )
    .await?;
    let rn = "rot";
    let mut target = scenarios::setup(server.addr, &Connector::Plain, rn).await?;
    let mut have = 1;
    let mut rows = Vec::new();
    for &size in &plan.sizes {
        if size > have {
            eprintln!("bench: filling the container to {size} contentInstances");
            scenarios::fill(&target, size - have, 8).await?;
            have = size;
        }
        // A fresh connection: the CSE closes keep-alive connections that idle while it fills.
        let mut conn = Conn::open_with(server.addr, &Connector::Plain).await?;
        let mut row = RotateRow {
            instances: have,
            update: Vec::new(),
            rotate: Vec::new(),
            db_bytes: 0,
        };
        for round in 1..=plan.rounds {
            eprintln!(
                "bench: {have} contentInstances, round {round}/{}",
                plan.rounds
            );
            let started = Instant::now();
            scenarios::ae_request(&mut conn, &target, rn, false).await?;
            row.update.push(started.elapsed());
            let started = Instant::now();
            let body = scenarios::ae_request(&mut conn, &target, rn, true).await?;
            row.rotate.push(started.elapsed());
            let answer: serde_json::Value =
                serde_json::from_slice(&body).context("the rotation answer is not JSON")?;
            let new = answer
                .pointer("/m2m:ae/aei")
                .and_then(|v| v.as_str())
                .context("the rotation answer has no m2m:ae.aei")?;
            anyhow::ensure!(new != target.origin(), "the AE-ID did not change");
            target = target.with_origin(new)?;
        }
        row.db_bytes = std::fs::read_dir(&data)?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("cse.db"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        rows.push(row);
    }
    drop(server);
    Ok(rows)
}

/// The median of some durations.
pub(crate) fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}
