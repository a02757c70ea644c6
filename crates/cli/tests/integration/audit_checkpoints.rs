//! Entries cut off the end of the signed audit log (issue 9, M3), end to end with the real
//! binaries: a CSE made by `cse init` writes a signed log and its signed checkpoint; the admin
//! keeps a copy of the checkpoint through `m2m audit head`. Keeping only the first entries
//! (dropping the later ones, as a forger hiding a suspension or a revocation would) makes
//! the CSE refuse to start, and `m2m audit verify` with the admin's copy fails even after
//! the forger also rewinds the log's own checkpoint.
//!
//! With the checkpoint anchored in a PKCS#11 token (`[audit] head_anchor`, SoftHSMv2 here),
//! rewinding the checkpoint with the log stops the CSE and fails `m2m audit verify
//! --anchor-from` without any copy kept by the admin.
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

/// The checkpoint file and the log's lines, as a forger keeping copies would save them.
struct Copy {
    log: String,
    head: Vec<u8>,
}

/// The log and its checkpoint once the checkpoint covers the whole log (the CSE writes it
/// right after each sync; waits at most 20 s).
fn settled(data: &Path) -> Copy {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(data.join("audit.log")).unwrap_or_default();
        let head = std::fs::read(data.join("audit.log.head")).unwrap_or_default();
        let seq = serde_json::from_slice::<serde_json::Value>(&head)
            .ok()
            .and_then(|v| v["seq"].as_u64());
        if seq == Some(log.lines().count() as u64) || std::time::Instant::now() > deadline {
            return Copy { log, head };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn put_back(data: &Path, copy: &Copy) {
    std::fs::write(data.join("audit.log"), &copy.log).expect("log");
    std::fs::write(data.join("audit.log.head"), &copy.head).expect("head");
}

#[test]
fn a_checkpoint_rewound_with_the_log_is_caught_by_its_pkcs11_anchor() {
    if !have_tool("openssl", &["version"]) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let Some(hsm) = keystore::testing::SoftHsm::new(&root.path().join("softhsm")) else {
        return;
    };
    hsm.init_token("cse-token", "1234");
    let conf = hsm.conf();
    let env = [("SOFTHSM2_CONF", conf.as_path())];
    let pin = root.path().join("hsm.pin");
    std::fs::write(&pin, "1234\n").expect("pin");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let homes = root.path().join("hsm.toml");
    std::fs::write(
        &homes,
        format!(
            "[keystore.pkcs11]\nmodule = \"{}\"\ntoken-label = \"cse-token\"\npin = {{ file = \"{}\" }}\n",
            keystore::testing::SOFTHSM_MODULE,
            pin.display()
        ),
    )
    .expect("hsm.toml");
    let dir = root.path().join("cse");
    let init = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["init", &s(&dir), "--keystore-from", &s(&homes)])
        .args(["--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .args(["--enrolment", "127.0.0.1:0"])
        .envs(env)
        .output()
        .expect("cse init");
    assert!(init.status.success(), "{}", text(&init));
    // Every key in the token, and the checkpoint anchored there too.
    let config = dir.join("cse.toml");
    let original = std::fs::read_to_string(&config).expect("cse.toml");
    assert!(original.contains("[audit]\n"), "{original}");
    std::fs::write(
        &config,
        original.replace(
            "[audit]\n",
            "[audit]\nhead_anchor = { home = \"pkcs11\", id = \"audit-head\" }\nanchor_interval_secs = 3600\n",
        ),
    )
    .expect("anchor");
    let data = dir.join("data");
    let mut server = Server::start_env(&data, &["--config", &s(&config)], 3, &env);
    let url = server.urls[1].clone();
    let admin = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--url",
            &url,
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
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = m2m(&args);
        assert!(out.status.success(), "{}", text(&out));
    };
    admin(&["associations"]);
    let early = settled(&data);
    // A suspension: what a forger wants gone. It is anchored before the admin's answer.
    admin(&[
        "credentials",
        "suspend",
        "12-sensor-1@secure-cse.example",
        "--reason",
        "stolen",
    ]);
    let suspended = settled(&data);
    assert!(suspended.log.contains("\"suspended\""), "{}", suspended.log);
    // Ordinary entries after it wait for the interval, and are anchored at the shutdown.
    admin(&["associations"]);
    settled(&data);
    server.terminate();
    let last = settled(&data);

    let public = s(&dir.join("audit.pub.pem"));
    let verify = |anchored: bool| {
        let mut args = vec![
            "audit".to_owned(),
            "verify".to_owned(),
            s(&data.join("audit.log")),
            "--public-key".to_owned(),
            public.clone(),
        ];
        if anchored {
            args.extend(["--anchor-from".to_owned(), s(&config)]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(&args)
            .envs(env)
            .output()
            .expect("m2m");
        (out.status.code(), text(&out))
    };
    let (code, out) = verify(true);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "not older than its anchor (PKCS#11 data object audit-head on token cse-token)"
        ),
        "{out}"
    );

    // Rewound to the checkpoint written right after the suspension: the files agree, the
    // anchor (moved at the shutdown) does not.
    put_back(&data, &suspended);
    let (code, out) = verify(false);
    assert_eq!(code, Some(0), "without the anchor the cut passes: {out}");
    let (code, out) = verify(true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("was rewound"), "{out}");

    // Rewound to before the suspension: the CSE refuses to start.
    put_back(&data, &early);
    let out = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["--http", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .envs(env)
        .output()
        .expect("cse");
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("was rewound"), "{}", text(&out));

    // The intact files start again.
    put_back(&data, &last);
    let mut server = Server::start_env(&data, &["--config", &s(&config)], 3, &env);
    server.kill9();
}
