//! `bench sign-rate` (hidden): ECDSA P-256 signatures per second of one key, straight through
//! the raw backend and through the key store's home, in a process of its own.
//!
//! `bench tls-keyhome` runs it as a child for each home, because (1) SoftHSM reads
//! `SOFTHSM2_CONF` once, at `C_Initialize`, so the child gets it in its environment instead of
//! the benchmark setting it in a running multi-threaded process; and (2) swtpm serves one
//! connection at a time: the child's connection must be closed before the CSE opens its own.
//!
//! The raw figures follow `crates/keystore/examples/keystore_rates.rs`: OpenSSL's
//! `ECDSA_do_sign` with the key in memory (level 1), `TPM2_Sign` with a key kept loaded
//! through tss-esapi (level 2), `C_Sign` with `CKM_ECDSA` through cryptoki on the home's own
//! key (level 3). The digest is computed once; the key store adds DER encoding, handle checks,
//! locking and usage tracking, which is what "through the key store" measures on top.

use anyhow::Context;
use keystore::{KeyHome, KeyId};
use std::path::PathBuf;
use std::time::Instant;

/// The message every signature is over (its SHA-256 digest is what gets signed).
const MESSAGE: &[u8] = b"bench tls-keyhome: a TLS 1.3 CertificateVerify is about this";

/// Options of `bench sign-rate`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignRateArgs {
    /// The home: software, tpm or pkcs11.
    #[arg(long)]
    home: String,
    /// The key's identifier in the home (an ECDSA P-256 tls-server key).
    #[arg(long, default_value = "tls")]
    id: String,
    /// Seconds per figure.
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// software: the in-memory key of the raw figure (a PEM private key file).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// software, tpm: the home's directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// software: the key-encryption key file.
    #[arg(long)]
    kek_file: Option<PathBuf>,
    /// tpm: the TCTI string.
    #[arg(long)]
    tcti: Option<String>,
    /// pkcs11: the module.
    #[arg(long)]
    module: Option<PathBuf>,
    /// pkcs11: the token label.
    #[arg(long)]
    token_label: Option<String>,
    /// pkcs11: the file with the user PIN.
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

/// Both figures, as the child prints them: `sign-rate raw=R keystore=K`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SignRates {
    /// Signatures/s through the raw backend.
    pub(crate) raw: f64,
    /// Signatures/s through the key store's home.
    pub(crate) keystore: f64,
}

impl SignRates {
    /// The line the child prints.
    fn line(&self) -> String {
        format!(
            "sign-rate raw={:.1} keystore={:.1}",
            self.raw, self.keystore
        )
    }

    /// Reads the child's line back.
    pub(crate) fn parse(stdout: &str) -> Option<Self> {
        let line = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("sign-rate "))?;
        let mut raw = None;
        let mut keystore = None;
        for part in line.split_whitespace() {
            match part.split_once('=') {
                Some(("raw", v)) => raw = v.parse().ok(),
                Some(("keystore", v)) => keystore = v.parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            raw: raw?,
            keystore: keystore?,
        })
    }
}

/// Runs `bench sign-rate` and prints its line.
pub(crate) fn run(args: &SignRateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.secs > 0.0, "--secs must be positive");
    let id = KeyId::new(args.id.as_str())?;
    let digest = openssl::sha::sha256(MESSAGE);
    let rates = match args.home.as_str() {
        "software" => software(args, &id, &digest)?,
        "tpm" => tpm(args, &id, &digest)?,
        "pkcs11" => pkcs11(args, &id, &digest)?,
        other => anyhow::bail!("unknown home {other:?} (software, tpm, pkcs11)"),
    };
    println!("{}", rates.line());
    Ok(())
}

fn need<'a, T>(value: &'a Option<T>, flag: &str, home: &str) -> anyhow::Result<&'a T> {
    value
        .as_ref()
        .with_context(|| format!("--home {home} needs {flag}"))
}

/// Operations per second of `op` over `secs` (after ten unmeasured ones). Stops at the first
/// error, which is returned.
fn rate(secs: f64, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..10 {
        op()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..10 {
            op()?;
        }
        n += 10;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Level 1: OpenSSL with the key in memory (the key file the file-key listener uses), and the
/// software home's key (decrypted in zeroizing memory, signed with OpenSSL as well).
fn software(args: &SignRateArgs, id: &KeyId, digest: &[u8; 32]) -> anyhow::Result<SignRates> {
    use keystore::software::{KekSource, SoftwareConfig, SoftwareHome};
    let pem = std::fs::read(need(&args.key_file, "--key-file", "software")?)?;
    let key = openssl::pkey::PKey::private_key_from_pem(&pem)?.ec_key()?;
    let raw = rate(args.secs, || {
        openssl::ecdsa::EcdsaSig::sign(digest, &key)?.to_der()?;
        Ok(())
    })?;
    let home = SoftwareHome::open(&SoftwareConfig {
        dir: need(&args.dir, "--dir", "software")?.clone(),
        kek: KekSource::KeyFile(need(&args.kek_file, "--kek-file", "software")?.clone()),
    })?;
    let handle = home.key(id)?;
    let keystore = rate(args.secs, || {
        home.sign_digest(&handle, digest)?;
        Ok(())
    })?;
    Ok(SignRates { raw, keystore })
}

/// A bench built without the TPM home has no level-2 figures.
#[cfg(not(feature = "tpm"))]
fn tpm(_: &SignRateArgs, _: &KeyId, _: &[u8; 32]) -> anyhow::Result<SignRates> {
    anyhow::bail!(
        "this bench was built without the TPM home: cargo run --release -p bench --features tpm"
    )
}

/// Level 2: tss-esapi with a key of its own, kept loaded (as the home keeps its one key
/// loaded), then the home's key. One TPM connection at a time: the raw context is closed
/// before the home opens.
#[cfg(feature = "tpm")]
fn tpm(args: &SignRateArgs, id: &KeyId, digest: &[u8; 32]) -> anyhow::Result<SignRates> {
    use keystore::tpm::{TpmConfig, TpmHome};
    let tcti = need(&args.tcti, "--tcti", "tpm")?;
    let raw = raw_tpm(tcti, args.secs, digest)?;
    let home = TpmHome::open(&TpmConfig {
        tcti: tcti.clone(),
        dir: need(&args.dir, "--dir", "tpm")?.clone(),
    })?;
    let handle = home.key(id)?;
    let keystore = rate(args.secs, || {
        home.sign_digest(&handle, digest)?;
        Ok(())
    })?;
    Ok(SignRates { raw, keystore })
}

#[cfg(feature = "tpm")]
fn raw_tpm(tcti: &str, secs: f64, digest: &[u8; 32]) -> anyhow::Result<f64> {
    use std::str::FromStr;
    use tss_esapi::attributes::ObjectAttributesBuilder;
    use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
    use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
    use tss_esapi::interface_types::ecc::EccCurve;
    use tss_esapi::interface_types::resource_handles::Hierarchy;
    use tss_esapi::interface_types::session_handles::AuthSession;
    use tss_esapi::structures::{
        Digest, EccPoint, EccScheme, HashScheme, HashcheckTicket, PublicBuilder,
        PublicEccParametersBuilder, SignatureScheme, SymmetricDefinitionObject,
    };
    use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

    let mut ctx = tss_esapi::Context::new(tss_esapi::TctiNameConf::from_str(tcti)?)?;
    ctx.set_sessions((Some(AuthSession::Password), None, None));
    let attrs = |restricted: bool| {
        ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_restricted(restricted)
            .with_decrypt(restricted)
            .with_sign_encrypt(!restricted)
            .build()
    };
    let primary = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs(true)?)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()?;
    let primary = ctx
        .create_primary(Hierarchy::Owner, primary, None, None, None, None)?
        .key_handle;
    let ecc = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attrs(false)?)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()?;
    let created = ctx.create(primary, ecc, None, None, None, None)?;
    let key = ctx.load(primary, created.out_private, created.out_public)?;
    let raw = rate(secs, || {
        let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        })?;
        ctx.sign(
            key,
            Digest::try_from(digest.to_vec())?,
            SignatureScheme::Null,
            ticket,
        )?;
        Ok(())
    });
    // Leave the TPM as found (the CSE loads its own objects next), whatever the rate did.
    let _ = ctx.flush_context(key.into());
    let _ = ctx.flush_context(primary.into());
    raw
}

/// Level 3: the home's key through the home, then the same token object through a second
/// cryptoki session (the module is initialised and logged in by the home; PKCS#11 login
/// state is per application, so the raw session may sign with it).
fn pkcs11(args: &SignRateArgs, id: &KeyId, digest: &[u8; 32]) -> anyhow::Result<SignRates> {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, ObjectClass};
    use keystore::pkcs11::{Pkcs11Config, Pkcs11Home};
    use keystore::SecretSource;
    let module = need(&args.module, "--module", "pkcs11")?;
    let label = need(&args.token_label, "--token-label", "pkcs11")?;
    let home = Pkcs11Home::open(&Pkcs11Config {
        module: module.clone(),
        token_label: label.clone(),
        pin: SecretSource::File(need(&args.pin_file, "--pin-file", "pkcs11")?.clone()),
    })?;
    let handle = home.key(id)?;
    let keystore = rate(args.secs, || {
        home.sign_digest(&handle, digest)?;
        Ok(())
    })?;

    let ctx = cryptoki::context::Pkcs11::new(module)?;
    // Already initialised by the home in this process: CKR_CRYPTOKI_ALREADY_INITIALIZED.
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let mut slot = None;
    for s in ctx.get_slots_with_initialized_token()? {
        if ctx.get_token_info(s)?.label().trim_end() == label.as_str() {
            slot = Some(s);
        }
    }
    let slot = slot.with_context(|| format!("no token labelled {label:?}"))?;
    let session = ctx.open_ro_session(slot)?;
    let private = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(id.as_str().as_bytes().to_vec()),
        ])?
        .into_iter()
        .next()
        .with_context(|| format!("no private key labelled {id} on the token"))?;
    let raw = rate(args.secs, || {
        session.sign(&Mechanism::Ecdsa, private, digest)?;
        Ok(())
    })?;
    // `ctx` finalises the module when it drops, after the last use of `home`.
    drop(session);
    drop(home);
    drop(ctx);
    Ok(SignRates { raw, keystore })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_childs_line_round_trips() {
        let r = SignRates {
            raw: 1234.5,
            keystore: 987.0,
        };
        assert_eq!(SignRates::parse(&format!("noise\n{}\n", r.line())), Some(r));
        assert_eq!(SignRates::parse("sign-rate raw=1"), None);
        assert_eq!(SignRates::parse("nothing"), None);
    }
}
