//! Enrolment with the CSE's MEF (issue 5), end to end with the real `cse` binary: the
//! pre-provisioned symmetric enrolee key RSPF (TS-0003 clause 8.3.2.1) gives a device a Kpsa
//! that the CSE's normal TLS-PSK listener then accepts. The refusals: a wrong or expired
//! enrolee key, a replayed or truncated exchange, an expired Kpsa; and the enrolled key
//! survives `kill -9` right after the answer.

use crate::common;

use cli::enrol_cmd::{EnrolmentClient, EnrolmentSession};
use common::{m2m, text, write_private, Server};
use model::clock::ManualClock;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use zeroize::Zeroizing;

const KPM_ID: &str = "sensor-9@mef.secure-cse.example";
const KPM: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OLD_ID: &str = "old-1@mef.secure-cse.example";
const ADMIN_ID: &str = "admin@secure-cse.example";
const ADMIN_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// A CSE with a PSK-only `[[tls]]` listener and an enrolment listener, both on ephemeral
/// ports; `listen_urls[1]` is the PSK listener, `[2]` the MEF.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(lifetime_secs: u64) -> Self {
        Self::with_enrolment(lifetime_secs, "")
    }

    /// `extra` is appended to the `[enrolment]` section.
    fn with_enrolment(lifetime_secs: u64, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let enrolees = dir.path().join("enrolees.toml");
        write_private(
            &enrolees,
            &format!(
                "[[enrolee]]\nidentity = \"{KPM_ID}\"\nkey_hex = \"{KPM}\"\nallowed_aes = [\"C*\"]\n\n\
                 [[enrolee]]\nidentity = \"{OLD_ID}\"\nkey_hex = \"{KPM}\"\nexpires = \"2000-01-01T00:00:00Z\"\nallowed_aes = [\"C*\"]\n"
            ),
        );
        write_private(&dir.path().join("kpm.hex"), &format!("{KPM}\n"));
        write_private(
            &dir.path().join("wrong.hex"),
            "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        );
        // An admin PSK, for the tests that withdraw credentials.
        let credentials = dir.path().join("credentials.toml");
        write_private(
            &credentials,
            &format!(
                "[[psk]]\nidentity = \"{ADMIN_ID}\"\nkey_hex = \"{ADMIN_KEY}\"\nae = \"CAdmin\"\nadmin = true\n"
            ),
        );
        write_private(&dir.path().join("admin.hex"), &format!("{ADMIN_KEY}\n"));
        let config = dir.path().join("cse.toml");
        std::fs::write(
            &config,
            format!(
                "[security]\ncredentials = \"{}\"\n\n\
                 [[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n\n\
                 [enrolment]\nlisten = \"127.0.0.1:0\"\nenrolees = \"{}\"\nlifetime_secs = {lifetime_secs}\n{extra}",
                credentials.display(),
                enrolees.display()
            ),
        )
        .expect("config");
        Self { dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self) -> Server {
        let data = self.path("data");
        Server::start_listeners(&data, &["--config", self.config.to_str().expect("utf8")], 3)
    }

    /// The same CSE served in this process on `clock` (tests about expiry).
    fn start_at(&self, clock: &ManualClock) -> Server {
        Server::in_process(&self.path("data"), Some(&self.config), 3, clock)
    }
}

/// `m2m enrol` against the MEF of `server`.
fn enrol(server: &Server, key: &Path, identity: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--url",
        server.urls[2].as_str(),
        "enrol",
        "--enrolee-identity",
        identity,
        "--enrolee-key-file",
        key.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    m2m(&args)
}

/// `m2m register` over the normal PSK listener with the enrolled key in `out`.
fn register(server: &Server, out: &Path, rn: &str) -> Output {
    let id = std::fs::read_to_string(out.join("kpsa-id")).expect("kpsa-id");
    m2m(&[
        "--url",
        server.urls[1].as_str(),
        "--psk-identity",
        id.trim(),
        "--psk-key-file",
        out.join("kpsa.hex").to_str().expect("utf8"),
        "register",
        "--api",
        "Nsensor",
        "--rn",
        rn,
    ])
}

/// The keys the MEF stored (lines of its journal).
fn provisioned(server: &Server) -> usize {
    std::fs::read_to_string(server.data.join("provisioned-psk.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn stdout_field(out: &Output, name: &str) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {name} in {}", text(out)))
}

#[test]
fn enrol_then_register_and_work_over_the_derived_psk() {
    let setup = Setup::new(3600);
    let server = setup.start();
    // TLS 1.3 for one device, TLS 1.2 (with the PSK suites of TS-0003 clause 10.2) for another
    // enrolment with the same enrolee key: each gives its own KpsaID and key.
    let (out13, out12) = (setup.path("dev13"), setup.path("dev12"));
    let e13 = enrol(&server, &setup.path("kpm.hex"), KPM_ID, &out13, &[]);
    assert!(e13.status.success(), "{}", text(&e13));
    let e12 = enrol(
        &server,
        &setup.path("kpm.hex"),
        KPM_ID,
        &out12,
        &["--tls12"],
    );
    assert!(e12.status.success(), "{}", text(&e12));
    let (id13, id12) = (stdout_field(&e13, "KpsaID"), stdout_field(&e12, "KpsaID"));
    assert_ne!(id13, id12);
    assert!(id13.ends_with("@id-in.secure-cse.example"), "{id13}");
    assert_eq!(stdout_field(&e13, "target"), "/id-in");
    let key13 = std::fs::read_to_string(out13.join("kpsa.hex")).expect("key");
    assert_eq!(key13.trim().len(), 64);
    assert_ne!(
        key13,
        std::fs::read_to_string(out12.join("kpsa.hex")).expect("key")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out13.join("kpsa.hex"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The answer never carries the key.
    assert!(!String::from_utf8_lossy(&e13.stdout).contains(key13.trim()));
    assert_eq!(provisioned(&server), 2);

    // Register over the normal PSK listener with the derived keys, and use the AE.
    for (out, rn) in [(&out13, "sensor13"), (&out12, "sensor12")] {
        let reg = register(&server, out, rn);
        assert!(reg.status.success(), "{}", text(&reg));
        let ae: serde_json::Value = serde_json::from_slice(&reg.stdout).expect("json");
        let aei = ae["m2m:ae"]["aei"].as_str().expect("aei").to_owned();
        let id = std::fs::read_to_string(out.join("kpsa-id")).expect("id");
        let cnt = m2m(&[
            "--url",
            server.urls[1].as_str(),
            "--psk-identity",
            id.trim(),
            "--psk-key-file",
            out.join("kpsa.hex").to_str().expect("utf8"),
            "--origin",
            &aei,
            "create",
            &format!("cse-in/{rn}"),
            "--ty",
            "3",
            "--body",
            r#"{"m2m:cnt": {"rn": "temperature"}}"#,
        ]);
        assert!(cnt.status.success(), "{}", text(&cnt));
    }

    // The enrolee key itself opens no oneM2M association: its association serves the MEF only.
    let as_enrolee = m2m(&[
        "--url",
        server.urls[2].as_str(),
        "--psk-identity",
        KPM_ID,
        "--psk-key-file",
        setup.path("kpm.hex").to_str().expect("utf8"),
        "retrieve",
        "cse-in",
    ]);
    assert_eq!(as_enrolee.status.code(), Some(1), "{}", text(&as_enrolee));
    assert!(
        String::from_utf8_lossy(&as_enrolee.stderr).contains("4005"),
        "{}",
        text(&as_enrolee)
    );

    // The audit trail has the enrolments and the issued credentials.
    let audit = std::fs::read_to_string(server.data.join("audit.log")).expect("audit log");
    assert_eq!(audit.matches("\"enrolled\"").count(), 2, "{audit}");
    assert!(audit.contains(&format!("12-{id13}")), "{audit}");
    assert!(audit.contains(&stdout_field(&e13, "KeID")), "{audit}");
}

#[test]
fn wrong_or_expired_enrolee_keys_are_refused_in_the_handshake() {
    let setup = Setup::new(3600);
    let server = setup.start();
    let wrong = enrol(
        &server,
        &setup.path("wrong.hex"),
        KPM_ID,
        &setup.path("w"),
        &[],
    );
    assert_eq!(wrong.status.code(), Some(3), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("handshake failed"));
    let expired = enrol(
        &server,
        &setup.path("kpm.hex"),
        OLD_ID,
        &setup.path("o"),
        &[],
    );
    assert_eq!(expired.status.code(), Some(3), "{}", text(&expired));
    let unknown = enrol(
        &server,
        &setup.path("kpm.hex"),
        "who@mef.example",
        &setup.path("u"),
        &[],
    );
    assert_eq!(unknown.status.code(), Some(3), "{}", text(&unknown));
    assert_eq!(provisioned(&server), 0);
    assert!(!setup.path("w").join("kpsa.hex").exists());
    let log = server.log_with("expired at 2000-01-01T00:00:00Z");
    assert!(log.contains("expired at 2000-01-01T00:00:00Z"), "{log}");
}

fn session(server: &Server) -> EnrolmentSession {
    EnrolmentClient::new(
        &server.urls[2],
        KPM_ID,
        Zeroizing::new(hex::decode(KPM).expect("hex")),
        false,
        Duration::from_secs(10),
    )
    .expect("client")
    .connect()
    .expect("MEF handshake")
}

/// A TLS 1.3 PSK association with the MEF under the enrolee key, as bytes: for the one
/// exchange no client sends (a body that stops short of its `Content-Length`).
fn raw_enrolment_association(server: &Server) -> openssl::ssl::SslStream<std::net::TcpStream> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("OpenSSL");
    b.set_min_proto_version(Some(SslVersion::TLS1_3))
        .expect("TLS 1.3");
    b.set_ciphersuites("TLS_AES_128_GCM_SHA256").expect("suite");
    b.set_verify_callback(SslVerifyMode::PEER, |_, _| false);
    let key = hex::decode(KPM).expect("hex");
    b.set_psk_client_callback(move |_, _, identity, out| {
        identity[..KPM_ID.len()].copy_from_slice(KPM_ID.as_bytes());
        identity[KPM_ID.len()] = 0;
        out[..key.len()].copy_from_slice(&key);
        Ok(key.len())
    });
    let addr = server.urls[2].trim_start_matches("https://");
    let tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let config = b
        .build()
        .configure()
        .expect("configure")
        .verify_hostname(false);
    config.connect("mef", tcp).expect("MEF handshake")
}

#[test]
fn replayed_or_truncated_exchanges_are_refused_and_store_nothing() {
    let setup = Setup::new(3600);
    let server = setup.start();
    let request = r#"{"m2m:enrolReq": {"suid": 22}}"#;

    // A second request on the same association: 4005, and only the first key exists.
    let mut s = session(&server);
    assert_eq!(s.post(request).expect("answer").rsc(), Some(2001));
    let again = s.post(request).expect("answer");
    assert_eq!(
        (again.status(), again.rsc()),
        (405, Some(4005)),
        "{again:?}"
    );
    assert_eq!(provisioned(&server), 1);

    // A body cut short (complete HTTP, incomplete JSON): 4000; the association is spent.
    let mut s = session(&server);
    let answer = s.post(&request[..request.len() - 3]).expect("answer");
    assert_eq!(
        (answer.status(), answer.rsc()),
        (400, Some(4000)),
        "{answer:?}"
    );
    assert_eq!(s.post(request).expect("answer").rsc(), Some(4005));
    assert_eq!(provisioned(&server), 1);

    // A body that never arrives in full (the enrolee stops sending): no key. No client
    // sends this on purpose, so the test writes the bytes itself.
    let mut tls = raw_enrolment_association(&server);
    write!(
        tls,
        "POST /.mef/enrol HTTP/1.1\r\nHost: x\r\nX-M2M-RI: cut\r\nX-M2M-RVI: 3\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        request.len(),
        &request[..request.len() - 10]
    )
    .expect("send");
    let _ = tls.shutdown();
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(!answer.contains("X-M2M-RSC: 2001"), "{answer}");
    // Another SUID and another target: 4000, nothing stored.
    for body in [
        r#"{"m2m:enrolReq": {"suid": 21}}"#,
        r#"{"m2m:enrolReq": {"suid": 22, "target": "/id-other"}}"#,
        r#"{"m2m:enrolReq": {"suid": 22, "extra": 1}}"#,
    ] {
        let mut s = session(&server);
        assert_eq!(s.post(body).expect("answer").rsc(), Some(4000), "{body}");
    }
    // An indication this MEF does not support: 5001.
    let mut s = session(&server);
    let answer = s.post(r#"{"m2m:enrolReq": {"suid": 22, "certificateEnrolment": true}}"#);
    assert_eq!(answer.expect("answer").rsc(), Some(5001));
    assert_eq!(provisioned(&server), 1);

    // Over plain HTTP there is no enrolment association: 4107.
    let mut tcp = std::net::TcpStream::connect(&server.addr).expect("connect");
    write!(
        tcp,
        "POST /.mef/enrol HTTP/1.1\r\nHost: x\r\nX-M2M-RI: p1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{request}",
        request.len()
    )
    .expect("send");
    let mut plain = String::new();
    tcp.read_to_string(&mut plain).expect("read");
    assert!(plain.contains("X-M2M-RSC: 4107"), "{plain}");
    assert_eq!(provisioned(&server), 1);
}

#[test]
fn an_expired_enrolled_key_is_refused_in_the_handshake() {
    // In process, on a clock the test moves: the key expires when the test says, not after
    // a wait, however slow the machine.
    let setup = Setup::new(3600);
    let clock = ManualClock::new();
    let server = setup.start_at(&clock);
    let out = setup.path("dev");
    let e = enrol(&server, &setup.path("kpm.hex"), KPM_ID, &out, &[]);
    assert!(e.status.success(), "{}", text(&e));
    // Still valid: the lifetime (an hour) has not passed on the CSE's clock.
    let reg = register(&server, &out, "early");
    assert!(reg.status.success(), "{}", text(&reg));
    // The expiry the MEF stored is the CSE's clock plus the lifetime.
    let journal =
        std::fs::read_to_string(server.data.join("provisioned-psk.jsonl")).expect("journal");
    let line: serde_json::Value = serde_json::from_str(journal.trim()).expect("one line");
    let expires = line["expires"].as_u64().expect("expires");
    assert!(expires >= clock.clock().unix() + 3500, "{line}");
    clock.advance(Duration::from_secs(3601));
    let reg = register(&server, &out, "late");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));
    let log = server.log_with("expired at");
    assert!(log.contains("expired at"), "{log}");
}

#[test]
fn the_enrolled_key_survives_kill_9_after_the_answer() {
    let setup = Setup::new(3600);
    let mut server = setup.start();
    let out = setup.path("dev");
    let e = enrol(&server, &setup.path("kpm.hex"), KPM_ID, &out, &[]);
    assert!(e.status.success(), "{}", text(&e));
    // The CSE keeps the enrolled key sealed: its journal never holds it.
    let kpsa = std::fs::read_to_string(out.join("kpsa.hex")).expect("kpsa.hex");
    let journal = std::fs::read(server.data.join("provisioned-psk.jsonl")).expect("journal");
    let journal_text = String::from_utf8_lossy(&journal).to_ascii_lowercase();
    assert!(
        !journal_text.contains(&kpsa.trim().to_ascii_lowercase()),
        "{journal_text}"
    );
    let raw = hex::decode(kpsa.trim()).expect("hex");
    assert!(!journal.windows(raw.len()).any(|w| w == raw.as_slice()));
    server.kill9();
    let server = setup.start();
    assert_eq!(provisioned(&server), 1);
    let reg = register(&server, &out, "after-restart");
    assert!(reg.status.success(), "{}", text(&reg));
}

/// Withdrawing the enrolment itself: a revoked enrolee key (`10-<KpmID>`) gets no new
/// enrolment, at once; the keys it already bought stay until revoked on their own.
#[test]
fn a_revoked_enrolee_key_cannot_enrol_again() {
    let setup = Setup::new(3600);
    let server = setup.start();
    let first = setup.path("first");
    let e = enrol(&server, &setup.path("kpm.hex"), KPM_ID, &first, &[]);
    assert!(e.status.success(), "{}", text(&e));
    let revoked = m2m(&[
        "--url",
        server.urls[1].as_str(),
        "--psk-identity",
        ADMIN_ID,
        "--psk-key-file",
        setup.path("admin.hex").to_str().expect("utf8"),
        "credentials",
        "revoke",
        &format!("10-{KPM_ID}"),
        "--reason",
        "device returned",
    ]);
    assert!(revoked.status.success(), "{}", text(&revoked));
    let again = enrol(
        &server,
        &setup.path("kpm.hex"),
        KPM_ID,
        &setup.path("again"),
        &[],
    );
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(!setup.path("again").join("kpsa.hex").exists());
    assert_eq!(provisioned(&server), 1);
    // The key bought before the revocation still works until it is revoked itself.
    let reg = register(&server, &first, "still");
    assert!(reg.status.success(), "{}", text(&reg));
}

/// Issue 9, design choice: with `withdraw_enrolled`, revoking an enrolee key withdraws the
/// keys it enrolled (their next handshake is refused) and the audit log names each of them;
/// a suspension of it is lifted for them by resuming it.
#[test]
fn withdrawing_an_enrolee_key_withdraws_what_it_enrolled() {
    let setup = Setup::with_enrolment(3600, "withdraw_enrolled = true\n");
    let server = setup.start();
    let first = setup.path("first");
    let e = enrol(&server, &setup.path("kpm.hex"), KPM_ID, &first, &[]);
    assert!(e.status.success(), "{}", text(&e));
    let kpsa = format!("12-{}", stdout_field(&e, "KpsaID"));
    let reg = register(&server, &first, "before");
    assert!(reg.status.success(), "{}", text(&reg));
    let admin = |args: &[&str]| {
        let mut all = vec![
            "--url",
            server.urls[1].as_str(),
            "--psk-identity",
            ADMIN_ID,
            "--psk-key-file",
        ];
        let key = setup.path("admin.hex");
        let key = key.to_str().expect("utf8").to_owned();
        all.push(&key);
        all.extend_from_slice(args);
        let out = m2m(&all);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let kpm = format!("10-{KPM_ID}");
    let suspended = admin(&["credentials", "suspend", &kpm, "--reason", "audit"]);
    assert!(
        suspended.contains(&kpsa),
        "the enrolled key is named: {suspended}"
    );
    let refused = register(&server, &first, "while-suspended");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "no answer: {}",
        text(&refused)
    );
    admin(&["credentials", "resume", &kpm]);
    // Served again: the CSE answers (this credential already registered its AE).
    let back = register(&server, &first, "resumed");
    assert!(
        text(&back).contains("already registered"),
        "{}",
        text(&back)
    );

    let revoked = admin(&["credentials", "revoke", &kpm, "--reason", "key leaked"]);
    assert!(revoked.contains(&kpsa), "{revoked}");
    let refused = register(&server, &first, "after");
    assert_eq!(
        refused.status.code(),
        Some(3),
        "no answer: {}",
        text(&refused)
    );
    let log = server.log_with("unknown PSK identity");
    assert!(log.contains("security association refused"), "{log}");
    let audit = common::eventually(
        || std::fs::read_to_string(server.data.join("audit.log")).unwrap_or_default(),
        &[(&format!("with {kpm}: key leaked"), 1)],
    );
    assert!(
        audit.lines().any(|l| l.contains("\"kind\":\"revoked\"")
            && l.contains(&kpsa)
            && l.contains(&format!("with {kpm}: key leaked"))),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"kind\":\"suspended\"") && l.contains(&kpsa)),
        "{audit}"
    );
}
