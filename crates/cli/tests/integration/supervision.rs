//! Supervision end to end: the real `cse` binary with a TLS-PSK listener and `openssl
//! s_client` peers. One PSK used from two addresses at once (127.0.0.1 and 127.0.0.2: Linux
//! routes the whole 127/8 to loopback, and s_client binds its side with `-bind`) is
//! flagged, audited and, with `suspend_on`, suspended with both associations closed.
//! Repeated wrong keys from one address are flagged too. Waits are bounded; nothing is
//! asserted about how long anything took.
use crate::common;

use common::*;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const IDENTITY: &str = "sensor-1@secure-cse.example";
const CREDENTIAL: &str = "12-sensor-1@secure-cse.example";

/// The test PKI's CSE with a PSK listener on an ephemeral port and `supervision` appended.
struct Cse {
    server: Server,
    pki: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cse {
    fn start(supervision: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = make_test_pki(dir.path());
        let path = test_config(
            &pki,
            &format!("handshake_timeout_ms = 2000\n\n[supervision]\n{supervision}"),
        );
        let server = Server::start_listeners(
            &dir.path().join("data"),
            &["--config", path.to_str().expect("utf8")],
            2,
        );
        Self {
            server,
            pki,
            _dir: dir,
        }
    }

    fn port(&self) -> String {
        self.server.urls[1]
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    fn psk(&self) -> String {
        std::fs::read_to_string(self.pki.join("sensor-1.psk"))
            .expect("psk")
            .trim()
            .to_owned()
    }

    /// `m2m` over the admin PSK.
    fn m2m_admin(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                &self.server.urls[1],
                "--psk-identity",
                "admin@secure-cse.example",
                "--psk-key-file",
            ])
            .arg(self.pki.join("admin.psk"))
            .args(args)
            .output()
            .expect("m2m");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(self.server.data.join("audit.log")).unwrap_or_default()
    }

    /// The audit log once `done` holds for it (the writer thread appends shortly after the
    /// event); the last content read otherwise, for the assertion to show.
    fn audit_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.audit_log();
            if done(&log) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A PSK connection through `openssl s_client`, kept open, from the local address `bind`.
struct Live {
    child: Child,
    stdin: ChildStdin,
    seen: Receiver<String>,
}

impl Live {
    fn open(port: &str, bind: &str, key: &str) -> Self {
        Self::open_with(
            port,
            bind,
            &[
                "-psk",
                key,
                "-psk_identity",
                IDENTITY,
                "-ciphersuites",
                "TLS_AES_128_GCM_SHA256",
            ],
        )
    }

    /// A TLS 1.3 connection with the credential `credential` gives s_client.
    fn open_with(port: &str, bind: &str, credential: &[&str]) -> Self {
        let connect = format!("127.0.0.1:{port}");
        let bind = format!("{bind}:0");
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &connect, "-bind", &bind])
            .args(credential)
            .arg("-tls1_3")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("s_client");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, seen) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut all = String::new();
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        all.push_str(&String::from_utf8_lossy(&buf[..n]));
                        let _ = tx.send(all.clone());
                    }
                }
            }
            let _ = tx.send(format!("{all}\nEOF"));
        });
        Self { child, stdin, seen }
    }

    /// Sends one request and keeps the connection open.
    fn send(&mut self, rqi: &str) {
        let request = format!(
            "GET /cse-in HTTP/1.1\r\nHost: localhost\r\nX-M2M-Origin: C\r\nX-M2M-RI: {rqi}\r\nX-M2M-RVI: 3\r\n\r\n"
        );
        let _ = self.stdin.write_all(request.as_bytes());
        let _ = self.stdin.flush();
    }

    /// What the connection showed once `done` holds for it, or when it ended or the bounded
    /// wait ran out.
    fn output_when(&self, done: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        while let Ok(seen) = self.seen.recv_timeout(Duration::from_secs(20)) {
            last = seen;
            if done(&last) || last.ends_with("EOF") {
                break;
            }
        }
        last
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn entries_of<'a>(log: &'a str, kind: &str) -> Vec<&'a str> {
    let tag = format!("\"kind\":\"{kind}\"");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

fn json_of(text: &str) -> serde_json::Value {
    let start = text.find('{').unwrap_or(0);
    // The JSON comes first; m2m prints the status after it.
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON in {text}"))
}

#[test]
fn one_psk_live_from_two_addresses_is_flagged_and_suspended() {
    if !have_openssl() {
        return;
    }
    let cse = Cse::start("suspend_on = [\"concurrent-peers\"]\n");
    let key = cse.psk();
    let mut first = Live::open(&cse.port(), "127.0.0.1", &key);
    first.send("one");
    let answer = first.output_when(|s| s.contains("X-M2M-RSC"));
    assert!(answer.contains("X-M2M-RSC"), "served: {answer}");

    // The same PSK from another address while the first association lives.
    let mut second = Live::open(&cse.port(), "127.0.0.2", &key);
    second.send("two");
    // Both connections are closed by the suspension.
    let first_end = first.output_when(|_| false);
    let second_end = second.output_when(|_| false);
    assert!(first_end.ends_with("EOF"), "first: {first_end}");
    assert!(second_end.ends_with("EOF"), "second: {second_end}");

    let log = cse.audit_when(|l| {
        !entries_of(l, "suspended").is_empty()
            && !entries_of(l, "anomaly-detected").is_empty()
            && entries_of(l, "association-closed").len() >= 2
    });
    let anomalies = entries_of(&log, "anomaly-detected");
    assert_eq!(anomalies.len(), 1, "{log}");
    let anomaly = anomalies[0];
    for needle in [
        "\"rule\":\"concurrent-peers\"",
        &format!("\"credential\":\"{CREDENTIAL}\""),
        "\"peer\":\"127.0.0.2:",
        "127.0.0.1",
    ] {
        assert!(anomaly.contains(needle), "{needle} in {anomaly}");
    }
    let suspended = entries_of(&log, "suspended");
    assert!(
        suspended.len() == 1
            && suspended[0].contains("\"actor\":\"supervision\"")
            && suspended[0].contains(CREDENTIAL),
        "{log}"
    );
    // Both associations were closed because of the suspension.
    let closed = entries_of(&log, "association-closed");
    let by_suspension = closed.iter().filter(|l| l.contains("suspended")).count();
    assert_eq!(by_suspension, 2, "{log}");

    // The withdrawal is the ordinary one: listed, and the next handshake is refused.
    let (ok, listed) = cse.m2m_admin(&["credentials", "list"]);
    assert!(ok && listed.contains(CREDENTIAL), "{listed}");
    assert!(listed.contains("\"suspended\""), "{listed}");
    // `since` is a time a reader can read (RFC 3339, UTC), not Unix seconds.
    let since = listed
        .split("\"since\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default();
    assert!(
        since.len() == 20 && since.as_bytes()[10] == b'T' && since.ends_with('Z'),
        "{listed}"
    );
    let third = Live::open(&cse.port(), "127.0.0.1", &key);
    let refused = third.output_when(|_| false);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");

    // Usage: two associations, from two addresses.
    let (ok, usage) = cse.m2m_admin(&["credentials", "usage", CREDENTIAL]);
    assert!(ok, "{usage}");
    let usage = json_of(&usage);
    let u = &usage["usage"][0];
    assert_eq!(u["credential"], CREDENTIAL, "{usage}");
    assert_eq!(u["associationsOpened"], 2, "{usage}");
    assert_eq!(u["live"], 0, "{usage}");
    assert!(u["requests"].as_u64().unwrap_or(0) >= 1, "{usage}");
    assert_eq!(
        u["peers"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"]),
        "{usage}"
    );
    let (ok, all) = cse.m2m_admin(&["credentials", "usage"]);
    assert!(ok && all.contains(CREDENTIAL), "{all}");

    // The operational log names neither the addresses nor the credential.
    let warn = cse
        .server
        .log()
        .lines()
        .find(|l| l.contains("anomaly detected"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(warn.contains("concurrent-peers"), "{}", cse.server.log());
    assert!(
        warn.contains("WARN") && !warn.contains("sensor-1@"),
        "{warn}"
    );
    // Nor does any other line (the closed connections log the suspension's reason).
    let log = cse.server.log();
    assert!(!log.contains("127.0.0.2"), "{log}");
}

#[test]
fn repeated_wrong_keys_from_one_address_are_flagged() {
    if !have_openssl() {
        return;
    }
    let cse = Cse::start("failed_handshakes = 3\nfailed_handshakes_window_secs = 3600\n");
    let wrong = "ffeeddccbbaa99887766554433221100";
    for _ in 0..3 {
        let attempt = Live::open(&cse.port(), "127.0.0.1", wrong);
        let out = attempt.output_when(|_| false);
        assert!(!out.contains("X-M2M-RSC"), "{out}");
    }
    let log = cse.audit_when(|l| !entries_of(l, "anomaly-detected").is_empty());
    let anomalies = entries_of(&log, "anomaly-detected");
    assert_eq!(anomalies.len(), 1, "{log}");
    for needle in [
        "\"rule\":\"failed-handshakes\"",
        &format!("\"credential\":\"{CREDENTIAL}\""),
        "3 failed handshakes from 127.0.0.1",
        "wrong key",
    ] {
        assert!(
            anomalies[0].contains(needle),
            "{needle} in {}",
            anomalies[0]
        );
    }
    // The refusals name the credential offered, and count for it. The audit log writes the
    // first refusal of a source and reason and counts the others over the refusal window.
    let refused = entries_of(&log, "association-refused");
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused.iter().all(|l| l.contains(CREDENTIAL)), "{log}");
    let (ok, usage) = cse.m2m_admin(&["credentials", "usage", CREDENTIAL]);
    assert!(ok, "{usage}");
    let u = &json_of(&usage)["usage"][0];
    assert_eq!(u["handshakesRefused"], 3, "{usage}");
    assert_eq!(u["associationsOpened"], 0, "{usage}");
    assert!(u["firstUse"].is_null(), "{usage}");
    // Not in suspend_on: nothing was withdrawn.
    let (ok, listed) = cse.m2m_admin(&["credentials", "list"]);
    assert!(ok && !listed.contains(CREDENTIAL), "{listed}");
    // A credential never seen is a 4004.
    let (ok, none) = cse.m2m_admin(&["credentials", "usage", "12-nobody@x.example"]);
    assert!(!ok && none.contains("4004"), "{none}");
}

/// Issue 9 H2: a certificate and a copy of it with a re-encoded signature, live from two
/// addresses at once, are one credential: the `concurrent-peers` rule fires and
/// `suspend_on` suspends it, closing both.
#[test]
fn a_certificate_and_its_re_encoded_copy_from_two_addresses_are_suspended() {
    if !have_openssl() {
        return;
    }
    let cse = Cse::start("suspend_on = [\"concurrent-peers\"]\n");
    let file = |name: &str| cse.pki.join(name).to_string_lossy().into_owned();
    reencode_signature(
        &cse.pki.join("ae1.pem"),
        &cse.pki.join("ca.pem"),
        &cse.pki.join("ae1copy.pem"),
    );
    let credential = format!("33-{}", certificate_digest(&cse.pki.join("ae1.pem")));
    let (key, ca) = (file("ae1.key"), file("ca.pem"));
    let (original, copy) = (file("ae1.pem"), file("ae1copy.pem"));
    let as_cert = |cert: &str| ["-cert", cert, "-key", &key, "-CAfile", &ca].map(str::to_owned);
    fn args(v: &[String; 6]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let (a, b) = (as_cert(&original), as_cert(&copy));
    let mut first = Live::open_with(&cse.port(), "127.0.0.1", &args(&a));
    first.send("one");
    let answer = first.output_when(|s| s.contains("X-M2M-RSC"));
    assert!(answer.contains("X-M2M-RSC"), "served: {answer}");
    let mut second = Live::open_with(&cse.port(), "127.0.0.2", &args(&b));
    second.send("two");
    let first_end = first.output_when(|_| false);
    let second_end = second.output_when(|_| false);
    assert!(first_end.ends_with("EOF"), "first: {first_end}");
    assert!(second_end.ends_with("EOF"), "second: {second_end}");
    let log = cse.audit_when(|l| {
        !entries_of(l, "suspended").is_empty() && !entries_of(l, "anomaly-detected").is_empty()
    });
    let anomaly = entries_of(&log, "anomaly-detected").join("\n");
    assert!(
        anomaly.contains("concurrent-peers") && anomaly.contains(&credential),
        "{log}"
    );
    let suspended = entries_of(&log, "suspended").join("\n");
    assert!(
        suspended.contains("\"actor\":\"supervision\"") && suspended.contains(&credential),
        "{log}"
    );
    // Neither encoding gets a new association.
    for v in [&a, &b] {
        let mut again = Live::open_with(&cse.port(), "127.0.0.1", &args(v));
        again.send("three");
        let refused = again.output_when(|_| false);
        assert!(!refused.contains("X-M2M-RSC"), "{refused}");
    }
}
