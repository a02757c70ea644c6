//! Entries cut off the end of the signed audit log (issue 9, M3), end to end with the real
//! binaries: a CSE made by `cse init` writes a signed log and its signed checkpoint; the admin
//! keeps a copy of the checkpoint through `m2m audit head`. Keeping only the first entries
//! (dropping the later ones, as a forger hiding a suspension or a revocation would) makes
//! the CSE refuse to start, and `m2m audit verify` with the admin's copy fails even after
//! the forger also rewinds the log's own checkpoint.
use crate::common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

const CSE_NAME: &str = "id-in.secure-cse.example";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn m2m(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(args)
        .env_remove("M2M_URL")
        .env_remove("M2M_ORIGIN")
        .output()
        .expect("m2m")
}

fn cse_start(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["--http", "127.0.0.1:0", "--data"])
        .arg(dir.join("data"))
        .arg("--config")
        .arg(dir.join("cse.toml"))
        .output()
        .expect("cse")
}

#[test]
fn a_log_cut_at_its_end_stops_the_cse_and_fails_verify_with_the_admins_head() {
    if !have_tool("openssl", &["version"]) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("cse");
    let init = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args([
            "init",
            &s(&dir),
            "--http",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
        ])
        .args(["--enrolment", "127.0.0.1:0"])
        .output()
        .expect("cse init");
    assert!(init.status.success(), "{}", text(&init));
    let mut server = Server::start_listeners(
        &dir.join("data"),
        &["--config", &s(&dir.join("cse.toml"))],
        3,
    );
    let admin: Vec<String> = [
        "--url",
        &server.urls[1],
        "--servername",
        CSE_NAME,
        "--cacert",
        &s(&dir.join("ca/ca.pem")),
        "--cert",
        &s(&dir.join("admin.pem")),
        "--key",
        &s(&dir.join("admin.key")),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let with = |extra: &[&str]| {
        let mut args = admin.clone();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    // Each admin request is an association opened and closed: entries to cut later.
    for _ in 0..5 {
        let out = m2m(&with(&["associations"]));
        assert!(out.status.success(), "{}", text(&out));
    }
    let log = dir.join("data/audit.log");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let entries = eventually(read, &[("association-closed", 5)])
        .lines()
        .count();
    // The admin keeps the CSE's signed checkpoint (covering at least the entries seen).
    let kept = root.path().join("kept-head.json");
    let head = eventually(
        || {
            let out = m2m(&with(&["audit", "head"]));
            String::from_utf8_lossy(&out.stdout).into_owned()
        },
        &[("\"sig\"", 1)],
    );
    std::fs::write(&kept, &head).expect("keep the head");
    let seq = serde_json::from_str::<serde_json::Value>(&head).expect("json")["seq"]
        .as_u64()
        .expect("seq");
    assert!(seq as usize >= entries, "{head}");
    server.kill9();

    // Keep the first three entries only.
    let all = read();
    let first: Vec<&str> = all.lines().take(3).collect();
    std::fs::write(&log, first.join("\n") + "\n").expect("cut");
    let out = cse_start(&dir);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("cut off the end"), "{}", text(&out));

    let public = s(&dir.join("audit.pub.pem"));
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit".to_owned(), "verify".to_owned(), s(&log)];
        args.extend(["--public-key".to_owned(), public.clone()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        m2m(&args)
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cut off the end"), "{}", text(&out));

    // The forger rewinds the log's own checkpoint too (here to the head verify reports for
    // the cut log): the CSE starts, but the admin's copy still shows the cut.
    std::fs::remove_file(dir.join("data/audit.log.head")).expect("remove");
    let out = verify(&[]);
    let line = text(&out);
    let rewound = line
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .expect("verify prints the head")
        .to_owned();
    std::fs::write(dir.join("data/audit.log.head"), rewound).expect("rewind");
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = verify(&["--head", &s(&kept)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cut off the end"), "{}", text(&out));
}
