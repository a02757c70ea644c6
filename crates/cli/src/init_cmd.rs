//! `cse init DIR`: a secure CSE in one command. It makes, in a new directory:
//!
//! * a level-1 key home (`keys/`, sealed under `keystore.kek`, 32 random bytes, mode 600; or
//!   under a passphrase from an environment variable with `--passphrase-env VAR`), unless
//!   `--keystore-from FILE` takes the `[keystore]` homes of an existing configuration (TPM,
//!   PKCS#11): the keys then go to its highest-level home;
//! * the CA key, the TLS server key, the audit key and the pseudonym mapping key (HMAC), each
//!   generated inside that home;
//! * a CA (`ca/`: `ca.pem`, `records.sqlite`, `ca.crl`), the CSE's certificate (its key stays
//!   in the home: the listener uses `key = { home, id }`), an admin client certificate
//!   (`admin.pem`, `admin.key`) and an admin PSK (`admin.psk`), the first device's PSK
//!   (`<device>.psk`, bound to one CSE-assigned AE-ID: `allowed_aes = ["C*"]`); the admin
//!   certificate is listed in the credential file by its Credential-ID with `admin = true`,
//!   which is what makes it the admin credential (a certificate naming `CAdmin` is not one);
//! * enrolment (MEF) with a pre-provisioned enrolee key: `enrolees.toml` (mode 600) with the
//!   first device's Kpm, and the same key for the device as `<device>.kpm` (hex, mode 600);
//!   its KpmID is `<device>@mef.<sp-id>`;
//! * no plaintext listener unless `--http ADDR` asks for one;
//! * `credentials.toml` (mode 600), a signed audit log in `data/` with the issued credentials
//!   and its public key `audit.pub.pem`, and last `cse.toml`.
//!
//! Secrets go only to mode-600 files and are never printed. A directory that exists and is
//! not empty is refused, so nothing is ever overwritten.

use crate::ca_cmd::{append_events, ca_config, credential_id, write_new};
use crate::config::FileConfig;
use crate::keyhomes::{HomeKind, KeyHomes, KeyRef};
use crate::keys_cmd::{csr_pem, utc};
use anyhow::{anyhow, bail, Context};
use keystore::{Algorithm, KeyId, KeyRole, Level};
use manager::audit::{AuditPublicKey, Event};
use manager::ca::{CertificateAuthority, Grant, IssuedCertificate, Validity};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// `cse init DIR [options]`
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The directory to create (it must not exist, or be empty).
    pub dir: PathBuf,
    /// The M2M Service Provider ID.
    #[arg(long, default_value = "secure-cse.example")]
    pub sp_id: String,
    /// The CSE-ID (without the leading /).
    #[arg(long, default_value = "id-in")]
    pub cse_id: String,
    /// Also a plaintext listener (loopback only), which none is by default: requests on it
    /// have no security association, so it serves only AEs registered without a credential.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// The TLS listener (certificates and PSKs).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub https: SocketAddr,
    /// The enrolment listener (MEF: TLS-PSK with the enrolee keys).
    #[arg(long, default_value = "127.0.0.1:8444")]
    pub enrolment: SocketAddr,
    /// Seal the level-1 key home under a passphrase read from this environment variable
    /// (at init and at every start) instead of a generated key file.
    #[arg(long, value_name = "VAR", conflicts_with = "keystore_from")]
    pub passphrase_env: Option<String>,
    /// Use the [keystore] homes (and policy) of this existing configuration, e.g. a TPM or
    /// PKCS#11 home; the keys go to its highest-level home.
    #[arg(long, value_name = "FILE")]
    pub keystore_from: Option<PathBuf>,
    /// The first device's PSK identity, before `@<sp-id>`.
    #[arg(long, default_value = "device-1")]
    pub device: String,
    /// Validity of the CSE's and the admin's certificates, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u64,
}

/// The key ids `cse init` generates.
const CA_KEY: &str = "ca";
const TLS_KEY: &str = "tls";
const AUDIT_KEY: &str = "audit";
/// The pseudonym mapping key (`[privacy] mapping_key`): in the same home as the others, so
/// that a TPM or HSM home protects the credential bindings too.
const MAPPING_KEY: &str = "pseudonyms";

/// Runs `cse init`; the report to print.
pub fn run(args: &InitArgs) -> anyhow::Result<String> {
    let device_id = format!("{}@{}", args.device, args.sp_id);
    if !security::credentials::valid_kpsa_id(&device_id) {
        bail!(
            "--device {:?} does not make a KpsaID ({device_id})",
            args.device
        );
    }
    let kpm_id = format!("{}@mef.{}", args.device, args.sp_id);
    if !security::credentials::valid_kpsa_id(&kpm_id) {
        bail!(
            "--device {:?} does not make a KpmID ({kpm_id})",
            args.device
        );
    }
    let dir = make_dir(&args.dir)?;
    let at = |name: &str| dir.join(name);
    let mut report = String::new();

    // The key home, and which home gets the keys.
    let (keystore, home) = keystore_section(args, &dir)?;
    let home_level = level_of(home);
    let text = config_text(args, &dir, &keystore, home);
    let mut settings = FileConfig::parse(&text, &at("cse.toml"))
        .and_then(|f| f.resolve(None, None))
        .context("the configuration cse init made")?;
    let minimum = settings
        .keystore
        .policy
        .clone()
        .unwrap_or_default()
        .minimum(KeyRole::CaSigning);
    // The policy is part of `text`: lowered explicitly there when the home is below it.
    let lowered = home_level < keystore::KeyStorePolicy::default().minimum(KeyRole::CaSigning);
    let homes = KeyHomes::open(&settings.keystore, true)?;
    let home_id = homes
        .home_id(home)
        .ok_or_else(|| anyhow!("no [keystore.{home}] section"))?
        .clone();
    let generate = |id: &str, role: KeyRole, algorithm: Algorithm| {
        let key_id = KeyId::new(id)?;
        homes
            .store()
            .generate(&home_id, &key_id, role, algorithm)
            .with_context(|| format!("cannot generate key {id} (role {role}) in home {home}"))
    };
    let ca_key = generate(CA_KEY, KeyRole::CaSigning, Algorithm::EcdsaP256Sha256)?;
    let tls_key = generate(TLS_KEY, KeyRole::TlsServer, Algorithm::EcdsaP256Sha256)?;
    generate(AUDIT_KEY, KeyRole::AuditLog, Algorithm::EcdsaP256Sha256)?;
    generate(
        MAPPING_KEY,
        KeyRole::PseudonymMapping,
        Algorithm::HmacSha256,
    )?;
    writeln!(
        report,
        "key home   {home} ({home_id}, level {}): keys {CA_KEY} (ca-signing), {TLS_KEY} (tls-server), {AUDIT_KEY} (audit-log), {MAPPING_KEY} (pseudonym-mapping), generated inside it",
        home_level.number()
    )?;
    if lowered {
        writeln!(
            report,
            "WARNING    the CA key is at level {} ({home}), below the default policy's level {} for ca-signing;\n           cse.toml lowers [keystore.policy] ca-signing to {} explicitly. For a production CA,\n           run cse init --keystore-from FILE with a TPM or PKCS#11 home.",
            home_level.number(),
            keystore::KeyStorePolicy::default()
                .minimum(KeyRole::CaSigning)
                .number(),
            minimum.number()
        )?;
    }

    // The CA and the certificates.
    let ca = CertificateAuthority::create(
        &at("ca"),
        ca_config(&args.sp_id, &args.cse_id),
        homes.shared_store(),
        ca_key,
    )?;
    let validity = Validity::For(Duration::from_secs(args.days.saturating_mul(86_400)));
    let cse_name = ca.names().public_domain_name();
    let cse_csr = csr_pem(
        &homes.store().signing_key(&tls_key)?,
        std::slice::from_ref(&cse_name),
    )?;
    let cse_cert = ca.issue(
        &cse_csr,
        &Grant::new(ca.names().cse(&args.cse_id)?, validity),
    )?;
    write_new(&at("cse.pem"), cse_cert.pem().as_bytes(), 0o644)?;
    let (admin_key, admin_csr) = client_key_and_csr()?;
    write_new(&at("admin.key"), &admin_key, 0o600)?;
    let admin_cert = ca.issue(&admin_csr, &Grant::new(ca.names().ae("CAdmin")?, validity))?;
    write_new(&at("admin.pem"), admin_cert.pem().as_bytes(), 0o644)?;
    let crl = ca.crl()?;
    crl.write_der(&at("ca/ca.crl"))?;
    writeln!(
        report,
        "CA         {} (key {CA_KEY} in home {home}; records {})",
        at("ca/ca.pem").display(),
        at("ca/records.sqlite").display()
    )?;
    writeln!(
        report,
        "CRL        {} (number {}, next update {})",
        at("ca/ca.crl").display(),
        crl.number,
        utc(crl.next_update)
    )?;
    line(&mut report, "CSE cert", &at("cse.pem"), &cse_cert);
    line(&mut report, "admin cert", &at("admin.pem"), &admin_cert);
    writeln!(
        report,
        "           its key {} (mode 600)",
        at("admin.key").display()
    )?;

    // Pre-shared keys: the admin's and the first device's.
    let admin_id = format!("admin@{}", args.sp_id);
    let admin_psk = random_hex()?;
    let device_psk = random_hex()?;
    let credentials = Zeroizing::new(format!(
        "# Made by cse init. Pre-shared keys (Kpsa) by KpsaID; keep this file mode 600.\n\
         [[psk]]\nidentity = {}\nkey_hex = \"{}\"\nallowed_aes = [\"C*\"]       # one CSE-assigned AE-ID, remembered at its first registration\n\n\
         [[psk]]\nidentity = {}\nkey_hex = \"{}\"\nae = \"CAdmin\"\nadmin = true\n\n\
         # The admin certificate ({}): naming CAdmin is not enough, this entry makes it the admin.\n\
         [[certificate]]\ncredential_id = \"{}\"\nae = \"CAdmin\"\nadmin = true\n",
        quote(&device_id),
        device_psk.as_str(),
        quote(&admin_id),
        admin_psk.as_str(),
        at("admin.pem").display(),
        credential_id(&admin_cert.identity, &admin_cert.der)?,
    ));
    write_new(&at("credentials.toml"), credentials.as_bytes(), 0o600)?;
    let device_file = at(&format!("{}.psk", args.device));
    write_new(
        &device_file,
        format!("{}\n", device_psk.as_str()).as_bytes(),
        0o600,
    )?;
    write_new(
        &at("admin.psk"),
        format!("{}\n", admin_psk.as_str()).as_bytes(),
        0o600,
    )?;
    writeln!(
        report,
        "device PSK {device_id}: key in {} (mode 600), bound to one CSE-assigned AE-ID",
        device_file.display()
    )?;
    writeln!(
        report,
        "admin PSK  {admin_id}: key in {} (mode 600)",
        at("admin.psk").display()
    )?;
    writeln!(
        report,
        "credentials {} (mode 600)",
        at("credentials.toml").display()
    )?;

    // Enrolment (MEF): the first device's pre-provisioned enrolee key.
    let kpm = random_hex()?;
    let enrolees = Zeroizing::new(format!(
        "# Made by cse init. Enrolee keys (Kpm) by KpmID for the MEF; keep this file mode 600.\n\
         [[enrolee]]\nidentity = {}\nkey_hex = \"{}\"\nallowed_aes = [\"C*\"]       # the enrolled key: one CSE-assigned AE-ID\n",
        quote(&kpm_id),
        kpm.as_str()
    ));
    write_new(&at("enrolees.toml"), enrolees.as_bytes(), 0o600)?;
    let kpm_file = at(&format!("{}.kpm", args.device));
    write_new(&kpm_file, format!("{}\n", kpm.as_str()).as_bytes(), 0o600)?;
    writeln!(
        report,
        "enrolee key {kpm_id}: key in {} (mode 600, for the device), listed in {} (mode 600)",
        kpm_file.display(),
        at("enrolees.toml").display()
    )?;

    // The audit log, signed from its first entry, with what was issued.
    let events = vec![
        issued_event(&cse_cert),
        issued_event(&admin_cert),
        Event::CredentialIssued {
            credential: format!("12-{admin_id}"),
            holder: "CAdmin".into(),
            parent: None,
        },
        Event::CredentialIssued {
            credential: format!("12-{device_id}"),
            holder: "C* (the AE-ID assigned at its first registration)".into(),
            parent: None,
        },
        Event::CredentialIssued {
            credential: format!("10-{kpm_id}"),
            holder: "the device's enrolee key (MEF)".into(),
            parent: None,
        },
    ];
    let audit = settings
        .audit
        .take()
        .ok_or_else(|| anyhow!("the audit log is disabled"))?;
    append_events(Some(&audit), &homes, events)?;
    let audit_key = homes.signing_key(
        "audit.signing_key",
        &KeyRef {
            home,
            id: KeyId::new(AUDIT_KEY)?,
        },
        KeyRole::AuditLog,
    )?;
    let public = AuditPublicKey::from_der(audit_key.public_key().as_der())?.to_pem()?;
    write_new(&at("audit.pub.pem"), public.as_bytes(), 0o644)?;
    writeln!(
        report,
        "audit log  {} (signed by key {AUDIT_KEY}; public key {})",
        audit.file.display(),
        at("audit.pub.pem").display()
    )?;

    // Last: the configuration, whose presence marks a complete directory.
    write_new(&at("cse.toml"), text.as_bytes(), 0o644)?;
    writeln!(report, "config     {}", at("cse.toml").display())?;
    report.push_str(&next_steps(args, &dir, &device_id, &kpm_id, &cse_name));
    Ok(report)
}

/// Creates `dir` (mode 700) or accepts it empty; its absolute path.
fn make_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: cse init never overwrites anything; choose a new directory",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// The `[keystore]` homes and policy (TOML, without `ca_key`), and the home the keys go to.
fn keystore_section(args: &InitArgs, dir: &Path) -> anyhow::Result<(String, HomeKind)> {
    if let Some(from) = &args.keystore_from {
        let text = std::fs::read_to_string(from)
            .with_context(|| format!("cannot read {}", from.display()))?;
        let parsed = FileConfig::parse(&text, from)?;
        let home = [HomeKind::Pkcs11, HomeKind::Tpm, HomeKind::Software]
            .into_iter()
            .find(|k| parsed.keystore.has(*k))
            .ok_or_else(|| anyhow!("{} configures no key home", from.display()))?;
        let table: toml::Table = toml::from_str(&text)?;
        let mut keystore = table
            .get("keystore")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        keystore.remove("ca_key");
        let mut policy = keystore
            .remove("policy")
            .and_then(|p| p.as_table().cloned())
            .unwrap_or_default();
        lower_ca_policy(&mut policy, level_of(home));
        let mut out = String::new();
        for (name, value) in keystore {
            let mut section = toml::Table::new();
            section.insert(name.clone(), value);
            let mut outer = toml::Table::new();
            outer.insert("keystore".into(), toml::Value::Table(section));
            out.push_str(&toml::to_string(&outer)?);
            out.push('\n');
        }
        if !policy.is_empty() {
            out.push_str("[keystore.policy]\n");
            out.push_str(&toml::to_string(&policy)?);
            out.push('\n');
        }
        return Ok((out, home));
    }
    let keys = quote(&dir.join("keys").to_string_lossy());
    let kek = match &args.passphrase_env {
        Some(var) => {
            if std::env::var_os(var).is_none() {
                bail!("--passphrase-env {var}: the variable is not set");
            }
            format!("{{ passphrase = {{ env = {} }} }}", quote(var))
        }
        None => {
            let path = dir.join("keystore.kek");
            let kek = random_hex()?;
            write_new(&path, format!("{}\n", kek.as_str()).as_bytes(), 0o600)?;
            format!("{{ key-file = {} }}", quote(&path.to_string_lossy()))
        }
    };
    let mut policy = toml::Table::new();
    lower_ca_policy(&mut policy, Level::Software);
    let text = format!(
        "[keystore.policy]\n\
         # NOTE(init): the CA key is in a level-1 (software) home; the default policy wants level 2.\n\
         # Lowered here on purpose; use `cse init --keystore-from` with a TPM or HSM home instead.\n\
         {}\n\
         [keystore.software]                 # level 1: key files sealed with AES-256-GCM\n\
         dir = {keys}\n\
         kek = {kek}\n",
        toml::to_string(&policy)?
    );
    Ok((text, HomeKind::Software))
}

/// Sets `ca-signing` to `level` when the default (or configured) minimum is higher.
fn lower_ca_policy(policy: &mut toml::Table, level: Level) {
    let configured = policy
        .get("ca-signing")
        .and_then(toml::Value::as_integer)
        .unwrap_or(i64::from(
            keystore::KeyStorePolicy::default()
                .minimum(KeyRole::CaSigning)
                .number(),
        ));
    if i64::from(level.number()) < configured {
        policy.insert(
            "ca-signing".into(),
            toml::Value::Integer(i64::from(level.number())),
        );
    }
}

/// The level a home's section stands for.
fn level_of(home: HomeKind) -> Level {
    match home {
        HomeKind::Software => Level::Software,
        HomeKind::Tpm => Level::TrustedEnvironment,
        HomeKind::Pkcs11 => Level::Hsm,
    }
}

/// The whole `cse.toml` (absolute paths: the CSE reads them relative to its working
/// directory).
fn config_text(args: &InitArgs, dir: &Path, keystore: &str, home: HomeKind) -> String {
    let p = |name: &str| quote(&dir.join(name).to_string_lossy());
    let key = |id: &str| format!("{{ home = \"{home}\", id = \"{id}\" }}");
    format!(
        "# Made by `cse init` (docs/security.md, \"Bootstrapping a secure CSE\").\n\
         [cse]\n\
         sp_id = {sp}\n\
         cse_id = {cse}\n\n\
         {http}\n\
         [store]\n\
         data = {data}\n\n\
         [security]\n\
         credentials = {credentials}\n\n\
         [audit]\n\
         file = {audit}\n\
         signing_key = {audit_key}\n\n\
         [[tls]]\n\
         name = \"https\"\n\
         listen = \"{https}\"\n\
         frameworks = [\"certificate\", \"psk\"]\n\
         certificate = {cert}\n\
         key = {tls_key}           # the TLS key never leaves its home\n\
         trust_anchors = [{ca}]\n\
         crls = [{crl}]                # m2m ca writes every new CRL here\n\n\
         [enrolment]                   # the MEF: devices enrol with their pre-provisioned key\n\
         listen = \"{enrolment}\"\n\
         enrolees = {enrolees}\n\n\
         [privacy]\n\
         mapping_key = {mapping_key}   # keys and seals the pseudonyms' credential bindings\n\n\
         [keystore]\n\
         ca_key = {ca_key}\n\n\
         {keystore}",
        sp = quote(&args.sp_id),
        cse = quote(&args.cse_id),
        http = match args.http {
            Some(listen) => format!(
                "[http]                        # plaintext, loopback only: no security association; it serves\n\
                 listen = \"{listen}\"           # only AEs registered without a credential (docs/security.md)\n"
            ),
            None => "[http]\n\
                     enabled = false               # no plaintext listener: every request has a security association\n"
                .to_owned(),
        },
        https = args.https,
        data = p("data"),
        credentials = p("credentials.toml"),
        audit = p("data/audit.log"),
        audit_key = key(AUDIT_KEY),
        mapping_key = key(MAPPING_KEY),
        cert = p("cse.pem"),
        tls_key = key(TLS_KEY),
        ca = p("ca/ca.pem"),
        crl = p("ca/ca.crl"),
        enrolment = args.enrolment,
        enrolees = p("enrolees.toml"),
        ca_key = key(CA_KEY),
    )
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// 32 random bytes as hex, in zeroizing memory.
fn random_hex() -> anyhow::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    openssl::rand::rand_bytes(&mut *bytes)?;
    Ok(Zeroizing::new(hex::encode(*bytes)))
}

/// A P-256 client key (PKCS#8 PEM, zeroizing) and a CSR for it with an empty subject: the CA
/// decides the identity.
fn client_key_and_csr() -> anyhow::Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut req = openssl::x509::X509ReqBuilder::new()?;
    req.set_pubkey(&key)?;
    req.sign(&key, openssl::hash::MessageDigest::sha256())?;
    let pem = Zeroizing::new(key.private_key_to_pem_pkcs8()?);
    Ok((pem, req.build().to_pem()?))
}

fn issued_event(cert: &IssuedCertificate) -> Event {
    Event::CertificateIssued {
        subject: cert.identity.as_str().to_owned(),
        serial: cert.serial.to_string(),
        not_after: utc(cert.not_after),
    }
}

fn line(report: &mut String, what: &str, path: &Path, cert: &IssuedCertificate) {
    let _ = writeln!(
        report,
        "{what:<10} {} for {} (serial {}, until {}, Credential-ID {})",
        path.display(),
        cert.identity,
        cert.serial,
        utc(cert.not_after),
        credential_id(&cert.identity, &cert.der).unwrap_or_else(|_| "unreadable".to_owned())
    );
}

/// The exact commands that follow.
fn next_steps(
    args: &InitArgs,
    dir: &Path,
    device_id: &str,
    kpm_id: &str,
    cse_name: &str,
) -> String {
    let d = dir.display();
    let https = args.https;
    let port = https.port();
    format!(
        "\nNext steps (cse and m2m from `cargo build --release`, on the PATH):\n\n\
         # start the CSE ({http}TLS on https://{https}, enrolment on https://{enrolment})\n\
         cse --config {d}/cse.toml\n\n\
         # register the first device over its PSK (TLS 1.3); the CSE assigns its AE-ID\n\
         m2m --url https://{https} --psk-identity {device_id} --psk-key-file {d}/{device}.psk \\\n    register --api Nsensor --rn sensor-1\n\n\
         # or: a device with only its pre-provisioned enrolee key enrols with the MEF, then registers\n\
         m2m --url https://{enrolment} enrol --enrolee-identity {kpm_id} \\\n    --enrolee-key-file {d}/{device}.kpm --out device-1\n\
         m2m --url https://{https} --psk-identity \"$(cat device-1/kpsa-id)\" --psk-key-file device-1/kpsa.hex \\\n    register --api Nsensor --rn sensor-2\n\n\
         # the live security associations, as the admin (client certificate)\n\
         m2m --url https://{https} --servername {cse_name} --cacert {d}/ca/ca.pem \\\n    --cert {d}/admin.pem --key {d}/admin.key associations\n\n\
         # a certificate for another AE, from a CSR made on the device (openssl, any P-256 key)\n\
         openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ae2 -keyout ae2.key -out ae2.csr\n\
         m2m ca --config {d}/cse.toml issue --csr ae2.csr --ae-id Cae2 --out ae2.pem\n\
         curl --resolve {cse_name}:{port}:{ip} --cacert {d}/ca/ca.pem --cert ae2.pem --key ae2.key \\\n    https://{cse_name}:{port}/cse-in -X POST -H 'X-M2M-Origin: C' -H 'X-M2M-RI: r1' -H 'X-M2M-RVI: 3' \\\n    -H 'Content-Type: application/json;ty=2' -d '{{\"m2m:ae\": {{\"rn\": \"ae2\", \"api\": \"Nsensor\", \"rr\": false, \"srv\": [\"3\"]}}}}'\n\n\
         # revoke it: new CRL, and the running CSE cuts it off at once\n\
         m2m ca --config {d}/cse.toml revoke SERIAL --reason key-compromise \\\n    --url https://{https} --servername {cse_name} --cacert {d}/ca/ca.pem --cert {d}/admin.pem --key {d}/admin.key\n\n\
         # verify the audit log\n\
         m2m audit verify {d}/data/audit.log --public-key {d}/audit.pub.pem\n",
        http = args
            .http
            .map(|h| format!("plaintext on http://{h}, "))
            .unwrap_or_default(),
        enrolment = args.enrolment,
        device = args.device,
        ip = https.ip(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_home_lowers_the_ca_policy_and_a_higher_one_does_not() {
        let mut policy = toml::Table::new();
        lower_ca_policy(&mut policy, Level::Software);
        assert_eq!(
            policy.get("ca-signing").and_then(toml::Value::as_integer),
            Some(1)
        );
        let mut policy = toml::Table::new();
        lower_ca_policy(&mut policy, Level::Hsm);
        assert!(policy.is_empty());
    }

    #[test]
    fn a_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("x"), "x").expect("write");
        let err = make_dir(dir.path()).expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");
        let fresh = dir.path().join("new");
        assert!(
            make_dir(&fresh).is_ok() && make_dir(&fresh).is_ok(),
            "new, then empty"
        );
    }
}
