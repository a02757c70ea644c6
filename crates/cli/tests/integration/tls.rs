//! Secure connections end to end: the real `cse` binary with a TLS listener, a PKI made by
//! `scripts/make-test-pki.sh` with the openssl command line, and real clients (curl,
//! openssl s_client, the `m2m` CLI).
use crate::common;

use common::*;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Secure {
    server: Server,
    pki: PathBuf,
    _dir: tempfile::TempDir,
}

impl Secure {
    fn start() -> Self {
        Self::start_after(|_| {})
    }

    /// Makes the PKI, lets `prepare` add to it, then starts the CSE.
    fn start_after(prepare: impl FnOnce(&std::path::Path)) -> Self {
        Self::start_with_handshake_timeout(700, prepare)
    }

    /// Makes the PKI, lets `prepare` add to it, then starts the CSE with the given handshake
    /// timeout.
    fn start_with_handshake_timeout(
        handshake_ms: u64,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = make_test_pki(dir.path());
        prepare(&pki);
        // The script's configuration, on ephemeral ports and with a short handshake timeout.
        let config_path = test_config(
            &pki,
            &format!(
                "handshake_timeout_ms = {handshake_ms}
"
            ),
        );
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

    /// Makes the PKI, lets `prepare` add to it, then serves the CSE in this process on
    /// `clock` (sessions live a day, so only the clock the test moves ends them).
    fn start_in_process(
        prepare: impl FnOnce(&std::path::Path),
        clock: &model::clock::ManualClock,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let pki = make_test_pki(dir.path());
        prepare(&pki);
        let config_path = test_config(
            &pki,
            "handshake_timeout_ms = 5000\nsession_lifetime_secs = 86400\n",
        );
        let server = Server::in_process(&dir.path().join("data"), Some(&config_path), 2, clock);
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
    if !(have_openssl() && have_curl()) {
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
    if !(have_openssl() && have_curl()) {
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
    // Four refusals: revoked, untrusted, anonymous and TLS 1.1.
    let log = s.server.log_with_count("security association refused", 4);
    assert!(
        log.contains("revoked") && log.contains("security association refused"),
        "{log}"
    );
    // Refusals name the peer by its pseudonymous tag, never by its address.
    assert!(log.matches("peer=peer-").count() >= 4, "{log}");
    assert!(!log.contains("peer=127.0.0.1"), "{log}");
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
    if !(have_openssl() && have_curl()) {
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
    if !(have_openssl() && have_curl()) {
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
    if !(have_openssl() && have_curl()) {
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
    let log = s.server.log_with("timed out");
    assert!(log.contains("timed out"), "{log}");
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
    if !(have_openssl() && have_curl()) {
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

/// Issues `name.pem`/`name.key` from the test CA with the given subject and URI SAN.
fn issue_client_certificate(pki: &std::path::Path, name: &str, subject: &str, san: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(pki)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &key,
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        &key,
        "-subj",
        subject,
        "-out",
        &csr,
        "-config",
        "openssl.cnf",
    ]);
    std::fs::write(
        pki.join(&ext),
        format!("basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = {san}\n"),
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        &ext,
        "-out",
        &pem,
    ]);
}

/// Privacy (seed 6.4): AEs whose credentials carry a recognisable real identity (a person's
/// name and a device serial number in the certificate subject, a device identifier as the
/// PSK identity) register and work; afterwards no resource and no log line contains any of
/// those identities, the certificate's serial or fingerprint, or a peer's address.
#[test]
fn real_identities_behind_credentials_appear_in_no_resource_and_no_log() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let psk_identity = "alice-pacemaker-PM-0042@secure-cse.example";
    let psk_key = "6b1f0e2d9c8a7b6a5f4e3d2c1b0a9988";
    let s = Secure::start_after(|pki| {
        issue_client_certificate(
            pki,
            "alice",
            "/CN=Alice Example/serialNumber=PM-0042/O=Pacemaker Owners",
            "URI://secure-cse.example/id-in/C7f3a9e10",
        );
        let credentials = pki.join("credentials.toml");
        let mut text = std::fs::read_to_string(&credentials).expect("credentials");
        text += &format!(
            "\n[[psk]]\nidentity = \"{psk_identity}\"\nkey_hex = \"{psk_key}\"\nallowed_aes = [\"C*\"]\n"
        );
        std::fs::write(&credentials, text).expect("write credentials");
    });

    // The certificate's AE registers and writes data.
    let ae = r#"{"m2m:ae":{"rn":"heart","api":"Nmonitor","rr":false,"srv":["3"]}}"#;
    let reg = s.curl_as(
        "alice",
        "/cse-in",
        "C7f3a9e10",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            ae,
        ],
    );
    assert!(reg.contains("X-M2M-RSC: 2001"), "{reg}");
    let cnt = s.curl_as(
        "alice",
        "/cse-in/heart",
        "C7f3a9e10",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=3",
            "-d",
            r#"{"m2m:cnt":{"rn":"ecg"}}"#,
        ],
    );
    assert!(cnt.contains("X-M2M-RSC: 2001"), "{cnt}");
    let cin = s.curl_as(
        "alice",
        "/cse-in/heart/ecg",
        "C7f3a9e10",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=4",
            "-d",
            r#"{"m2m:cin":{"con":"72 bpm"}}"#,
        ],
    );
    assert!(cin.contains("X-M2M-RSC: 2001"), "{cin}");
    // A refused request, so the log has a refusal line about this peer too.
    let spoof = s.curl_as("alice", "/cse-in/heart", "Cae1", &[]);
    assert!(spoof.contains("X-M2M-RSC: 4106"), "{spoof}");

    // The PSK's AE gets a CSE-assigned pseudonym.
    let psk_ae = r#"{"m2m:ae":{"rn":"pump","api":"Ninsulin","rr":false,"srv":["3"]}}"#;
    let (ok, first) = s.psk_request(
        psk_identity,
        psk_key,
        "1.3",
        &http_request("POST", "/cse-in", "C", Some(2), psk_ae),
    );
    assert!(ok && first.contains("X-M2M-RSC: 2001"), "{first}");
    let pseudonym = aei(&first);
    assert!(pseudonym.starts_with('C') && pseudonym.len() > 8, "{first}");
    assert!(!pseudonym.to_lowercase().contains("alice"));

    // Everything the CSE holds, as the admin sees it, and everything it logged.
    let all: String = [
        "/cse-in",
        "/cse-in/heart",
        "/cse-in/heart/ecg",
        "/cse-in/pump",
    ]
    .iter()
    .map(|path| s.curl_as("admin", &format!("{path}?rcn=4"), "CAdmin", &[]))
    .collect();
    assert!(
        all.contains("X-M2M-RSC: 2000") && all.contains("72 bpm"),
        "{all}"
    );
    assert!(all.contains(&pseudonym), "{all}");
    let log = s.server.log();
    assert!(log.contains("security association opened"), "{log}");
    assert!(log.contains("request refused"), "{log}");

    let fingerprint = {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(s.pki.join("alice.pem"))
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        text.split('=')
            .nth(1)
            .unwrap_or_default()
            .trim()
            .replace(':', "")
    };
    let serial = {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(s.pki.join("alice.pem"))
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        text.split('=').nth(1).unwrap_or_default().trim().to_owned()
    };
    assert_eq!(fingerprint.len(), 64);
    let digest = certificate_digest(&s.pki.join("alice.pem"));
    assert!(serial.len() >= 16, "{serial}");
    for (what, text) in [
        ("resources", all.to_lowercase()),
        ("log", log.to_lowercase()),
    ] {
        for secret in [
            "alice",
            "pm-0042",
            "pacemaker",
            fingerprint.as_str(),
            digest.as_str(),
            serial.as_str(),
        ] {
            assert!(!text.contains(secret), "{what} names '{secret}':\n{text}");
        }
    }
    // The database keeps the credential binding only under the vault's keyed lookup and
    // sealed: neither the PSK identity nor the device serial is in its files.
    let mut db = Vec::new();
    for entry in std::fs::read_dir(&s.server.data)
        .expect("data folder")
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("cse.db") {
            db.extend(std::fs::read(entry.path()).expect("db file"));
        }
    }
    assert!(!db.is_empty());
    let db = String::from_utf8_lossy(&db).to_lowercase();
    for secret in ["alice", "pm-0042", "pacemaker"] {
        assert!(!db.contains(secret), "the database names '{secret}'");
    }
    // Only the admin resolves the pseudonym, stating why; the audit log keeps that.
    let resolve = |who: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(["--url", s.https()])
            .args(who)
            .args(["privacy", "resolve", &pseudonym, "--purpose", "incident 42"])
            .output()
            .expect("m2m")
    };
    let admin_key = s.file("admin.psk");
    let resolved = resolve(&[
        "--psk-identity",
        "admin@secure-cse.example",
        "--psk-key-file",
        &admin_key,
    ]);
    let text = String::from_utf8_lossy(&resolved.stdout).into_owned();
    assert!(
        resolved.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&resolved.stderr)
    );
    assert!(text.contains(&format!("12-{psk_identity}")), "{text}");
    let key_file = s.pki.join("alice.psk");
    std::fs::write(&key_file, psk_key).expect("key file");
    let mut perms = std::fs::metadata(&key_file).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key_file, perms).expect("chmod");
    let denied = resolve(&[
        "--psk-identity",
        psk_identity,
        "--psk-key-file",
        key_file.to_str().expect("utf8"),
    ]);
    assert!(!denied.status.success());
    assert!(!String::from_utf8_lossy(&denied.stdout).contains(psk_identity));
    let audit = std::fs::read_to_string(s.server.data.join("audit.log")).expect("audit");
    let resolution = audit
        .lines()
        .find(|l| l.contains("pseudonym-resolved"))
        .expect("an audit entry for the resolution");
    assert!(
        resolution.contains("incident 42") && resolution.contains(&pseudonym),
        "{resolution}"
    );
    assert!(!resolution.contains("alice"), "{resolution}");
    let log = s.server.log();
    for secret in ["alice", "pm-0042", "pacemaker"] {
        assert!(
            !log.to_lowercase().contains(secret),
            "the log names '{secret}' after resolution"
        );
    }

    // Peers' addresses: the only 127.0.0.1:PORT in the log are the CSE's own listeners.
    let own_ports: Vec<&str> = s
        .server
        .urls
        .iter()
        .filter_map(|u| u.rsplit(':').next())
        .collect();
    for (at, _) in log.match_indices("127.0.0.1:") {
        let port: String = log[at + 10..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert!(
            own_ports.contains(&port.as_str()),
            "a peer address in the log: 127.0.0.1:{port}\n{log}"
        );
    }
}

/// The security manager's supervision record: associations opened, refused and closed by the
/// real listener land in the hash-chained audit log, which `m2m audit verify` accepts, and
/// which a restart continues; an altered log stops the next start (exit 64).
#[test]
fn associations_are_audited_and_the_log_verifies() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let mut s = Secure::start();
    let ok = s.curl_as("ae1", "/cse-in", "C", &[]);
    assert!(ok.contains("X-M2M-RSC"), "{ok}");
    let refused = s.curl_as("revoked", "/cse-in", "C", &[]);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");

    let audit = s.server.data.join("audit.log");
    let m2m = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(args)
            .output()
            .expect("m2m")
    };
    // The writer appends in the background: wait (bounded) for the three kinds of entry.
    let kinds = [
        "association-opened",
        "association-closed",
        "association-refused",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let tail = loop {
        let out = m2m(&[
            "audit",
            "tail",
            audit.to_str().expect("utf8"),
            "-n",
            "50",
            "--json",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if kinds.iter().all(|k| text.contains(k)) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for kind in kinds {
        assert!(tail.contains(kind), "{kind} in {tail}");
    }
    // The audit log is the authorised record: it names the credential and the peer.
    assert!(tail.contains("\"credential\":\"33-"), "{tail}");
    assert!(tail.contains("127.0.0.1:"), "{tail}");
    let verify = m2m(&["audit", "verify", audit.to_str().expect("utf8")]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // Tampering with one entry: verification names it, and the CSE refuses to start on it.
    s.server.kill9();
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let altered = text.replacen("association-refused", "association-opened", 1);
    assert_ne!(altered, text);
    std::fs::write(&audit, altered).expect("write");
    let verify = m2m(&["audit", "verify", audit.to_str().expect("utf8")]);
    assert!(!verify.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["--http", "127.0.0.1:0", "--data"])
        .arg(&s.server.data)
        .output()
        .expect("cse");
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("audit log"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Withdrawing credentials (seed 3.1): a revoked PSK's live association is closed at once and
/// its next handshake refused; a suspended certificate is refused until resumed; every
/// change is in the audit log; state changes only by POST and only by the admin.
#[test]
fn revoked_and_suspended_credentials_are_cut_off() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let s = Secure::start();
    let key = std::fs::read_to_string(s.pki.join("sensor-1.psk"))
        .expect("psk")
        .trim()
        .to_owned();
    let identity = "sensor-1@secure-cse.example";
    // A live association: s_client keeps the connection open after one request.
    let connect = format!("127.0.0.1:{}", s.tls_port());
    let mut live = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &connect,
            "-psk",
            &key,
            "-psk_identity",
            identity,
        ])
        .args(["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("s_client");
    let mut stdin = live.stdin.take().expect("stdin");
    let ae = r#"{"m2m:ae":{"rn":"s1","api":"Nsensor","rr":false,"srv":["3"]}}"#;
    let request =
        http_request("POST", "/cse-in", "C", Some(2), ae).replace("Connection: close\r\n", "");
    stdin.write_all(request.as_bytes()).expect("send");
    let mut stdout = live.stdout.take().expect("stdout");
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
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("an answer");
    assert!(first.contains("X-M2M-RSC: 2001"), "{first}");

    let m2m_admin = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                s.https(),
                "--psk-identity",
                "admin@secure-cse.example",
                "--psk-key-file",
            ])
            .arg(s.pki.join("admin.psk"))
            .args(args)
            .output()
            .expect("m2m")
    };
    let credential = format!("12-{identity}");
    let revoked = m2m_admin(&[
        "credentials",
        "revoke",
        &credential,
        "--reason",
        "device stolen",
    ]);
    let text = String::from_utf8_lossy(&revoked.stdout).into_owned();
    assert!(
        revoked.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    assert!(
        text.contains("\"associationsClosed\": 1") && text.contains("\"revoked\""),
        "{text}"
    );
    // The live connection ends (bounded wait, no timing assertion).
    let ended = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(seen) if seen.ends_with("EOF") => break true,
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    assert!(ended, "the revoked association's connection was closed");
    let _ = live.kill();
    let _ = live.wait();
    // No new handshake with it.
    let (ok, again) = s.psk_request(
        identity,
        &key,
        "1.3",
        &http_request("GET", "/cse-in", "C", None, ""),
    );
    assert!(!ok || !again.contains("X-M2M-RSC"), "{again}");
    // Revocation is final; the list shows it.
    let resume = m2m_admin(&["credentials", "resume", &credential]);
    assert!(!resume.status.success());
    assert!(
        String::from_utf8_lossy(&resume.stderr).contains("4000"),
        "{}",
        String::from_utf8_lossy(&resume.stderr)
    );
    let listed = m2m_admin(&["credentials", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains(&credential) && listed.contains("device stolen"),
        "{listed}"
    );

    // A certificate: suspended, refused; resumed, accepted again.
    let fingerprint = certificate_digest(&s.pki.join("ae1.pem"));
    assert!(s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    let cert_credential = format!("33-{fingerprint}");
    let suspended = m2m_admin(&[
        "credentials",
        "suspend",
        &cert_credential,
        "--reason",
        "audit",
    ]);
    assert!(
        String::from_utf8_lossy(&suspended.stdout).contains("\"suspended\""),
        "{}",
        String::from_utf8_lossy(&suspended.stdout)
    );
    assert!(!s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    let resumed = m2m_admin(&["credentials", "resume", &cert_credential]);
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains("\"active\""),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
    assert!(s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));

    // Only by POST, and only the admin.
    let get = s.curl_as(
        "admin",
        "/.admin/revoke?credential=x&reason=y",
        "CAdmin",
        &[],
    );
    assert!(get.contains("X-M2M-RSC: 4005"), "{get}");
    let not_admin = s.curl_as(
        "ae1",
        "/.admin/revoke?credential=x&reason=y",
        "CAdmin",
        &["-X", "POST"],
    );
    assert!(not_admin.contains("X-M2M-RSC: 4106"), "{not_admin}");
    let no_reason = s.curl_as(
        "admin",
        "/.admin/suspend?credential=x",
        "CAdmin",
        &["-X", "POST"],
    );
    assert!(no_reason.contains("X-M2M-RSC: 4000"), "{no_reason}");

    // The audit log has all three changes, by the admin's credential.
    let audit = std::fs::read_to_string(s.server.data.join("audit.log")).expect("audit");
    for kind in [
        "\"kind\":\"revoked\"",
        "\"kind\":\"suspended\"",
        "\"kind\":\"resumed\"",
    ] {
        assert!(audit.contains(kind), "{kind} in {audit}");
    }
    assert!(
        audit.contains("CAdmin (12-admin@secure-cse.example)"),
        "{audit}"
    );
}

/// Rotation without downtime: a certificate the CA revokes after the start is still accepted
/// until the TLS material is re-read, then refused, and the published CRL is the new one;
/// the CSE's own certificate is replaced the same way, by `m2m reload-tls` or SIGHUP.
#[test]
fn tls_material_is_reloaded_without_a_restart() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let s = Secure::start();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(&s.pki)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let served_serial = || {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{}", s.tls_port()),
            ])
            .args(["-cert", &s.file("admin.pem"), "-key", &s.file("admin.key")])
            .args(["-CAfile", &s.file("ca.pem")])
            .stdin(Stdio::null())
            .output()
            .expect("s_client");
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("x509");
        x509.stdin
            .take()
            .expect("stdin")
            .write_all(&out.stdout)
            .expect("pipe");
        let serial = x509.wait_with_output().expect("serial");
        String::from_utf8_lossy(&serial.stdout).trim().to_owned()
    };
    let first_serial = served_serial();
    assert!(first_serial.starts_with("serial="), "{first_serial}");
    let reload = || {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                s.https(),
                "--psk-identity",
                "admin@secure-cse.example",
                "--psk-key-file",
            ])
            .arg(s.pki.join("admin.psk"))
            .arg("reload-tls")
            .output()
            .expect("m2m")
    };

    // The CA revokes ae1 and makes a new CRL; the running CSE still has the old one.
    openssl(&[
        "ca",
        "-config",
        "openssl.cnf",
        "-keyfile",
        "ca.key",
        "-cert",
        "ca.pem",
        "-revoke",
        "ae1.pem",
    ]);
    openssl(&[
        "ca",
        "-config",
        "openssl.cnf",
        "-keyfile",
        "ca.key",
        "-cert",
        "ca.pem",
        "-gencrl",
        "-out",
        "ca.crl",
    ]);
    assert!(s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    // A new certificate for the CSE itself, from the same CA.
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "cse2.key",
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        "cse2.key",
        "-subj",
        "/CN=id-in",
        "-out",
        "cse2.csr",
        "-config",
        "openssl.cnf",
    ]);
    std::fs::write(
        s.pki.join("cse2.ext"),
        "basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = DNS:id-in.secure-cse.example, DNS:localhost\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cse2.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        "cse2.ext",
        "-out",
        "cse2.pem",
    ]);
    for (from, to) in [("cse2.pem", "cse.pem"), ("cse2.key", "cse.key")] {
        std::fs::rename(s.pki.join(from), s.pki.join(to)).expect("rename");
    }

    let out = reload();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\"reloaded\"") && text.contains("https"),
        "{text}"
    );
    // Revoked now, for new handshakes; the CSE presents its new certificate.
    assert!(!s.curl_as("ae1", "/cse-in", "C", &[]).contains("X-M2M-RSC"));
    let second_serial = served_serial();
    assert!(
        second_serial.starts_with("serial=") && second_serial != first_serial,
        "{first_serial} -> {second_serial}"
    );
    // The published CRL is the new one.
    let crl = Command::new("curl")
        .args([
            "-s",
            &format!("{}/.well-known/crl/ca.crl", s.server.urls[0]),
            "-o",
        ])
        .arg(s.pki.join("published.crl"))
        .output()
        .expect("curl");
    assert!(crl.status.success());
    let listed = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        "published.crl",
        "-noout",
        "-text",
    ]);
    let ae1_serial = openssl(&["x509", "-in", "ae1.pem", "-noout", "-serial"]);
    let ae1_serial = ae1_serial
        .trim()
        .trim_start_matches("serial=")
        .to_uppercase();
    assert!(
        listed.to_uppercase().contains(&ae1_serial),
        "{ae1_serial} in {listed}"
    );

    // A broken file: nothing is replaced, the listener keeps serving, the admin is told.
    std::fs::write(s.pki.join("cse.key"), "not a key").expect("write");
    let broken = reload();
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("4000"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    assert_eq!(served_serial(), second_serial);

    // SIGHUP does the same (and logs it).
    let hup = Command::new("kill")
        .args(["-HUP", &s.server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    let log = s.server.log_with("SIGHUP: TLS material not reloaded");
    assert!(log.contains("SIGHUP: TLS material not reloaded"), "{log}");
    assert_eq!(served_serial(), second_serial);
    let audit = std::fs::read_to_string(s.server.data.join("audit.log")).expect("audit");
    assert!(audit.contains("\"action\":\"reload-tls\""), "{audit}");
}

#[test]
fn an_ae_rotates_its_pseudonym_and_keeps_its_resources() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let s = Secure::start();
    let identity = "sensor-1@secure-cse.example";
    let key = std::fs::read_to_string(s.pki.join("sensor-1.psk"))
        .expect("psk")
        .trim()
        .to_owned();
    let as_sensor = |method: &str, path: &str, origin: &str, ty: Option<u8>, body: &str| {
        s.psk_request(
            identity,
            &key,
            "1.3",
            &http_request(method, path, origin, ty, body),
        )
        .1
    };
    // No resource name: the AE's name is its AE-ID, so the structured names move too.
    let reg = as_sensor(
        "POST",
        "/cse-in",
        "C",
        Some(2),
        r#"{"m2m:ae":{"api":"Nsensor","rr":false,"srv":["3"]}}"#,
    );
    assert!(reg.contains("X-M2M-RSC: 2001"), "{reg}");
    let old = aei(&reg);
    let base = format!("/cse-in/{old}");
    let acp = format!(
        r#"{{"m2m:acp":{{"rn":"mine","pv":{{"acr":[{{"acor":["{old}"],"acop":63}}]}},"pvs":{{"acr":[{{"acor":["{old}"],"acop":63}}]}}}}}}"#
    );
    let made = as_sensor("POST", &base, &old, Some(1), &acp);
    assert!(made.contains("X-M2M-RSC: 2001"), "{made}");
    let made = as_sensor("POST", &base, &old, Some(3), r#"{"m2m:cnt":{"rn":"data"}}"#);
    assert!(made.contains("X-M2M-RSC: 2001"), "{made}");
    let made = as_sensor(
        "POST",
        &format!("{base}/data"),
        &old,
        Some(4),
        r#"{"m2m:cin":{"con":"21.5","cr":null}}"#,
    );
    assert!(made.contains("X-M2M-RSC: 2001"), "{made}");

    // The real client rotates, over the same credential.
    let key_file = s.pki.join("sensor-1.key.hex");
    std::fs::write(&key_file, &key).expect("key file");
    let mut perms = std::fs::metadata(&key_file).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key_file, perms).expect("chmod");
    let m2m = |origin: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                s.https(),
                "--psk-identity",
                identity,
                "--psk-key-file",
            ])
            .arg(&key_file)
            .args(["--origin", origin])
            .args(args)
            .output()
            .expect("m2m")
    };
    let rotated = m2m(&old, &["privacy", "rotate"]);
    let text = String::from_utf8_lossy(&rotated.stdout).into_owned();
    assert!(
        rotated.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let printed: serde_json::Value = serde_json::from_str(&text).expect("json");
    let new = printed["m2m:ae"]["aei"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        new.starts_with('C') && new.len() > 8 && new != old,
        "{text}"
    );
    assert_eq!(printed["m2m:ae"]["rn"], new.as_str(), "{text}");

    // Everything is still there, under the new AE-ID and its name.
    let new_base = format!("/cse-in/{new}");
    let la = as_sensor("GET", &format!("{new_base}/data/la"), &new, None, "");
    assert!(
        la.contains("X-M2M-RSC: 2000") && la.contains("21.5"),
        "{la}"
    );
    assert!(la.contains(&format!("\"cr\":\"{new}\"")), "{la}");
    let mine = s.curl_as("admin", &format!("{new_base}/mine"), "CAdmin", &[]);
    assert!(mine.contains(&format!("\"acor\":[\"{new}\"]")), "{mine}");
    let all = s.curl_as("admin", &format!("{new_base}?rcn=4"), "CAdmin", &[]);
    assert!(all.contains("X-M2M-RSC: 2000"), "{all}");
    assert!(!all.contains(&old), "the old AE-ID survives: {all}");
    // The old pseudonym is gone: as a name, and as an originator over the credential.
    let gone = s.curl_as("admin", &base, "CAdmin", &[]);
    assert!(gone.contains("X-M2M-RSC: 4004"), "{gone}");
    let stale = as_sensor("GET", &new_base, &old, None, "");
    assert!(stale.contains("X-M2M-RSC: 4106"), "{stale}");
    // The credential keeps its new AE-ID: registering again gives it back.
    let again = as_sensor(
        "POST",
        "/cse-in",
        "C",
        Some(2),
        r#"{"m2m:ae":{"rn":"twice","api":"Nsensor","rr":false,"srv":["3"]}}"#,
    );
    assert!(
        again.contains("X-M2M-RSC: 4117") && again.contains(&new),
        "{again}"
    );

    // Who may not rotate: an AE whose certificate names its AE-ID, the admin, a spoofer,
    // and a GET or a request with content.
    let reg = s.curl_as(
        "ae1",
        "/cse-in",
        "Cae1",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            r#"{"m2m:ae":{"rn":"a1","api":"Napp","rr":false,"srv":["3"]}}"#,
        ],
    );
    assert!(reg.contains("X-M2M-RSC: 2001"), "{reg}");
    let fixed = s.curl_as("ae1", "/.privacy/rotate-ae-id", "Cae1", &["-X", "POST"]);
    assert!(fixed.contains("X-M2M-RSC: 4005"), "{fixed}");
    let admin = s.curl_as("admin", "/.privacy/rotate-ae-id", "CAdmin", &["-X", "POST"]);
    assert!(admin.contains("X-M2M-RSC: 4005"), "{admin}");
    let spoof = as_sensor("POST", "/.privacy/rotate-ae-id", "Cae1", None, "");
    assert!(spoof.contains("X-M2M-RSC: 4106"), "{spoof}");
    let get = as_sensor("GET", "/.privacy/rotate-ae-id", &new, None, "");
    assert!(get.contains("X-M2M-RSC: 4005"), "{get}");
    let content = as_sensor("POST", "/.privacy/rotate-ae-id", &new, None, "{}");
    assert!(content.contains("X-M2M-RSC: 4000"), "{content}");
    // Once per credential per `rotation_interval_secs` (an hour by default): a rotation
    // rewrites the whole tree, so an AE cannot keep the store busy with them.
    let soon = as_sensor("POST", "/.privacy/rotate-ae-id", &new, None, "");
    assert!(
        soon.contains("X-M2M-RSC: 4005") && soon.contains("less than 3600 s ago"),
        "{soon}"
    );
    let still = as_sensor("GET", &new_base, &new, None, "");
    assert!(still.contains("X-M2M-RSC: 2000"), "{still}");

    // Neither the log nor the audit log links the two pseudonyms; the admin can, by
    // resolving either one to the same credential.
    let audit = std::fs::read_to_string(s.server.data.join("audit.log")).expect("audit");
    let entry = audit
        .lines()
        .find(|l| l.contains("pseudonym-rotated"))
        .expect("an audit entry for the rotation");
    assert!(!entry.contains(&old) && !entry.contains(&new), "{entry}");
    let log = s.server.log_with("rotated its AE-ID");
    let line = log
        .lines()
        .find(|l| l.contains("rotated its AE-ID"))
        .expect("a log line");
    assert!(!line.contains(&old) && !line.contains(&new), "{line}");
    let admin_key = s.file("admin.psk");
    for pseudonym in [&old, &new] {
        let resolved = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                s.https(),
                "--psk-identity",
                "admin@secure-cse.example",
            ])
            .args(["--psk-key-file", &admin_key])
            .args(["privacy", "resolve", pseudonym, "--purpose", "audit 7"])
            .output()
            .expect("m2m");
        let text = String::from_utf8_lossy(&resolved.stdout).into_owned();
        assert!(resolved.status.success(), "{text}");
        assert!(text.contains(&format!("12-{identity}")), "{text}");
    }
}

/// `count` connections to `port` that send nothing, from 127.0.0.1 or spread over the
/// addresses of 127.0.0.0/8 (many clients, as far as the CSE can tell).
fn idle_connections(port: &str, count: usize, spread: bool) -> Vec<std::net::TcpStream> {
    let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut idle = Vec::with_capacity(count);
        for i in 0..count {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            if spread {
                let source =
                    std::net::Ipv4Addr::new(127, 1 + (i / 250) as u8, 0, 1 + (i % 250) as u8);
                socket
                    .bind((source, 0).into())
                    .expect("bind a loopback source address");
            }
            let tcp = socket.connect(target).await.expect("connect");
            idle.push(tcp.into_std().expect("std socket"));
        }
        idle
    })
}

#[test]
fn idle_connections_cost_real_clients_nothing() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    // The test's own sockets: up to 2,300 at once.
    cli::fd_limit::raise();
    // Idle TLS sockets are dropped after the handshake timeout: long enough here that they
    // are all still open when the real client comes.
    let s = Secure::start_with_handshake_timeout(30_000, |_| {});
    let plain_port = s.server.addr.rsplit(':').next().expect("port").to_owned();
    let plain_get = || {
        curl(&[
            &format!("{}/cse-in", s.server.url()),
            "-H",
            "X-M2M-Origin: C",
            "-H",
            "X-M2M-RI: idle",
            "-H",
            "X-M2M-RVI: 3",
            "--max-time",
            "8",
        ])
    };
    for (port, listener) in [(s.tls_port().to_owned(), "TLS"), (plain_port, "plaintext")] {
        let served = |what: &str| {
            let answer = if listener == "TLS" {
                s.curl_as("ae1", "/cse-in", "C", &["--max-time", "8"])
            } else {
                plain_get()
            };
            assert!(
                answer.contains("X-M2M-RSC: "),
                "{listener}, {what}: {answer}"
            );
        };
        // 300 from the client's own address (clients behind one NAT).
        let idle = idle_connections(&port, 300, false);
        served("beside 300 idle connections from its own address");
        drop(idle);
        // 2,000 from many addresses.
        let idle = idle_connections(&port, 2000, true);
        served("beside 2,000 idle connections from many addresses");
        drop(idle);
    }
}

/// Issue 9 H2: a copy of a certificate whose ECDSA signature is re-encoded (`s` -> `n - s`)
/// is the same credential. Admin suspension, resumption and revocation, a `31-` binding
/// and its withdrawal apply to the copy exactly as to the original; a withdrawal recorded
/// under the earlier whole-DER Credential-ID still refuses the encoding it names.
#[test]
fn a_re_encoded_certificate_is_the_same_credential() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let legacy = std::sync::Mutex::new(String::new());
    let s = Secure::start_after(|pki| {
        for (name, copy) in [("ae1", "ae1copy"), ("revoked", "revokedcopy")] {
            reencode_signature(
                &pki.join(format!("{name}.pem")),
                &pki.join("ca.pem"),
                &pki.join(format!("{copy}.pem")),
            );
            std::fs::copy(
                pki.join(format!("{name}.key")),
                pki.join(format!("{copy}.key")),
            )
            .expect("key");
        }
        // A device certificate naming no AE-ID, bound to Cdev by its Credential-ID.
        issue_client_certificate(pki, "dev", "/CN=dev", "URI:urn:dev:mac:0024befffe804ff1");
        let (_, copy) = reencode_signature(
            &pki.join("dev.pem"),
            &pki.join("ca.pem"),
            &pki.join("devcopy.pem"),
        );
        assert!(!copy.is_empty());
        std::fs::copy(pki.join("dev.key"), pki.join("devcopy.key")).expect("key");
        let digest = certificate_digest(&pki.join("dev.pem"));
        let mut creds = std::fs::read_to_string(pki.join("credentials.toml")).expect("creds");
        creds.push_str(&format!(
            "\n[[certificate]]\ncredential_id = \"31-{digest}\"\nae = \"Cdev\"\n"
        ));
        std::fs::write(pki.join("credentials.toml"), creds).expect("creds");
        // A certificate withdrawn under the earlier Credential-ID (SHA-256 of the whole DER).
        issue_client_certificate(
            pki,
            "old",
            "/CN=Cold",
            "URI://secure-cse.example/id-in/Cold",
        );
        let old = openssl::x509::X509::from_pem(&std::fs::read(pki.join("old.pem")).expect("pem"))
            .expect("cert")
            .to_der()
            .expect("der");
        let old_id = format!("33-{}", hex::encode(openssl::sha::sha256(&old)));
        let data = pki.parent().expect("dir").join("data");
        std::fs::create_dir_all(&data).expect("data");
        std::fs::write(
            data.join("revocations.jsonl"),
            format!("{{\"change\":\"withdraw\",\"credential\":\"{old_id}\",\"kind\":\"revoked\",\"reason\":\"recorded before the digest changed\",\"at\":1}}\n"),
        )
        .expect("journal");
        *legacy.lock().expect("lock") = old_id;
    });
    let answered = |who: &str| s.curl_as(who, "/cse-in", "C", &[]).contains("X-M2M-RSC");
    // A signature in BER instead of DER is refused by the stack in the handshake.
    ber_signature_copy(&s.pki.join("ae1.pem"), &s.pki.join("ae1ber.pem"));
    std::fs::copy(s.pki.join("ae1.key"), s.pki.join("ae1ber.key")).expect("key");
    assert!(!answered("ae1ber"), "a non-DER signature");
    let log = s
        .server
        .log_with("client certificate signature does not verify");
    assert!(
        log.contains("client certificate signature does not verify"),
        "{log}"
    );
    let ae1 = format!("33-{}", certificate_digest(&s.pki.join("ae1.pem")));
    assert_eq!(
        ae1,
        format!("33-{}", certificate_digest(&s.pki.join("ae1copy.pem"))),
        "one Credential-ID for both encodings"
    );
    assert!(answered("ae1") && answered("ae1copy"));
    // The CRL revokes by serial: the copy of a revoked certificate is refused as well.
    assert!(!answered("revoked") && !answered("revokedcopy"));

    let m2m_admin = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                s.https(),
                "--psk-identity",
                "admin@secure-cse.example",
                "--psk-key-file",
            ])
            .arg(s.pki.join("admin.psk"))
            .args(args)
            .output()
            .expect("m2m");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "m2m {args:?}: {text}");
        text
    };
    // Suspended: the original and the copy are refused; resumed: both are back.
    m2m_admin(&["credentials", "suspend", &ae1, "--reason", "audit"]);
    assert!(!answered("ae1"), "suspended original");
    assert!(!answered("ae1copy"), "suspended copy");
    m2m_admin(&["credentials", "resume", &ae1]);
    assert!(answered("ae1") && answered("ae1copy"));
    // Revoked: both refused, for good.
    m2m_admin(&["credentials", "revoke", &ae1, "--reason", "key compromise"]);
    assert!(!answered("ae1"), "revoked original");
    assert!(!answered("ae1copy"), "revoked copy");

    // A 31- binding binds the copy too, and its withdrawal withdraws the copy too.
    let dev = format!("31-{}", certificate_digest(&s.pki.join("dev.pem")));
    let as_dev = |who: &str| s.curl_as(who, "/cse-in/dev", "Cdev", &[]);
    let registered = s.curl_as(
        "dev",
        "/cse-in",
        "Cdev",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            r#"{"m2m:ae":{"rn":"dev","api":"Ndev","rr":false,"srv":["3"]}}"#,
        ],
    );
    assert!(registered.contains("X-M2M-RSC: 2001"), "{registered}");
    for who in ["dev", "devcopy"] {
        let answer = as_dev(who);
        assert!(
            answer.contains("X-M2M-RSC: 2000"),
            "{who} as Cdev: {answer}"
        );
    }
    m2m_admin(&["credentials", "revoke", &dev, "--reason", "device lost"]);
    assert!(!as_dev("dev").contains("X-M2M-RSC"));
    assert!(!as_dev("devcopy").contains("X-M2M-RSC"));

    // The earlier-form withdrawal still refuses the encoding it was recorded for.
    assert!(
        !answered("old"),
        "withdrawn under its earlier Credential-ID"
    );
    assert!(!legacy.lock().expect("lock").is_empty());
    // The copies and the originals were refused as withdrawn, never as unknown. Refusals are
    // logged once per source and reason (and at most four reasons per source) in a window,
    // so the log shows the first of each.
    let log = s.server.log_with("credential revoked");
    assert!(log.contains("credential suspended"), "{log}");
}

/// Issues `name.pem`/`name.key` from the test CA, an AE-ID certificate valid only until
/// `not_after` (seconds since the epoch): the openssl command line cannot set seconds.
fn issue_short_lived(pki: &std::path::Path, name: &str, ae: &str, not_after: i64) {
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{
        BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    };
    use openssl::x509::{X509Builder, X509NameBuilder, X509};
    let ca = X509::from_pem(&std::fs::read(pki.join("ca.pem")).expect("ca")).expect("ca");
    let ca_key = PKey::private_key_from_pem(&std::fs::read(pki.join("ca.key")).expect("key"))
        .expect("ca key");
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("key");
    let mut subject = X509NameBuilder::new().expect("name");
    subject.append_entry_by_text("CN", ae).expect("cn");
    let subject = subject.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_u32(rand_serial()).expect("serial");
    b.set_serial_number(Asn1Integer::from_bn(&serial).expect("serial").as_ref())
        .expect("serial");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("key");
    b.set_not_before(&Asn1Time::from_unix(not_after - 3600).expect("t"))
        .expect("not before");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("t"))
        .expect("not after");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
        .expect("eku");
    let san = SubjectAlternativeName::new()
        .uri(&format!("//secure-cse.example/id-in/{ae}"))
        .build(&b.x509v3_context(Some(&ca), None))
        .expect("san");
    b.append_extension(san).expect("san");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    std::fs::write(
        pki.join(format!("{name}.pem")),
        b.build().to_pem().expect("pem"),
    )
    .expect("write");
    std::fs::write(
        pki.join(format!("{name}.key")),
        key.private_key_to_pem_pkcs8().expect("key"),
    )
    .expect("write");
}

fn rand_serial() -> u32 {
    let mut bytes = [0u8; 4];
    openssl::rand::rand_bytes(&mut bytes).expect("rand");
    u32::from_be_bytes(bytes) | 1
}

impl Secure {
    /// One request through `openssl s_client` with a client certificate, saving the session
    /// to (or resuming it from) `session`; s_client's full output (it says "New" or
    /// "Reused") and whether an oneM2M answer came back.
    fn cert_session(&self, who: &str, tls: &str, session: (&str, &std::path::Path)) -> String {
        let connect = format!("127.0.0.1:{}", self.tls_port());
        let (cert, key, ca) = (
            self.file(&format!("{who}.pem")),
            self.file(&format!("{who}.key")),
            self.file("ca.pem"),
        );
        let mut child = Command::new("openssl")
            .args(["s_client", "-ign_eof", "-connect", &connect, tls])
            .args(["-cert", &cert, "-key", &key, "-CAfile", &ca])
            .arg(session.0)
            .arg(session.1)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("s_client");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(http_request("GET", "/cse-in", "C", None, "").as_bytes());
        }
        let out = child.wait_with_output().expect("s_client output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Issue 9, design choice: a resumed session is checked again. A certificate that expired
/// after its full handshake cannot resume its session (TLS 1.2 cache and TLS 1.3 ticket),
/// and the refusal says why.
#[test]
fn a_session_whose_certificate_expired_is_not_resumed() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    // In process, on a clock the test moves: the certificate (valid for an hour) expires
    // when the test advances the CSE's clock past it, however long start-up took.
    let clock = model::clock::ManualClock::new();
    let not_after = i64::try_from(clock.clock().unix()).expect("time") + 3600;
    let s = Secure::start_in_process(
        |pki| issue_short_lived(pki, "short", "Cshort", not_after),
        &clock,
    );
    let mut saved = Vec::new();
    for tls in ["-tls1_2", "-tls1_3"] {
        let session = s.pki.join(format!("short{tls}.sess"));
        let first = s.cert_session("short", tls, ("-sess_out", &session));
        assert!(
            first.contains("X-M2M-RSC") && first.contains("New,"),
            "{tls}: {first}"
        );
        saved.push((tls, session));
    }
    // Two hours on the CSE's clock: past notAfter, well within the sessions' lifetime.
    clock.advance(Duration::from_secs(7200));
    for (tls, session) in &saved {
        let again = s.cert_session("short", tls, ("-sess_in", session));
        assert!(
            again.contains("Reused,"),
            "{tls}: the session was offered and resumed: {again}"
        );
        assert!(
            !again.contains("X-M2M-RSC"),
            "{tls}: resumed after expiry: {again}"
        );
    }
    // Both refusals have the same source and reason: the log shows the first of the window.
    let log = s
        .server
        .log_with("resumed session: client certificate has expired");
    assert!(
        log.contains("resumed session: client certificate has expired"),
        "{log}"
    );
}

/// `session_lifetime_secs` bounds resumption: a session older than it is not resumed (the
/// client makes a full handshake instead), while a fresh one is. The session's age is
/// OpenSSL's own (its cache and ticket timeout read the real clock), so this runs against
/// the real binary and waits, bounded, for the condition: the saved session is no longer
/// resumed.
#[test]
fn sessions_live_no_longer_than_the_configured_lifetime() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let s = Secure::start_after(|pki| {
        let config = pki.join("cse.toml");
        let text = std::fs::read_to_string(&config).expect("cse.toml");
        std::fs::write(&config, text + "session_lifetime_secs = 1\n").expect("write");
    });
    let session = s.pki.join("ae1.sess");
    let first = s.cert_session("ae1", "-tls1_3", ("-sess_out", &session));
    assert!(
        first.contains("New,") && first.contains("X-M2M-RSC"),
        "{first}"
    );
    // Offer the saved session until the CSE answers with a full handshake; until then every
    // answer is a served resumption.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let old = loop {
        let again = s.cert_session("ae1", "-tls1_3", ("-sess_in", &session));
        if again.contains("New,") || std::time::Instant::now() > deadline {
            break again;
        }
        assert!(
            again.contains("Reused,") && again.contains("X-M2M-RSC"),
            "a young session is resumed and served: {again}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        old.contains("New,"),
        "an expired session is not resumed: {old}"
    );
    assert!(
        old.contains("X-M2M-RSC"),
        "the full handshake is served: {old}"
    );
}
