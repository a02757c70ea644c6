//! Certificate-based enrolment end to end (docs/security.md, "Certificate-based enrolment"):
//! a CSE made by `cse init`, a manufacturer CA and device certificates from the openssl
//! command, the device buying an AE-ID certificate at the MEF's device enrolment listener
//! with curl, then registering with it on the normal TLS listener; an untrusted device
//! certificate and a CSR naming another identity refused, nothing issued for them, and each
//! step in the log and the audit log.
mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CSE_NAME: &str = "id-in.secure-cse.example";
/// The device enrolment listener: after HTTP, HTTPS and cse init's MEF listener.
const DEVICE_LISTENER: usize = 3;

fn have_tools() -> bool {
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

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    out
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A self-signed P-256 CA: (certificate, key).
fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (pem, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-keyout",
            &s(&key),
            "-out",
            &s(&pem),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (pem, key)
}

/// A P-256 key and a CSR for it, with `-addext` arguments: (key, csr).
fn make_csr(dir: &Path, name: &str, ext: &[&str]) -> (PathBuf, PathBuf) {
    let (key, csr) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    let mut args = vec![
        "req".to_owned(),
        "-new".into(),
        "-newkey".into(),
        "ec".into(),
        "-pkeyopt".into(),
        "ec_paramgen_curve:P-256".into(),
        "-nodes".into(),
        "-subj".into(),
        format!("/CN={name}"),
        "-keyout".into(),
        s(&key),
        "-out".into(),
        s(&csr),
    ];
    for e in ext {
        args.extend(["-addext".to_owned(), (*e).to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("openssl", &args);
    (key, csr)
}

/// A device certificate signed by the CA: (certificate, key).
fn make_device(dir: &Path, name: &str, ca: &(PathBuf, PathBuf)) -> (PathBuf, PathBuf) {
    let (key, csr) = make_csr(dir, name, &[]);
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .expect("ext file");
    let pem = dir.join(format!("{name}.pem"));
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &s(&csr),
            "-CA",
            &s(&ca.0),
            "-CAkey",
            &s(&ca.1),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&pem),
        ],
    );
    (pem, key)
}

/// The CA's CRL (PEM, `dir/manufacturer.crl`) made again with `openssl ca`, now also
/// revoking `revoked`.
fn make_crl(dir: &Path, ca: &(PathBuf, PathBuf), revoked: &Path) -> PathBuf {
    let (config, index) = (dir.join("crl.cnf"), dir.join("index.txt"));
    if !index.exists() {
        std::fs::write(&index, "").expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
    }
    std::fs::write(
        &config,
        format!(
            "[ca]\ndefault_ca = m\n[m]\ndatabase = {}\ncrlnumber = {}\ndefault_md = sha256\ndefault_crl_days = 30\n",
            s(&index),
            s(&dir.join("crlnumber"))
        ),
    )
    .expect("crl.cnf");
    let (config, key, cert) = (s(&config), s(&ca.1), s(&ca.0));
    let ca_cmd = |more: &[&str]| {
        let mut args = vec!["ca", "-config", &config, "-keyfile", &key, "-cert", &cert];
        args.extend(more);
        run("openssl", &args);
    };
    ca_cmd(&["-revoke", &s(revoked)]);
    let crl = dir.join("manufacturer.crl");
    ca_cmd(&["-gencrl", "-out", &s(&crl)]);
    crl
}

struct Setup {
    _root: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    server: Server,
    device: (PathBuf, PathBuf),
    rogue: (PathBuf, PathBuf),
    /// A device of the manufacturer whose certificate the manufacturer's CRL revokes.
    revoked: (PathBuf, PathBuf),
}

impl Setup {
    fn start() -> Self {
        let root_dir = tempfile::tempdir().expect("tmp");
        let root = root_dir.path().to_owned();
        let dir = root.join("cse");
        let init = Command::new(env!("CARGO_BIN_EXE_cse"))
            .args([
                "init",
                &s(&dir),
                "--http",
                "127.0.0.1:0",
                "--https",
                "127.0.0.1:0",
                "--enrolment",
                "127.0.0.1:0",
            ])
            .output()
            .expect("cse init");
        assert!(init.status.success(), "{}", text(&init));
        let manufacturer = make_ca(&root, "manufacturer-ca");
        let other = make_ca(&root, "other-ca");
        let device = make_device(&root, "device-42", &manufacturer);
        let rogue = make_device(&root, "rogue", &other);
        let revoked = make_device(&root, "device-43", &manufacturer);
        let crl = make_crl(&root, &manufacturer, &revoked.0);
        let fingerprint = run(
            "openssl",
            &[
                "x509",
                "-in",
                &s(&device.0),
                "-noout",
                "-fingerprint",
                "-sha256",
            ],
        );
        let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
            .split('=')
            .nth(1)
            .expect("a fingerprint")
            .trim()
            .to_owned();
        // cse init's [enrolment] (the MEF) gets the device enrolment listener too.
        let config = std::fs::read_to_string(dir.join("cse.toml")).expect("cse.toml");
        assert!(config.contains("\n[enrolment]"), "{config}");
        let mut config = config.replacen(
            "\n[enrolment]",
            &format!(
                "\n[enrolment]\ndevice_listen = \"127.0.0.1:0\"\ndevice_cas = [\"{}\"]\ndevice_crls = [\"{}\"]\ndevice_days = 30\n",
                s(&manufacturer.0),
                s(&crl)
            ),
            1,
        );
        config.push_str(&format!(
            "\n[[enrolment.device]]\nfingerprint = \"{fingerprint}\"\nae_id = \"Cdev42\"\n"
        ));
        std::fs::write(dir.join("cse.toml"), config).expect("cse.toml");
        let server = Server::start_listeners(
            &dir.join("data"),
            &["--config", &s(&dir.join("cse.toml"))],
            4,
        );
        Self {
            _root: root_dir,
            root,
            dir,
            server,
            device,
            rogue,
            revoked,
        }
    }

    fn port(&self, listener: usize) -> String {
        self.server.urls[listener]
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// curl to the CSE by name on `listener`, with a client certificate.
    fn curl(
        &self,
        listener: usize,
        cert: &(PathBuf, PathBuf),
        path: &str,
        extra: &[&str],
    ) -> String {
        let port = self.port(listener);
        let resolve = format!("{CSE_NAME}:{port}:127.0.0.1");
        let url = format!("https://{CSE_NAME}:{port}{path}");
        let (c, k) = (s(&cert.0), s(&cert.1));
        let ca = s(&self.dir.join("ca/ca.pem"));
        let mut args = vec![
            "--resolve",
            &resolve,
            "--cacert",
            &ca,
            "--cert",
            &c,
            "--key",
            &k,
            &url,
        ];
        args.extend(extra);
        curl(&args)
    }

    /// POST /.mef/certificate with a CSR file, over the device enrolment listener.
    fn enrol(&self, cert: &(PathBuf, PathBuf), csr: &Path) -> String {
        let body = format!("@{}", s(csr));
        self.curl(
            DEVICE_LISTENER,
            cert,
            "/.mef/certificate",
            &[
                "-X",
                "POST",
                "-H",
                "X-M2M-RI: enrol-1",
                "-H",
                "Content-Type: application/pkcs10",
                "--data-binary",
                &body,
            ],
        )
    }

    fn ca_list(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(["ca", "--config", &s(&self.dir.join("cse.toml")), "list"])
            .env_remove("M2M_URL")
            .env_remove("M2M_ORIGIN")
            .output()
            .expect("m2m");
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.dir.join("data/audit.log")).unwrap_or_default()
    }
}

fn body_json(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[test]
fn a_device_certificate_buys_an_ae_certificate_and_registers_with_it() {
    if !have_tools() {
        return;
    }
    let setup = Setup::start();
    let (ae_key, ae_csr) = make_csr(&setup.root, "ae", &[]);
    let before = setup.ca_list();
    let answer = setup.enrol(&setup.device, &ae_csr);
    assert!(answer.contains("X-M2M-RSC: 2001"), "{answer}");
    let rsp = &body_json(&answer)["m2m:certRsp"];
    assert_eq!(rsp["aeId"], "Cdev42", "{answer}");
    let serial = rsp["serial"].as_str().expect("serial").to_owned();
    let pem = rsp["certificate"].as_str().expect("certificate");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{answer}");
    let ae_pem = setup.root.join("ae.pem");
    std::fs::write(&ae_pem, pem).expect("ae.pem");

    // The CA recorded it; the audit log has both events, the log the issue.
    let after = setup.ca_list();
    assert!(
        !before.contains(&serial) && after.contains(&serial),
        "{after}"
    );
    let audit = setup.audit();
    assert!(audit.contains("\"kind\":\"enrolled\""), "{audit}");
    assert!(
        audit.contains(&format!("\"serial\":\"{serial}\"")) && audit.contains("Cdev42"),
        "{audit}"
    );
    let log = setup.server.log_with("issued a service-layer certificate");
    assert!(log.contains("issued a service-layer certificate"), "{log}");

    // The new certificate on the normal TLS listener: the AE-ID comes from it.
    let registered = setup.curl(
        1,
        &(ae_pem, ae_key),
        "/cse-in",
        &[
            "-X",
            "POST",
            "-H",
            "X-M2M-Origin: C",
            "-H",
            "X-M2M-RI: r1",
            "-H",
            "X-M2M-RVI: 3",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            r#"{"m2m:ae":{"rn":"dev42","api":"Nsensor","rr":false,"srv":["3"]}}"#,
        ],
    );
    assert!(
        registered.contains("X-M2M-RSC: 2001") && registered.contains("\"aei\":\"Cdev42\""),
        "{registered}"
    );

    // The device certificate is no AE credential on the normal listener.
    let as_device = setup.curl(
        1,
        &setup.device,
        "/cse-in",
        &[
            "-H",
            "X-M2M-Origin: Cdev42",
            "-H",
            "X-M2M-RI: r2",
            "-H",
            "X-M2M-RVI: 3",
        ],
    );
    assert!(!as_device.contains("X-M2M-RSC: 2000"), "{as_device}");
}

#[test]
fn an_untrusted_device_and_a_csr_for_another_identity_are_refused() {
    if !have_tools() {
        return;
    }
    let setup = Setup::start();
    let before = setup.ca_list();

    // A device certificate of a CA that is not a configured manufacturer CA: no handshake.
    let (_, csr) = make_csr(&setup.root, "plain", &[]);
    let refused = setup.enrol(&setup.rogue, &csr);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");
    let log = setup.server.log_with("not issued by a trust anchor");
    assert!(log.contains("not issued by a trust anchor"), "{log}");

    // A device certificate its manufacturer revoked: no handshake either.
    let refused = setup.enrol(&setup.revoked, &csr);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");
    let log = setup.server.log_with("client certificate is revoked");
    assert!(log.contains("client certificate is revoked"), "{log}");

    // A CSR that names another AE-ID than the one the device may get: 4103.
    let (_, other) = make_csr(
        &setup.root,
        "other",
        &["subjectAltName=URI:onem2m://secure-cse.example/id-in/Cother"],
    );
    let mismatch = setup.enrol(&setup.device, &other);
    assert!(mismatch.contains("X-M2M-RSC: 4103"), "{mismatch}");
    assert!(mismatch.contains("Cother"), "{mismatch}");
    let log = setup.server.log_with("certificate enrolment refused");
    assert!(log.contains("rsc=4103"), "{log}");

    // Something that is not a CSR: 4000.
    let junk = setup.root.join("junk.csr");
    std::fs::write(&junk, "not a CSR").expect("junk");
    let bad = setup.enrol(&setup.device, &junk);
    assert!(bad.contains("X-M2M-RSC: 4000"), "{bad}");

    // A oneM2M request over the device enrolment listener: 4005.
    let onem2m = setup.curl(
        DEVICE_LISTENER,
        &setup.device,
        "/cse-in",
        &[
            "-H",
            "X-M2M-Origin: Cdev42",
            "-H",
            "X-M2M-RI: r3",
            "-H",
            "X-M2M-RVI: 3",
        ],
    );
    assert!(onem2m.contains("X-M2M-RSC: 4005"), "{onem2m}");

    // The enrolment request over plain HTTP: 4107.
    let body = format!("@{}", s(&csr));
    let plain = curl(&[
        &format!("{}/.mef/certificate", setup.server.urls[0]),
        "-X",
        "POST",
        "-H",
        "X-M2M-RI: enrol-plain",
        "--data-binary",
        &body,
    ]);
    assert!(plain.contains("X-M2M-RSC: 4107"), "{plain}");

    // Nothing issued: the CA's records and the audit log have no new certificate.
    assert_eq!(setup.ca_list(), before);
    let audit = setup.audit();
    assert!(!audit.contains("\"kind\":\"enrolled\""), "{audit}");
    assert!(!audit.contains("Cother"), "{audit}");
    assert!(audit.contains("association-refused"), "{audit}");

    // The manufacturer revokes device-42 as well: a new CRL, re-read without a restart
    // (SIGHUP, as `m2m reload-tls`), and device-42 is refused from then on.
    let manufacturer = (
        setup.root.join("manufacturer-ca.pem"),
        setup.root.join("manufacturer-ca.key"),
    );
    make_crl(&setup.root, &manufacturer, &setup.device.0);
    let hup = Command::new("kill")
        .args(["-HUP", &setup.server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    let log = setup
        .server
        .log_with("TLS listener reloaded listener=device-enrolment");
    assert!(
        log.contains("TLS listener reloaded listener=device-enrolment"),
        "{log}"
    );
    let (_, csr) = make_csr(&setup.root, "after", &[]);
    let refused = setup.enrol(&setup.device, &csr);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");
}

#[test]
fn m2m_enrol_cert_writes_a_key_and_a_certificate_that_register() {
    if !have_tools() {
        return;
    }
    let setup = Setup::start();
    let (key, cert) = (setup.root.join("m2m.key"), setup.root.join("m2m.pem"));
    let url = format!("https://127.0.0.1:{}", setup.port(DEVICE_LISTENER));
    let m2m = |device: &(PathBuf, PathBuf), key: &Path, cert: &Path| {
        Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(["--url", &url, "--cacert", &s(&setup.dir.join("ca/ca.pem"))])
            .args(["--servername", CSE_NAME, "enrol-cert"])
            .args([
                "--device-cert",
                &s(&device.0),
                "--device-key",
                &s(&device.1),
            ])
            .args(["--key-out", &s(key), "--cert-out", &s(cert)])
            .env_remove("M2M_URL")
            .env_remove("M2M_ORIGIN")
            .output()
            .expect("m2m")
    };
    let out = m2m(&setup.device, &key, &cert);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Cdev42"), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    }
    let registered = setup.curl(
        1,
        &(cert.clone(), key.clone()),
        "/cse-in",
        &[
            "-X",
            "POST",
            "-H",
            "X-M2M-Origin: C",
            "-H",
            "X-M2M-RI: r1",
            "-H",
            "X-M2M-RVI: 3",
            "-H",
            "Content-Type: application/json;ty=2",
            "-d",
            r#"{"m2m:ae":{"rn":"dev42","api":"Nsensor","rr":false,"srv":["3"]}}"#,
        ],
    );
    assert!(
        registered.contains("X-M2M-RSC: 2001") && registered.contains("\"aei\":\"Cdev42\""),
        "{registered}"
    );

    // The untrusted device: no answer (exit 3), no key written.
    let (key2, cert2) = (setup.root.join("r.key"), setup.root.join("r.pem"));
    let out = m2m(&setup.rogue, &key2, &cert2);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("unknown ca") && !text(&out).contains("Broken pipe"),
        "the MEF's reason, as documented: {}",
        text(&out)
    );
    assert!(!key2.exists() && !cert2.exists());
    // An existing key file is not replaced (exit 2).
    let out = m2m(&setup.device, &key, &cert);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
