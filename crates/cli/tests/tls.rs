//! Secure connections end to end: the real `cse` binary with a TLS listener, a PKI made by
//! `scripts/make-test-pki.sh` with the openssl command line, and real clients (curl,
//! openssl s_client, the `m2m` CLI).
mod common;

use common::*;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SECURE_CSE_REQUIRE_SERVICES").is_none(),
            "openssl is required"
        );
        eprintln!("skipping: the openssl command is not installed");
    }
    ok && have_curl()
}

struct Secure {
    server: Server,
    pki: PathBuf,
    _dir: tempfile::TempDir,
}

impl Secure {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = dir.path().join("tls");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/make-test-pki.sh"
        );
        let out = Command::new("bash")
            .arg(script)
            .arg(&pki)
            .output()
            .expect("run the PKI script");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The script's configuration, on ephemeral ports and with a short handshake timeout.
        let config = std::fs::read_to_string(pki.join("cse.toml"))
            .expect("cse.toml")
            .replace("127.0.0.1:8443", "127.0.0.1:0")
            + "handshake_timeout_ms = 700\n";
        let config_path = pki.join("test.toml");
        std::fs::write(&config_path, config).expect("write config");
        let server = Server::start_listeners(
            &dir.path().join("data"),
            &["--config", config_path.to_str().expect("utf8")],
            2,
        );
        Self {
            server,
            pki,
            _dir: dir,
        }
    }

    fn https(&self) -> &str {
        &self.server.urls[1]
    }

    fn tls_port(&self) -> &str {
        self.https().rsplit(':').next().unwrap_or_default()
    }

    fn file(&self, name: &str) -> String {
        self.pki.join(name).to_string_lossy().into_owned()
    }

    /// curl over the certificate framework as `who` (ae1, admin, revoked, ...).
    fn curl_as(&self, who: &str, path: &str, origin: &str, extra: &[&str]) -> String {
        let (cert, key, ca) = (
            self.file(&format!("{who}.pem")),
            self.file(&format!("{who}.key")),
            self.file("ca.pem"),
        );
        let url = format!("https://localhost:{}{path}", self.tls_port());
        let mut args = vec![
            "--cacert",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            &url,
            "-H",
            "X-M2M-RI: t",
            "-H",
            "X-M2M-RVI: 3",
        ];
        let origin_header = format!("X-M2M-Origin: {origin}");
        args.extend(["-H", &origin_header]);
        args.extend(extra);
        curl(&args)
    }

    /// One HTTP request through `openssl s_client` over the PSK framework.
    fn psk_request(
        &self,
        identity: &str,
        key_hex: &str,
        tls: &str,
        request: &str,
    ) -> (bool, String) {
        let connect = format!("127.0.0.1:{}", self.tls_port());
        let mut args = vec![
            "s_client",
            "-quiet",
            "-connect",
            &connect,
            "-psk",
            key_hex,
            "-psk_identity",
            identity,
        ];
        match tls {
            "1.2" => args.extend(["-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256"]),
            _ => args.extend(["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]),
        }
        let mut child = Command::new("openssl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("s_client");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(request.as_bytes());
        }
        let out = child.wait_with_output().expect("s_client output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

fn http_request(method: &str, path: &str, origin: &str, ty: Option<u8>, body: &str) -> String {
    let ct = ty
        .map(|t| format!("Content-Type: application/json;ty={t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nX-M2M-Origin: {origin}\r\nX-M2M-RI: p\r\nX-M2M-RVI: 3\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn aei(response: &str) -> String {
    let at = response.find("\"aei\":\"").map(|i| i + 7).unwrap_or(0);
    response[at..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn certificate_framework_binds_the_ae_id() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let ae = r#"{"m2m:ae":{"rn":"ae1","api":"Nsensor","rr":false,"srv":["3"]}}"#;
    let reg = s.curl_as(
        "ae1",
        "/cse-in",
        "C",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            ae,
        ],
    );
    assert!(
        reg.contains("X-M2M-RSC: 2001") && aei(&reg) == "Cae1",
        "{reg}"
    );
    assert!(s
        .curl_as("ae1", "/cse-in/ae1", "Cae1", &[])
        .contains("X-M2M-RSC: 2000"));
    // Spoofing another originator over a valid association: 4106, and nothing changes.
    for spoof in ["CAdmin", "Cother", "/id-mn"] {
        let r = s.curl_as("ae1", "/cse-in/ae1", spoof, &["-X", "DELETE"]);
        assert!(r.contains("X-M2M-RSC: 4106"), "{spoof}: {r}");
    }
    assert!(s
        .curl_as("ae1", "/cse-in/ae1", "Cae1", &[])
        .contains("X-M2M-RSC: 2000"));
    // The same AE-ID over plain HTTP is only a claim: it is registered, so it passes the
    // originator check, but a CSE-ID claim without association is refused with 4107.
    let plain = curl(&[
        &format!("{}/cse-in", s.server.urls[0]),
        "-H",
        "X-M2M-Origin: /id-mn",
        "-H",
        "X-M2M-RI: x",
    ]);
    assert!(plain.contains("X-M2M-RSC: 4107"), "{plain}");
}

#[test]
fn bad_certificates_are_refused_in_the_handshake_and_logged() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let revoked = s.curl_as("revoked", "/cse-in", "Crevoked", &[]);
    assert!(
        !revoked.contains("X-M2M-RSC"),
        "revoked certificate got an answer: {revoked}"
    );
    // An untrusted (self-signed) certificate that claims an AE-ID.
    let (key, cert) = (s.pki.join("rogue.key"), s.pki.join("rogue.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=rogue",
        ])
        .args([
            "-addext",
            "subjectAltName=URI://secure-cse.example/id-in/Cae1",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(made.status.success());
    let rogue = s.curl_as("rogue", "/cse-in", "Cae1", &[]);
    assert!(!rogue.contains("X-M2M-RSC"), "{rogue}");
    // No certificate and no PSK.
    let ca = s.file("ca.pem");
    let anonymous = curl(&[
        "--cacert",
        &ca,
        &format!("https://localhost:{}/cse-in", s.tls_port()),
        "-H",
        "X-M2M-Origin: C",
        "-H",
        "X-M2M-RI: x",
    ]);
    assert!(!anonymous.contains("X-M2M-RSC"), "{anonymous}");
    // TLS 1.1, even when the client is made to offer it.
    let connect = format!("127.0.0.1:{}", s.tls_port());
    let old = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &connect,
            "-tls1_1",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-cert",
            &s.file("ae1.pem"),
            "-key",
            &s.file("ae1.key"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("s_client");
    assert!(!old.status.success());
    std::thread::sleep(Duration::from_millis(200));
    let log = s.server.log();
    assert!(
        log.contains("revoked") && log.contains("security association refused"),
        "{log}"
    );
    assert!(
        log.matches("peer=127.0.0.1:").count() >= 4,
        "refusals name the peer: {log}"
    );
    // The listener still serves good clients.
    assert!(s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    // The CRL is published where the certificates' distribution point says.
    let cdp = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "crlDistributionPoints",
            "-in",
            &s.file("cse.pem"),
        ])
        .output()
        .expect("x509");
    assert!(String::from_utf8_lossy(&cdp.stdout).contains("/.well-known/crl/ca.crl"));
    let der = s.pki.join("downloaded.crl");
    let got = Command::new("curl")
        .args(["-s", "-f", "-o"])
        .arg(&der)
        .arg(format!("{}/.well-known/crl/ca.crl", s.server.urls[0]))
        .status()
        .expect("curl");
    assert!(got.success());
    let crl = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&der)
        .output()
        .expect("crl");
    assert!(
        String::from_utf8_lossy(&crl.stdout).contains("Revoked Certificates"),
        "{}",
        String::from_utf8_lossy(&crl.stderr)
    );
    let missing = curl(&[
        &format!("{}/.well-known/crl/other.crl", s.server.urls[0]),
        "-H",
        "X-M2M-Origin: C",
        "-H",
        "X-M2M-RI: x",
    ]);
    assert!(
        missing.contains("X-M2M-RSC: 4") && !missing.contains("pkix-crl"),
        "{missing}"
    );
}

#[test]
fn psk_framework_remembers_the_assigned_ae_id() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let key = std::fs::read_to_string(s.pki.join("sensor-1.psk"))
        .expect("psk")
        .trim()
        .to_owned();
    let ae = r#"{"m2m:ae":{"rn":"s1","api":"Nsensor","rr":false,"srv":["3"]}}"#;
    let (ok, first) = s.psk_request(
        "sensor-1@secure-cse.example",
        &key,
        "1.2",
        &http_request("POST", "/cse-in", "C", Some(2), ae),
    );
    assert!(ok && first.contains("X-M2M-RSC: 2001"), "{first}");
    let id = aei(&first);
    assert!(id.starts_with('C') && id.len() > 5, "{first}");
    // TLS 1.3 external PSK, same credential: the AE works under its ID, and only under it.
    let (_, own) = s.psk_request(
        "sensor-1@secure-cse.example",
        &key,
        "1.3",
        &http_request("GET", "/cse-in/s1", &id, None, ""),
    );
    assert!(own.contains("X-M2M-RSC: 2000"), "{own}");
    let (_, spoof) = s.psk_request(
        "sensor-1@secure-cse.example",
        &key,
        "1.3",
        &http_request("GET", "/cse-in/s1", "Cae1", None, ""),
    );
    assert!(spoof.contains("X-M2M-RSC: 4106"), "{spoof}");
    // Deregister, then register again: the credential gets the same AE-ID back.
    let (_, gone) = s.psk_request(
        "sensor-1@secure-cse.example",
        &key,
        "1.2",
        &http_request("DELETE", "/cse-in/s1", &id, None, ""),
    );
    assert!(gone.contains("X-M2M-RSC: 2002"), "{gone}");
    let (_, again) = s.psk_request(
        "sensor-1@secure-cse.example",
        &key,
        "1.2",
        &http_request("POST", "/cse-in", "C", Some(2), ae),
    );
    assert_eq!(aei(&again), id, "{again}");
    // Wrong key and unknown identity: no handshake, no answer.
    let (_, wrong) = s.psk_request(
        "sensor-1@secure-cse.example",
        "ffeeddccbbaa99887766554433221100",
        "1.2",
        &http_request("GET", "/cse-in", &id, None, ""),
    );
    assert!(!wrong.contains("X-M2M-RSC"), "{wrong}");
    let (_, unknown) = s.psk_request(
        "nobody@secure-cse.example",
        &key,
        "1.3",
        &http_request("GET", "/cse-in", &id, None, ""),
    );
    assert!(!unknown.contains("X-M2M-RSC"), "{unknown}");
}

#[test]
fn admin_only_over_an_admin_credential_and_associations_are_listed() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let plain = curl(&[
        &format!("{}/cse-in", s.server.urls[0]),
        "-H",
        "X-M2M-Origin: CAdmin",
        "-H",
        "X-M2M-RI: x",
    ]);
    assert!(
        plain.contains("X-M2M-RSC: 4106"),
        "admin over plaintext: {plain}"
    );
    let not_admin = s.curl_as("ae1", "/.admin/associations", "CAdmin", &[]);
    assert!(not_admin.contains("X-M2M-RSC: 4106"), "{not_admin}");
    let listed = s.curl_as("admin", "/.admin/associations", "CAdmin", &[]);
    assert!(listed.contains("X-M2M-RSC: 2000"), "{listed}");
    for field in [
        "\"framework\":\"certificate\"",
        "\"admin\":true",
        "\"credentialId\":\"33-",
        "\"protocol\":\"TLSv1.3\"",
        "\"requests\":1",
    ] {
        assert!(listed.contains(field), "{field} in {listed}");
    }
    // The m2m client over the admin PSK shows the same.
    let admin_key = s.pki.join("admin.psk");
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args([
            "--url",
            s.https(),
            "--psk-identity",
            "admin@secure-cse.example",
            "--psk-key-file",
        ])
        .arg(&admin_key)
        .arg("associations")
        .output()
        .expect("m2m");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("12-admin@secure-cse.example") && stdout.contains("\"framework\": \"psk\""),
        "{stdout}"
    );
}

#[test]
fn plaintext_and_stalled_clients_do_not_harm_the_listener() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let plain_to_tls = curl(&[
        &format!("http://127.0.0.1:{}/cse-in", s.tls_port()),
        "-H",
        "X-M2M-Origin: C",
        "-H",
        "X-M2M-RI: x",
        "--max-time",
        "3",
    ]);
    assert!(!plain_to_tls.contains("X-M2M-RSC"), "{plain_to_tls}");
    // A client that connects and stalls mid-handshake.
    let mut stalled =
        std::net::TcpStream::connect(format!("127.0.0.1:{}", s.tls_port())).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x40])
        .expect("partial record");
    // Meanwhile a real client is served.
    assert!(s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    // The stalled one is dropped after the handshake timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert!(n == 0 || buf[0] == 0x15, "closed or alerted, got {n} bytes");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        s.server.log().contains("timed out")
            || s.server.log().contains("Timeout")
            || s.server.log().contains("timeout"),
        "{}",
        s.server.log()
    );
}

#[test]
fn a_missing_tls_file_stops_the_start_with_exit_64() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[[tls]]\nlisten = \"127.0.0.1:0\"\ncertificate = \"/nonexistent/cse.pem\"\nprivate_key = \"/nonexistent/cse.key\"\ntrust_anchors = [\"/nonexistent/ca.pem\"]\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_cse"))
        .arg("--config")
        .arg(&cfg)
        .arg("--data")
        .arg(dir.path().join("d"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_connecting_securely_guide_works_as_written() {
    if !have_openssl() {
        return;
    }
    let s = Secure::start();
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .expect("guide");
    let block = guide
        .split("In another shell, from the same folder:")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("the guide's command block");
    let m2m = env!("CARGO_BIN_EXE_m2m");
    let script = format!("set -e\n{block}")
        .replace("cargo run -q --release --bin m2m --", m2m)
        .replace("cargo run --release --bin m2m --", m2m)
        .replace(":8443", &format!(":{}", s.tls_port()));
    let parent = s.pki.parent().expect("parent").to_owned();
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(parent)
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"aei\":\"Cae1\""),
        "certificate registration: {stdout}"
    );
    assert!(
        stdout.contains("X-M2M-RSC: 4106"),
        "spoofed originator: {stdout}"
    );
    assert!(
        stdout.contains("refused (curl exit"),
        "revoked certificate: {stdout}"
    );
    assert!(
        stdout.contains("X-M2M-RSC: 2000") && stdout.contains("\"rn\":\"s1\""),
        "PSK read-back: {stdout}"
    );
    assert!(
        stdout.contains("\"associations\"") && stdout.contains("\"admin\": true"),
        "admin listing: {stdout}"
    );
}
