//! Certificate-based enrolment end to end (docs/security.md, "Certificate-based enrolment"):
//! a CSE made by `cse init`, a manufacturer CA and device certificates from the openssl
//! command, the device buying an AE-ID certificate at the MEF's device enrolment listener
//! with curl, then registering with it on the normal TLS listener; an untrusted device
//! certificate and a CSR naming another identity refused, nothing issued for them, and each
//! step in the log and the audit log. Then what each listener of such a CSE serves and
//! refuses, and a manufacturer's certificate that names the admin reaching nothing else.
use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CSE_NAME: &str = "id-in.secure-cse.example";
/// The device enrolment listener: after HTTP, HTTPS and cse init's MEF listener.
const DEVICE_LISTENER: usize = 3;

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
    make_device_with(dir, name, ca, "")
}

/// A device certificate signed by the CA with more extensions (`extra`, openssl extension
/// file lines): (certificate, key).
fn make_device_with(
    dir: &Path,
    name: &str,
    ca: &(PathBuf, PathBuf),
    extra: &str,
) -> (PathBuf, PathBuf) {
    let (key, csr) = make_csr(dir, name, &[]);
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!("keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n{extra}"),
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
            env!("CARGO_BIN_EXE_m2m"),
            &["credentials", "id", &s(&device.0)],
        );
        let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
            .trim()
            .to_owned();
        assert_eq!(fingerprint.len(), 64, "{fingerprint}");
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

    /// m2m over TLS-PSK to `listener`: its exit code and output.
    fn m2m_psk(&self, listener: usize, identity: &str, key: &str, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args([
                "--url",
                &format!("https://127.0.0.1:{}", self.port(listener)),
            ])
            .args(["--psk-identity", identity, "--psk-key-file"])
            .arg(self.dir.join(key))
            .args(args)
            .env_remove("M2M_URL")
            .env_remove("M2M_ORIGIN")
            .output()
            .expect("m2m");
        (out.status.code().unwrap_or(-1), text(&out))
    }

    /// A certificate for `ae_id` from the CSE's own CA (`m2m ca issue`): (certificate, key).
    fn issue(&self, name: &str, ae_id: &str) -> (PathBuf, PathBuf) {
        let (key, csr) = make_csr(&self.root, name, &[]);
        let pem = self.root.join(format!("{name}.pem"));
        // The CSE runs and holds the audit log: the issue is recorded there, over the admin's
        // association (`m2m ca` refuses to issue unaudited).
        let (code, out) = self.m2m_psk(
            1,
            "admin@secure-cse.example",
            "admin.psk",
            &[
                "ca",
                "--config",
                &s(&self.dir.join("cse.toml")),
                "issue",
                "--csr",
                &s(&csr),
                "--ae-id",
                ae_id,
                "--out",
                &s(&pem),
            ],
        );
        assert_eq!(code, 0, "m2m ca issue: {out}");
        (pem, key)
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
    if !(have_openssl() && have_curl()) {
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
    if !(have_openssl() && have_curl()) {
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
    if !(have_openssl() && have_curl()) {
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

/// The oneM2M headers of a request as `origin`, for curl.
fn as_origin(origin: &str, rqi: &str) -> Vec<String> {
    [
        format!("X-M2M-Origin: {origin}"),
        format!("X-M2M-RI: {rqi}"),
        "X-M2M-RVI: 3".to_owned(),
    ]
    .into_iter()
    .flat_map(|h| ["-H".to_owned(), h])
    .collect()
}

fn with(extra: &[String], more: &[&str]) -> Vec<String> {
    extra
        .iter()
        .cloned()
        .chain(more.iter().map(|m| (*m).to_owned()))
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const AE_BODY: &str = r#"{"m2m:ae":{"rn":"NAME","api":"Nsensor","rr":false,"srv":["3"]}}"#;

#[test]
fn a_manufacturer_certificate_naming_the_admin_reaches_enrolment_and_nothing_else() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let setup = Setup::start();
    let manufacturer = (
        setup.root.join("manufacturer-ca.pem"),
        setup.root.join("manufacturer-ca.key"),
    );
    let forged = make_device_with(
        &setup.root,
        "forged-admin",
        &manufacturer,
        "subjectAltName=URI://secure-cse.example/id-in/CAdmin\n",
    );
    let admin = (setup.dir.join("admin.pem"), setup.dir.join("admin.key"));
    let admin_id = {
        let listed = setup.curl(
            1,
            &admin,
            "/.admin/associations",
            &refs(&as_origin("CAdmin", "a0")),
        );
        assert!(listed.contains("X-M2M-RSC: 2000"), "{listed}");
        let der = run("openssl", &["x509", "-in", &s(&admin.0), "-outform", "DER"]).stdout;
        format!("33-{}", hex::encode(openssl::sha::sha256(&der)))
    };

    // The proof of the review: on the device listener, as CAdmin, list the associations,
    // suspend the real admin certificate, read the resource tree, rotate: each one 4005.
    let headers = as_origin("CAdmin", "f1");
    let listed = setup.curl(
        DEVICE_LISTENER,
        &forged,
        "/.admin/associations",
        &refs(&headers),
    );
    assert!(listed.contains("X-M2M-RSC: 4005"), "{listed}");
    assert!(!listed.contains("\"admin\":true"), "{listed}");
    let suspend = format!("/.admin/suspend?credential={admin_id}&reason=forged");
    let suspended = setup.curl(
        DEVICE_LISTENER,
        &forged,
        &suspend,
        &refs(&with(&headers, &["-X", "POST"])),
    );
    assert!(suspended.contains("X-M2M-RSC: 4005"), "{suspended}");
    let tree = setup.curl(DEVICE_LISTENER, &forged, "/cse-in?rcn=4", &refs(&headers));
    assert!(tree.contains("X-M2M-RSC: 4005"), "{tree}");
    let rotated = setup.curl(
        DEVICE_LISTENER,
        &forged,
        "/.privacy/rotate-ae-id",
        &refs(&with(&headers, &["-X", "POST"])),
    );
    assert!(rotated.contains("X-M2M-RSC: 4005"), "{rotated}");
    let log = setup.server.log_with("admin request refused");
    assert!(log.contains("device enrolment listener"), "{log}");
    // The manufacturer's CA is no trust anchor of the Mca listener: no handshake there.
    let mca = setup.curl(
        1,
        &forged,
        "/.admin/associations",
        &refs(&as_origin("CAdmin", "f2")),
    );
    assert!(!mca.contains("X-M2M-RSC"), "{mca}");

    // The operator's admin certificate still works, nothing was suspended, and the audit log
    // records no action by the forged certificate.
    let listed = setup.curl(
        1,
        &admin,
        "/.admin/associations",
        &refs(&as_origin("CAdmin", "a1")),
    );
    assert!(
        listed.contains("X-M2M-RSC: 2000") && listed.contains("\"admin\":true"),
        "{listed}"
    );
    let audit = setup.audit();
    assert!(!audit.contains("\"kind\":\"suspended\""), "{audit}");
    assert!(!audit.contains("admin-action"), "{audit}");
}

#[test]
fn each_listener_serves_only_what_it_is_for() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let setup = Setup::start();
    let plain = &setup.server.urls[0];
    let http = |path: &str, headers: &[String]| {
        let mut args = vec![format!("{plain}{path}")];
        args.extend(headers.iter().cloned());
        curl(&refs(&args))
    };

    // The TLS Mca listener, PSK: the device's PSK registers its AE; the admin's PSK is the
    // admin; the device's PSK is not (4106); no enrolment there (4107).
    let (code, out) = setup.m2m_psk(
        1,
        "device-1@secure-cse.example",
        "device-1.psk",
        &["register", "--api", "Nsensor", "--rn", "psk-ae"],
    );
    assert_eq!(code, 0, "{out}");
    let psk_ae = out
        .split("\"aei\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no aei: {out}"))
        .to_owned();
    let (code, out) = setup.m2m_psk(
        1,
        "admin@secure-cse.example",
        "admin.psk",
        &["associations"],
    );
    assert!(code == 0 && out.contains("\"admin\": true"), "{out}");
    let (code, out) = setup.m2m_psk(
        1,
        "device-1@secure-cse.example",
        "device-1.psk",
        &["associations"],
    );
    assert!(code == 1 && out.contains("4106"), "{out}");

    // The TLS Mca listener, certificates: an AE certificate registers; the admin certificate
    // cse init listed is the admin; a certificate the CSE's own CA issued for CAdmin but that
    // nobody listed as the admin's is not (4106).
    let ae = setup.issue("cert-ae", "Ccertae");
    let body = AE_BODY.replace("NAME", "cert-ae");
    let registered = setup.curl(
        1,
        &ae,
        "/cse-in",
        &refs(&with(
            &as_origin("C", "c1"),
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json;ty=2",
                "-d",
                &body,
            ],
        )),
    );
    assert!(registered.contains("X-M2M-RSC: 2001"), "{registered}");
    let admin = (setup.dir.join("admin.pem"), setup.dir.join("admin.key"));
    let listed = setup.curl(
        1,
        &admin,
        "/.admin/associations",
        &refs(&as_origin("CAdmin", "c2")),
    );
    assert!(listed.contains("X-M2M-RSC: 2000"), "{listed}");
    let unlisted = setup.issue("second-admin", "CAdmin");
    let refused = setup.curl(
        1,
        &unlisted,
        "/.admin/associations",
        &refs(&as_origin("CAdmin", "c3")),
    );
    assert!(refused.contains("X-M2M-RSC: 4106"), "{refused}");
    let enrol = setup.curl(
        1,
        &ae,
        "/.mef/enrol",
        &refs(&with(&as_origin("C", "c4"), &["-X", "POST", "-d", "{}"])),
    );
    assert!(enrol.contains("X-M2M-RSC: 4107"), "{enrol}");

    // The plaintext listener: an AE registered without a credential is served; the AE-IDs
    // bound to the PSK and to the certificate are refused (4107) for every operation, and
    // stay intact; the admin is refused (4106).
    let body = AE_BODY.replace("NAME", "plain-ae");
    let registered = http(
        "/cse-in",
        &with(
            &as_origin("C", "p1"),
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json;ty=2",
                "-d",
                &body,
            ],
        ),
    );
    assert!(registered.contains("X-M2M-RSC: 2001"), "{registered}");
    let plain_ae = body_json(&registered)["m2m:ae"]["aei"]
        .as_str()
        .expect("aei")
        .to_owned();
    assert!(http("/cse-in/plain-ae", &as_origin(&plain_ae, "p2")).contains("X-M2M-RSC: 2000"));
    let cnt = r#"{"m2m:cnt":{"rn":"c"}}"#;
    for (id, path) in [
        (psk_ae.as_str(), "/cse-in/psk-ae"),
        ("Ccertae", "/cse-in/cert-ae"),
    ] {
        for (what, extra) in [
            ("GET", vec![]),
            (
                "PUT",
                vec![
                    "-X",
                    "PUT",
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    r#"{"m2m:ae":{"lbl":["x"]}}"#,
                ],
            ),
            (
                "POST",
                vec![
                    "-X",
                    "POST",
                    "-H",
                    "Content-Type: application/json;ty=3",
                    "-d",
                    cnt,
                ],
            ),
            ("DELETE", vec!["-X", "DELETE"]),
        ] {
            let r = http(path, &with(&as_origin(id, "p3"), &extra));
            assert!(r.contains("X-M2M-RSC: 4107"), "{what} as {id}: {r}");
        }
    }
    let r = http("/.admin/associations", &as_origin("CAdmin", "p4"));
    assert!(r.contains("X-M2M-RSC: 4106"), "{r}");
    // What the plaintext listener exposes was in the start-up log.
    let log = setup.server.log_with("plaintext listener");
    assert!(
        log.contains("refuses AEs bound to a credential (4107)")
            && log.contains("the admin originator is refused on it"),
        "{log}"
    );
    let log = setup.server.log_with("bound to a credential");
    assert!(log.contains("rsc=4107"), "{log}");
    let (code, out) = setup.m2m_psk(
        1,
        "device-1@secure-cse.example",
        "device-1.psk",
        &["--origin", &psk_ae, "retrieve", "cse-in/psk-ae"],
    );
    assert!(code == 0 && !out.contains("lbl"), "{out}");
    let after = setup.curl(
        1,
        &ae,
        "/cse-in/cert-ae",
        &refs(&as_origin("Ccertae", "c5")),
    );
    assert!(after.contains("X-M2M-RSC: 2000"), "{after}");

    // The PSK enrolment listener: the enrolee key enrols, and reaches nothing else (4005).
    for args in [
        &["associations"][..],
        &["--origin", "C", "retrieve", "cse-in"][..],
        &["--origin", "Cx", "privacy", "rotate"][..],
    ] {
        let (code, out) = setup.m2m_psk(2, "device-1@mef.secure-cse.example", "device-1.kpm", args);
        assert!(code == 1 && out.contains("4005"), "{args:?}: {out}");
    }
    let enrolled = setup.root.join("enrolled");
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args([
            "--url",
            &format!("https://127.0.0.1:{}", setup.port(2)),
            "enrol",
        ])
        .args([
            "--enrolee-identity",
            "device-1@mef.secure-cse.example",
            "--enrolee-key-file",
        ])
        .arg(setup.dir.join("device-1.kpm"))
        .arg("--out")
        .arg(&enrolled)
        .env_remove("M2M_URL")
        .env_remove("M2M_ORIGIN")
        .output()
        .expect("m2m enrol");
    assert!(out.status.success(), "{}", text(&out));

    // The device enrolment listener: the device certificate enrols, and reaches nothing else.
    let (_, csr) = make_csr(&setup.root, "dev42-ae", &[]);
    let enrolled = setup.enrol(&setup.device, &csr);
    assert!(enrolled.contains("X-M2M-RSC: 2001"), "{enrolled}");
    for (path, method) in [
        ("/.admin/associations", "GET"),
        ("/cse-in", "GET"),
        ("/.privacy/rotate-ae-id", "POST"),
        ("/.maf/keys", "POST"),
        ("/.mef/fetch-credentials", "POST"),
    ] {
        let r = setup.curl(
            DEVICE_LISTENER,
            &setup.device,
            path,
            &refs(&with(&as_origin("Cdev42", "d1"), &["-X", method])),
        );
        assert!(r.contains("X-M2M-RSC: 4005"), "{path}: {r}");
    }
}
