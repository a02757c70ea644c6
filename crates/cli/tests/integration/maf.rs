//! Keys between applications through the CSE's MAF (issue 5, trust scenario 2; TS-0003
//! clause 8.8), end to end with the real `cse` and `m2m` binaries: AE Calice registers a key
//! for Cbob over her own PSK association, Cbob retrieves it over his; Ceve, a spoofed `From`,
//! plain HTTP, a deletion by a non-source, a deleted key and an expired key are refused with
//! their precise status, change nothing, and are in the audit log. The registration survives
//! `kill -9`, and the key is sealed at rest.

use crate::common;

use common::{m2m, text, PskAes, Server};
use model::clock::ManualClock;
use std::path::PathBuf;
use std::process::Output;

const AES: &[(&str, &str, &str)] = &[
    (
        "Calice",
        "alice@sp.example",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
    ),
    (
        "Cbob",
        "bob@sp.example",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
    ),
    (
        "Ceve",
        "eve@sp.example",
        "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    ),
];

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    aes: PskAes,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let aes = PskAes::write(dir.path(), AES);
        let creds = aes.credentials();
        let config = dir.path().join("cse.toml");
        std::fs::write(
            &config,
            format!(
                "[security]\ncredentials = \"{}\"\n\n[[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n\n\
                 [maf]\nenabled = true\nmax_lifetime_secs = 3600\n",
                creds.display()
            ),
        )
        .expect("config");
        Self { dir, config, aes }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self) -> Server {
        Server::start_listeners(
            &self.path("data"),
            &["--config", self.config.to_str().expect("utf8")],
            2,
        )
    }

    /// The same CSE served in this process on `clock` (tests about expiry).
    fn start_at(&self, clock: &ManualClock) -> Server {
        Server::in_process(&self.path("data"), Some(&self.config), 2, clock)
    }

    /// `m2m` over the PSK listener as the AE `ae` (its own association), `From` = `from`.
    fn m2m_as(&self, server: &Server, ae: &str, from: &str, args: &[&str]) -> Output {
        self.aes.m2m_as(&server.urls[1], ae, from, args)
    }
}

fn stdout_field(out: &Output, name: &str) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {name} in {}", text(out)))
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

fn journal_lines(server: &Server) -> usize {
    std::fs::read_to_string(server.data.join("maf-keys.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn two_aes_share_a_key_through_the_maf_and_everyone_else_is_refused() {
    let setup = Setup::new();
    let mut server = setup.start();
    for (ae, _, _) in AES {
        let rn = ae.to_ascii_lowercase();
        let out = setup.m2m_as(
            &server,
            ae,
            ae,
            &["register", "--api", "Nkeys", "--rn", &rn],
        );
        assert!(out.status.success(), "register {ae}: {}", text(&out));
    }

    // Calice registers a key for Cbob; the key goes to her file only.
    let alice_key = setup.path("alice.key");
    let out = setup.m2m_as(
        &server,
        "Calice",
        "Calice",
        &[
            "maf",
            "register",
            "--suid",
            "32",
            "--target",
            "Cbob",
            "--label",
            "demo",
            "--key-out",
            alice_key.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let key_id = stdout_field(&out, "keyId");
    let (relative, fqdn) = key_id.split_once('@').expect("HEX@fqdn");
    assert_eq!(fqdn, "id-in.secure-cse.example", "{key_id}");
    assert!(relative.len() == 32 && relative.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(stdout_field(&out, "targets"), "Cbob");
    let key_hex = std::fs::read_to_string(&alice_key).expect("key file");
    assert_eq!(key_hex.trim().len(), 64);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key_hex.trim()));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&alice_key)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key file is private");
    }
    assert_eq!(journal_lines(&server), 1);

    // Cbob retrieves it over his own association and gets the same key.
    let bob_key = setup.path("bob.key");
    let bob_key_arg = bob_key.to_str().expect("utf8").to_owned();
    let out = setup.m2m_as(
        &server,
        "Cbob",
        "Cbob",
        &["maf", "retrieve", &key_id, "--key-out", &bob_key_arg],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout_field(&out, "source"), "Calice");
    assert_eq!(
        std::fs::read_to_string(&bob_key).expect("bob's key"),
        key_hex
    );

    // Refusals: each leaves nothing behind.
    let eve_key = setup.path("eve.key");
    let eve_arg = eve_key.to_str().expect("utf8").to_owned();
    let out = setup.m2m_as(
        &server,
        "Ceve",
        "Ceve",
        &["maf", "retrieve", &key_id, "--key-out", &eve_arg],
    );
    refused(&out, "4103");
    // Ceve claiming to be Cbob over her own association.
    let out = setup.m2m_as(
        &server,
        "Ceve",
        "Cbob",
        &["maf", "retrieve", &key_id, "--key-out", &eve_arg],
    );
    refused(&out, "4106");
    // Plain HTTP: no security association.
    let out = m2m(&[
        "--url",
        &server.urls[0],
        "--origin",
        "Cbob",
        "maf",
        "retrieve",
        &key_id,
        "--key-out",
        &eve_arg,
    ]);
    refused(&out, "4107");
    // Only the source may delete.
    let out = setup.m2m_as(&server, "Cbob", "Cbob", &["maf", "delete", &key_id]);
    refused(&out, "4103");
    // Two targets for the SAEF (exactly one allowed), and a key value of one's own.
    let out = setup.m2m_as(
        &server,
        "Calice",
        "Calice",
        &[
            "maf",
            "register",
            "--suid",
            "32",
            "--target",
            "Cbob",
            "--target",
            "Ceve",
            "--key-out",
            &eve_arg,
        ],
    );
    refused(&out, "4000");
    assert!(!eve_key.exists(), "no key reached a refused caller");
    assert_eq!(journal_lines(&server), 1, "refusals stored nothing");

    // The registration is durable and sealed: kill -9, restart, retrieve again.
    let journal = std::fs::read_to_string(server.data.join("maf-keys.jsonl")).expect("journal");
    assert!(
        !journal.contains(key_hex.trim()),
        "the key is sealed at rest"
    );
    server.kill9();
    let server = setup.start();
    let out = setup.m2m_as(
        &server,
        "Cbob",
        "Cbob",
        &["maf", "retrieve", &key_id, "--key-out", &bob_key_arg],
    );
    assert!(out.status.success(), "after restart: {}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&bob_key).expect("bob's key"),
        key_hex
    );

    // The source deletes it; from then on it is gone.
    let out = setup.m2m_as(&server, "Calice", "Calice", &["maf", "delete", &key_id]);
    assert!(out.status.success(), "{}", text(&out));
    let out = setup.m2m_as(
        &server,
        "Cbob",
        "Cbob",
        &["maf", "retrieve", &key_id, "--key-out", &eve_arg],
    );
    refused(&out, "4004");
    assert_eq!(journal_lines(&server), 2, "one registration, one deletion");

    // Everything is in the audit log.
    let entries = audit(&server);
    assert_eq!(
        count(
            &entries,
            "credential-issued",
            &[&key_id, "\"holder\":\"Calice\""]
        ),
        1
    );
    assert_eq!(
        count(
            &entries,
            "credential-issued",
            &[&key_id, "\"holder\":\"Cbob\""]
        ),
        2
    );
    assert_eq!(
        count(
            &entries,
            "credential-issued",
            &[&key_id, "\"holder\":\"Ceve\""]
        ),
        0
    );
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &[
                "maf-key-retrieval-refused",
                "\"actor\":\"Ceve\"",
                "is not a target"
            ]
        ),
        1
    );
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &["maf-key-deletion-refused", "\"actor\":\"Cbob\""]
        ),
        1
    );
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &["maf-key-retrieval-refused", "\"actor\":\"Cbob\"", "deleted"]
        ),
        1
    );
    assert_eq!(
        count(&entries, "revoked", &[&key_id, "\"actor\":\"Calice\""]),
        1
    );
    assert!(!std::fs::read_to_string(server.data.join("audit.log"))
        .expect("audit")
        .contains(key_hex.trim()));
    assert!(
        !server.log().contains(key_hex.trim()),
        "no key in the operational log"
    );
}

#[test]
fn an_expired_key_is_refused() {
    // In process, on a clock the test moves past the expiry (no waiting).
    let setup = Setup::new();
    let clock = ManualClock::new();
    let server = setup.start_at(&clock);
    for ae in ["Calice", "Cbob"] {
        let rn = ae.to_ascii_lowercase();
        let out = setup.m2m_as(
            &server,
            ae,
            ae,
            &["register", "--api", "Nkeys", "--rn", &rn],
        );
        assert!(out.status.success(), "register {ae}: {}", text(&out));
    }
    // An expiry a minute from now (the MAF keeps it as asked: below its limit).
    let soon = model::time::format(clock.clock().now() + std::time::Duration::from_secs(60));
    let key = setup.path("alice.key");
    let out = setup.m2m_as(
        &server,
        "Calice",
        "Calice",
        &[
            "maf",
            "register",
            "--suid",
            "34",
            "--target",
            "Cbob",
            "--expires",
            &soon,
            "--key-out",
            key.to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let key_id = stdout_field(&out, "keyId");
    // The CSE's clock passes the expiry.
    clock.advance(std::time::Duration::from_secs(61));
    let bob = setup.path("bob.key");
    let out = setup.m2m_as(
        &server,
        "Cbob",
        "Cbob",
        &[
            "maf",
            "retrieve",
            &key_id,
            "--key-out",
            bob.to_str().expect("utf8"),
        ],
    );
    refused(&out, "4004");
    assert!(!bob.exists());
    let entries = audit(&server);
    assert_eq!(
        count(
            &entries,
            "key-request-refused",
            &["maf-key-retrieval-refused", &key_id, "expired"]
        ),
        1
    );
    // An expiry in the past is refused at registration.
    let out = setup.m2m_as(
        &server,
        "Calice",
        "Calice",
        &[
            "maf",
            "register",
            "--suid",
            "34",
            "--target",
            "Cbob",
            "--expires",
            "20000101T000000",
            "--key-out",
            key.to_str().expect("utf8"),
        ],
    );
    refused(&out, "4000");
    assert_eq!(journal_lines(&server), 1);
}
