//! A full data volume (issue 10, finding 1): the real `cse` binary with its data folder on a
//! small tmpfs, filled by a filler file and then by creates. Every create the full disk
//! refuses gets 5207 (nothing written); a PSK revoked on the full disk is refused at once
//! (`openssl s_client -psk`) and its revocation reaches the journal through the space the
//! journal keeps reserved; once space is freed creates succeed again without a restart, the
//! audit entry of the revocation is written, and after `kill -9` and a restart the PSK is
//! still refused and every acknowledged create is there. (The audit log, whose own
//! behaviour on a full disk its tests cover, is kept off the volume: how much room its last
//! page has left would otherwise decide the outcome.)
//!
//! When even the journal's reserve cannot be had, a withdrawal is still in force: the admin
//! gets 1000 ACCEPTED with `"persisted": false`, and the line is written by itself once
//! space returns (the second test, an in-process CSE whose journal is on a full volume).
//!
//! Needs root (to mount the tmpfs) and openssl; skipped otherwise, unless
//! `SECURE_CSE_REQUIRE_SERVICES` is set.
use crate::common;

use common::*;
use model::{Operation, ResourceType, Response, ResponseStatusCode as R};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

const IDENTITY: &str = "sensor-1@secure-cse.example";
const CREDENTIAL: &str = "12-sensor-1@secure-cse.example";

/// Skips (with the reason printed) unless this runs as root with openssl installed; with
/// `SECURE_CSE_REQUIRE_SERVICES` set, fails instead.
fn can_run() -> bool {
    skip_unless(running_as_root(), "root (mounting a tmpfs needs it)").is_none() && have_openssl()
}

/// Whether the tests run as root (mounting a [`Tmpfs`] needs it).
pub(crate) fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted on every path out of the test.
pub(crate) struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    pub(crate) fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Still busy (a process that has not exited yet): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes zeros into `path` until the volume is full.
pub(crate) fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
            break;
        }
    }
    // Whatever part of a block still fitted.
    let _ = file.write_all(&[0u8; 512]);
}

async fn create_instance(c: &client::Client, ae: &str, rn: &str) -> Response {
    let con = "x".repeat(512);
    request(
        c,
        Operation::Create,
        ae,
        "cse-in/meter/readings",
        Some(ResourceType::ContentInstance),
        Some(json!({"m2m:cin": {"rn": rn, "con": con}})),
    )
    .await
}

/// What a request over the sensor's PSK gets (nothing when the handshake is refused).
fn over_psk(port: &str, key: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-quiet", "-ign_eof"])
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(["-psk", key, "-psk_identity", IDENTITY])
        .args(["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client");
    let request = "GET /cse-in HTTP/1.1\r\nHost: localhost\r\nX-M2M-Origin: C\r\nX-M2M-RI: r1\r\nX-M2M-RVI: 3\r\nConnection: close\r\n\r\n";
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request.as_bytes());
    }
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the request over the PSK was answered at all (the handshake was accepted).
fn answered(out: &str) -> bool {
    out.starts_with("HTTP/1.1 ")
}

/// The JSON content `m2m` printed (it prints the status on standard error).
fn json_of(text: &str) -> serde_json::Value {
    let start = text.find('{').unwrap_or(0);
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no JSON in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_precisely_and_never_stops_a_revocation() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let audit_path = dir.path().join("audit.log");
    let config_path = test_config(
        &pki,
        &format!("\n[audit]\nfile = \"{}\"\n", audit_path.display()),
    );
    let key = std::fs::read_to_string(pki.join("sensor-1.psk"))
        .expect("psk")
        .trim()
        .to_owned();

    // Declared before the servers: dropped (unmounted) after they are killed.
    let volume = Tmpfs::mount(&dir.path().join("volume"), "4m");
    let data = volume.dir.join("data");
    let log = dir.path().join("cse.log");
    let args = ["--config", config_path.to_str().expect("utf8")];
    let mut server = Server::start_logged(&data, &log, &args, 2);
    let port = server.urls[1]
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let m2m_admin = |url: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(["--url", url, "--psk-identity", "admin@secure-cse.example"])
            .arg("--psk-key-file")
            .arg(pki.join("admin.psk"))
            .args(args)
            .output()
            .expect("m2m");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };

    let c = server.client();
    let r = request(
        &c,
        Operation::Create,
        "C",
        "cse-in",
        Some(ResourceType::Ae),
        Some(json!({"m2m:ae": {"rn": "meter", "api": "Nmeter", "rr": false, "srv": ["3"]}})),
    )
    .await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    let ae =
        r.pc.as_ref()
            .and_then(|p| p["m2m:ae"]["aei"].as_str())
            .expect("aei")
            .to_owned();
    let r = request(
        &c,
        Operation::Create,
        &ae,
        "cse-in/meter",
        Some(ResourceType::Container),
        Some(json!({"m2m:cnt": {"rn": "readings"}})),
    )
    .await;
    assert_eq!(r.rsc, R::Created);
    let before = over_psk(&port, &key);
    assert!(answered(&before), "the sensor's PSK works before: {before}");

    // Fill the volume, then create until the store runs out of room too.
    fill(&volume.dir.join("filler"));
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..20_000 {
        let rn = format!("r{i}");
        let r = create_instance(&c, &ae, &rn).await;
        if r.rsc == R::Created {
            acknowledged.push(rn);
        } else {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("the full disk refused a create");
    eprintln!(
        "{} creates acknowledged after the filler, then refused",
        acknowledged.len()
    );
    assert_eq!(refused.rsc, R::NotAcceptable, "{:?}", refused.pc);
    let debug = refused
        .pc
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    assert!(debug.contains("storage is full"), "{debug}");
    // The same over HTTP: X-M2M-RSC 5207, HTTP status from TS-0009's table.
    if have_curl() {
        let url = format!("{}/cse-in/meter/readings", server.url());
        let origin = format!("X-M2M-Origin: {ae}");
        let head = curl(&[
            "-X",
            "POST",
            &url,
            "-H",
            &origin,
            "-H",
            "X-M2M-RI: full",
            "-H",
            "X-M2M-RVI: 3",
            "-H",
            "Content-Type: application/json;ty=4",
            "-d",
            r#"{"m2m:cin":{"con":"y"}}"#,
        ]);
        assert!(head.starts_with("HTTP/1.1 406"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("x-m2m-rsc: 5207"),
            "{head}"
        );
    }
    eventually(|| server.log(), &[("store: the disk is full", 1)]);

    // The admin revokes the sensor's PSK on the full disk: refused at once, and persisted
    // through the journal's reserved space.
    let out = m2m_admin(
        &server.urls[1],
        &["credentials", "revoke", CREDENTIAL, "--reason", "stolen"],
    );
    eprintln!("revoke on the full disk: {out}");
    let answer = json_of(&out);
    assert_eq!(answer["status"], "revoked", "{out}");
    assert_eq!(answer["persisted"], true, "{out}");
    assert_eq!(answer["audited"], true, "{out}");
    assert!(out.contains("2000 OK"), "{out}");
    let after = over_psk(&port, &key);
    assert!(
        !answered(&after),
        "the revoked PSK is refused at once: {after}"
    );
    let journal = std::fs::read_to_string(data.join("revocations.jsonl")).expect("journal");
    assert!(journal.contains(CREDENTIAL), "{journal}");
    assert_eq!(
        create_instance(&c, &ae, "still-full").await.rsc,
        R::NotAcceptable
    );

    // Space returns: creates succeed again without a restart.
    std::fs::remove_file(volume.dir.join("filler")).expect("free the space");
    let r = create_instance(&c, &ae, "after").await;
    assert_eq!(r.rsc, R::Created, "{:?}", r.pc);
    acknowledged.push("after".to_owned());
    let audit = eventually(
        || std::fs::read_to_string(&audit_path).unwrap_or_default(),
        &[("\"kind\":\"revoked\"", 1)],
    );
    assert!(audit.contains(CREDENTIAL), "{audit}");
    eventually(|| server.log(), &[("space is available again", 1)]);

    // kill -9 and restart: the PSK stays refused, nothing acknowledged is lost.
    server.kill9();
    let server = Server::start_logged(&data, &log, &args, 2);
    let port = server.urls[1]
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let restarted = over_psk(&port, &key);
    assert!(
        !answered(&restarted),
        "still refused after a restart: {restarted}"
    );
    let c = server.client();
    for rn in &acknowledged {
        let r = request(
            &c,
            Operation::Retrieve,
            &ae,
            &format!("cse-in/meter/readings/{rn}"),
            None,
            None,
        )
        .await;
        assert_eq!(r.rsc, R::Ok, "acknowledged {rn} lost");
    }
    drop(server);
    drop(volume);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_the_full_disk_cannot_take_is_in_force_and_persists_when_space_returns() {
    use security::revocation::{Revocations, WithdrawalKind};
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let volume = Tmpfs::mount(&dir.path().join("volume"), "1m");
    // Full before the journal is opened: not even its reserve can be had.
    fill(&volume.dir.join("filler"));
    let journal = volume.dir.join("revocations.jsonl");
    let revocations = Arc::new(Revocations::open(&journal).expect("open on a full disk"));
    let store =
        store::SqliteStore::open(&dir.path().join("data"), Default::default()).expect("store");
    let services = cse::Services {
        revocations: revocations.clone(),
        ..Default::default()
    };
    let cse = cse::Cse::open_with(cse::CseConfig::default(), Arc::new(store), services)
        .await
        .expect("cse");

    let done = cse
        .withdraw(
            "CAdmin",
            cse::security_manager::withdrawal::Withdraw::Revoke,
            CREDENTIAL,
            "stolen",
        )
        .await
        .expect("in force");
    assert_eq!(done.rsc, R::Accepted, "{}", done.content);
    assert_eq!(done.content["status"], "revoked");
    assert_eq!(done.content["persisted"], false);
    let warning = done.content["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("in force") && warning.contains("revocation journal"),
        "{warning}"
    );
    // Refused from now on, although nothing is on disk yet.
    assert_eq!(
        revocations.effective(CREDENTIAL).map(|w| w.kind),
        Some(WithdrawalKind::Revoked)
    );
    assert_eq!(std::fs::metadata(&journal).expect("journal").len(), 0);
    assert_eq!(revocations.pending(), 1);

    // Space returns: the CSE writes the line by itself.
    std::fs::remove_file(volume.dir.join("filler")).expect("free the space");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while revocations.pending() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(revocations.pending(), 0, "persisted once space returned");
    let replayed = Revocations::open(&journal).expect("replay");
    assert_eq!(
        replayed.status(CREDENTIAL).map(|w| w.kind),
        Some(WithdrawalKind::Revoked)
    );
    drop(replayed);
    drop(cse);
    drop(revocations);
    drop(volume);
}
