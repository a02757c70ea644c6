//! Request data reaches the operational log escaped: a resource name holding a line break
//! and a NUL (JSON `\n`, `\u0000`), and an `rqi` holding a tab, leave one log line of the
//! real `cse` binary with those bytes written as escapes, and no forged line.
use crate::common;

use common::*;

#[test]
fn a_forged_log_line_in_a_request_stays_one_escaped_line() {
    if !have_curl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let server = Server::start(&dir.path().join("data"));
    let forged = "2026-12-07T00:00:00.000000Z  INFO FORGED: security association opened";
    let body = format!(r#"{{"m2m:cnt":{{"rn":"x\n{forged}\u0000\u202e"}}}}"#);
    let out = curl(&[
        "-X",
        "POST",
        &format!("{}/cse-in", server.url()),
        "-H",
        "X-M2M-Origin: CAdmin",
        "-H",
        "X-M2M-RI: rqi\tFORGED-RQI",
        "-H",
        "X-M2M-RVI: 3",
        "-H",
        "Content-Type: application/json;ty=3",
        "-d",
        &body,
    ]);
    assert!(out.contains("X-M2M-RSC: 4000"), "{out}");
    let log = server.log_with("invalid resource name");
    let bytes = std::fs::read(server.data.join("cse.log")).expect("log");
    assert!(!bytes.contains(&0), "no NUL byte reaches the log");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("FORGED")).collect();
    assert_eq!(lines.len(), 1, "one line, no forged one: {log}");
    let line = lines[0];
    assert!(line.contains("request refused"), "{line}");
    assert!(
        line.contains(&format!("x\\n{forged}\\0\\u{{202e}}")),
        "the name's bytes are escaped: {line}"
    );
    assert!(line.contains("rqi\\tFORGED-RQI"), "{line}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-07T00:00:00")),
        "{log}"
    );
}
