//! The report of `bench tls-keyhome`: each home's sign rates, the handshake rates per server
//! key, and the target (the key-home abstraction costs at most 20 % over the raw
//! backend).
//!
//! How "over the raw backend" is read, per level:
//!
//! * **Level 1** against the key file: same OpenSSL signature, so the handshake rates should
//!   match; cost = file hs/s ÷ level-1 hs/s − 1.
//! * **Levels 2 and 3** against what the raw backend would allow: a handshake with the key in
//!   the backend costs what a key-file handshake costs, minus OpenSSL's in-memory signature,
//!   plus one raw backend signature, all measured in this run:
//!   `expected = 1 / (1/file hs/s − 1/OpenSSL sign/s + 1/raw sign/s)`; cost = expected ÷
//!   measured − 1. It is exact for one loop (every step is in series) and an approximation
//!   for more loops, where the backend's work may overlap the rest. The plain ratio
//!   hs/s ÷ raw sign/s is shown as well.
//!
//! The cost is computed per round against the key-file row of the same round (they ran one
//! after the other) and the median over the rounds is compared with the target: on a shared
//! machine the load changes more between rounds than within one.

use crate::keyhome_bench::{KeyKind, KeyRow, KeyhomeOutcome};
use crate::report::{table, thousands, Style};
use crate::stats::fmt_duration;
use crate::tls_bench::{median_handshakes, spread_handshakes};
use std::fmt::Write;

/// The abstraction may cost at most this share over the raw backend.
pub(crate) const TARGET: f64 = 0.20;

const SIGN_HEADER: [&str; 5] = [
    "server key",
    "raw backend",
    "raw sign/s (before / after)",
    "key store sign/s (before / after)",
    "key store cost",
];

const HANDSHAKE_HEADER: [&str; 12] = [
    "handshake",
    "loops",
    "server key",
    "hs/s",
    "min-max",
    "p50 / p99",
    "server CPU per hs",
    "CPU vs key file",
    "errors",
    "hs/s vs key file",
    "expected from raw sign",
    "cost over raw: median of rounds (range)",
];

/// The handshake rate the raw backend would allow (see the module comment), or `None`
/// without the figures. `file` is the key-file handshake rate, `openssl` OpenSSL's in-memory
/// sign rate, `raw` the backend's.
pub(crate) fn expected_rate(file: f64, openssl: f64, raw: f64) -> Option<f64> {
    if file <= 0.0 || openssl <= 0.0 || raw <= 0.0 {
        return None;
    }
    let per_handshake = 1.0 / file - 1.0 / openssl + 1.0 / raw;
    (per_handshake > 0.0).then(|| 1.0 / per_handshake)
}

/// What one row is compared with: the key-file rate (level 1) or the expected rate from the
/// raw backend (levels 2 and 3). `None` for the key file itself or without figures.
fn reference(o: &KeyhomeOutcome, row: &KeyRow) -> Option<f64> {
    reference_from(o, row.key, file_rate(o, row)?)
}

/// The reference of a `key` row given the key-file rate `file`.
fn reference_from(o: &KeyhomeOutcome, key: KeyKind, file: f64) -> Option<f64> {
    match key {
        KeyKind::File => None,
        KeyKind::Software => Some(file),
        KeyKind::Tpm | KeyKind::Pkcs11 => {
            expected_rate(file, o.raw_sign(KeyKind::Software)?, o.raw_sign(key)?)
        }
    }
}

fn rate(row: &KeyRow) -> Option<f64> {
    median_handshakes(&row.runs).map(|r| r.rate())
}

fn file_row<'a>(o: &'a KeyhomeOutcome, row: &KeyRow) -> Option<&'a KeyRow> {
    o.rows
        .iter()
        .find(|r| r.key == KeyKind::File && r.mode == row.mode && r.loops == row.loops)
}

fn file_rate(o: &KeyhomeOutcome, row: &KeyRow) -> Option<f64> {
    file_row(o, row).and_then(rate)
}

/// `reference ÷ measured − 1` per round: how much more each handshake costs than the
/// reference. Round i of a row ran right after round i of the key-file row, so pairing them
/// cancels the load that other processes put on the shared CPUs from one round to the next.
fn round_costs(o: &KeyhomeOutcome, row: &KeyRow) -> Vec<f64> {
    let Some(file) = file_row(o, row) else {
        return Vec::new();
    };
    row.runs
        .iter()
        .zip(&file.runs)
        .filter_map(|(measured, file)| {
            let measured = measured.rate();
            let reference = reference_from(o, row.key, file.rate())?;
            (measured > 0.0).then_some(reference / measured - 1.0)
        })
        .collect()
}

/// The median of the per-round costs (the lower median for an even count).
fn cost(o: &KeyhomeOutcome, row: &KeyRow) -> Option<f64> {
    let mut costs = round_costs(o, row);
    costs.sort_by(f64::total_cmp);
    costs.get(costs.len().saturating_sub(1) / 2).copied()
}

/// The median cost with the range over the rounds.
fn cost_cell(o: &KeyhomeOutcome, row: &KeyRow) -> Option<String> {
    let costs = round_costs(o, row);
    let lo = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = costs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(format!(
        "{} ({}..{})",
        percent(cost(o, row)?),
        percent(lo),
        percent(hi)
    ))
}

fn percent(x: f64) -> String {
    format!("{:+.1} %", x * 100.0)
}

fn sign_cells(o: &KeyhomeOutcome, key: KeyKind) -> Option<Vec<String>> {
    let (before, after) = o.sign.get(&key)?;
    let pair = |b: f64, a: Option<f64>| {
        format!(
            "{} / {}",
            thousands(b),
            a.map_or_else(|| "-".to_owned(), thousands)
        )
    };
    let ks_cost = match (o.raw_sign(key), o.keystore_sign(key)) {
        (Some(raw), Some(ks)) if ks > 0.0 => percent(raw / ks - 1.0),
        _ => "-".to_owned(),
    };
    Some(vec![
        key.name().to_owned(),
        key.raw_backend().to_owned(),
        pair(before.raw, after.map(|a| a.raw)),
        pair(before.keystore, after.map(|a| a.keystore)),
        ks_cost,
    ])
}

fn handshake_cells(o: &KeyhomeOutcome, row: &KeyRow) -> Vec<String> {
    let dash = || "-".to_owned();
    let median = median_handshakes(&row.runs);
    let (lo, hi) = spread_handshakes(&row.runs);
    let cpu_of = |r: &KeyRow| {
        median_handshakes(&r.runs).and_then(|m| m.cpu.and_then(|c| c.server_per(m.ok)))
    };
    let cpu = cpu_of(row);
    let file_cpu = o
        .rows
        .iter()
        .find(|r| r.key == KeyKind::File && r.mode == row.mode && r.loops == row.loops)
        .and_then(cpu_of);
    let cpu_vs_file = match (cpu, file_cpu) {
        (Some(c), Some(f)) if !f.is_zero() => format!("{:.2}x", c.as_secs_f64() / f.as_secs_f64()),
        _ => dash(),
    };
    let cpu = cpu.map_or_else(dash, fmt_duration);
    let vs_file = match (rate(row), file_rate(o, row)) {
        (Some(r), Some(f)) if f > 0.0 => format!("{:.2}x", r / f),
        _ => dash(),
    };
    let expected = match row.key {
        KeyKind::Tpm | KeyKind::Pkcs11 => reference(o, row).map_or_else(dash, thousands),
        _ => dash(),
    };
    vec![
        row.mode.name.to_owned(),
        row.loops.to_string(),
        row.key.name().to_owned(),
        median.map_or_else(dash, |m| thousands(m.rate())),
        format!("{}-{}", thousands(lo), thousands(hi)),
        median.map_or_else(dash, |m| {
            format!(
                "{} / {}",
                fmt_duration(m.latency.p50),
                fmt_duration(m.latency.p99)
            )
        }),
        cpu,
        cpu_vs_file,
        row.runs.iter().map(|r| r.errors).sum::<u64>().to_string(),
        vs_file,
        expected,
        cost_cell(o, row).unwrap_or_else(dash),
    ]
}

/// The target lines: one per measured home row.
fn targets(o: &KeyhomeOutcome) -> Vec<String> {
    let mut out = Vec::new();
    for row in o.rows.iter().filter(|r| r.key != KeyKind::File) {
        let Some(c) = cost(o, row) else {
            out.push(format!(
                "{} x{} {}: no figure",
                row.mode.name,
                row.loops,
                row.key.name()
            ));
            continue;
        };
        let against = match row.key {
            KeyKind::Software => "the key file".to_owned(),
            _ => format!(
                "the raw backend ({} hs/s = {:.2} of its raw sign rate)",
                rate(row).map_or_else(|| "-".to_owned(), thousands),
                rate(row).unwrap_or(0.0) / o.raw_sign(row.key).unwrap_or(f64::INFINITY)
            ),
        };
        out.push(format!(
            "{} x{} {}: {} over {against}: {}",
            row.mode.name,
            row.loops,
            row.key.name(),
            percent(c),
            if c <= TARGET { "PASS" } else { "**MISS**" }
        ));
    }
    out
}

/// Renders the whole report. `write!` into a `String` cannot fail, hence the ignored results.
pub(crate) fn render(o: &KeyhomeOutcome, style: Style) -> String {
    let md = style == Style::Markdown;
    let bullet = if md { "- " } else { "" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{bullet}{} round(s) of {} s per row, interleaved (every key in turn for each mode and \
         loop count); each cell shows the median round (min-max over all rounds). Full \
         handshakes, mutual TLS with the AE certificate, no session offered.",
        o.rounds,
        o.measure.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{bullet}Sign rates: {} s each, one thread, in a separate process, before the CSE \
         started and after it stopped; the comparisons use their mean.",
        o.sign_secs
    );
    let _ = writeln!(
        s,
        "{bullet}Server CPU per handshake: the CSE's user+system time over the measured window \
         (for level 2 plus swtpm's, which signs for it) divided by the handshakes; it depends \
         less than the rate on what else runs on the shared CPUs."
    );
    let _ = writeln!(
        s,
        "{bullet}Load average before: {}, after: {}.",
        o.load.0, o.load.1
    );
    let _ = writeln!(s, "{bullet}{}.", o.openssl_version);
    let _ = writeln!(s);
    let sign_rows: Vec<Vec<String>> = [KeyKind::Software, KeyKind::Tpm, KeyKind::Pkcs11]
        .into_iter()
        .filter_map(|k| sign_cells(o, k))
        .collect();
    s.push_str(&table(&SIGN_HEADER, &sign_rows, style));
    let _ = writeln!(s);
    let rows: Vec<Vec<String>> = o.rows.iter().map(|r| handshake_cells(o, r)).collect();
    s.push_str(&table(&HANDSHAKE_HEADER, &rows, style));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Target: the key-home abstraction costs at most {:.0} % over the raw backend \
         (level 1 against the key file, levels 2-3 against the rate the raw sign rate allows):",
        TARGET * 100.0
    );
    for line in targets(o) {
        let _ = writeln!(s, "{bullet}{line}");
    }
    if !o.notes.is_empty() {
        let _ = writeln!(s);
        for n in &o.notes {
            let _ = writeln!(s, "{bullet}{n}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_rate_swaps_one_signature() {
        // 300 hs/s with a 30,000/s in-memory signature; a 1,000/s backend adds 1 ms - 33 µs.
        let e = expected_rate(300.0, 30_000.0, 1_000.0).expect("rate");
        let per = 1.0 / 300.0 - 1.0 / 30_000.0 + 1.0 / 1_000.0;
        assert!((e - 1.0 / per).abs() < 1e-9);
        assert!(e < 300.0 && e > 200.0, "{e}");
        // A backend as fast as OpenSSL changes nothing.
        let same = expected_rate(300.0, 30_000.0, 30_000.0).expect("rate");
        assert!((same - 300.0).abs() < 1e-9);
        assert_eq!(expected_rate(0.0, 1.0, 1.0), None);
        assert_eq!(expected_rate(300.0, 0.0, 1.0), None);
    }

    fn run(ok: u64) -> crate::tls_client::HandshakeResult {
        crate::tls_client::HandshakeResult {
            ok,
            elapsed: std::time::Duration::from_secs(1),
            ..Default::default()
        }
    }

    #[test]
    fn costs_pair_each_round_with_the_key_file_round() {
        let mode = crate::tls_client::MODES[4];
        let row = |key, rates: &[u64]| KeyRow {
            mode,
            loops: 1,
            key,
            runs: rates.iter().map(|&n| run(n)).collect(),
        };
        let o = KeyhomeOutcome {
            measure: std::time::Duration::from_secs(1),
            rounds: 3,
            sign_secs: 1.0,
            // The machine got busier each round: both rows slowed down together.
            rows: vec![
                row(KeyKind::File, &[400, 300, 200]),
                row(KeyKind::Software, &[380, 300, 100]),
            ],
            sign: Default::default(),
            openssl_version: String::new(),
            load: Default::default(),
            notes: Vec::new(),
        };
        let level1 = &o.rows[1];
        let costs = round_costs(&o, level1);
        assert_eq!(costs.len(), 3);
        assert!((costs[0] - (400.0 / 380.0 - 1.0)).abs() < 1e-9);
        assert!(costs[1].abs() < 1e-9);
        assert!((costs[2] - 1.0).abs() < 1e-9);
        // Median of the pairs (+5.3 %), where medians of the rows would say 300/300 = 0 %.
        let median = cost(&o, level1).expect("cost");
        assert!((median - (400.0 / 380.0 - 1.0)).abs() < 1e-9, "{median}");
        // Levels 2 and 3 need the raw sign rates: none here.
        assert!(round_costs(&o, &row(KeyKind::Tpm, &[100, 100, 100])).is_empty());
    }

    #[test]
    fn percentages_are_signed() {
        assert_eq!(percent(0.123), "+12.3 %");
        assert_eq!(percent(-0.05), "-5.0 %");
    }
}
