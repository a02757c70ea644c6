//! fetchCredentials (issue 5; TS-0003 clause 8.3.2.1 "Use of Remotely Provisioned Credential"
//! and clause 10.3.7), end to end with the real `cse` and `m2m` binaries: a device enrols
//! naming the Enrolment Target Cmaf1; Cmaf1 fetches, over its own PSK association, the
//! usage-constrained key for an allowed SUID, and it equals what the device derives locally.
//! A target the enrolment did not name, an SUID the target may not fetch, an unknown or
//! expired KeID, a malformed request, plain HTTP and a spoofed `From` are refused with their
//! precise status, change nothing and are in the audit log. The kept Ke survives `kill -9`.

use crate::common;

use cli::enrol_cmd::{EnrolmentClient, EnrolmentSession};
use common::{m2m, text, write_private, PskAes, Server};
use model::clock::ManualClock;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;
use zeroize::Zeroizing;

const KPM_ID: &str = "sensor-9@mef.secure-cse.example";
const KPM: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const TARGETS: &[(&str, &str, &str)] = &[
    (
        "Cmaf1",
        "maf1@sp.example",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
    ),
    (
        "Cother",
        "other@sp.example",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
    ),
];
const TIMEOUT: Duration = Duration::from_secs(10);

/// A CSE with a PSK listener (`urls[1]`), an enrolment listener (`urls[2]`), and two
/// Enrolment Targets: Cmaf1 may fetch SUIDs 23 and 24, Cother SUID 23.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    targets: PskAes,
}

impl Setup {
    fn new(lifetime_secs: u64) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let enrolees = dir.path().join("enrolees.toml");
        write_private(
            &enrolees,
            &format!(
                "[[enrolee]]\nidentity = \"{KPM_ID}\"\nkey_hex = \"{KPM}\"\nallowed_aes = [\"C*\"]\n"
            ),
        );
        let targets = PskAes::write(dir.path(), TARGETS);
        let creds = targets.credentials();
        let config = dir.path().join("cse.toml");
        std::fs::write(
            &config,
            format!(
                "[security]\ncredentials = \"{}\"\n\n\
                 [[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n\n\
                 [enrolment]\nlisten = \"127.0.0.1:0\"\nenrolees = \"{}\"\nlifetime_secs = {lifetime_secs}\n\n\
                 [[enrolment.target]]\nid = \"Cmaf1\"\nsuids = [23, 24]\n\n\
                 [[enrolment.target]]\nid = \"Cother\"\nsuids = [23]\n",
                creds.display(),
                enrolees.display()
            ),
        )
        .expect("config");
        Self {
            dir,
            config,
            targets,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self) -> Server {
        Server::start_listeners(
            &self.path("data"),
            &["--config", self.config.to_str().expect("utf8")],
            3,
        )
    }

    /// The same CSE served in this process on `clock` (tests about expiry).
    fn start_at(&self, clock: &ManualClock) -> Server {
        Server::in_process(&self.path("data"), Some(&self.config), 3, clock)
    }

    /// `m2m` over the PSK listener as `ae` (its own association), `From` = `from`.
    fn m2m_as(&self, server: &Server, ae: &str, from: &str, args: &[&str]) -> Output {
        self.targets.m2m_as(&server.urls[1], ae, from, args)
    }

    /// `m2m mef fetch` as `ae`, the key to `out`.
    fn fetch(&self, server: &Server, ae: &str, ke_id: &str, suid: &str, out: &str) -> Output {
        let out = self.path(out);
        self.m2m_as(
            server,
            ae,
            ae,
            &[
                "mef",
                "fetch",
                "--ke-id",
                ke_id,
                "--suid",
                suid,
                "--key-out",
                out.to_str().expect("utf8"),
            ],
        )
    }

    /// A device enrols, naming `targets`; its KeID and the session (for local derivations).
    fn enrol(&self, server: &Server, targets: &[&str]) -> (String, EnrolmentSession) {
        let mut session = EnrolmentClient::new(
            &server.urls[2],
            KPM_ID,
            Zeroizing::new(hex::decode(KPM).expect("hex")),
            false,
            TIMEOUT,
        )
        .expect("client")
        .connect()
        .expect("MEF handshake");
        let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
        let enrolled = session.enrol_towards(None, &targets).expect("enrolled");
        (enrolled.ke_id.clone(), session)
    }
}

/// Asserts exit code 1 with the status `rsc` on standard error.
fn refused(out: &Output, rsc: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(rsc),
        "expected {rsc}: {}",
        text(out)
    );
}

fn key_file(setup: &Setup, name: &str) -> String {
    std::fs::read_to_string(setup.path(name))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The audit log's entries as (kind, the whole line).
fn audit(server: &Server) -> Vec<(String, String)> {
    std::fs::read_to_string(server.data.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("audit line is JSON");
            let kind = v["event"]["kind"].as_str().unwrap_or_default().to_owned();
            (kind, l.to_owned())
        })
        .collect()
}

fn count(entries: &[(String, String)], kind: &str, needles: &[&str]) -> usize {
    entries
        .iter()
        .filter(|(k, l)| k == kind && needles.iter().all(|n| l.contains(n)))
        .count()
}

fn journal(server: &Server) -> String {
    std::fs::read_to_string(server.data.join("enrolment-keys.jsonl")).unwrap_or_default()
}

fn register_targets(setup: &Setup, server: &Server) {
    for (ae, _, _) in TARGETS {
        let rn = ae.to_ascii_lowercase();
        let out = setup.m2m_as(
            server,
            ae,
            ae,
            &["register", "--api", "Ntarget", "--rn", &rn],
        );
        assert!(out.status.success(), "register {ae}: {}", text(&out));
    }
}

#[test]
fn a_named_target_fetches_the_key_the_device_derives_and_others_are_refused() {
    let setup = Setup::new(3600);
    let mut server = setup.start();
    register_targets(&setup, &server);
    let (ke_id, session) = setup.enrol(&server, &["Cmaf1"]);
    assert!(ke_id.ends_with("@id-in.secure-cse.example"), "{ke_id}");
    let expected23 = hex::encode(
        session
            .usage_constrained_key(23, "Cmaf1")
            .expect("derive")
            .expose(),
    );
    let expected24 = hex::encode(
        session
            .usage_constrained_key(24, "Cmaf1")
            .expect("derive")
            .expose(),
    );
    assert_ne!(expected23, expected24);
    let kept = journal(&server);
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(kept.contains(&ke_id) && kept.contains("\"sealed\""));

    // The named target, an allowed SUID: the key the device derives, and again (not one-time).
    for _ in 0..2 {
        let out = setup.fetch(&server, "Cmaf1", &ke_id, "23", "t23.key");
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(key_file(&setup, "t23.key"), expected23);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("13-{ke_id}")), "{stdout}");
        assert!(stdout.contains(KPM_ID), "{stdout}");
        assert!(!stdout.contains(&expected23), "the key is not printed");
    }
    let out = setup.fetch(&server, "Cmaf1", &ke_id, "24", "t24.key");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(key_file(&setup, "t24.key"), expected24);

    // The refusals, each with its status; no key file is written.
    let out = setup.fetch(&server, "Cother", &ke_id, "23", "u.key");
    refused(&out, "4103");
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not name Cother"));
    refused(
        &setup.fetch(&server, "Cmaf1", &ke_id, "25", "x.key"),
        "4103",
    );
    let unknown = format!("{}@id-in.secure-cse.example", "AB".repeat(16));
    refused(
        &setup.fetch(&server, "Cmaf1", &unknown, "23", "x.key"),
        "4004",
    );
    refused(
        &setup.fetch(&server, "Cmaf1", "not-a-ke-id", "23", "x.key"),
        "4000",
    );
    refused(
        &setup.fetch(&server, "Cmaf1", &ke_id, "32", "x.key"),
        "4000",
    );
    let x = setup.path("x.key");
    let plain = m2m(&[
        "--url",
        server.urls[0].as_str(),
        "--origin",
        "Cmaf1",
        "mef",
        "fetch",
        "--ke-id",
        &ke_id,
        "--suid",
        "23",
        "--key-out",
        x.to_str().expect("utf8"),
    ]);
    refused(&plain, "4107");
    let spoofed = setup.m2m_as(
        &server,
        "Cother",
        "Cmaf1",
        &[
            "mef",
            "fetch",
            "--ke-id",
            &ke_id,
            "--suid",
            "23",
            "--key-out",
            x.to_str().expect("utf8"),
        ],
    );
    refused(&spoofed, "4106");
    assert!(!setup.path("u.key").exists() && !x.exists());
    assert_eq!(journal(&server), kept, "refusals change nothing");

    let entries = audit(&server);
    assert_eq!(
        count(
            &entries,
            "credential-issued",
            &[&format!("13-{ke_id}"), "Cmaf1"]
        ),
        2
    );
    assert_eq!(
        count(
            &entries,
            "credential-issued",
            &[&format!("14-{ke_id}"), "Cmaf1"]
        ),
        1
    );
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &["credential-fetch-refused"]
        ),
        7,
        "every refusal is audited"
    );
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &["credential-fetch-refused", "Cother", "4103"]
        ),
        1
    );

    // An enrolment that names no target keeps no Ke: nothing to fetch.
    let (plain_ke, _) = setup.enrol(&server, &[]);
    refused(
        &setup.fetch(&server, "Cmaf1", &plain_ke, "23", "x.key"),
        "4004",
    );
    assert_eq!(journal(&server).lines().count(), 1);

    // The kept Ke survives kill -9: the same key after the restart.
    server.kill9();
    let server = setup.start();
    let out = setup.fetch(&server, "Cmaf1", &ke_id, "23", "after.key");
    assert!(out.status.success(), "after restart: {}", text(&out));
    assert_eq!(key_file(&setup, "after.key"), expected23);
    assert!(!journal(&server).contains(&expected23));
}

#[test]
fn an_expired_enrolment_is_not_fetched() {
    // In process, on a clock the test moves past the enrolment's lifetime (no waiting).
    let setup = Setup::new(3600);
    let clock = ManualClock::new();
    let server = setup.start_at(&clock);
    register_targets(&setup, &server);
    let (ke_id, _session) = setup.enrol(&server, &["Cmaf1"]);
    assert_eq!(journal(&server).lines().count(), 1);
    clock.advance(Duration::from_secs(3601));
    let out = setup.fetch(&server, "Cmaf1", &ke_id, "23", "late.key");
    refused(&out, "4004");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    assert!(!setup.path("late.key").exists());
}
