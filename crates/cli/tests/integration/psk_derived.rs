//! PSKs derived inside a key home (issue 4 item 5), end to end: a `psk-master` key generated
//! in SoftHSMv2 or in the level-1 store with `m2m keys generate`, a device key printed by
//! `m2m keys derive-psk`, a `derive_from` credential entry, the real `cse` binary, and
//! `openssl s_client -psk` as the device. A wrong key is refused in the handshake; a master
//! that cannot be opened stops the start with exit code 64.

use crate::common;
use common::{cse_command, spawn_cse, write_private};

use keystore::testing::{on_path, skip_unless, SoftHsm, SOFTHSM_MODULE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const DEVICE: &str = "sensor-7@secure-cse.example";
const OTHER_DEVICE: &str = "sensor-8@secure-cse.example";

fn have_openssl() -> bool {
    skip_unless(on_path("openssl"), "the openssl command").is_none()
}

/// A PSK-only listener on an ephemeral port, the credential file, and `homes`.
fn config(dir: &Path, homes: &str, credentials: &str) -> PathBuf {
    let creds = dir.join("credentials.toml");
    write_private(&creds, credentials);
    let cfg = dir.join("cse.toml");
    std::fs::write(
        &cfg,
        format!(
            "[security]\ncredentials = \"{}\"\n\n[[tls]]\nname = \"psk\"\nlisten = \"127.0.0.1:0\"\n\
             frameworks = [\"psk\"]\n\n{homes}",
            creds.display()
        ),
    )
    .expect("config");
    cfg
}

fn derived_entry(home: &str, id: &str) -> String {
    format!(
        "[[psk]]\nidentity = \"{DEVICE}\"\nderive_from = {{ home = \"{home}\", id = \"{id}\" }}\nallowed_aes = [\"C*\"]\n"
    )
}

fn m2m(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run m2m")
}

fn generate_master(cfg: &Path, home: &str, env: &[(&str, &Path)]) {
    let out = m2m(
        &[
            "keys",
            "generate",
            "--config",
            cfg.to_str().expect("utf8"),
            "--home",
            home,
            "--id",
            "psk-master",
            "--role",
            "psk-master",
        ],
        env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `m2m keys derive-psk`: the device key as 64 hex digits, read from the mode-600 file the
/// command wrote (nothing secret on standard output).
fn derive(cfg: &Path, identity: &str, home: Option<&str>, env: &[(&str, &Path)]) -> String {
    let file = cfg.with_file_name(format!("{identity}-{}.psk", home.unwrap_or("any")));
    let mut args = vec![
        "keys",
        "derive-psk",
        "--config",
        cfg.to_str().expect("utf8"),
        "--master",
        "psk-master",
        "--identity",
        identity,
        "--out",
        file.to_str().expect("utf8"),
    ];
    if let Some(home) = home {
        args.extend(["--home", home]);
    }
    let out = m2m(&args, env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("(mode 600)") && said.contains(file.to_str().expect("utf8")),
        "{said}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let key = std::fs::read_to_string(&file)
        .expect("key file")
        .trim()
        .to_owned();
    assert_eq!(key.len(), 64, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(!said.contains(&key), "the key on standard output");
    key
}

/// A running `cse`, killed when dropped.
struct Cse {
    child: Child,
    port: String,
    log: PathBuf,
}

impl Drop for Cse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cse {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it contains `needle` (a refused handshake is logged after the client
    /// has seen it fail).
    fn log_with(&self, needle: &str) -> String {
        common::eventually(|| self.log(), &[(needle, 1)])
    }
}

fn start(cfg: &Path, data: &Path, env: &[(&str, &Path)]) -> Cse {
    let (child, urls, log) = spawn_cse(cfg, data, env, 2);
    let port = urls[1].rsplit(':').next().unwrap_or_default().to_owned();
    Cse { child, port, log }
}

/// One HTTP request through `openssl s_client -psk` as the device; what the CSE answered.
fn psk_request(cse: &Cse, identity: &str, key_hex: &str, tls: &str, request: &str) -> String {
    let connect = format!("127.0.0.1:{}", cse.port);
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
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// The device registers over TLS 1.2 with the derived key and works over TLS 1.3 with it; a
/// key derived for another device, or one wrong byte, gets no handshake.
fn the_device_connects_with_its_derived_key_only(cse: &Cse, key: &str, other: &str) {
    let ae = r#"{"m2m:ae":{"rn":"s7","api":"Nsensor","rr":false,"srv":["3"]}}"#;
    let first = psk_request(
        cse,
        DEVICE,
        key,
        "1.2",
        &http_request("POST", "/cse-in", "C", Some(2), ae),
    );
    assert!(first.contains("X-M2M-RSC: 2001"), "{first}\n{}", cse.log());
    let id = aei(&first);
    assert!(id.starts_with('C'), "{first}");
    let own = psk_request(
        cse,
        DEVICE,
        key,
        "1.3",
        &http_request("GET", "/cse-in/s7", &id, None, ""),
    );
    assert!(own.contains("X-M2M-RSC: 2000"), "{own}");

    let wrong = psk_request(
        cse,
        DEVICE,
        other,
        "1.2",
        &http_request("GET", "/cse-in/s7", &id, None, ""),
    );
    assert!(!wrong.contains("X-M2M-RSC"), "{wrong}");
    let mut flipped = key.to_owned();
    let last = if key.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(63.., last);
    let wrong = psk_request(
        cse,
        DEVICE,
        &flipped,
        "1.3",
        &http_request("GET", "/cse-in/s7", &id, None, ""),
    );
    assert!(!wrong.contains("X-M2M-RSC"), "{wrong}");
    let log = cse.log_with("security association refused");
    assert!(log.contains("security association refused"), "{log}");
    assert!(
        !log.contains(key) && !log.contains(other),
        "no key in the log"
    );
}

#[test]
fn a_psk_derived_from_a_master_in_softhsm() {
    if !have_openssl() {
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
    let homes = format!(
        "[keystore.pkcs11]\nmodule = \"{SOFTHSM_MODULE}\"\ntoken-label = \"cse-token\"\npin = {{ file = \"{}\" }}\n",
        pin.display()
    );
    let cfg = config(dir.path(), &homes, &derived_entry("pkcs11", "psk-master"));
    generate_master(&cfg, "pkcs11", &env);
    let key = derive(&cfg, DEVICE, None, &env);
    assert_eq!(
        derive(&cfg, DEVICE, Some("pkcs11"), &env),
        key,
        "deterministic"
    );
    let other = derive(&cfg, OTHER_DEVICE, None, &env);
    assert_ne!(key, other, "one key per device");

    let listing = m2m(
        &["keys", "list", "--config", cfg.to_str().expect("utf8")],
        &env,
    );
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing
        .lines()
        .find(|l| l.starts_with("psk-master "))
        .expect("the master is listed");
    assert!(
        line.contains("psk-master  hmac-sha256") && line.contains(" 3 "),
        "{line}"
    );
    assert!(!listing.contains(&key));

    let cse = start(&cfg, &dir.path().join("data"), &env);
    the_device_connects_with_its_derived_key_only(&cse, &key, &other);
}

/// A level-1 store with a key-file KEK.
fn software_home(dir: &Path) -> String {
    let kek = dir.join("kek");
    write_private(&kek, &"5e".repeat(32));
    format!(
        "[keystore.software]\ndir = \"{}\"\nkek = {{ key-file = \"{}\" }}\n",
        dir.join("keys").display(),
        kek.display()
    )
}

#[test]
fn a_psk_derived_from_a_master_in_the_software_home() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(
        dir.path(),
        &software_home(dir.path()),
        &derived_entry("software", "psk-master"),
    );
    generate_master(&cfg, "software", &[]);
    let key = derive(&cfg, DEVICE, None, &[]);
    let other = derive(&cfg, OTHER_DEVICE, Some("software"), &[]);
    let cse = start(&cfg, &dir.path().join("data"), &[]);
    the_device_connects_with_its_derived_key_only(&cse, &key, &other);
}

#[test]
fn an_unusable_master_stops_the_start_with_exit_64() {
    let dir = tempfile::tempdir().expect("tmp");
    let homes = software_home(dir.path());
    let cfg = config(dir.path(), &homes, &derived_entry("software", "psk-master"));
    generate_master(&cfg, "software", &[]);
    let data = dir.path().join("data");
    let run = |cfg: &Path| {
        let out = cse_command(cfg, &data, &[]).output().expect("run cse");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(out.stdout.is_empty(), "no listener opened: {err}");
        err
    };
    for (entry, extra, needles) in [
        (
            derived_entry("software", "nope"),
            "",
            vec![&format!("psk '{DEVICE}'") as &str, "key nope", "not found"],
        ),
        (
            derived_entry("tpm", "psk-master"),
            "",
            vec!["no [keystore.tpm] section"],
        ),
        (
            derived_entry("software", "psk-master"),
            "\n[keystore.policy]\npsk-master = 3\n",
            vec!["psk-master", "at least level 3"],
        ),
    ] {
        let cfg = config(dir.path(), &format!("{homes}{extra}"), &entry);
        let err = run(&cfg);
        for needle in needles {
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }
    // No key home at all.
    let cfg = config(dir.path(), "", &derived_entry("software", "psk-master"));
    let err = run(&cfg);
    assert!(err.contains("no key home is configured"), "{err}");
    // m2m refuses an unknown master and a malformed identity too.
    let out = m2m(
        &[
            "keys",
            "derive-psk",
            "--config",
            dir.path().join("cse.toml").to_str().expect("utf8"),
            "--master",
            "psk-master",
            "--identity",
            "no-issuer",
            "--out",
            dir.path().join("refused.psk").to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!out.status.success() && out.stdout.is_empty());
    let cfg = config(dir.path(), &homes, &derived_entry("software", "psk-master"));
    let out = m2m(
        &[
            "keys",
            "derive-psk",
            "--config",
            cfg.to_str().expect("utf8"),
            "--master",
            "nope",
            "--identity",
            DEVICE,
            "--out",
            dir.path().join("refused.psk").to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(!dir.path().join("refused.psk").exists());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no configured key home holds a key nope")
    );
}
