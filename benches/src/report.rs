//! The printed report: one table, the targets from the issue, memory, and remarks.

use crate::scenarios::{Outcome, Row, Scenario};
use crate::stats::fmt_duration;
use std::fmt::Write;

/// Table flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Aligned columns for a terminal.
    Plain,
    /// A Markdown table, for docs/benchmarks.md.
    Markdown,
}

const HEADER: [&str; 8] = [
    "scenario",
    "conns",
    "req/s",
    "p50",
    "p99",
    "max",
    "errors",
    "vs hello-world",
];

/// Renders the whole report.
pub(crate) fn render(o: &Outcome, style: Style) -> String {
    let rows: Vec<[String; 8]> = o.rows.iter().map(|r| cells(o, r)).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} s measured per row; latency of successful requests only.",
        o.measure.as_secs_f64()
    );
    s.push('\n');
    s.push_str(&table(&rows, style));
    s.push('\n');
    let bullet = if style == Style::Markdown { "- " } else { "  " };
    let _ = writeln!(s, "Targets (informational):");
    for t in targets(o) {
        let _ = writeln!(s, "{bullet}{t}");
    }
    s.push('\n');
    let _ = writeln!(s, "Memory (peak RSS, VmHWM):");
    let _ = writeln!(
        s,
        "{bullet}hello-world server: {}",
        fmt_kib(o.hello_rss_kib)
    );
    let _ = writeln!(s, "{bullet}cse: {}", fmt_kib(o.cse_rss_kib));
    let errors: Vec<String> = o
        .rows
        .iter()
        .flat_map(|r| {
            r.result
                .error_kinds
                .iter()
                .map(move |(k, n)| format!("{} @{}: {n} x {k}", r.scenario.name(), r.conns))
        })
        .collect();
    if !o.notes.is_empty() || !errors.is_empty() {
        s.push('\n');
        let _ = writeln!(s, "Checks and errors:");
        for line in o.notes.iter().chain(errors.iter()) {
            let _ = writeln!(s, "{bullet}{line}");
        }
        for r in &o.rows {
            if let Some(body) = &r.result.first_error_body {
                let body: String = body.chars().take(300).collect();
                let _ = writeln!(
                    s,
                    "{bullet}first failed answer, {} @{}: {body}",
                    r.scenario.name(),
                    r.conns
                );
            }
        }
    }
    s
}

fn cells(o: &Outcome, r: &Row) -> [String; 8] {
    let ratio = baseline(o, r.conns).filter(|b| *b > 0.0).map_or_else(
        || "-".to_owned(),
        |b| format!("{:.2}x", r.result.rate() / b),
    );
    [
        r.scenario.name().to_owned(),
        r.conns.to_string(),
        thousands(r.result.rate()),
        fmt_duration(r.result.latency.p50),
        fmt_duration(r.result.latency.p99),
        fmt_duration(r.result.latency.max),
        r.result.errors.to_string(),
        ratio,
    ]
}

fn table(rows: &[[String; 8]], style: Style) -> String {
    let mut s = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(s, "| {} |", HEADER.join(" | "));
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
            for r in rows {
                let _ = writeln!(s, "| {} |", r.join(" | "));
            }
        }
        Style::Plain => {
            let mut width = HEADER.map(|h| h.chars().count());
            for r in rows {
                for (w, c) in width.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: [&str; 8]| {
                let parts: Vec<String> = cells
                    .iter()
                    .zip(width)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i == 0 {
                            format!("{c:<w$}")
                        } else {
                            format!("{c:>w$}")
                        }
                    })
                    .collect();
                parts.join(" | ")
            };
            let _ = writeln!(s, "{}", line(HEADER));
            let _ = writeln!(s, "{}", width.map(|w| "-".repeat(w)).join("-+-"));
            for r in rows {
                let _ = writeln!(
                    s,
                    "{}",
                    line(
                        [&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7]]
                            .map(String::as_str)
                    )
                );
            }
        }
    }
    s
}

/// The hello-world rate at `conns` connections.
fn baseline(o: &Outcome, conns: usize) -> Option<f64> {
    rate(o, Scenario::Hello, conns)
}

fn rate(o: &Outcome, scenario: Scenario, conns: usize) -> Option<f64> {
    o.rows
        .iter()
        .find(|r| r.scenario == scenario && r.conns == conns)
        .map(|r| r.result.rate())
}

/// The three targets of the issue, each with PASS, MISS or "not measured".
fn targets(o: &Outcome) -> Vec<String> {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let mut out = Vec::new();
    match (rate(o, Scenario::Retrieve, 16), baseline(o, 16)) {
        (Some(r), Some(b)) if b > 0.0 => out.push(format!(
            "RETRIEVE@16 >= 0.5x hello-world@16: {:.2}x ({} vs {}/s) {}",
            r / b,
            thousands(r),
            thousands(b),
            verdict(r >= 0.5 * b)
        )),
        _ => out.push(
            "RETRIEVE@16 >= 0.5x hello-world@16: not measured (needs --conns with 16)".to_owned(),
        ),
    }
    for (conns, want) in [(16, 10_000.0), (1, 2_000.0)] {
        let name = format!("CREATE@{conns} >= {}/s", thousands(want));
        match rate(o, Scenario::Create, conns) {
            Some(r) => out.push(format!("{name}: {}/s {}", thousands(r), verdict(r >= want))),
            None => out.push(format!("{name}: not measured (needs --conns with {conns})")),
        }
    }
    out
}

/// A rate rounded to a whole number, with thousands separators.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn fmt_kib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
