//! `bench tls-keyhome`: full TLS handshakes per second with the CSE's server key in each key
//! home (level 1 software, level 2 swtpm, level 3 SoftHSM) next to the same handshake with
//! the key in memory from a PEM file, on one CSE with one listener per key, all in one run;
//! and, in the same run, each home's raw signature rate, to tell what the key-home
//! abstraction costs from what the backend costs.
//!
//! Set-up, in a temporary folder: the test PKI (`scripts/make-test-pki.sh`), a SoftHSMv2
//! token and a swtpm started the way `keystore::testing` starts them for the tests, a level-1
//! store with a key-file KEK. `m2m keys generate --csr` makes the `tls` key inside each home
//! and a CSR signed there; `openssl x509 -req` issues its certificate from the test CA. The
//! CSE then runs with four `[[tls]]` listeners that differ only in the key and certificate.
//! The raw sign rates are measured by `bench sign-rate` children before the CSE starts and
//! after it stopped (swtpm serves one connection at a time).

use crate::load::Watch;
use crate::process::Server;
use crate::scenarios;
use crate::sign_rate::SignRates;
use crate::tls_bench::command_output;
use crate::tls_client::{self, HandshakeResult, Mode, Pki};
use anyhow::Context;
use keystore::testing::{SoftHsm, Swtpm, SOFTHSM_MODULE};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The token's label and user PIN (a test token: the PIN is not a secret here).
const TOKEN: &str = "bench-token";
const PIN: &str = "1234";

/// What to run, resolved from the command line.
#[derive(Debug)]
pub(crate) struct KeyhomePlan {
    /// The `cse` binary.
    pub(crate) cse: PathBuf,
    /// The `m2m` binary (generates the keys and their CSRs inside the homes).
    pub(crate) m2m: PathBuf,
    /// This benchmark's own binary (runs `bench sign-rate`).
    pub(crate) me: PathBuf,
    /// The `openssl` command (issues the certificates).
    pub(crate) openssl: PathBuf,
    /// `scripts/make-test-pki.sh`.
    pub(crate) pki_script: PathBuf,
    /// Handshake modes (full handshakes with the AE certificate).
    pub(crate) modes: Vec<Mode>,
    /// Concurrent handshake loops, each measured for every mode and key.
    pub(crate) loops: Vec<usize>,
    /// `max_handshakes_per_ip` of every listener.
    pub(crate) handshakes_per_ip: usize,
    /// Measured time of each row.
    pub(crate) measure: Duration,
    /// Unmeasured time before each row.
    pub(crate) warmup: Duration,
    /// How many times every row is measured, interleaved.
    pub(crate) rounds: usize,
    /// Seconds of each raw and key-store sign rate.
    pub(crate) sign_secs: f64,
}

/// Where a listener's server key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KeyKind {
    /// `private_key = "cse.key"`: OpenSSL holds the key in memory (the baseline).
    File,
    /// `key = { home = "software", ... }`, level 1.
    Software,
    /// `key = { home = "tpm", ... }`, level 2 (swtpm).
    Tpm,
    /// `key = { home = "pkcs11", ... }`, level 3 (SoftHSM).
    Pkcs11,
}

impl KeyKind {
    /// Every kind, in table order.
    pub(crate) const ALL: [KeyKind; 4] = [
        KeyKind::File,
        KeyKind::Software,
        KeyKind::Tpm,
        KeyKind::Pkcs11,
    ];

    /// The listener's name and the home's section name.
    pub(crate) fn home(self) -> &'static str {
        match self {
            KeyKind::File => "file",
            KeyKind::Software => "software",
            KeyKind::Tpm => "tpm",
            KeyKind::Pkcs11 => "pkcs11",
        }
    }

    /// For the tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyKind::File => "key file, in memory",
            KeyKind::Software => "level 1, software home",
            KeyKind::Tpm => "level 2, TPM (swtpm)",
            KeyKind::Pkcs11 => "level 3, PKCS#11 (SoftHSM)",
        }
    }

    /// The raw backend the home's sign rate is compared with.
    pub(crate) fn raw_backend(self) -> &'static str {
        match self {
            KeyKind::File | KeyKind::Software => "OpenSSL, key in memory",
            KeyKind::Tpm => "tss-esapi TPM2_Sign, key loaded",
            KeyKind::Pkcs11 => "cryptoki C_Sign CKM_ECDSA",
        }
    }
}

/// One mode at one loop count with one server key, measured once per round.
#[derive(Debug)]
pub(crate) struct KeyRow {
    /// The handshake.
    pub(crate) mode: Mode,
    /// Concurrent handshake loops.
    pub(crate) loops: usize,
    /// The listener's key.
    pub(crate) key: KeyKind,
    /// One measurement per round.
    pub(crate) runs: Vec<HandshakeResult>,
}

/// Everything the report needs.
#[derive(Debug)]
pub(crate) struct KeyhomeOutcome {
    /// Measured seconds per row and round.
    pub(crate) measure: Duration,
    /// Rounds run.
    pub(crate) rounds: usize,
    /// Seconds per sign-rate figure.
    pub(crate) sign_secs: f64,
    /// Handshake rows, in table order.
    pub(crate) rows: Vec<KeyRow>,
    /// Raw and key-store sign rates per home (`Software` stands for OpenSSL in memory too),
    /// before the CSE started and after it stopped.
    pub(crate) sign: BTreeMap<KeyKind, (SignRates, Option<SignRates>)>,
    /// `openssl version`.
    pub(crate) openssl_version: String,
    /// `/proc/loadavg` before and after.
    pub(crate) load: (String, String),
    /// Remarks: skipped levels, the CSE's log summary.
    pub(crate) notes: Vec<String>,
}

impl KeyhomeOutcome {
    /// The mean of the before and after raw sign rates of a home.
    pub(crate) fn raw_sign(&self, key: KeyKind) -> Option<f64> {
        self.sign
            .get(&key)
            .map(|(before, after)| mean(before.raw, after.map(|a| a.raw)))
    }

    /// The same for the key store's sign rate.
    pub(crate) fn keystore_sign(&self, key: KeyKind) -> Option<f64> {
        self.sign
            .get(&key)
            .map(|(before, after)| mean(before.keystore, after.map(|a| a.keystore)))
    }
}

fn mean(a: f64, b: Option<f64>) -> f64 {
    b.map_or(a, |b| (a + b) / 2.0)
}

/// The homes' settings, for the configuration and the sign-rate children.
struct Homes {
    dir: PathBuf,
    kek: PathBuf,
    pin: PathBuf,
    tcti: Option<String>,
    softhsm_conf: Option<PathBuf>,
}

impl Homes {
    fn envs(&self) -> Vec<(&'static str, &Path)> {
        self.softhsm_conf
            .as_deref()
            .map(|c| ("SOFTHSM2_CONF", c))
            .into_iter()
            .collect()
    }

    fn software_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    fn tpm_dir(&self) -> PathBuf {
        self.dir.join("tpm-keys")
    }
}

/// Sets the homes up, makes the keys, measures, and tears everything down.
pub(crate) async fn run(plan: &KeyhomePlan) -> anyhow::Result<KeyhomeOutcome> {
    let tmp = tempfile::Builder::new()
        .prefix("cse-bench-keyhome-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let load_before = scenarios::loadavg();
    let openssl_version = command_output(&plan.openssl, &["version"])
        .map(|s| s.trim().to_owned())
        .with_context(|| format!("cannot run {} version", plan.openssl.display()))?;
    eprintln!("bench: making the test PKI");
    let pki = Pki::make(&plan.pki_script, &tmp.path().join("pki"))?;
    let mut notes = Vec::new();

    // The stand-ins for the hardware, as the tests start them (a missing one is skipped).
    let hsm = SoftHsm::new(&tmp.path().join("softhsm"));
    if let Some(hsm) = &hsm {
        hsm.init_token(TOKEN, PIN);
    } else {
        notes.push("level 3 skipped: SoftHSMv2 is not installed".to_owned());
    }
    // Level 2 needs a bench built with the TPM home (feature `tpm`) and swtpm.
    let tpm = if cfg!(feature = "tpm") {
        Swtpm::start()
    } else {
        notes.push("level 2 skipped: built without the feature tpm (--features tpm)".to_owned());
        None
    };
    if cfg!(feature = "tpm") && tpm.is_none() {
        notes.push("level 2 skipped: swtpm is not installed".to_owned());
    }
    let homes = Homes {
        dir: tmp.path().join("homes"),
        kek: tmp.path().join("homes/kek"),
        pin: tmp.path().join("homes/hsm.pin"),
        tcti: tpm.as_ref().map(Swtpm::tcti),
        softhsm_conf: hsm.as_ref().map(SoftHsm::conf),
    };
    std::fs::create_dir_all(&homes.dir)?;
    let mut kek = [0u8; 32];
    openssl::rand::rand_bytes(&mut kek)?;
    write_private(&homes.kek, &hex(&kek))?;
    write_private(&homes.pin, PIN)?;
    let kinds: Vec<KeyKind> = KeyKind::ALL
        .into_iter()
        .filter(|k| match k {
            KeyKind::Tpm => homes.tcti.is_some(),
            KeyKind::Pkcs11 => homes.softhsm_conf.is_some(),
            _ => true,
        })
        .collect();

    // The keys, generated inside their homes, and their certificates.
    let config = pki.file("keyhomes.toml");
    let mut certs = BTreeMap::new();
    certs.insert(KeyKind::File, pki.file("cse.pem"));
    for kind in kinds.iter().filter(|k| **k != KeyKind::File) {
        certs.insert(*kind, pki.file(&format!("cse-{}.pem", kind.home())));
    }
    std::fs::write(
        &config,
        cse_config(&pki.dir, &homes, &kinds, &certs, plan.handshakes_per_ip),
    )?;
    for kind in kinds.iter().filter(|k| **k != KeyKind::File) {
        eprintln!("bench: a tls-server key inside the {} home", kind.home());
        generate_and_issue(plan, &pki, &config, &homes, *kind, &certs[kind])?;
    }

    let sign_before = sign_rates(plan, &pki, &homes, &kinds)?;

    eprintln!(
        "bench: starting {} with {} TLS listeners",
        plan.cse.display(),
        kinds.len()
    );
    let data = tmp.path().join("data");
    let args = [
        "--config",
        path_str(&config)?,
        "--http",
        "127.0.0.1:0",
        "--data",
        path_str(&data)?,
    ];
    let cse = Server::start_with_env(
        &plan.cse,
        &args,
        tmp.path().join("cse.log"),
        kinds.len(),
        &homes.envs(),
    )
    .await?;
    let swtpm = tpm.as_ref().map(Swtpm::pid);
    let result = rounds(plan, &pki, &cse, &kinds, swtpm).await;
    let log_notes = crate::tls_bench::refusals(&cse.log);
    let cse_log = crate::process::tail(&cse.log);
    cse.stop().await?;
    let rows = result.with_context(|| format!("CSE log {cse_log}"))?;
    notes.extend(log_notes);

    let sign_after = sign_rates(plan, &pki, &homes, &kinds)?;
    let sign = sign_before
        .into_iter()
        .map(|(k, before)| (k, (before, sign_after.get(&k).copied())))
        .collect();
    drop(tpm);
    Ok(KeyhomeOutcome {
        measure: plan.measure,
        rounds: plan.rounds,
        sign_secs: plan.sign_secs,
        rows,
        sign,
        openssl_version,
        load: (load_before, scenarios::loadavg()),
        notes,
    })
}

/// The CSE's configuration: one certificate-only listener per key, identical otherwise (the
/// PKI script's trust anchor and CRL, resumption on as in `bench tls`; the client offers no
/// session, so every handshake is full), and the homes.
fn cse_config(
    pki: &Path,
    homes: &Homes,
    kinds: &[KeyKind],
    certs: &BTreeMap<KeyKind, PathBuf>,
    handshakes_per_ip: usize,
) -> String {
    let p = |name: &str| pki.join(name).display().to_string();
    let mut s = String::new();
    for kind in kinds {
        let key = match kind {
            KeyKind::File => format!("private_key = \"{}\"", p("cse.key")),
            other => format!("key = {{ home = \"{}\", id = \"tls\" }}", other.home()),
        };
        let cert = certs.get(kind).map(|c| c.display().to_string());
        let _ = write!(
            s,
            "[[tls]]\nname = \"{}\"\nlisten = \"127.0.0.1:0\"\nframeworks = [\"certificate\"]\n\
             certificate = \"{}\"\n{key}\ntrust_anchors = [\"{}\"]\ncrls = [\"{}\"]\n\
             max_handshakes_per_ip = {handshakes_per_ip}\nsession_resumption = true\n\n",
            kind.home(),
            cert.unwrap_or_default(),
            p("ca.pem"),
            p("ca.crl"),
        );
    }
    let _ = write!(
        s,
        "[keystore.software]\ndir = \"{}\"\nkek = {{ key-file = \"{}\" }}\n\n",
        homes.software_dir().display(),
        homes.kek.display()
    );
    if let Some(tcti) = &homes.tcti {
        let _ = write!(
            s,
            "[keystore.tpm]\ntcti = \"{tcti}\"\ndir = \"{}\"\n\n",
            homes.tpm_dir().display()
        );
    }
    if homes.softhsm_conf.is_some() {
        let _ = write!(
            s,
            "[keystore.pkcs11]\nmodule = \"{SOFTHSM_MODULE}\"\ntoken-label = \"{TOKEN}\"\npin = {{ file = \"{}\" }}\n",
            homes.pin.display()
        );
    }
    s
}

/// `m2m keys generate --csr` inside the home, then the CA issues the certificate.
fn generate_and_issue(
    plan: &KeyhomePlan,
    pki: &Pki,
    config: &Path,
    homes: &Homes,
    kind: KeyKind,
    cert: &Path,
) -> anyhow::Result<()> {
    let csr = pki.file(&format!("cse-{}.csr", kind.home()));
    let out = Command::new(&plan.m2m)
        .args(["keys", "generate", "--config"])
        .arg(config)
        .args(["--home", kind.home(), "--id", "tls", "--role", "tls-server"])
        .arg("--csr")
        .arg(&csr)
        .args(["--dns", "id-in.secure-cse.example", "--dns", "localhost"])
        .envs(homes.envs())
        .output()
        .with_context(|| format!("cannot run {}", plan.m2m.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "m2m keys generate --home {} failed: {}",
        kind.home(),
        String::from_utf8_lossy(&out.stderr)
    );
    let ext = pki.file("keyhome-server.ext");
    std::fs::write(
        &ext,
        "basicConstraints = CA:false\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = DNS:id-in.secure-cse.example, DNS:localhost\n",
    )?;
    let out = Command::new(&plan.openssl)
        .current_dir(&pki.dir)
        .args(["x509", "-req", "-in"])
        .arg(&csr)
        .args(["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"])
        .args(["-days", "30", "-sha256", "-extfile"])
        .arg(&ext)
        .arg("-out")
        .arg(cert)
        .output()
        .context("cannot run openssl x509 -req")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl x509 -req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `bench sign-rate` for every home (level 1 also gives OpenSSL's in-memory rate).
fn sign_rates(
    plan: &KeyhomePlan,
    pki: &Pki,
    homes: &Homes,
    kinds: &[KeyKind],
) -> anyhow::Result<BTreeMap<KeyKind, SignRates>> {
    let mut out = BTreeMap::new();
    for kind in kinds.iter().filter(|k| **k != KeyKind::File) {
        eprintln!(
            "bench: raw and key-store sign rates of the {} home",
            kind.home()
        );
        let mut c = Command::new(&plan.me);
        c.args(["sign-rate", "--home", kind.home(), "--secs"])
            .arg(plan.sign_secs.to_string())
            .envs(homes.envs());
        match kind {
            KeyKind::Software => {
                c.arg("--key-file")
                    .arg(pki.file("cse.key"))
                    .arg("--dir")
                    .arg(homes.software_dir())
                    .arg("--kek-file")
                    .arg(&homes.kek);
            }
            KeyKind::Tpm => {
                c.arg("--tcti")
                    .arg(homes.tcti.as_deref().unwrap_or_default())
                    .arg("--dir")
                    .arg(homes.tpm_dir());
            }
            KeyKind::Pkcs11 => {
                c.arg("--module")
                    .arg(SOFTHSM_MODULE)
                    .args(["--token-label", TOKEN])
                    .arg("--pin-file")
                    .arg(&homes.pin);
            }
            KeyKind::File => {}
        }
        let child = c.output().context("cannot run bench sign-rate")?;
        let stdout = String::from_utf8_lossy(&child.stdout);
        let rates = SignRates::parse(&stdout).with_context(|| {
            format!(
                "bench sign-rate --home {} failed: {}",
                kind.home(),
                String::from_utf8_lossy(&child.stderr)
            )
        })?;
        out.insert(*kind, rates);
    }
    Ok(out)
}

/// The measured rounds: every mode, loop count and key, interleaved.
async fn rounds(
    plan: &KeyhomePlan,
    pki: &Pki,
    cse: &Server,
    kinds: &[KeyKind],
    swtpm: Option<u32>,
) -> anyhow::Result<Vec<KeyRow>> {
    anyhow::ensure!(
        cse.https_all.len() == kinds.len(),
        "the CSE printed {} https addresses, expected {}",
        cse.https_all.len(),
        kinds.len()
    );
    let contexts: Vec<_> = plan
        .modes
        .iter()
        .map(|m| tls_client::context(m, pki).with_context(|| format!("client context {}", m.name)))
        .collect::<anyhow::Result<_>>()?;
    let mut rows: Vec<KeyRow> = Vec::new();
    for mode in &plan.modes {
        for &loops in &plan.loops {
            for &key in kinds {
                rows.push(KeyRow {
                    mode: *mode,
                    loops,
                    key,
                    runs: Vec::new(),
                });
            }
        }
    }
    for round in 1..=plan.rounds {
        for (mode, context) in plan.modes.iter().zip(&contexts) {
            for &loops in &plan.loops {
                // The listeners come up in configuration order, which is `kinds`' order.
                for (&key, &addr) in kinds.iter().zip(&cse.https_all) {
                    eprintln!(
                        "bench: round {round}/{}: {} x{loops} with the {} key",
                        plan.rounds,
                        mode.name,
                        key.home()
                    );
                    let result = tls_client::run(
                        addr,
                        context,
                        mode,
                        loops,
                        plan.warmup,
                        plan.measure,
                        // swtpm signs for the level-2 listener: its CPU is that row's too.
                        Watch::server_with(cse, swtpm.filter(|_| key == KeyKind::Tpm)),
                    )
                    .await;
                    if let Some(row) = rows
                        .iter_mut()
                        .find(|r| r.mode == *mode && r.loops == loops && r.key == key)
                    {
                        row.runs.push(result);
                    }
                }
            }
        }
    }
    Ok(rows)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("the temp folder's path is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_differ_only_in_key_and_certificate() {
        let pki = Path::new("/p");
        let homes = Homes {
            dir: "/h".into(),
            kek: "/h/kek".into(),
            pin: "/h/pin".into(),
            tcti: Some("swtpm:host=127.0.0.1,port=2321".into()),
            softhsm_conf: Some("/s/softhsm2.conf".into()),
        };
        let certs: BTreeMap<KeyKind, PathBuf> = KeyKind::ALL
            .iter()
            .map(|k| (*k, PathBuf::from(format!("/p/{}.pem", k.home()))))
            .collect();
        let text = cse_config(pki, &homes, &KeyKind::ALL, &certs, 64);
        assert_eq!(text.lines().filter(|l| l.trim() == "[[tls]]").count(), 4);
        assert_eq!(text.matches("private_key = ").count(), 1);
        assert_eq!(text.matches("key = { home = ").count(), 3);
        assert_eq!(text.matches("max_handshakes_per_ip = 64").count(), 4);
        for section in ["[keystore.software]", "[keystore.tpm]", "[keystore.pkcs11]"] {
            assert!(text.contains(section), "{section}");
        }
        let without_tpm = cse_config(
            pki,
            &Homes {
                tcti: None,
                ..homes
            },
            &[KeyKind::File, KeyKind::Software, KeyKind::Pkcs11],
            &certs,
            64,
        );
        assert!(!without_tpm.contains("[keystore.tpm]") && !without_tpm.contains("home = \"tpm\""));
    }
}
