//! The report of `bench tls`: handshakes next to `openssl s_server`, requests over TLS next to
//! plaintext, the targets of the issue, and remarks.

use crate::load::LoadResult;
use crate::report::{fmt_kib, table, thousands, Style};
use crate::stats::fmt_duration;
use crate::tls_bench::{
    median_handshakes, spread_handshakes, HandshakeRow, RequestKind, RequestRow, TlsOutcome,
};
use crate::tls_client::HandshakeResult;
use std::fmt::Write;
use std::time::Duration;

/// Each handshake rate at least this share of `openssl s_server`'s.
const HANDSHAKE_TARGET: f64 = 0.8;
/// Requests over TLS at least this share of plaintext, at the same connection count.
const REQUEST_TARGET: f64 = 0.7;

const HANDSHAKE_HEADER: [&str; 11] = [
    "handshake",
    "loops",
    "cse hs/s",
    "cse min-max",
    "cse p50 / p99",
    "s_server hs/s",
    "s_server min-max",
    "s_server p50 / p99",
    "cse / s_server",
    "server CPU per hs: cse / s_server",
    "errors cse / s_server",
];

const REQUEST_HEADER: [&str; 11] = [
    "scenario",
    "conns",
    "req/s",
    "min-max req/s",
    "p50",
    "p99",
    "max",
    "errors",
    "cse CPU per req",
    "client CPU per req",
    "vs plaintext",
];

/// Renders the whole report. `write!` into a `String` cannot fail, hence the ignored results.
pub(crate) fn render(o: &TlsOutcome, style: Style) -> String {
    let md = style == Style::Markdown;
    let bullet = if md { "- " } else { "" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{bullet}{} round(s) of {} s per row, interleaved (s_server then cse for each row); each \
         cell shows the median round (min-max over all rounds); latency of successful \
         handshakes/requests only.",
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
    let _ = writeln!(s, "{bullet}{}.", o.openssl_version);
    match o.speed {
        Some(sp) => {
            let x = sp
                .x25519
                .map_or_else(String::new, |x| format!(", X25519 {}/s", thousands(x)));
            let _ = writeln!(
                s,
                "{bullet}openssl speed (one core): ECDSA P-256 sign {}/s, verify {}/s{x}.",
                thousands(sp.ecdsa_sign),
                thousands(sp.ecdsa_verify)
            );
        }
        None => {
            let _ = writeln!(s, "{bullet}openssl speed: did not run.");
        }
    }

    if !o.handshakes.is_empty() {
        s.push('\n');
        let _ = writeln!(
            s,
            "Handshakes/s: each is a new TCP connection (TCP_NODELAY), the TLS handshake and a \
             close_notify both ways, no HTTP request; `loops` closed loops run at once. Full \
             handshakes never offer a session; resumed rows offer the newest session of the \
             loop. p50/p99: TCP connect to the end of the client's handshake. CPU: the \
             server process's user+system time over the measured window, per handshake \
             (max_handshakes_per_ip = {} on the CSE).",
            o.handshakes_per_ip
        );
        s.push('\n');
        let rows: Vec<Vec<String>> = o.handshakes.iter().map(handshake_cells).collect();
        s.push_str(&table(&HANDSHAKE_HEADER, &rows, style));
    }
    if !o.requests.is_empty() {
        s.push('\n');
        let _ = writeln!(
            s,
            "Requests over established keep-alive connections (RETRIEVE of a contentInstance \
             of the connection's own AE, as in the plain benchmark):"
        );
        s.push('\n');
        let rows: Vec<Vec<String>> = o.requests.iter().map(|r| request_cells(o, r)).collect();
        s.push_str(&table(&REQUEST_HEADER, &rows, style));
    }

    s.push('\n');
    let _ = writeln!(s, "Targets (informational):");
    let bullet = if md { "- " } else { "  " };
    for t in targets(o) {
        let _ = writeln!(s, "{bullet}{t}");
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "Client (load generator) CPU per handshake, against cse / s_server:"
    );
    for r in &o.handshakes {
        let (c, b) = (
            median_handshakes(&r.cse).and_then(client_cpu),
            median_handshakes(&r.s_server).and_then(client_cpu),
        );
        let _ = writeln!(
            s,
            "{bullet}{} x{}: {} / {}",
            r.mode.name,
            r.loops,
            fmt_opt(c),
            fmt_opt(b)
        );
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "Memory: cse peak RSS (VmHWM) {}.",
        fmt_kib(o.cse_rss_kib)
    );
    s.push('\n');
    let _ = writeln!(s, "Checks and errors:");
    for line in o.notes.iter().chain(error_lines(o).iter()) {
        let _ = writeln!(s, "{bullet}{line}");
    }
    s
}

fn server_cpu(r: &HandshakeResult) -> Option<Duration> {
    r.cpu.and_then(|c| c.server_per(r.ok))
}

fn client_cpu(r: &HandshakeResult) -> Option<Duration> {
    r.cpu.and_then(|c| c.client_per(r.ok))
}

fn fmt_opt(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), fmt_duration)
}

fn rate_cells(runs: &[HandshakeResult]) -> [String; 3] {
    match median_handshakes(runs) {
        Some(m) => {
            let (lo, hi) = spread_handshakes(runs);
            [
                thousands(m.rate()),
                format!("{}-{}", thousands(lo), thousands(hi)),
                format!(
                    "{} / {}",
                    fmt_duration(m.latency.p50),
                    fmt_duration(m.latency.p99)
                ),
            ]
        }
        None => ["-".to_owned(), "-".to_owned(), "-".to_owned()],
    }
}

fn handshake_ratio(r: &HandshakeRow) -> Option<f64> {
    let cse = median_handshakes(&r.cse)?.rate();
    let base = median_handshakes(&r.s_server)?.rate();
    (base > 0.0).then(|| cse / base)
}

fn handshake_cells(r: &HandshakeRow) -> Vec<String> {
    let [cr, cmm, cl] = rate_cells(&r.cse);
    let [br, bmm, bl] = rate_cells(&r.s_server);
    let errors = |runs: &[HandshakeResult]| runs.iter().map(|x| x.errors).sum::<u64>();
    vec![
        r.mode.name.to_owned(),
        r.loops.to_string(),
        cr,
        cmm,
        cl,
        br,
        bmm,
        bl,
        handshake_ratio(r).map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x")),
        format!(
            "{} / {}",
            fmt_opt(median_handshakes(&r.cse).and_then(server_cpu)),
            fmt_opt(median_handshakes(&r.s_server).and_then(server_cpu))
        ),
        format!("{} / {}", errors(&r.cse), errors(&r.s_server)),
    ]
}

/// The plaintext rate at `conns` connections (median round).
fn plaintext(o: &TlsOutcome, conns: usize) -> Option<f64> {
    o.requests
        .iter()
        .find(|r| r.kind == RequestKind::Plain && r.conns == conns)
        .and_then(RequestRow::median)
        .map(LoadResult::rate)
}

fn request_cells(o: &TlsOutcome, r: &RequestRow) -> Vec<String> {
    let Some(m) = r.median() else {
        let mut c = vec!["-".to_owned(); REQUEST_HEADER.len()];
        c[0] = r.kind.name().to_owned();
        c[1] = r.conns.to_string();
        return c;
    };
    let rates = r.runs.iter().map(LoadResult::rate);
    let lo = rates.clone().fold(f64::INFINITY, f64::min);
    let hi = rates.fold(0.0, f64::max);
    let ratio = plaintext(o, r.conns)
        .filter(|b| *b > 0.0)
        .map_or_else(|| "-".to_owned(), |b| format!("{:.2}x", m.rate() / b));
    vec![
        r.kind.name().to_owned(),
        r.conns.to_string(),
        thousands(m.rate()),
        format!("{}-{}", thousands(lo), thousands(hi)),
        fmt_duration(m.latency.p50),
        fmt_duration(m.latency.p99),
        fmt_duration(m.latency.max),
        r.runs.iter().map(|x| x.errors).sum::<u64>().to_string(),
        fmt_opt(m.cpu.and_then(|c| c.server_per(m.ok))),
        fmt_opt(m.cpu.and_then(|c| c.client_per(m.ok))),
        ratio,
    ]
}

/// Every handshake row against 0.8x s_server, every TLS request row against 0.7x plaintext.
fn targets(o: &TlsOutcome) -> Vec<String> {
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let mut out = Vec::new();
    for r in &o.handshakes {
        let name = format!(
            "{} x{} >= {HANDSHAKE_TARGET}x s_server",
            r.mode.name, r.loops
        );
        match (
            handshake_ratio(r),
            median_handshakes(&r.cse),
            median_handshakes(&r.s_server),
        ) {
            (Some(x), Some(c), Some(b)) => out.push(format!(
                "{name}: {x:.2}x ({}/s vs {}/s) {}",
                thousands(c.rate()),
                thousands(b.rate()),
                verdict(x >= HANDSHAKE_TARGET)
            )),
            _ => out.push(format!("{name}: not measured")),
        }
    }
    for r in o.requests.iter().filter(|r| r.kind != RequestKind::Plain) {
        let name = format!(
            "{}@{} >= {REQUEST_TARGET}x plaintext@{}",
            r.kind.name(),
            r.conns,
            r.conns
        );
        match (r.median(), plaintext(o, r.conns)) {
            (Some(m), Some(b)) if b > 0.0 => out.push(format!(
                "{name}: {:.2}x ({}/s vs {}/s) {}",
                m.rate() / b,
                thousands(m.rate()),
                thousands(b),
                verdict(m.rate() >= REQUEST_TARGET * b)
            )),
            _ => out.push(format!("{name}: not measured")),
        }
    }
    out
}

/// One line per kind of failure and row.
fn error_lines(o: &TlsOutcome) -> Vec<String> {
    let mut out = Vec::new();
    for r in &o.handshakes {
        for (label, runs) in [("cse", &r.cse), ("s_server", &r.s_server)] {
            let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
            for run in runs.iter() {
                for (k, n) in &run.error_kinds {
                    *kinds.entry(k).or_default() += n;
                }
            }
            for (k, n) in kinds {
                out.push(format!("{} x{} {label}: {n} x {k}", r.mode.name, r.loops));
            }
        }
    }
    for r in &o.requests {
        let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
        for run in &r.runs {
            for (k, n) in &run.error_kinds {
                *kinds.entry(k).or_default() += n;
            }
        }
        for (k, n) in kinds {
            out.push(format!("{} @{}: {n} x {k}", r.kind.name(), r.conns));
        }
    }
    if out.is_empty() {
        out.push("no failed handshakes or requests".to_owned());
    }
    out
}
