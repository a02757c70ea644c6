//! `cse init` and `m2m ca` end to end: a secure CSE made by one command, started from its
//! `cse.toml`, a device registered over its PSK, the admin over its certificate, a second AE
//! certified by `m2m ca` from an openssl CSR and then revoked while the CSE runs, and the
//! audit log verified.
use crate::common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SP: &str = "secure-cse.example";
const CSE_NAME: &str = "id-in.secure-cse.example";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn cse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(args)
        .output()
        .expect("cse")
}

fn m2m(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(args)
        .env_remove("M2M_URL")
        .env_remove("M2M_ORIGIN")
        .output()
        .expect("m2m")
}

fn openssl(args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    out
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Starts the CSE that [`init`] wrote into `dir` and waits for its three listeners.
fn start(dir: &Path) -> Server {
    Server::start_listeners(
        &dir.join("data"),
        &["--config", &s(&dir.join("cse.toml"))],
        3,
    )
}

/// The port of a listener URL.
fn port_of(url: &str) -> String {
    url.rsplit(':').next().unwrap_or_default().to_owned()
}

/// `cse init DIR` on ephemeral ports; the directory.
fn init(root: &Path) -> PathBuf {
    let dir = root.join("cse");
    let out = cse(&[
        "init",
        &s(&dir),
        "--http",
        "127.0.0.1:0",
        "--https",
        "127.0.0.1:0",
        "--enrolment",
        "127.0.0.1:0",
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    // What it made, and that it says so; the CA key's level is below the default policy.
    for file in [
        "cse.toml",
        "credentials.toml",
        "ca/ca.pem",
        "ca/ca.crl",
        "cse.pem",
        "admin.pem",
        "device-1.psk",
        "device-1.kpm",
        "enrolees.toml",
        "data/audit.log",
    ] {
        assert!(dir.join(file).exists(), "{file} missing; {report}");
        assert!(
            report.contains(&s(&dir.join(file))),
            "{file} not reported; {report}"
        );
    }
    assert!(
        report.contains("WARNING") && report.contains("level 1"),
        "{report}"
    );
    assert!(
        report.contains("m2m --url https://"),
        "next steps: {report}"
    );
    assert!(
        report.contains(&format!(
            "enrol --enrolee-identity device-1@mef.{SP} \\\n    --enrolee-key-file {}",
            s(&dir.join("device-1.kpm"))
        )),
        "the enrol step: {report}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in [
            "credentials.toml",
            "device-1.psk",
            "device-1.kpm",
            "enrolees.toml",
            "admin.psk",
            "admin.key",
            "keystore.kek",
        ] {
            let mode = std::fs::metadata(dir.join(secret))
                .expect("secret file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{secret} is readable by others: {mode:o}");
        }
    }
    // No secret on standard output.
    for key in ["device-1.psk", "device-1.kpm"] {
        let key = std::fs::read_to_string(dir.join(key)).expect("key");
        assert_eq!(key.trim().len(), 64, "32 bytes in hex");
        assert!(!report.contains(key.trim()), "the report shows a key");
    }
    dir
}

#[test]
fn init_start_register_certify_revoke_and_verify_the_audit_log() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    let mut server = start(&dir);
    let https = server.urls[1].clone();
    let port = port_of(&https);

    // The first device registers over its PSK; the CSE assigns its AE-ID.
    let device = m2m(&[
        "--url",
        &https,
        "--psk-identity",
        &format!("device-1@{SP}"),
        "--psk-key-file",
        &s(&dir.join("device-1.psk")),
        "register",
        "--api",
        "Nsensor",
        "--rn",
        "sensor-1",
    ]);
    assert!(device.status.success(), "{}", text(&device));
    assert!(text(&device).contains("2001"), "{}", text(&device));

    // The admin lists the associations over its certificate.
    let admin: Vec<String> = vec![
        "--url".into(),
        https.clone(),
        "--servername".into(),
        CSE_NAME.into(),
        "--cacert".into(),
        s(&dir.join("ca/ca.pem")),
        "--cert".into(),
        s(&dir.join("admin.pem")),
        "--key".into(),
        s(&dir.join("admin.key")),
    ];
    let with_admin = |extra: &[&str]| {
        let mut args: Vec<&str> = admin.iter().map(String::as_str).collect();
        args.extend(extra);
        m2m(&args)
    };
    let listed = with_admin(&["associations"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("33-"), "{}", text(&listed));

    // A second AE: a CSR from the openssl command, certified by m2m ca while the CSE runs.
    let ae2_key = root.path().join("ae2.key");
    let ae2_csr = root.path().join("ae2.csr");
    let ae2_pem = root.path().join("ae2.pem");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=ae2",
        "-keyout",
        &s(&ae2_key),
        "-out",
        &s(&ae2_csr),
    ]);
    let config = s(&dir.join("cse.toml"));
    // Without --url the running CSE cannot be told, so nothing would audit the issue: refused
    // before anything is issued.
    let unaudited = m2m(&[
        "ca",
        "--config",
        &config,
        "issue",
        "--csr",
        &s(&ae2_csr),
        "--ae-id",
        "Cae2",
        "--out",
        &s(&ae2_pem),
    ]);
    let report = text(&unaudited);
    assert_eq!(unaudited.status.code(), Some(2), "{report}");
    assert!(
        report.contains("--url") && report.contains("nothing was done"),
        "{report}"
    );
    assert!(!ae2_pem.exists(), "nothing issued: {report}");
    let listed = m2m(&["ca", "--config", &config, "list"]);
    assert!(!text(&listed).contains("Cae2"), "{}", text(&listed));
    // The CSE holds its audit log; told through its admin interface, it records the issue.
    let issued = with_admin(&[
        "ca",
        "--config",
        &config,
        "issue",
        "--csr",
        &s(&ae2_csr),
        "--ae-id",
        "Cae2",
        "--out",
        &s(&ae2_pem),
    ]);
    let report = text(&issued);
    assert!(issued.status.success(), "{report}");
    assert!(report.contains("held by the running CSE"), "{report}");
    assert!(
        report.contains("the running CSE recorded the issue"),
        "{report}"
    );
    let serial = report
        .split("serial ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("the serial in the report")
        .to_owned();

    let curl_ae2_as = |cert: &std::path::Path| {
        let resolve = format!("{CSE_NAME}:{port}:127.0.0.1");
        let url = format!("https://{CSE_NAME}:{port}/cse-in");
        curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            &s(&dir.join("ca/ca.pem")),
            "--cert",
            &s(cert),
            "--key",
            &s(&ae2_key),
            &url,
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
            r#"{"m2m:ae":{"rn":"ae2","api":"Nsensor","rr":false,"srv":["3"]}}"#,
        ])
    };
    let curl_ae2 = || curl_ae2_as(&ae2_pem);
    let registered = curl_ae2();
    assert!(
        registered.contains("X-M2M-RSC: 2001") && registered.contains("\"aei\":\"Cae2\""),
        "{registered}"
    );

    // Revoked with m2m ca, and the running CSE told at once: the next handshake is refused.
    let mut revoke = vec!["ca", "--config", &config, "revoke", &serial];
    revoke.extend(["--reason", "key-compromise"]);
    let revoked = with_admin(&revoke);
    let report = text(&revoked);
    assert!(revoked.status.success(), "{report}");
    assert!(report.contains("the CSE applied it at once"), "{report}");
    assert!(report.contains(&s(&dir.join("ca/ca.crl"))), "{report}");
    let refused = curl_ae2();
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");
    // Issue 9 H2: a copy with a re-encoded signature is the same credential, refused at
    // once too (the CSE has not re-read the CRL).
    let copy = root.path().join("ae2copy.pem");
    reencode_signature(&ae2_pem, &dir.join("ca/ca.pem"), &copy);
    let refused = curl_ae2_as(&copy);
    assert!(!refused.contains("X-M2M-RSC"), "the copy: {refused}");
    // The new CRL lists it.
    let crl = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &s(&dir.join("ca/ca.crl")),
        "-noout",
        "-text",
    ]);
    assert!(
        String::from_utf8_lossy(&crl.stdout).contains(&serial),
        "{}",
        text(&crl)
    );
    let list = m2m(&["ca", "--config", &config, "list"]);
    assert!(
        text(&list)
            .lines()
            .any(|l| l.starts_with(&serial) && l.contains("revoked")),
        "{}",
        text(&list)
    );

    // With the CSE stopped, m2m ca writes its events to the audit log itself.
    server.kill9();
    let ae3_pem = root.path().join("ae3.pem");
    let issued = m2m(&[
        "ca",
        "--config",
        &config,
        "issue",
        "--csr",
        &s(&ae2_csr),
        "--ae-id",
        "Cae3",
        "--out",
        &s(&ae3_pem),
    ]);
    assert!(issued.status.success(), "{}", text(&issued));
    assert!(text(&issued).contains("audit log"), "{}", text(&issued));

    let log = s(&dir.join("data/audit.log"));
    let verified = m2m(&[
        "audit",
        "verify",
        &log,
        "--public-key",
        &s(&dir.join("audit.pub.pem")),
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    let tail = m2m(&["audit", "tail", &log, "-n", "1000", "--json"]);
    let entries = text(&tail);
    let fingerprint = certificate_digest(&ae2_pem);
    for ae in ["/id-in/Cae2", "/id-in/Cae3"] {
        assert!(
            entries
                .lines()
                .any(|l| l.contains("\"certificate-issued\"") && l.contains(ae)),
            "{ae} in {entries}"
        );
    }
    assert!(
        entries
            .lines()
            .any(|l| l.contains("\"revoked\"") && l.contains(&format!("33-{fingerprint}"))),
        "{entries}"
    );
    assert!(
        entries.lines().any(
            |l| l.contains("\"credential-issued\"") && l.contains(&format!("12-device-1@{SP}"))
        ),
        "{entries}"
    );
}

#[test]
fn init_leaves_no_plaintext_listener_and_lists_its_admin_certificate() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("cse");
    let out = cse(&[
        "init",
        &s(&dir),
        "--https",
        "127.0.0.1:0",
        "--enrolment",
        "127.0.0.1:0",
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("plaintext on"), "{report}");
    let config = std::fs::read_to_string(dir.join("cse.toml")).expect("cse.toml");
    assert!(config.contains("[http]\nenabled = false"), "{config}");
    // The admin certificate is the admin because the credential file says so.
    let admin_id = report
        .lines()
        .find(|l| l.starts_with("admin cert"))
        .and_then(|l| l.split("Credential-ID ").nth(1))
        .map(|id| id.trim_end_matches(')').to_owned())
        .unwrap_or_else(|| panic!("no admin Credential-ID: {report}"));
    let credentials = std::fs::read_to_string(dir.join("credentials.toml")).expect("credentials");
    assert!(
        credentials.contains(&format!(
            "[[certificate]]\ncredential_id = \"{admin_id}\"\nae = \"CAdmin\"\nadmin = true"
        )),
        "{credentials}"
    );
    // Started, it listens on TLS only (the test harness's --http does not turn it on).
    let server = Server::start_listeners(
        &dir.join("data"),
        &["--config", &s(&dir.join("cse.toml"))],
        2,
    );
    assert!(
        server.urls.iter().all(|u| u.starts_with("https://")),
        "{:?}",
        server.urls
    );
    assert!(!server.log().contains("plaintext listener"));
}

#[test]
fn init_refuses_a_directory_that_is_not_empty() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("taken");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(dir.join("cse.toml"), "# mine\n").expect("write");
    let out = cse(&["init", &s(&dir)]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("cse.toml")).expect("read"),
        "# mine\n",
        "untouched"
    );
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
}

#[test]
fn a_csr_naming_another_identity_is_refused() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    let key = root.path().join("m.key");
    let csr = root.path().join("m.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=mallory",
        "-addext",
        &format!("subjectAltName=URI:onem2m://{SP}/id-in/Cmallory"),
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    let out_pem = root.path().join("m.pem");
    let config = s(&dir.join("cse.toml"));
    let out = m2m(&[
        "ca",
        "--config",
        &config,
        "issue",
        "--csr",
        &s(&csr),
        "--ae-id",
        "Cae2",
        "--out",
        &s(&out_pem),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Cmallory"), "{}", text(&out));
    assert!(!out_pem.exists(), "nothing issued");
    let list = m2m(&["ca", "--config", &config, "list"]);
    assert!(!text(&list).contains("Cae2"), "{}", text(&list));
}

/// The admin's TLS flags (client certificate) for `m2m` against `https`.
fn admin_flags(dir: &Path, https: &str) -> Vec<String> {
    vec![
        "--url".into(),
        https.to_owned(),
        "--servername".into(),
        CSE_NAME.into(),
        "--cacert".into(),
        s(&dir.join("ca/ca.pem")),
        "--cert".into(),
        s(&dir.join("admin.pem")),
        "--key".into(),
        s(&dir.join("admin.key")),
    ]
}

fn m2m_with(flags: &[String], extra: &[&str]) -> Output {
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(extra);
    m2m(&args)
}

/// The issue's "Done when", as docs/security.md ("Bootstrapping a secure CSE") shows it:
/// `cse init`, start, enrol with the pre-provisioned key, register over the derived PSK,
/// revoke that credential as the admin, the next handshake refused, the audit log verified.
#[test]
fn init_enrol_register_revoke_and_verify_the_audit_log() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    let mut server = start(&dir);
    let (https, mef) = (server.urls[1].clone(), server.urls[2].clone());

    // m2m enrol with the pre-provisioned enrolee key cse init made for the device.
    let device = root.path().join("device-1");
    let enrolled = m2m(&[
        "--url",
        &mef,
        "enrol",
        "--enrolee-identity",
        &format!("device-1@mef.{SP}"),
        "--enrolee-key-file",
        &s(&dir.join("device-1.kpm")),
        "--out",
        &s(&device),
    ]);
    assert!(enrolled.status.success(), "{}", text(&enrolled));
    let kpsa_id = std::fs::read_to_string(device.join("kpsa-id"))
        .expect("kpsa-id")
        .trim()
        .to_owned();
    assert!(kpsa_id.ends_with(&format!("@id-in.{SP}")), "{kpsa_id}");
    assert!(text(&enrolled).contains(&kpsa_id), "{}", text(&enrolled));

    // Register an AE over the resulting PSK association.
    let register = |rn: &str| {
        m2m(&[
            "--url",
            &https,
            "--psk-identity",
            &kpsa_id,
            "--psk-key-file",
            &s(&device.join("kpsa.hex")),
            "register",
            "--api",
            "Nsensor",
            "--rn",
            rn,
        ])
    };
    let registered = register("sensor-1");
    assert!(registered.status.success(), "{}", text(&registered));
    assert!(
        text(&registered).contains("\"aei\""),
        "{}",
        text(&registered)
    );

    // The admin revokes that credential; the next request over it fails the handshake.
    let admin = admin_flags(&dir, &https);
    let credential = format!("12-{kpsa_id}");
    let revoked = m2m_with(
        &admin,
        &[
            "credentials",
            "revoke",
            &credential,
            "--reason",
            "device stolen",
        ],
    );
    assert!(revoked.status.success(), "{}", text(&revoked));
    let refused = register("sensor-2");
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        !text(&refused).contains("\"aei\"") && !text(&refused).contains("2001"),
        "{}",
        text(&refused)
    );

    server.kill9();
    let log = s(&dir.join("data/audit.log"));
    let verified = m2m(&[
        "audit",
        "verify",
        &log,
        "--public-key",
        &s(&dir.join("audit.pub.pem")),
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).starts_with("ok:"), "{}", text(&verified));
    let tail = m2m(&["audit", "tail", &log, "-n", "1000", "--json"]);
    let entries = text(&tail);
    let has = |kind: &str, what: &str| {
        entries
            .lines()
            .any(|l| l.contains(&format!("\"{kind}\"")) && l.contains(what))
    };
    assert!(has("enrolled", &format!("device-1@mef.{SP}")), "{entries}");
    assert!(has("credential-issued", &credential), "{entries}");
    assert!(has("revoked", &credential), "{entries}");
}

/// `m2m ca renew`: the renewed certificate works; the old one keeps working until it expires,
/// unless `--revoke-old --url` revokes it (superseded) and tells the running CSE.
#[test]
fn renew_rotates_a_certificate_and_revoke_old_cuts_the_old_one_off() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    let mut server = start(&dir);
    let https = server.urls[1].clone();
    let port = port_of(&https);
    let admin = admin_flags(&dir, &https);
    let config = s(&dir.join("cse.toml"));
    let new_csr = |name: &str| {
        let (key, csr) = (
            root.path().join(format!("{name}.key")),
            root.path().join(format!("{name}.csr")),
        );
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=ae2",
            "-keyout",
            &s(&key),
            "-out",
            &s(&csr),
        ]);
        (key, csr)
    };
    let serial_of = |report: &str| {
        report
            .split("serial ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .expect("the serial in the report")
            .to_owned()
    };
    let curl_as = |pem: &Path, key: &Path, post: bool| {
        let resolve = format!("{CSE_NAME}:{port}:127.0.0.1");
        let base = format!("https://{CSE_NAME}:{port}/cse-in");
        let mut args = vec![
            "--resolve".to_owned(),
            resolve,
            "--cacert".into(),
            s(&dir.join("ca/ca.pem")),
            "--cert".into(),
            s(pem),
            "--key".into(),
            s(key),
            "-H".into(),
            "X-M2M-RI: r1".into(),
            "-H".into(),
            "X-M2M-RVI: 3".into(),
        ];
        if post {
            args.extend(
                [
                    base.as_str(),
                    "-X",
                    "POST",
                    "-H",
                    "X-M2M-Origin: C",
                    "-H",
                    "Content-Type: application/json;ty=2",
                    "-d",
                    r#"{"m2m:ae":{"rn":"ae2","api":"Nsensor","rr":false,"srv":["3"]}}"#,
                ]
                .map(str::to_owned),
            );
        } else {
            args.extend([
                format!("{base}/ae2"),
                "-H".into(),
                "X-M2M-Origin: Cae2".into(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args)
    };

    // The first certificate, and the AE registered with it.
    let (key1, csr1) = new_csr("ae2-1");
    let pem1 = root.path().join("ae2-1.pem");
    let issued = m2m_with(
        &admin,
        &[
            "ca",
            "--config",
            &config,
            "issue",
            "--csr",
            &s(&csr1),
            "--ae-id",
            "Cae2",
            "--out",
            &s(&pem1),
        ],
    );
    assert!(issued.status.success(), "{}", text(&issued));
    let serial1 = serial_of(&text(&issued));
    let registered = curl_as(&pem1, &key1, true);
    assert!(registered.contains("X-M2M-RSC: 2001"), "{registered}");

    // Renewed to a new key: both work (the old one until it expires).
    let (key2, csr2) = new_csr("ae2-2");
    let pem2 = root.path().join("ae2-2.pem");
    let renewed = m2m_with(
        &admin,
        &[
            "ca",
            "--config",
            &config,
            "renew",
            &serial1,
            "--csr",
            &s(&csr2),
            "--days",
            "30",
            "--out",
            &s(&pem2),
        ],
    );
    let report = text(&renewed);
    assert!(renewed.status.success(), "{report}");
    assert!(report.contains("stays valid until"), "{report}");
    assert!(
        report.contains("the running CSE recorded the issue"),
        "{report}"
    );
    let serial2 = serial_of(&report);
    assert_ne!(serial1, serial2);
    let with_new = curl_as(&pem2, &key2, false);
    assert!(
        with_new.contains("X-M2M-RSC: 2000") && with_new.contains("Cae2"),
        "{with_new}"
    );
    let with_old = curl_as(&pem1, &key1, false);
    assert!(with_old.contains("X-M2M-RSC: 2000"), "{with_old}");
    // A superseded certificate is not renewed twice.
    let again = m2m_with(
        &admin,
        &[
            "ca",
            "--config",
            &config,
            "renew",
            &serial1,
            "--out",
            &s(&root.path().join("x.pem")),
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    // Renewed again, same key (no CSR), revoking the old one and telling the CSE.
    let pem3 = root.path().join("ae2-3.pem");
    let rotated = m2m_with(
        &admin,
        &[
            "ca",
            "--config",
            &config,
            "renew",
            &serial2,
            "--out",
            &s(&pem3),
            "--revoke-old",
        ],
    );
    let report = text(&rotated);
    assert!(rotated.status.success(), "{report}");
    assert!(
        report.contains("the same key") && report.contains("superseded"),
        "{report}"
    );
    assert!(report.contains("the CSE applied it at once"), "{report}");
    let refused = curl_as(&pem2, &key2, false);
    assert!(!refused.contains("X-M2M-RSC"), "{refused}");
    let with_same_key = curl_as(&pem3, &key2, false);
    assert!(with_same_key.contains("X-M2M-RSC: 2000"), "{with_same_key}");
    let list = m2m(&["ca", "--config", &config, "list"]);
    assert!(
        text(&list)
            .lines()
            .any(|l| l.starts_with(&serial2) && l.contains("revoked") && l.contains("superseded")),
        "{}",
        text(&list)
    );

    server.kill9();
    let log = s(&dir.join("data/audit.log"));
    let verified = m2m(&[
        "audit",
        "verify",
        &log,
        "--public-key",
        &s(&dir.join("audit.pub.pem")),
    ]);
    assert!(verified.status.success(), "{}", text(&verified));
    let entries = text(&m2m(&["audit", "tail", &log, "-n", "1000", "--json"]));
    let issued_to_cae2 = entries
        .lines()
        .filter(|l| l.contains("\"certificate-issued\"") && l.contains("/id-in/Cae2"))
        .count();
    assert_eq!(issued_to_cae2, 3, "{entries}");
    assert!(
        entries.lines().any(|l| l.contains("\"revoked\"")
            && l.contains(&format!("33-{}", certificate_digest(&pem2)))),
        "{entries}"
    );
}

/// `m2m keys generate --role audit-log` makes a key `[audit]` accepts (it used to make an
/// HMAC key, which stopped the start): the CSE signs a new audit log with it, and the log
/// verifies.
#[test]
fn a_generated_audit_log_key_signs_the_audit_log() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    let cfg = dir.join("cse.toml");
    let out = m2m(&[
        "keys",
        "generate",
        "--config",
        &s(&cfg),
        "--home",
        "software",
        "--id",
        "audit-2",
        "--role",
        "audit-log",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ecdsa-p256-sha256"), "{}", text(&out));
    let config = std::fs::read_to_string(&cfg).expect("cse.toml");
    let moved = config
        .replace("id = \"audit\" }", "id = \"audit-2\" }")
        .replace("data/audit.log", "data/audit-2.log");
    assert_ne!(
        moved, config,
        "the [audit] section names the key and the log"
    );
    std::fs::write(&cfg, moved).expect("cse.toml");
    let mut server = Server::start_listeners(&dir.join("data"), &["--config", &s(&cfg)], 3);
    // An association, which the CSE audits.
    let device = m2m(&[
        "--url",
        &server.urls[1],
        "--psk-identity",
        &format!("device-1@{SP}"),
        "--psk-key-file",
        &s(&dir.join("device-1.psk")),
        "register",
        "--api",
        "Nsensor",
        "--rn",
        "sensor-1",
    ]);
    assert!(device.status.success(), "{}", text(&device));
    let log = s(&dir.join("data/audit-2.log"));
    let entries = eventually(
        || std::fs::read_to_string(&log).unwrap_or_default(),
        &[("association-opened", 1)],
    );
    server.kill9();
    assert!(
        entries.lines().count() >= 1 && entries.lines().all(|l| l.contains("\"sig\"")),
        "{entries}"
    );
    let verified = m2m(&["audit", "verify", &log]);
    assert!(verified.status.success(), "{}", text(&verified));
}

/// A reader that stops early (`m2m audit tail audit.log | head`) ends `m2m` and `cse init`
/// quietly: exit code 0 and no panic (they used to panic on EPIPE and exit 101).
#[test]
fn a_reader_that_went_away_ends_the_commands_quietly() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let root = tempfile::tempdir().expect("tmp");
    let dir = init(root.path());
    // Standard output is a pipe whose reading end is already closed: every write is EPIPE.
    let gone = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        writer
    };
    let tail = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(["audit", "tail", &s(&dir.join("data/audit.log"))])
        .stdout(gone())
        .output()
        .expect("m2m");
    let err = String::from_utf8_lossy(&tail.stderr);
    assert_eq!(tail.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let second = root.path().join("second");
    let init = Command::new(env!("CARGO_BIN_EXE_cse"))
        .args(["init", &s(&second), "--http", "127.0.0.1:0", "--https"])
        .args(["127.0.0.1:0", "--enrolment", "127.0.0.1:0"])
        .stdout(gone())
        .output()
        .expect("cse");
    let err = String::from_utf8_lossy(&init.stderr);
    assert_eq!(init.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(second.join("cse.toml").exists(), "init finished its work");
}
