//! Audit appends per second, each durable (fdatasync) before it returns, next to a baseline
//! measured in the same run: a plain `write` + `fdatasync` of the same bytes to another file.
//!
//! ```sh
//! cargo run --release -p manager --example audit_rate -- [APPENDS] [ROUNDS] [DIR]
//! ```
//!
//! APPENDS (per run) defaults to 500, ROUNDS to 7; DIR (default: a temporary directory under the current one, so
//! that it sits on the same disk as the working tree rather than on a tmpfs) holds the files.
#![allow(clippy::unwrap_used)]

use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
use keystore::{
    Algorithm, KeyHome, KeyId, KeyRole, KeyStore, KeyStorePolicy, SecretBytes, SecretSource,
};
use manager::audit::{AuditLog, Event};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn event(n: usize) -> Event {
    Event::AssociationRefused {
        peer: format!("127.0.0.1:{}", 40000 + n % 20000),
        credential: Some(format!("12-dev{n}@sp.example")),
        reason: "unknown PSK identity".to_owned(),
    }
}

/// Appends `n` events from `threads` threads; returns appends per second.
fn run(log: Arc<AuditLog>, n: usize, threads: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in (t..n).step_by(threads) {
                    log.append(event(i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The baseline: the lines of `source` written one by one, each followed by fdatasync.
fn baseline(source: &Path, target: &Path) -> f64 {
    let text = std::fs::read_to_string(source).unwrap();
    let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(target)
        .unwrap();
    let start = Instant::now();
    for line in &lines {
        file.write_all(line.as_bytes()).unwrap();
        file.sync_data().unwrap();
    }
    lines.len() as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(500, |a| a.parse().expect("APPENDS"));
    let rounds: usize = args.next().map_or(7, |a| a.parse().expect("ROUNDS"));
    let tmp = match args.next() {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir_in(".").unwrap(),
    };
    let dir = tmp.path();

    let home = Arc::new(
        SoftwareHome::create(&SoftwareConfig {
            dir: dir.join("keys"),
            kek: KekSource::Passphrase(SecretSource::Provided(SecretBytes::from_slice(
                b"audit_rate",
            ))),
        })
        .unwrap(),
    );
    let home_id = home.id().clone();
    let store = KeyStore::new(KeyStorePolicy::default()).with_home(home);
    let handle = store
        .generate(
            &home_id,
            &KeyId::new("audit").unwrap(),
            KeyRole::AuditLog,
            Algorithm::EcdsaP256Sha256,
        )
        .unwrap();
    let signer = store.signing_key(&handle).unwrap();

    // Rounds interleave every measurement, so a burst of disk load elsewhere hits them alike;
    // each figure is the median over the rounds.
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); 6];
    let (mut bytes, mut signed_bytes) = (0, 0);
    for r in 0..rounds {
        let file = |name: &str| dir.join(format!("{name}-{r}.log"));
        let unsigned = file("unsigned");
        rows[1].push(run(
            Arc::new(AuditLog::open(&unsigned, None).unwrap()),
            n,
            1,
        ));
        rows[0].push(baseline(&unsigned, &file("baseline")));
        let signed = file("signed");
        rows[3].push(run(
            Arc::new(AuditLog::open(&signed, Some(signer.clone())).unwrap()),
            n,
            1,
        ));
        rows[2].push(baseline(&signed, &file("baseline-signed")));
        rows[4].push(run(
            Arc::new(AuditLog::open(&file("unsigned-8"), None).unwrap()),
            n,
            8,
        ));
        rows[5].push(run(
            Arc::new(AuditLog::open(&file("signed-8"), Some(signer.clone())).unwrap()),
            n,
            8,
        ));
        bytes = std::fs::metadata(&unsigned).unwrap().len() / n as u64;
        signed_bytes = std::fs::metadata(&signed).unwrap().len() / n as u64;
    }
    let labels = [
        format!("baseline: write + fdatasync of the same {bytes}-byte lines"),
        "audit log, unsigned, 1 thread".to_owned(),
        format!("baseline: write + fdatasync of the same {signed_bytes}-byte lines"),
        "audit log, signed (level-1 ECDSA P-256), 1 thread".to_owned(),
        "audit log, unsigned, 8 threads (shared fdatasync)".to_owned(),
        "audit log, signed, 8 threads (shared fdatasync)".to_owned(),
    ];
    println!(
        "audit appends, each durable (fdatasync) before it returns: {n} per run, median of {rounds} rounds"
    );
    println!(
        "{:<58} {:>10} {:>10} {:>10}",
        "", "median/s", "min/s", "max/s"
    );
    for (label, row) in labels.iter().zip(rows) {
        let min = row.iter().copied().fold(f64::INFINITY, f64::min);
        let max = row.iter().copied().fold(0.0, f64::max);
        println!("{label:<58} {:>10.0} {min:>10.0} {max:>10.0}", median(row));
    }
}
