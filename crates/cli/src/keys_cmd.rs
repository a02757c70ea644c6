//! `m2m keys`: the key homes of a CSE configuration, seen and managed from the command line,
//! without the CSE running. It reads the same `[keystore]` section as `cse` and opens the
//! homes the same way ([`KeyHomes::open`]); nothing it prints is secret.
//!
//! * `m2m keys list --config FILE`: every key of every configured home, with its id, role,
//!   algorithm, home, level, origin, creation time and last use.
//! * `m2m keys generate --config FILE --home pkcs11 --id tls --role tls-server [--csr FILE
//!   --dns NAME ...]`: a new key generated inside the home (after the policy check); for a
//!   signing key, optionally a certificate signing request signed inside the home, for the
//!   CA to issue the CSE's certificate from.
//! * `m2m keys derive-psk --config FILE --master psk-master --identity KPSA-ID --out FILE
//!   [--home H]`: the PSK of one device, derived inside the home from a `psk-master` key
//!   exactly as the CSE derives it for a `derive_from` credential entry, written as hex to a
//!   file of mode 600 to provision the device. This exports a device key on purpose (the
//!   only command that does); the master never leaves its home.

use crate::config::FileConfig;
use crate::keyhomes::{HomeKind, KeyHomes, KeyRef};
use anyhow::{bail, Context};
use keystore::{Algorithm, KeyId, KeyMetadata, KeyRole, SecretBytes, SigningKey};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// `m2m keys ...`
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// The `m2m keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// List the keys of every home configured in FILE's [keystore] section (no secrets).
    List {
        /// The CSE's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Generate a key inside a configured home (and optionally a CSR for it).
    Generate {
        /// The CSE's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The home: software, tpm or pkcs11.
        #[arg(long)]
        home: HomeKind,
        /// The key's identifier (A-Z a-z 0-9 . _ -).
        #[arg(long)]
        id: String,
        /// Its role: tls-server, ca-signing, psk-master, audit-log, pseudonym-mapping.
        #[arg(long)]
        role: KeyRole,
        /// Write a PEM certificate signing request, signed inside the home, to this file
        /// (ECDSA keys only).
        #[arg(long)]
        csr: Option<PathBuf>,
        /// subjectAltName DNS names of the CSR (repeatable); the first is also its CN.
        #[arg(long)]
        dns: Vec<String>,
    },
    /// Write the PSK (hex) of one device to a file of mode 600, derived inside the home from
    /// a psk-master key as the CSE derives it for `derive_from` credential entries. This
    /// exports that device's key on purpose, to provision the device; the master never
    /// leaves its home.
    DerivePsk {
        /// The CSE's configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The master key's identifier (role psk-master). (Not `--key`: that global flag
        /// names the private key of `--cert`.)
        #[arg(long)]
        master: String,
        /// The device's KpsaID (relative@issuer-fqdn), its TLS psk_identity.
        #[arg(long)]
        identity: String,
        /// The file the key is written to (mode 600, replaced if it exists); never standard
        /// output, where terminals, scrollback and pipes would keep a copy.
        #[arg(long)]
        out: PathBuf,
        /// The home that holds the master (default: the one configured home with that key).
        #[arg(long)]
        home: Option<HomeKind>,
    },
}

/// Runs `m2m keys`; the text to print on success.
pub fn run(args: &KeysArgs) -> anyhow::Result<String> {
    match &args.action {
        KeysAction::List { config } => {
            let homes = open(config, false)?;
            let keys = homes.store().list().context("cannot list the keys")?;
            Ok(render(&homes, &keys))
        }
        KeysAction::Generate {
            config,
            home,
            id,
            role,
            csr,
            dns,
        } => {
            let homes = open(config, true)?;
            let id = KeyId::new(id.as_str())?;
            let key = KeyRef {
                home: *home,
                id: id.clone(),
            };
            let Some(home_id) = homes.home_id(*home) else {
                bail!(
                    "{key}: {} has no [keystore.{home}] section",
                    config.display()
                );
            };
            let algorithm = algorithm_for(*role);
            let handle = homes
                .store()
                .generate(home_id, &id, *role, algorithm)
                .with_context(|| format!("cannot generate {key}"))?;
            let mut out = format!(
                "generated {key} ({}, role {}, {})\n",
                algorithm,
                role,
                handle.level()
            );
            if let Some(path) = csr {
                if algorithm != Algorithm::EcdsaP256Sha256 {
                    bail!("--csr needs an ECDSA key (roles tls-server, ca-signing)");
                }
                let signing = homes.store().signing_key(&handle)?;
                let pem = csr_pem(&signing, dns)?;
                std::fs::write(path, pem)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                out.push_str(&format!(
                    "wrote the certificate signing request {} (signed inside the home)\n",
                    path.display()
                ));
            }
            Ok(out)
        }
        KeysAction::DerivePsk {
            config,
            master,
            identity,
            out,
            home,
        } => {
            derive_psk(config, master, identity, out, *home)?;
            Ok(format!(
                "wrote the PSK of {identity} to {} (mode 600)\n",
                out.display()
            ))
        }
    }
}

/// `m2m keys derive-psk`: writes the key straight from zeroizing memory to a private file
/// (returning it as a `String` would leave copies behind).
fn derive_psk(
    config: &std::path::Path,
    master: &str,
    identity: &str,
    out: &std::path::Path,
    home: Option<HomeKind>,
) -> anyhow::Result<()> {
    if !security::credentials::valid_kpsa_id(identity) {
        bail!("--identity {identity:?} is not a KpsaID (relative@issuer-fqdn, A-Z a-z 0-9 . _ -)");
    }
    let homes = open(config, false)?;
    let id = KeyId::new(master)?;
    let home = match home {
        Some(home) => home,
        None => homes.find(&id).map_err(anyhow::Error::msg)?,
    };
    let master = homes.psk_master("--master", &KeyRef { home, id })?;
    let psk = master
        .derive(identity)
        .with_context(|| format!("the home could not derive the PSK of {identity}"))?;
    let hex = hex_line(psk.expose());
    let text = std::str::from_utf8(hex.expose()).context("hex digits")?;
    crate::secret_files::write_private(out, text)
}

/// Lower-case hex and a newline, in zeroizing memory (allocated once at its final size).
fn hex_line(bytes: &[u8]) -> SecretBytes {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = Vec::with_capacity(bytes.len() * 2 + 1);
    for b in bytes {
        hex.push(DIGITS[usize::from(b >> 4)]);
        hex.push(DIGITS[usize::from(b & 0x0f)]);
    }
    hex.push(b'\n');
    SecretBytes::new(hex)
}

fn open(config: &std::path::Path, create_software: bool) -> anyhow::Result<KeyHomes> {
    let file = FileConfig::load(config)?;
    if file.keystore.is_empty() {
        bail!(
            "{} configures no key home ([keystore.software], [keystore.tpm] or [keystore.pkcs11])",
            config.display()
        );
    }
    Ok(KeyHomes::open(&file.keystore, create_software)?)
}

/// The algorithm a role's keys get: the one the component using the role accepts (`[audit]`
/// signs with ECDSA P-256, so an audit-log key is one too).
fn algorithm_for(role: KeyRole) -> Algorithm {
    match role {
        KeyRole::PskMaster => Algorithm::HmacSha256,
        KeyRole::PseudonymMapping => Algorithm::Aes256Gcm,
        _ => Algorithm::EcdsaP256Sha256,
    }
}

/// A PKCS#10 request for the key, signed by the home (the private key never leaves it).
pub(crate) fn csr_pem(key: &SigningKey, dns: &[String]) -> anyhow::Result<Vec<u8>> {
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509Name, X509ReqBuilder};
    struct Home(SigningKey);
    impl openssl_keyhome::DigestSigner for Home {
        fn sign_digest(&self, d: &[u8; 32]) -> Result<Vec<u8>, openssl_keyhome::SignRefused> {
            self.0
                .sign_digest(d)
                .map(|s| s.as_der().to_vec())
                .map_err(|_| openssl_keyhome::SignRefused)
        }
    }
    let pkey =
        openssl_keyhome::remote_ec_key(key.public_key().as_der(), Arc::new(Home(key.clone())))?;
    let mut b = X509ReqBuilder::new()?;
    let mut name = X509Name::builder()?;
    name.append_entry_by_text(
        "CN",
        dns.first()
            .map_or(key.handle().id().as_str(), String::as_str),
    )?;
    b.set_subject_name(&name.build())?;
    b.set_pubkey(&pkey)?;
    if !dns.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        let ext = san.build(&b.x509v3_context(None))?;
        let mut stack = openssl::stack::Stack::new()?;
        stack.push(ext)?;
        b.add_extensions(&stack)?;
    }
    b.sign(&pkey, openssl::hash::MessageDigest::sha256())
        .context("the home could not sign the request")?;
    Ok(b.build().to_pem()?)
}

/// The listing: one line per key, aligned columns.
fn render(homes: &KeyHomes, keys: &[KeyMetadata]) -> String {
    let mut rows = vec![[
        "ID",
        "ROLE",
        "ALGORITHM",
        "HOME",
        "LEVEL",
        "ORIGIN",
        "CREATED",
        "LAST USED",
    ]
    .map(str::to_owned)];
    for k in keys {
        let h = &k.handle;
        let home = homes.kind_of(h.home()).map_or_else(
            || h.home().to_string(),
            |kind| format!("{kind} ({})", h.home()),
        );
        rows.push([
            h.id().to_string(),
            h.role().to_string(),
            h.algorithm().to_string(),
            home,
            h.level().number().to_string(),
            format!("{:?}", k.origin).to_lowercase(),
            utc(k.created),
            k.last_used.map_or_else(|| "-".to_owned(), utc),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if keys.is_empty() {
        out.push_str("(no keys)\n");
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_times() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
    }

    #[test]
    fn keys_print_as_lower_case_hex_lines() {
        assert_eq!(hex_line(&[0x00, 0xab, 0x7f]).expose(), b"00ab7f\n");
        assert_eq!(hex_line(&[]).expose(), b"\n");
    }

    #[test]
    fn roles_get_fitting_algorithms() {
        for role in KeyRole::ALL {
            assert!(role.allows(algorithm_for(role)), "{role}");
        }
    }
}
