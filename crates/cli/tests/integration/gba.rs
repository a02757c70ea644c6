//! Network-provided keys (issue 5, trust scenario 1; TS-0003 clause 8.3.2.3), end to end with
//! the real `cse` binary, the BSF stand-in `scripts/bsf.py` and `m2m gba bootstrap` as the
//! device: the device bootstraps with the BSF, derives Ks_NAF for the CSE, and registers over
//! TLS-PSK with its B-TID as the identity; the CSE got the same key from the BSF. Refusals:
//! an unknown B-TID, an expired one, a BSF that does not answer (fail closed), a wrong device
//! key (at the BSF and at the CSE), a NAF the subscriber's settings do not allow.
//!
//! Edge nodes behind a gateway (`[gba] edge_nodes`): the gateway bootstraps, `m2m gba extend`
//! derives a node's key, the node registers with `<node>.<B-TID>` (m2m and openssl); a wrong
//! key, a malformed identity and the option turned off are refused; revoking one node
//! affects it alone, revoking the gateway cuts off its nodes, live associations included.

use crate::common;

use common::{eventually, have_openssl, have_python3, m2m, text, write_private, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const DOMAIN: &str = "bsf.secure-cse.example";
const NAF: &str = "id-in.secure-cse.example";
const IMPI: &str = "sensor-gba@ims.secure-cse.example";
const K: &str = "2b7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";
const WRONG_K: &str = "ff7e151628aed2a6abf7158809cf4f3c2b7e151628aed2a6abf7158809cf4f3c";
const ELSEWHERE: &str = "roamer@ims.secure-cse.example";
const ADMIN_ID: &str = "admin@secure-cse.example";
const ADMIN_KEY: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

/// `scripts/bsf.py` on an ephemeral port, with test controls; killed (by its PID) on drop.
struct Bsf {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Bsf {
    fn start(dir: &Path) -> Self {
        let subscribers = dir.join("subscribers.toml");
        write_private(
            &subscribers,
            &format!(
                "[[subscriber]]\nimpi = \"{IMPI}\"\nkey_hex = \"{K}\"\nnafs = [\"{NAF}\"]\nlifetime_secs = 3600\n\n\
                 [[subscriber]]\nimpi = \"{ELSEWHERE}\"\nkey_hex = \"{K}\"\nnafs = [\"id-in.other-sp.example\"]\n"
            ),
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bsf.py");
        let log = dir.join("bsf.log");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--subscribers", subscribers.to_str().expect("utf8")])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--domain",
                DOMAIN,
                "--test-controls",
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("bsf log"))
            .spawn()
            .expect("start bsf.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("bsf.py said {line:?}"))
            .to_owned();
        Self { child, url, log }
    }

    /// The BSF's own event log (one JSON object a line).
    fn events(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn control(&self, path: &str, body: &str) {
        let client = client::Client::new(&self.url).expect("url");
        let content = ("application/json", body.as_bytes().to_vec());
        let req = client
            .http_request(http::Method::POST, path, Some(content))
            .expect("request");
        let answer = client::Blocking::new("bsf-control")
            .run(async move { client.request(req).await })
            .expect("control");
        assert_eq!(answer.status(), 200, "{path}");
    }
}

impl Drop for Bsf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CSE with a PSK listener and `[gba]` pointing at `bsf_url`.
fn start_cse(dir: &Path, name: &str, bsf_url: &str) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[cse]\nsp_id = \"secure-cse.example\"\n\n\
             [[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n\n\
             [gba]\nbsf_url = \"{bsf_url}\"\nbtid_domain = \"{DOMAIN}\"\ntimeout_ms = 5000\n\n\
             [audit]\nrefusal_window_secs = 1\n"
        ),
    )
    .expect("config");
    Server::start_listeners(
        &dir.join(format!("{name}-data")),
        &["--config", config.to_str().expect("utf8")],
        2,
    )
}

/// A CSE with a PSK listener, an admin PSK (`admin.hex` in `dir`) and `[gba]` with
/// `edge_nodes` as given.
fn start_edge_cse(dir: &Path, name: &str, bsf_url: &str, edge_nodes: bool) -> Server {
    let credentials = dir.join(format!("{name}-credentials.toml"));
    write_private(
        &credentials,
        &format!(
            "[[psk]]\nidentity = \"{ADMIN_ID}\"\nkey_hex = \"{ADMIN_KEY}\"\nae = \"CAdmin\"\nadmin = true\n"
        ),
    );
    write_private(&dir.join("admin.hex"), &format!("{ADMIN_KEY}\n"));
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[cse]\nsp_id = \"secure-cse.example\"\n\n\
             [security]\ncredentials = \"{}\"\n\n\
             [[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"psk\"]\n\n\
             [gba]\nbsf_url = \"{bsf_url}\"\nbtid_domain = \"{DOMAIN}\"\ntimeout_ms = 5000\n\
             edge_nodes = {edge_nodes}\n",
            credentials.display()
        ),
    )
    .expect("config");
    Server::start_listeners(
        &dir.join(format!("{name}-data")),
        &["--config", config.to_str().expect("utf8")],
        2,
    )
}

/// `m2m gba bootstrap` as the device with key file `key`, into `out`.
fn bootstrap(bsf: &Bsf, impi: &str, key: &Path, out: &Path) -> Output {
    m2m(&[
        "gba",
        "bootstrap",
        "--bsf",
        &bsf.url,
        "--impi",
        impi,
        "--device-key-file",
        key.to_str().expect("utf8"),
        "--naf-fqdn",
        NAF,
        "--out",
        out.to_str().expect("utf8"),
    ])
}

fn btid_of(out: &Path) -> String {
    std::fs::read_to_string(out.join("kpsa-id"))
        .expect("kpsa-id")
        .trim()
        .to_owned()
}

/// `m2m register` over the PSK listener with the B-TID and the derived key in `out`.
fn register(server: &Server, out: &Path, rn: &str) -> Output {
    m2m(&[
        "--url",
        server.urls[1].as_str(),
        "--psk-identity",
        &btid_of(out),
        "--psk-key-file",
        out.join("kpsa.hex").to_str().expect("utf8"),
        "register",
        "--api",
        "Nsensor",
        "--rn",
        rn,
    ])
}

/// One HTTP request over TLS 1.2 with the mandatory PSK suite, with `openssl s_client`.
fn s_client(server: &Server, identity: &str, key_hex: &str, origin: &str) -> String {
    let addr = server.urls[1].trim_start_matches("https://");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-tls1_2", "-cipher"])
        .args([
            "PSK-AES128-CBC-SHA256",
            "-psk",
            key_hex,
            "-psk_identity",
            identity,
        ])
        .args(["-quiet", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let request = format!(
        "GET /cse-in HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: {origin}\r\nX-M2M-RI: r1\r\n\
         X-M2M-RVI: 3\r\nConnection: close\r\n\r\n"
    );
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes());
    let out = child.wait_with_output().expect("s_client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The CSE's audit log once it holds every needle (bounded wait).
fn audit_with(server: &Server, needles: &[&str]) -> String {
    let path = server.data.join("audit.log");
    let needles: Vec<_> = needles.iter().map(|n| (*n, 1)).collect();
    eventually(
        || std::fs::read_to_string(&path).unwrap_or_default(),
        &needles,
    )
}

/// The CSE's operational log once it holds every needle (bounded wait).
fn log_with(server: &Server, needles: &[(&str, usize)]) -> String {
    eventually(|| server.log(), needles)
}

fn aei(out: &Output) -> String {
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    body["m2m:ae"]["aei"].as_str().expect("aei").to_owned()
}

#[test]
fn bootstrap_then_register_over_the_btid_with_the_bsfs_key() {
    if !(have_python3() && have_openssl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_private(&dir.path().join("k.hex"), &format!("{K}\n"));
    let bsf = Bsf::start(dir.path());
    let server = start_cse(dir.path(), "cse", &bsf.url);

    let device = dir.path().join("device");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &device);
    assert!(out.status.success(), "{}", text(&out));
    let btid = btid_of(&device);
    assert!(btid.ends_with(&format!("@{DOMAIN}")), "{btid}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("B-TID    {btid}")));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(device.join("kpsa.hex"))
            .expect("key file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // TLS 1.3 with the m2m client: the CSE asks the BSF, derives the same key, and binds the
    // association; the CSE assigns the AE-ID.
    let reg = register(&server, &device, "gbasensor");
    assert!(reg.status.success(), "{}", text(&reg));
    let ae = aei(&reg);
    assert!(ae.starts_with('C'), "{ae}");

    // TLS 1.2 with the mandatory suite, with openssl: the key comes from the cache now.
    let key = std::fs::read_to_string(device.join("kpsa.hex")).expect("key");
    let answer = s_client(&server, &btid, key.trim(), &ae);
    assert!(answer.contains("X-M2M-RSC: 2000"), "{answer}");
    assert_eq!(
        bsf.events().matches("\"naf-key\"").count(),
        1,
        "one Zn query, then the cache: {}",
        bsf.events()
    );
    // Another originator over the same association is refused (the binding holds).
    let other = s_client(&server, &btid, key.trim(), "Csomeoneelse");
    assert!(other.contains("X-M2M-RSC: 4106"), "{other}");

    let credential = format!("12-{btid}");
    let audit = audit_with(&server, &["credential-issued", "association-opened"]);
    let issued = audit
        .lines()
        .find(|l| l.contains("credential-issued"))
        .unwrap_or_else(|| panic!("no credential-issued in {audit}"));
    assert!(issued.contains(&credential), "{issued}");
    assert!(
        issued.contains(&format!("\"parent\":\"{btid}\"")),
        "{issued}"
    );
    assert!(!issued.contains(key.trim()), "never the key: {issued}");
    let opened = audit
        .lines()
        .find(|l| l.contains("association-opened"))
        .expect("opened");
    assert!(opened.contains(&credential), "{opened}");
    // The CSE keeps GBA keys in memory only.
    assert!(
        std::fs::read_to_string(server.data.join("provisioned-psk.jsonl"))
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn refusals_unknown_expired_wrong_key_and_forbidden_naf() {
    if !(have_python3() && have_openssl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_private(&dir.path().join("k.hex"), &format!("{K}\n"));
    write_private(&dir.path().join("wrong.hex"), &format!("{WRONG_K}\n"));
    let bsf = Bsf::start(dir.path());
    let server = start_cse(dir.path(), "cse", &bsf.url);

    // A wrong device key: the BSF's AUTN does not verify, so the device stops (exit 1) and
    // writes nothing.
    let wrong = dir.path().join("wrong");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("wrong.hex"), &wrong);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("network authentication"),
        "{}",
        text(&out)
    );
    assert!(!wrong.join("kpsa.hex").exists());
    assert!(
        !bsf.events().contains("\"bootstrapped\""),
        "{}",
        bsf.events()
    );

    // An unknown B-TID: the handshake fails, with the alert a wrong key gets (a decoy key).
    let device = dir.path().join("device");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &device);
    assert!(out.status.success(), "{}", text(&out));
    let key = std::fs::read_to_string(device.join("kpsa.hex")).expect("key");
    let unknown = format!("AAAAAAAAAAAAAAAAAAAAAA==@{DOMAIN}");
    let answer = s_client(&server, &unknown, key.trim(), "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    assert!(!answer.contains("unknown psk identity"), "{answer}");
    assert!(answer.contains("alert bad record mac"), "{answer}");

    // The device's B-TID with a key it does not hold (a wrong device key at the CSE). The CSE
    // fetches the key to check the handshake, so that key is cached (and audited as received).
    let btid = btid_of(&device);
    let forged = format!("00{}", &key.trim()[2..]);
    let answer = s_client(&server, &btid, &forged, "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    assert!(answer.contains("alert bad record mac"), "{answer}");

    // A subscriber whose settings do not allow this NAF: the BSF says no (403).
    write_private(&dir.path().join("k2.hex"), &format!("{K}\n"));
    let roamer = dir.path().join("roamer");
    let out = bootstrap(&bsf, ELSEWHERE, &dir.path().join("k2.hex"), &roamer);
    assert!(out.status.success(), "{}", text(&out));
    let reg = register(&server, &roamer, "roamer");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));

    // An expired B-TID: a new bootstrap, whose lifetime the BSF ends before the CSE asks.
    let late = dir.path().join("late");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &late);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(btid_of(&late), btid);
    bsf.control(
        "/test/expire",
        &serde_json::json!({ "btid": btid_of(&late) }).to_string(),
    );
    let reg = register(&server, &late, "late");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));

    let log = log_with(
        &server,
        &[
            ("unknown PSK identity", 1),
            ("wrong key for PSK identity", 1),
            ("the BSF refuses this NAF", 1),
            ("the BSF says the B-TID has expired", 1),
        ],
    );
    assert!(log.contains("unknown PSK identity"), "{log}");
    assert!(log.contains("wrong key for PSK identity"), "{log}");
    assert!(log.contains("the BSF refuses this NAF"), "{log}");
    assert!(log.contains("the BSF says the B-TID has expired"), "{log}");
    let audit = audit_with(&server, &["refuses this NAF", "has expired"]);
    assert!(audit.contains("refuses this NAF"), "{audit}");
    assert!(audit.contains("has expired"), "{audit}");
    // No association was opened; the only key the CSE holds is the one fetched for the
    // forged handshake, and none of the refused B-TIDs got one.
    assert!(!audit.contains("association-opened"), "{audit}");
    assert_eq!(audit.matches("credential-issued").count(), 1, "{audit}");
    assert!(
        !audit.contains(&format!("12-{}", btid_of(&late))),
        "{audit}"
    );
    assert!(!audit.contains(&format!("12-{unknown}")), "{audit}");
}

#[test]
fn a_bsf_that_does_not_answer_fails_closed_and_nothing_is_cached() {
    if !(have_python3() && have_openssl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_private(&dir.path().join("k.hex"), &format!("{K}\n"));
    let bsf = Bsf::start(dir.path());
    let server = start_cse(dir.path(), "cse", &bsf.url);
    let device = dir.path().join("device");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &device);
    assert!(out.status.success(), "{}", text(&out));

    // The BSF closes Zn connections without an answer: refused, with that reason.
    bsf.control("/test/zn", "{\"available\": false}");
    let reg = register(&server, &device, "s1");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));
    let log = log_with(&server, &[("the BSF did not answer", 1)]);
    assert!(log.contains("the BSF did not answer"), "{log}");
    // Back: the same B-TID works, so the failure left nothing behind (no key, no refusal).
    bsf.control("/test/zn", "{\"available\": true}");
    let reg = register(&server, &device, "s1");
    assert!(reg.status.success(), "{}", text(&reg));

    // A CSE whose BSF is not there at all (a closed port): refused, and no key is cached,
    // so the next handshake asks (and fails) again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let lonely = start_cse(dir.path(), "lonely", &format!("http://127.0.0.1:{port}"));
    for rn in ["x1", "x2"] {
        let reg = register(&lonely, &device, rn);
        assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));
    }
    // The log writes the first refusal and counts the same refusal again from the same
    // source: one line, then one line with the count when the (1 s) window ends.
    let log = log_with(&lonely, &[("security associations refused", 1)]);
    let counted = log
        .lines()
        .find(|l| l.contains("security associations refused"))
        .unwrap_or_default();
    assert!(
        counted.contains("the BSF did not answer") && counted.contains("count=2"),
        "both handshakes asked the BSF: {log}"
    );
    assert!(!log.contains("NAF key fetched"), "{log}");
}

/// `m2m gba extend` from the gateway folder `gateway` for `node`, into `out`.
fn extend(gateway: &Path, node: &str, out: &Path) -> Output {
    m2m(&[
        "gba",
        "extend",
        "--gateway",
        gateway.to_str().expect("utf8"),
        "--node",
        node,
        "--out",
        out.to_str().expect("utf8"),
    ])
}

/// `m2m credentials ...` as the admin.
fn admin(server: &Server, dir: &Path, args: &[&str]) -> Output {
    let key = dir.join("admin.hex");
    let mut all = vec![
        "--url",
        server.urls[1].as_str(),
        "--psk-identity",
        ADMIN_ID,
        "--psk-key-file",
        key.to_str().expect("utf8"),
    ];
    all.extend_from_slice(args);
    m2m(&all)
}

fn key_of(out: &Path) -> String {
    std::fs::read_to_string(out.join("kpsa.hex"))
        .expect("kpsa.hex")
        .trim()
        .to_owned()
}

/// An association that stays open (TLS 1.3, openssl s_client) after one request; the
/// receiver gets everything read so far after each read, and a last text ending in "EOF".
fn live_s_client(
    server: &Server,
    identity: &str,
    key_hex: &str,
    origin: &str,
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let addr = server.urls[1].trim_start_matches("https://");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", addr, "-psk", key_hex])
        .args(["-psk_identity", identity, "-tls1_3"])
        .args(["-ciphersuites", "TLS_AES_128_GCM_SHA256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client");
    let request = format!(
        "GET /cse-in HTTP/1.1\r\nHost: cse\r\nX-M2M-Origin: {origin}\r\nX-M2M-RI: live\r\n\
         X-M2M-RVI: 3\r\n\r\n"
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(request.as_bytes()).expect("send");
    // Keep stdin open (the connection lives until the CSE closes it).
    std::mem::forget(stdin);
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut seen = String::new();
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                    let _ = tx.send(seen.clone());
                }
            }
        }
        let _ = tx.send(format!("{seen}\nEOF"));
    });
    (child, rx)
}

#[test]
fn a_gateway_extends_its_key_to_edge_nodes_and_takes_them_along_when_revoked() {
    if !(have_python3() && have_openssl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_private(&dir.path().join("k.hex"), &format!("{K}\n"));
    let bsf = Bsf::start(dir.path());
    let server = start_edge_cse(dir.path(), "cse", &bsf.url, true);

    // The gateway bootstraps and registers itself.
    let gateway = dir.path().join("gateway");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &gateway);
    assert!(out.status.success(), "{}", text(&out));
    let btid = btid_of(&gateway);
    let reg = register(&server, &gateway, "gateway");
    assert!(reg.status.success(), "{}", text(&reg));
    let gateway_ae = aei(&reg);

    // It extends its key to meter-7 (and meter-8): no network, a file of mode 600.
    let edge = dir.path().join("meter-7");
    let out = extend(&gateway, "meter-7", &edge);
    assert!(out.status.success(), "{}", text(&out));
    let identity = format!("meter-7.{btid}");
    assert_eq!(btid_of(&edge), identity);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("identity {identity}")),
        "{}",
        text(&out)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(edge.join("kpsa.hex"))
            .expect("key file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert_ne!(key_of(&edge), key_of(&gateway));
    let sibling = dir.path().join("meter-8");
    let out = extend(&gateway, "meter-8", &sibling);
    assert!(out.status.success(), "{}", text(&out));
    let out = extend(&gateway, "meter.7", &dir.path().join("bad"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // The edge node registers with the m2m client (TLS 1.3) and gets its own AE-ID.
    let reg = register(&server, &edge, "meter7");
    assert!(reg.status.success(), "{}", text(&reg));
    let edge_ae = aei(&reg);
    assert!(
        edge_ae.starts_with('C') && edge_ae != gateway_ae,
        "{edge_ae}"
    );
    let reg = register(&server, &sibling, "meter8");
    assert!(reg.status.success(), "{}", text(&reg));

    // openssl, TLS 1.2 with the mandatory suite: the same key.
    let answer = s_client(&server, &identity, &key_of(&edge), &edge_ae);
    assert!(answer.contains("X-M2M-RSC: 2000"), "{answer}");
    // The edge node cannot speak as its gateway.
    let answer = s_client(&server, &identity, &key_of(&edge), &gateway_ae);
    assert!(answer.contains("X-M2M-RSC: 4106"), "{answer}");
    // A wrong edge key, and the gateway's own key under the edge identity: refused.
    let forged = format!("00{}", &key_of(&edge)[2..]);
    let answer = s_client(&server, &identity, &forged, &edge_ae);
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    let answer = s_client(&server, &identity, &key_of(&gateway), &edge_ae);
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    // A malformed edge identity (an edge node behind an edge node): refused, with the reason.
    let answer = s_client(&server, &format!("x.{identity}"), &key_of(&edge), "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    assert_eq!(
        bsf.events().matches("\"naf-key\"").count(),
        1,
        "one Zn query for the gateway, then its cached key for every node: {}",
        bsf.events()
    );

    let edge_credential = format!("12-{identity}");
    let audit = audit_with(&server, &["credential-issued", &edge_credential]);
    let issued = audit
        .lines()
        .find(|l| l.contains("credential-issued") && l.contains(&edge_credential))
        .unwrap_or_else(|| panic!("no credential-issued for the edge node in {audit}"));
    assert!(
        issued.contains(&format!("\"parent\":\"{btid}\"")),
        "{issued}"
    );
    assert!(!issued.contains(&key_of(&edge)), "never the key: {issued}");
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("credential-issued") && l.contains(&edge_credential))
            .count(),
        1,
        "reported once per gateway key lifetime: {audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("association-opened") && l.contains(&edge_credential)),
        "{audit}"
    );
    let log = log_with(
        &server,
        &[
            ("wrong key for PSK identity", 2),
            ("malformed edge identity", 1),
        ],
    );
    assert!(log.contains("malformed edge identity"), "{log}");

    // Revoking one node: that node only.
    let sibling_credential = format!("12-{}", btid_of(&sibling));
    let out = admin(
        &server,
        dir.path(),
        &[
            "credentials",
            "revoke",
            &sibling_credential,
            "--reason",
            "meter-8 lost",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let answer = s_client(&server, &btid_of(&sibling), &key_of(&sibling), "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    let answer = s_client(&server, &identity, &key_of(&edge), &edge_ae);
    assert!(answer.contains("X-M2M-RSC: 2000"), "{answer}");

    // Revoking the gateway: its live edge association is closed at once, and no node behind
    // it (nor the gateway) gets a new handshake.
    let (mut live, rx) = live_s_client(&server, &identity, &key_of(&edge), &edge_ae);
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("an answer");
    assert!(first.contains("X-M2M-RSC: 2000"), "{first}");
    let out = admin(
        &server,
        dir.path(),
        &[
            "credentials",
            "revoke",
            &format!("12-{btid}"),
            "--reason",
            "gateway stolen",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(said["status"], "revoked", "{said}");
    assert!(
        said["associationsClosed"].as_u64().is_some_and(|n| n >= 1),
        "the edge node's association is among those closed: {said}"
    );
    let ended = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(seen) if seen.ends_with("EOF") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(ended, "the edge node's live association was closed");
    let _ = live.kill();
    let _ = live.wait();
    let answer = s_client(&server, &identity, &key_of(&edge), &edge_ae);
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    let reg = register(&server, &edge, "meter7b");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));
    let answer = s_client(&server, &btid, &key_of(&gateway), &gateway_ae);
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    // A node the gateway extends after its revocation is refused too.
    let late = dir.path().join("meter-9");
    let out = extend(&gateway, "meter-9", &late);
    assert!(out.status.success(), "{}", text(&out));
    let answer = s_client(&server, &btid_of(&late), &key_of(&late), "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
}

#[test]
fn edge_identities_are_unknown_when_edge_nodes_is_off() {
    if !(have_python3() && have_openssl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    write_private(&dir.path().join("k.hex"), &format!("{K}\n"));
    let bsf = Bsf::start(dir.path());
    let server = start_edge_cse(dir.path(), "cse", &bsf.url, false);
    let gateway = dir.path().join("gateway");
    let out = bootstrap(&bsf, IMPI, &dir.path().join("k.hex"), &gateway);
    assert!(out.status.success(), "{}", text(&out));
    let edge = dir.path().join("meter-7");
    let out = extend(&gateway, "meter-7", &edge);
    assert!(out.status.success(), "{}", text(&out));

    let answer = s_client(&server, &btid_of(&edge), &key_of(&edge), "C");
    assert!(!answer.contains("X-M2M-RSC"), "{answer}");
    // Refused like any unknown identity: with a wrong key's alert (a decoy key).
    assert!(answer.contains("alert bad record mac"), "{answer}");
    let reg = register(&server, &edge, "meter7");
    assert_eq!(reg.status.code(), Some(3), "{}", text(&reg));
    assert!(
        !bsf.events().contains("\"naf-key\""),
        "the BSF is not asked: {}",
        bsf.events()
    );
    let log = log_with(&server, &[("edge_nodes is off", 1)]);
    assert!(log.contains("edge_nodes is off"), "{log}");
    // The gateway itself still works.
    let reg = register(&server, &gateway, "gateway");
    assert!(reg.status.success(), "{}", text(&reg));
}
