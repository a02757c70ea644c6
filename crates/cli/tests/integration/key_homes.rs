//! Key homes end to end, as an operator would use them: the test PKI from
//! `scripts/make-test-pki.sh`, a key generated inside SoftHSMv2 or swtpm with
//! `m2m keys generate` (and its CSR signed there, issued by the CA with the openssl command),
//! the real `cse` binary serving HTTPS with that key, `m2m keys list`, and the start-up
//! refusals (wrong PIN, key below the policy) with exit code 64.

use crate::common::{
    cse_command, have_curl, have_openssl, make_test_pki, spawn_cse, write_private,
};
use keystore::testing::SoftHsm;
#[cfg(feature = "tpm")]
use keystore::testing::Swtpm;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The script's configuration with the listener on an ephemeral port, its private key taken
/// from `key` (a `key = {...}` line) and its certificate `cert`, plus `extra` sections.
fn config(pki: &Path, key: &str, cert: &Path, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(pki.join("cse.toml")).expect("cse.toml");
    let mut text = String::new();
    for line in base.lines() {
        if line.starts_with("private_key") {
            text.push_str(key);
        } else if line.starts_with("certificate") {
            text.push_str(&format!("certificate = \"{}\"", cert.display()));
        } else {
            text.push_str(&line.replace("127.0.0.1:8443", "127.0.0.1:0"));
        }
        text.push('\n');
    }
    text.push_str(extra);
    let path = pki.join("homes.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn m2m(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run m2m")
}

/// `m2m keys generate` of a tls-server key with a CSR, then the CA issues the certificate
/// (openssl x509 -req, as for any CSR).
fn generate_and_issue(pki: &Path, cfg: &Path, home: &str, env: &[(&str, &Path)]) -> PathBuf {
    let csr = pki.join(format!("cse-{home}.csr"));
    let out = m2m(
        &[
            "keys",
            "generate",
            "--config",
            cfg.to_str().expect("utf8"),
            "--home",
            home,
            "--id",
            "tls",
            "--role",
            "tls-server",
            "--csr",
            csr.to_str().expect("utf8"),
            "--dns",
            "id-in.secure-cse.example",
            "--dns",
            "localhost",
        ],
        env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("generated key tls in home"));
    let ext = pki.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:id-in.secure-cse.example, DNS:localhost\n",
    )
    .expect("ext");
    let cert = pki.join(format!("cse-{home}.pem"));
    let out = Command::new("openssl")
        .current_dir(pki)
        .args(["x509", "-req", "-in"])
        .arg(&csr)
        .args([
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
        ])
        .arg(&ext)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl x509 -req");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cert
}

/// A running `cse`, killed when dropped.
struct Cse {
    child: Child,
    urls: Vec<String>,
    log: PathBuf,
}

impl Drop for Cse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cfg: &Path, data: &Path, env: &[(&str, &Path)]) -> Cse {
    let (child, urls, log) = spawn_cse(cfg, data, env, 2);
    Cse { child, urls, log }
}

/// Registers AE Cae1 over HTTPS with its certificate; returns curl's output.
fn register(pki: &Path, cse: &Cse) -> String {
    let port = cse.urls[1]
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let f = |n: &str| pki.join(n).to_string_lossy().into_owned();
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--cacert",
            &f("ca.pem"),
            "--cert",
            &f("ae1.pem"),
            "--key",
            &f("ae1.key"),
        ])
        .arg(format!("https://localhost:{port}/cse-in"))
        .args([
            "-X",
            "POST",
            "-H",
            "X-M2M-Origin: C",
            "-H",
            "X-M2M-RI: r1",
            "-H",
            "X-M2M-RVI: 3",
        ])
        .args(["-H", "Content-Type: application/json;ty=2"])
        .args([
            "-d",
            r#"{"m2m:ae": {"rn": "ae1", "api": "Nsensor", "rr": false, "srv": ["3"]}}"#,
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_with_the_tls_key_in_softhsm_and_refusals_at_start() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let Some(hsm) = SoftHsm::new(&dir.path().join("softhsm")) else {
        return;
    };
    hsm.init_token("cse-token", "1234");
    let conf = hsm.conf();
    let env = [("SOFTHSM2_CONF", conf.as_path())];
    let pki = make_test_pki(dir.path());
    let pin = pki.join("hsm.pin");
    write_private(&pin, "1234\n");
    let homes = format!(
        "\n[keystore.pkcs11]\nmodule = \"{}\"\ntoken-label = \"cse-token\"\npin = {{ file = \"{}\" }}\n",
        keystore::testing::SOFTHSM_MODULE,
        pin.display()
    );
    let key = "key = { home = \"pkcs11\", id = \"tls\" }";
    let cfg = config(&pki, key, &pki.join("cse-pkcs11.pem"), &homes);
    let cert = generate_and_issue(&pki, &cfg, "pkcs11", &env);
    assert_eq!(cert, pki.join("cse-pkcs11.pem"));

    let cse = start(&cfg, &dir.path().join("data"), &env);
    let answer = register(&pki, &cse);
    assert!(answer.contains("X-M2M-RSC: 2001"), "{answer}");
    let log = std::fs::read_to_string(&cse.log).unwrap_or_default();
    assert!(
        log.contains("TLS server key") && log.contains("level=3"),
        "{log}"
    );
    drop(cse);

    // The listing: the key, its role, home and level; never a secret.
    let out = m2m(
        &["keys", "list", "--config", cfg.to_str().expect("utf8")],
        &env,
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = listing
        .lines()
        .find(|l| l.starts_with("tls "))
        .expect("the tls key");
    for part in [
        "tls-server",
        "ecdsa-p256-sha256",
        "pkcs11 (pkcs11:cse-token)",
        " 3 ",
        "generated",
    ] {
        assert!(line.contains(part), "{line} lacks {part}");
    }
    assert!(!listing.contains("1234"));

    // A wrong PIN: exit 64 before any socket, saying which home and why.
    write_private(&pin, "9999\n");
    let out = cse_command(&cfg, &dir.path().join("data"), &env)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("[keystore.pkcs11]") && err.contains("wrong PIN"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no listener opened");
    write_private(&pin, "1234\n");

    // The key asked from the wrong home is not looked for elsewhere.
    let kek = pki.join("kek");
    write_private(&kek, &"ab".repeat(32));
    let software = format!(
        "\n[keystore.software]\ndir = \"{}\"\nkek = {{ key-file = \"{}\" }}\n",
        pki.join("keys").display(),
        kek.display()
    );
    let wrong = config(
        &pki,
        "key = { home = \"software\", id = \"tls\" }",
        &cert,
        &format!("{homes}{software}"),
    );
    let out = m2m(
        &[
            "keys",
            "generate",
            "--config",
            wrong.to_str().expect("utf8"),
            "--home",
            "software",
            "--id",
            "other",
            "--role",
            "audit-log",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cse_command(&wrong, &dir.path().join("data"), &env)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("[[tls]] https: key tls in home software") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn keys_below_the_policy_stop_the_start() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let kek = pki.join("kek");
    write_private(&kek, &"cd".repeat(32));
    let software = format!(
        "\n[keystore.software]\ndir = \"{}\"\nkek = {{ key-file = \"{}\" }}\n",
        pki.join("keys").display(),
        kek.display()
    );
    let key = "key = { home = \"software\", id = \"tls\" }";
    let cert = pki.join("cse-software.pem");
    let cfg = config(&pki, key, &cert, &software);
    generate_and_issue(&pki, &cfg, "software", &[]);
    // Level 1 is enough by default: the CSE starts and serves HTTPS with the sealed key.
    let cse = start(&cfg, &dir.path().join("data"), &[]);
    assert!(register(&pki, &cse).contains("X-M2M-RSC: 2001"));
    drop(cse);

    // The TLS key below a policy of 3.
    let strict = config(
        &pki,
        key,
        &cert,
        &format!("{software}\n[keystore.policy]\ntls-server = 3\n"),
    );
    let out = cse_command(&strict, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for part in ["[[tls]] https", "key tls", "level 1", "at least level 3"] {
        assert!(err.contains(part), "{err} lacks {part}");
    }
    // Said once: the refusal is not repeated by the error chain.
    assert_eq!(err.matches("but the policy requires").count(), 1, "{err}");

    // The CA key in software, below the default minimum of level 2 for CA keys.
    let out = m2m(
        &[
            "keys",
            "generate",
            "--config",
            cfg.to_str().expect("utf8"),
            "--home",
            "software",
            "--id",
            "ca",
            "--role",
            "ca-signing",
        ],
        &[],
    );
    assert!(!out.status.success(), "generate refuses it already");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least level 2"));
    // Made where the policy was lowered for it (as `cse init` does in a level-1 home), the
    // key is refused where the default policy applies.
    let lowered = config(
        &pki,
        key,
        &cert,
        &format!("{software}\n[keystore.policy]\nca-signing = 1\n"),
    );
    let out = m2m(
        &[
            "keys",
            "generate",
            "--config",
            lowered.to_str().expect("utf8"),
            "--home",
            "software",
            "--id",
            "ca",
            "--role",
            "ca-signing",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A key of another role is reported as such, before any policy.
    let other_role = config(
        &pki,
        key,
        &cert,
        &format!("{software}\n[keystore]\nca_key = {{ home = \"software\", id = \"tls\" }}\n"),
    );
    let out = cse_command(&other_role, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("is a tls-server key, not a ca-signing key") && !err.contains("policy"),
        "{err}"
    );
    let with_ca = config(
        &pki,
        key,
        &cert,
        &format!("{software}\n[keystore]\nca_key = {{ home = \"software\", id = \"ca\" }}\n"),
    );
    let out = cse_command(&with_ca, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("keystore.ca_key") && err.contains("at least level 2"),
        "{err}"
    );
    assert_eq!(err.matches("but the policy requires").count(), 1, "{err}");

    // A CA key that is not in its home is reported missing, not as a policy refusal.
    let missing = config(
        &pki,
        key,
        &cert,
        &format!("{software}\n[keystore]\nca_key = {{ home = \"software\", id = \"nope\" }}\n"),
    );
    let out = cse_command(&missing, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("key nope not found in home"), "{err}");
    assert!(!err.contains("policy") && !err.contains("level 1"), "{err}");
}

#[cfg(feature = "tpm")]
#[test]
fn https_with_the_tls_key_in_swtpm() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let Some(tpm) = Swtpm::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let homes = format!(
        "\n[keystore.tpm]\ntcti = \"{}\"\ndir = \"{}\"\n",
        tpm.tcti(),
        pki.join("tpm-keys").display()
    );
    let cfg = config(
        &pki,
        "key = { home = \"tpm\", id = \"tls\" }",
        &pki.join("cse-tpm.pem"),
        &homes,
    );
    generate_and_issue(&pki, &cfg, "tpm", &[]);
    let cse = start(&cfg, &dir.path().join("data"), &[]);
    let answer = register(&pki, &cse);
    assert!(answer.contains("X-M2M-RSC: 2001"), "{answer}");
    let log = std::fs::read_to_string(&cse.log).unwrap_or_default();
    assert!(log.contains("level=2"), "{log}");
    drop(cse);
    drop(tpm);

    // The TPM is gone: the CSE refuses to start, naming the home.
    let out = cse_command(&cfg, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("[keystore.tpm]") && err.contains("unreachable"),
        "{err}"
    );
}

/// A configuration with a `[keystore.tpm]` section.
fn tpm_section(tcti: &str, dir: &Path) -> String {
    format!(
        "\n[keystore.tpm]\ntcti = \"{tcti}\"\ndir = \"{}\"\n",
        dir.display()
    )
}

#[cfg(not(feature = "tpm"))]
#[test]
fn a_tpm_home_in_a_build_without_it_says_how_to_rebuild() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("cse.toml");
    let keys = dir.path().join("tpm-keys");
    std::fs::write(&cfg, tpm_section("device:/dev/tpmrm0", &keys)).expect("config");
    let parts = [
        "[keystore.tpm]",
        "has no TPM home",
        "cargo feature `tpm`",
        "libtss2-dev",
        "cargo build --release -p cli --features tpm",
    ];
    let out = cse_command(&cfg, &dir.path().join("data"), &[])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for part in parts {
        assert!(err.contains(part), "{err} lacks {part}");
    }
    // The key commands say the same, and nothing was made for the home.
    let out = m2m(
        &["keys", "list", "--config", cfg.to_str().expect("utf8")],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for part in parts {
        assert!(err.contains(part), "{err} lacks {part}");
    }
    assert!(!keys.exists());
}

/// Starts that fail after the TPM home opened (and loaded the TLS key) leave nothing in the
/// TPM: more failed starts in a row than swtpm has object slots (3), then a good start.
#[cfg(feature = "tpm")]
#[test]
fn failed_starts_leave_nothing_loaded_in_the_tpm() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let Some(tpm) = Swtpm::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_test_pki(dir.path());
    let cfg = config(
        &pki,
        "key = { home = \"tpm\", id = \"tls\" }",
        &pki.join("cse-tpm.pem"),
        &tpm_section(&tpm.tcti(), &pki.join("tpm-keys")),
    );
    generate_and_issue(&pki, &cfg, "tpm", &[]);
    // The same configuration with a certificate file that is not there: the CSE opens the
    // TPM home, loads the key, then stops at the certificate.
    let good = std::fs::read_to_string(&cfg).expect("config");
    let broken = pki.join("broken.toml");
    std::fs::write(
        &broken,
        good.replace(
            &pki.join("cse-tpm.pem").display().to_string(),
            &pki.join("missing.pem").display().to_string(),
        ),
    )
    .expect("write");
    for attempt in 0..5 {
        let out = cse_command(&broken, &dir.path().join("data"), &[])
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "attempt {attempt}: {err}");
        assert!(err.contains("missing.pem"), "attempt {attempt}: {err}");
        assert!(!err.contains("TPM"), "attempt {attempt}: {err}");
    }
    let cse = start(&cfg, &dir.path().join("data"), &[]);
    let answer = register(&pki, &cse);
    assert!(answer.contains("X-M2M-RSC: 2001"), "{answer}");
}

/// `cse init --keystore-from` puts every key it makes in that home, the pseudonym mapping key
/// too: the CSE it made starts with its pseudonym vault at level 3 (SoftHSM).
#[test]
fn init_keystore_from_puts_the_pseudonym_key_in_that_home() {
    if !(have_openssl() && have_curl()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let Some(hsm) = SoftHsm::new(&dir.path().join("softhsm")) else {
        return;
    };
    hsm.init_token("cse-token", "1234");
    let conf = hsm.conf();
    let env = [("SOFTHSM2_CONF", conf.as_path())];
    let pin = dir.path().join("hsm.pin");
    write_private(&pin, "1234\n");
    let from = dir.path().join("homes.toml");
    std::fs::write(
        &from,
        format!(
            "[keystore.pkcs11]\nmodule = \"{}\"\ntoken-label = \"cse-token\"\npin = {{ file = \"{}\" }}\n",
            keystore::testing::SOFTHSM_MODULE,
            pin.display()
        ),
    )
    .expect("write");
    let made = dir.path().join("cse");
    let out = Command::new(env!("CARGO_BIN_EXE_cse"))
        .arg("init")
        .arg(&made)
        .args(["--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .args(["--enrolment", "127.0.0.1:0", "--keystore-from"])
        .arg(&from)
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("cse init");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("pseudonyms (pseudonym-mapping)"),
        "{report}"
    );
    let cse = start(&made.join("cse.toml"), &made.join("data"), &env);
    let log = std::fs::read_to_string(&cse.log).unwrap_or_default();
    let vault = log
        .lines()
        .find(|l| l.contains("pseudonym vault open"))
        .unwrap_or_else(|| panic!("no vault line: {log}"));
    assert!(
        vault.contains("pseudonyms in pkcs11:cse-token (level 3)"),
        "{vault}"
    );
}
