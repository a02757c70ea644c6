//! A flood of refused handshakes against the real `cse` binary costs the audit log and the
//! process log a bounded number of lines, with every refusal counted; an authenticated
//! association made during the flood is in the audit log. The flooder is a Python TLS
//! client offering an untrusted certificate from four source addresses (127.0.0.2-5, which
//! Linux routes to loopback). Waits are bounded; nothing is asserted about speed: the bound
//! on lines is computed from the elapsed time and the configured window.
use crate::common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Instant;

const FLOOD: u64 = 1200;
const SOURCES: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const WINDOW_SECS: u64 = 1;

fn entries(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Refusals from the flood's sources that the audit log accounts for: one per single
/// `association-refused` entry, `count` per `associations-refused` entry.
fn counted_refusals(entries: &[Value]) -> (u64, usize) {
    let mut total = 0;
    let mut lines = 0;
    for e in entries {
        let ev = &e["event"];
        let from_flood = |addr: &str| {
            SOURCES
                .iter()
                .any(|s| addr.starts_with(&format!("{s}:")) || addr == *s)
        };
        match ev["kind"].as_str() {
            Some("association-refused") if from_flood(ev["peer"].as_str().unwrap_or("")) => {
                total += 1;
                lines += 1;
            }
            Some("associations-refused") if from_flood(ev["source"].as_str().unwrap_or("")) => {
                total += ev["count"].as_u64().unwrap_or(0) - 1;
                lines += 1;
            }
            _ => {}
        }
    }
    (total, lines)
}

#[test]
fn a_flood_of_refused_handshakes_writes_a_bounded_number_of_counted_entries() {
    if !have_tool("openssl", &["version"]) || !have_tool("python3", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let config = std::fs::read_to_string(pki.join("cse.toml"))
        .expect("cse.toml")
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        + &format!("\n[audit]\nrefusal_window_secs = {WINDOW_SECS}\n");
    let path = pki.join("test.toml");
    std::fs::write(&path, config).expect("write config");
    let server = Server::start_listeners(
        &dir.path().join("data"),
        &["--config", path.to_str().expect("utf8")],
        2,
    );
    let port = server.urls[1].rsplit(':').next().expect("port").to_owned();
    let audit = server.data.join("audit.log");
    let before = std::fs::metadata(&audit).map_or(0, |m| m.len());

    // A certificate from a CA the CSE does not trust.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("dir");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=intruder"])
        .arg("-keyout")
        .arg(bad.join("key.pem"))
        .arg("-out")
        .arg(bad.join("cert.pem"))
        .output()
        .expect("openssl req");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let flooder = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/tls_flood.py"
        ))
        .args(["127.0.0.1", &port, &FLOOD.to_string()])
        .arg(bad.join("cert.pem"))
        .arg(bad.join("key.pem"))
        .args(SOURCES)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 flooder");

    // An authenticated association during the flood.
    let admin = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args([
            "--url",
            &server.urls[1],
            "--psk-identity",
            "admin@secure-cse.example",
        ])
        .arg("--psk-key-file")
        .arg(pki.join("admin.psk"))
        .args(["credentials", "list"])
        .output()
        .expect("m2m");
    assert!(
        admin.status.success(),
        "{}",
        String::from_utf8_lossy(&admin.stderr)
    );

    let flood = flooder.wait_with_output().expect("flooder");
    let elapsed = started.elapsed().as_secs();
    let said = String::from_utf8_lossy(&flood.stdout).into_owned();
    assert_eq!(
        said.trim(),
        format!("refused {FLOOD} accepted 0"),
        "the flood was refused"
    );

    // Every refusal is accounted for once the last window has been written.
    let read = || std::fs::read_to_string(&audit).unwrap_or_default();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = read();
        if counted_refusals(&entries(&text)).0 >= FLOOD || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let all = entries(&text);
    let (total, lines) = counted_refusals(&all);
    assert_eq!(total, FLOOD, "every refused handshake is counted");
    // Each source yields at most its first refusal and one summary per window.
    let windows = elapsed / WINDOW_SECS + 2;
    let bound = 2 * SOURCES.len() as u64 * windows;
    assert!(
        (lines as u64) <= bound,
        "{lines} entries for {FLOOD} refusals over {elapsed} s (bound {bound})"
    );
    assert!(
        all.iter()
            .any(|e| e["event"]["kind"] == "association-opened"
                && e["event"]["credential"] == "12-admin@secure-cse.example"),
        "the admin's association during the flood is audited"
    );
    assert!(
        !text.contains("audit-events-dropped"),
        "no security event was dropped"
    );
    let single: Vec<usize> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"association-refused\""))
        .map(str::len)
        .collect();
    let after = std::fs::metadata(&audit).map_or(0, |m| m.len());
    eprintln!(
        "audit bytes per flooded connection: {:.2} ({} bytes for {FLOOD} refused handshakes; \
         one entry per refusal, as before the counting, is {} bytes each)",
        (after - before) as f64 / FLOOD as f64,
        after - before,
        single.iter().sum::<usize>() / single.len().max(1) + 1,
    );

    // The process log counts the same way.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let (logged, log_lines) = loop {
        let counted = log_refusals(&server.log());
        if counted.0 >= FLOOD || Instant::now() > deadline {
            break counted;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(logged, FLOOD, "every refusal is counted in the process log");
    assert!(
        log_lines <= bound,
        "{log_lines} log lines for {FLOOD} refusals over {elapsed} s (bound {bound})"
    );
    let log_bytes: usize = server
        .log()
        .lines()
        .filter(|l| l.contains("refused"))
        .map(|l| l.len() + 1)
        .sum();
    eprintln!(
        "process log bytes per flooded connection: {:.2} ({log_lines} lines)",
        log_bytes as f64 / FLOOD as f64
    );
}

/// Refusals the process log accounts for, and the lines it took.
fn log_refusals(log: &str) -> (u64, u64) {
    let mut total = 0;
    let mut lines = 0;
    for line in log.lines() {
        if line.contains("security association refused") {
            total += 1;
            lines += 1;
        } else if line.contains("security associations refused") {
            let count: u64 = line
                .split(" count=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            total += count - 1;
            lines += 1;
        }
    }
    (total, lines)
}
