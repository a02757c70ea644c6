//! The printed report: one table, the targets from the issue, memory, and remarks.

use crate::load::LoadResult;
use crate::scenarios::{Outcome, Row, Scenario};
use crate::stats::fmt_duration;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Table flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Aligned columns for a terminal.
    Plain,
    /// A Markdown table, for docs/benchmarks.md.
    Markdown,
}

/// Columns of the table.
const COLS: usize = 9;

const HEADER: [&str; COLS] = [
    "scenario",
    "conns",
    "req/s",
    "min-max req/s",
    "p50",
    "p99",
    "max",
    "errors",
    "vs hello-world",
];

/// Renders the whole report. `write!` into a `String` cannot fail, hence the ignored results.
pub(crate) fn render(o: &Outcome, style: Style) -> String {
    let rows: Vec<[String; COLS]> = o.rows.iter().map(|r| cells(o, r)).collect();
    let bullet = if style == Style::Markdown { "- " } else { "" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{bullet}{} round(s) of {} s per row, interleaved; each row shows the median round \
         (min-max over all rounds); latency of successful requests only.",
        o.rounds,
        o.measure.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{bullet}Load average before: {}, after: {} (on {} CPUs).",
        o.load.0,
        o.load.1,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    s.push('\n');
    s.push_str(&table(&HEADER, &rows, style));
    s.push('\n');
    let _ = writeln!(s, "Targets (informational):");
    let bullet = if style == Style::Markdown { "- " } else { "  " };
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
    s.push('\n');
    let _ = writeln!(s, "Checks and errors:");
    for line in o.notes.iter().chain(error_lines(o).iter()) {
        let _ = writeln!(s, "{bullet}{line}");
    }
    s
}

/// One line per kind of failure and row, plus the first failed answer of each row.
fn error_lines(o: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    for r in &o.rows {
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for run in &r.runs {
            for (k, n) in &run.error_kinds {
                *kinds.entry(k).or_default() += n;
            }
        }
        let name = format!("{} @{}", r.scenario.name(), r.conns);
        for (k, n) in kinds {
            out.push(format!("{name}: {n} x {k}"));
        }
        if let Some(body) = r.runs.iter().find_map(|run| run.first_error_body.as_ref()) {
            let body: String = body.chars().take(300).collect();
            out.push(format!("{name}: first failed answer: {body}"));
        }
    }
    if out.is_empty() {
        out.push("no failed requests".to_owned());
    }
    out
}

fn cells(o: &Outcome, r: &Row) -> [String; COLS] {
    let Some(m) = r.median() else {
        let mut c = HEADER.map(|_| "-".to_owned());
        c[0] = r.scenario.name().to_owned();
        c[1] = r.conns.to_string();
        return c;
    };
    let ratio = baseline(o, r.conns)
        .filter(|b| *b > 0.0)
        .map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", m.rate() / b));
    let (lo, hi) = r.spread();
    [
        r.scenario.name().to_owned(),
        r.conns.to_string(),
        thousands(m.rate()),
        format!("{}-{}", thousands(lo), thousands(hi)),
        fmt_duration(m.latency.p50),
        fmt_duration(m.latency.p99),
        fmt_duration(m.latency.max),
        r.errors().to_string(),
        ratio,
    ]
}

/// A table with a left-aligned first column and right-aligned others.
pub(crate) fn table<R: AsRef<[String]>>(header: &[&str], rows: &[R], style: Style) -> String {
    let mut s = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(s, "| {} |", header.join(" | "));
            let _ = writeln!(s, "|---|{}", "---:|".repeat(header.len() - 1));
            for r in rows {
                let _ = writeln!(s, "| {} |", r.as_ref().join(" | "));
            }
        }
        Style::Plain => {
            let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for r in rows {
                for (w, c) in width.iter_mut().zip(r.as_ref()) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let parts: Vec<String> = cells
                    .iter()
                    .zip(&width)
                    .enumerate()
                    .map(|(i, (c, &w))| {
                        if i == 0 {
                            format!("{c:<w$}")
                        } else {
                            format!("{c:>w$}")
                        }
                    })
                    .collect();
                parts.join(" | ")
            };
            let _ = writeln!(s, "{}", line(header.to_vec()));
            let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(s, "{}", rule.join("-+-"));
            for r in rows {
                let _ = writeln!(
                    s,
                    "{}",
                    line(r.as_ref().iter().map(String::as_str).collect())
                );
            }
        }
    }
    s
}

/// The hello-world rate at `conns` connections (median round).
fn baseline(o: &Outcome, conns: usize) -> Option<f64> {
    rate(o, Scenario::Hello, conns)
}

fn rate(o: &Outcome, scenario: Scenario, conns: usize) -> Option<f64> {
    o.rows
        .iter()
        .find(|r| r.scenario == scenario && r.conns == conns)
        .and_then(Row::median)
        .map(LoadResult::rate)
}

/// The three targets of the issue, each with PASS, MISS or "not measured".
fn targets(o: &Outcome) -> Vec<String> {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let mut out = Vec::new();
    match (rate(o, Scenario::Retrieve, 16), baseline(o, 16)) {
        (Some(r), Some(b)) if b > 0.0 => out.push(format!(
            "RETRIEVE@16 >= 0.5x hello-world@16: {:.2}x ({}/s vs {}/s) {}",
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
pub(crate) fn thousands(x: f64) -> String {
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

/// A size in KiB as MiB, or "unknown".
pub(crate) fn fmt_kib(kib: Option<u64>) -> String {
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

    #[test]
    fn median_round_is_shown() {
        use std::time::Duration;
        let run = |ok| LoadResult {
            ok,
            elapsed: Duration::from_secs(1),
            ..LoadResult::default()
        };
        let row = Row {
            scenario: Scenario::Hello,
            conns: 1,
            runs: vec![run(30), run(10), run(20)],
        };
        assert_eq!(row.median().map(|r| r.ok), Some(20));
        assert_eq!(row.spread(), (10.0, 30.0));
        let empty = Row {
            scenario: Scenario::Hello,
            conns: 1,
            runs: vec![],
        };
        assert!(empty.median().is_none());
    }
}
