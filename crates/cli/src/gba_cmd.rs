//! `m2m gba bootstrap`: the device side of network-provided keys (TS-0003 clause 8.3.2.3),
//! against the BSF stand-in `scripts/bsf.py`.
//!
//! 1. Ub: ask the BSF for a challenge (RAND, AUTN); check AUTN with the device's long-term
//!    key K (the network authenticates itself); answer RES; receive the B-TID and the key
//!    lifetime. Ks is computed here from K and RAND, never sent. The AKA part is simulated
//!    exactly as `scripts/bsf.py` documents (HMAC-SHA-256 instead of Milenage on a USIM).
//! 2. The NAF key for the CSE: `manager::kdf::gba_naf_key` (TS 33.220 Annex B, real), with
//!    NAF_Id = the CSE's public domain name || the Ua protocol of TLS-PSK. Clause 8.3.2.3
//!    makes it the Kpsa and the B-TID the KpsaID.
//! 3. `DIR/kpsa-id` (the B-TID) and `DIR/kpsa.hex` (mode 600), ready for
//!    `m2m --psk-identity "$(cat DIR/kpsa-id)" --psk-key-file DIR/kpsa.hex ...`.
//!
//! Exit codes: 0 done, 1 refused (by the BSF, or the BSF failed to authenticate itself),
//! 2 usage (arguments, key file, output folder), 3 no answer.

use crate::secret_files::{read_hex_key, write_private};
use anyhow::{anyhow, Context};
use clap::Args;
use manager::kdf::{self, Fqdn, GbaBootstrapKey, GbaRand, Impi, NafId};
use openssl::{hash::MessageDigest, memcmp, pkey::PKey, sign::Signer};
use security::gba::zn::{key_kind, post_json, HttpUrl, ZnError};
use security::gba::UA_TLS_PSK;
use serde::Deserialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use zeroize::Zeroizing;

/// The arguments of `m2m gba bootstrap`.
#[derive(Debug, Args)]
pub struct GbaArgs {
    /// The BSF's URL (http://HOST:PORT), e.g. the one `scripts/bsf.py` prints.
    #[arg(long, value_name = "URL")]
    pub bsf: String,
    /// The device's private identity at the network (IMPI).
    #[arg(long, value_name = "IMPI")]
    pub impi: String,
    /// File holding the device's long-term network key K as hex digits (mode 600).
    #[arg(long, value_name = "FILE")]
    pub device_key_file: PathBuf,
    /// The NAF: the public domain name of the CSE's CSE-ID, e.g. id-in.secure-cse.example.
    #[arg(long, value_name = "FQDN")]
    pub naf_fqdn: String,
    /// Which NAF key is the Kpsa: ks_naf (GBA_ME), ks_ext_naf or ks_int_naf (GBA_U); the
    /// CSE's `[gba] key` must name the same.
    #[arg(long, default_value = "ks_naf", value_name = "KIND")]
    pub naf_key: String,
    /// Folder to write `kpsa-id` and `kpsa.hex` (mode 600) into; created when missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `m2m gba ...`.
#[derive(Debug, clap::Subcommand)]
pub enum GbaCommand {
    /// Bootstrap with the BSF and derive the PSK (Kpsa = Ks_NAF, KpsaID = B-TID) for a CSE.
    Bootstrap(GbaArgs),
}

/// Why a bootstrap did not complete, by exit code.
#[derive(Debug, thiserror::Error)]
enum GbaError {
    #[error("{0:#}")]
    Usage(anyhow::Error),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NoAnswer(String),
}

/// Runs `m2m gba ...` and prints the result.
pub fn run(command: &GbaCommand, timeout: Duration) -> ExitCode {
    let GbaCommand::Bootstrap(args) = command;
    match bootstrap(args, timeout) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("m2m gba: {e}");
            ExitCode::from(match e {
                GbaError::Refused(_) => 1,
                GbaError::Usage(_) => 2,
                GbaError::NoAnswer(_) => 3,
            })
        }
    }
}

#[derive(Deserialize)]
struct Challenge {
    rand: String,
    autn: String,
}

#[derive(Deserialize)]
struct Bootstrapped {
    btid: String,
    expires: u64,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    error: String,
}

/// HMAC-SHA-256 of the simulated AKA (see `scripts/bsf.py`).
fn sim(k: &[u8], label: &[u8], rand: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let key = PKey::hmac(k)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(label)?;
    signer.update(rand)?;
    Ok(Zeroizing::new(signer.sign_to_vec()?))
}

fn bootstrap(args: &GbaArgs, timeout: Duration) -> Result<String, GbaError> {
    let usage = |e: anyhow::Error| GbaError::Usage(e);
    let url = HttpUrl::parse(&args.bsf).map_err(|e| usage(anyhow!("--bsf: {e}")))?;
    let impi = Impi::new(&args.impi).map_err(|e| usage(anyhow!("--impi: {e}")))?;
    let fqdn = Fqdn::new(&args.naf_fqdn).map_err(|e| usage(anyhow!("--naf-fqdn: {e}")))?;
    let kind = key_kind(&args.naf_key).ok_or_else(|| {
        usage(anyhow!(
            "--naf-key {}: use ks_naf, ks_ext_naf or ks_int_naf",
            args.naf_key
        ))
    })?;
    let k = read_hex_key(&args.device_key_file, "a device key").map_err(usage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(usage)?;

    let post = |body: serde_json::Value| -> Result<(u16, Zeroizing<Vec<u8>>), GbaError> {
        post_json(&url, "/ub/bootstrap", body.to_string().as_bytes(), timeout).map_err(
            |e| match e {
                ZnError::Unreachable(m) => GbaError::NoAnswer(m),
                other => GbaError::NoAnswer(other.to_string()),
            },
        )
    };
    let refused = |status: u16, body: &[u8]| {
        let why = serde_json::from_slice::<Refusal>(body)
            .unwrap_or_default()
            .error;
        GbaError::Refused(format!(
            "the BSF refused the bootstrap: HTTP {status} ({why})"
        ))
    };
    // 1. The challenge.
    let (status, body) = post(serde_json::json!({ "impi": impi.as_str() }))?;
    if status != 401 {
        return Err(refused(status, &body));
    }
    let challenge: Challenge = serde_json::from_slice(&body)
        .map_err(|e| GbaError::NoAnswer(format!("the BSF's challenge is unreadable: {e}")))?;
    let rand: [u8; 16] = hex::decode(&challenge.rand)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| GbaError::NoAnswer("the BSF's RAND is not 16 bytes of hex".into()))?;
    let autn = hex::decode(&challenge.autn)
        .map_err(|_| GbaError::NoAnswer("the BSF's AUTN is not hex".into()))?;
    let internal = |e: anyhow::Error| GbaError::Usage(e.context("HMAC"));
    let expected_autn = sim(&k, b"sim-aka AUTN", &rand).map_err(internal)?;
    if autn.len() != 16 || !memcmp::eq(&autn, &expected_autn[..16]) {
        return Err(GbaError::Refused(
            "the BSF failed network authentication (AUTN does not match the device key): \
             a wrong device key, or not the subscriber's network"
                .into(),
        ));
    }
    // 2. The answer: RES proves K; the BSF issues the B-TID and the key lifetime.
    let res = sim(&k, b"sim-aka RES", &rand).map_err(internal)?;
    let (status, body) = post(serde_json::json!({
        "impi": impi.as_str(),
        "rand": challenge.rand,
        "res": hex::encode(&res[..16]),
    }))?;
    if status != 200 {
        return Err(refused(status, &body));
    }
    let done: Bootstrapped = serde_json::from_slice(&body)
        .map_err(|e| GbaError::NoAnswer(format!("the BSF's answer is unreadable: {e}")))?;
    let btid = kdf::BootstrapTransactionId::new(&done.btid)
        .map_err(|e| GbaError::NoAnswer(format!("the BSF's B-TID is unusable: {e}")))?;
    // 3. Ks, and the NAF key for the CSE.
    let ks = GbaBootstrapKey::from_slice(&sim(&k, b"sim-aka Ks", &rand).map_err(internal)?)
        .map_err(|e| GbaError::Usage(anyhow!("Ks: {e}")))?;
    let naf = NafId {
        fqdn,
        ua_protocol: UA_TLS_PSK,
    };
    let kpsa = kdf::gba_naf_key(&ks, kind, &GbaRand(rand), &impi, &naf)
        .map_err(|e| GbaError::Usage(anyhow!("NAF key: {e}")))?
        .into_provisioned_secure_connection_key();
    let key_file = args.out.join("kpsa.hex");
    write_private(
        &key_file,
        &format!("{}\n", *Zeroizing::new(hex::encode(kpsa.expose()))),
    )
    .map_err(usage)?;
    std::fs::write(args.out.join("kpsa-id"), format!("{btid}\n"))
        .with_context(|| format!("cannot write {}", args.out.join("kpsa-id").display()))
        .map_err(usage)?;
    Ok(format!(
        "B-TID    {btid}\nexpires  {}\nNAF      {} ({})\nkey file {}\n",
        security::enrolment::rfc3339(done.expires),
        naf.fqdn.as_str(),
        args.naf_key,
        key_file.display()
    ))
}
