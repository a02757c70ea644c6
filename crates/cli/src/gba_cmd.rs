//! `m2m gba bootstrap`: the device side of network-provided keys (TS-0003 clause 8.3.2.3),
//! against the BSF stand-in `scripts/bsf.py`; `m2m gba extend`: a bootstrapped gateway
//! derives the key of an edge node behind it.
//!
//! 1. Ub: ask the BSF for a challenge (RAND, AUTN); check AUTN with the device's long-term
//!    key K (the network authenticates itself); answer RES; receive the B-TID and the key
//!    lifetime. Ks is computed here from K and RAND, never sent. The AKA part is simulated
//!    exactly as `scripts/bsf.py` documents (HMAC-SHA-256 instead of Milenage on a USIM).
//! 2. The NAF key for the CSE: `manager::kdf::gba_naf_key` (TS 33.220 Annex B, real), with
//!    NAF_Id = the CSE's public domain name || the Ua protocol of TLS-PSK. Clause 8.3.2.3
//!    makes it the Kpsa and the B-TID the KpsaID.
//! 3. `DIR/kpsa-id` (the B-TID), `DIR/kpsa.hex` (mode 600) and `DIR/expires` (the end of
//!    the key lifetime), ready for
//!    `m2m --psk-identity "$(cat DIR/kpsa-id)" --psk-key-file DIR/kpsa.hex ...`.
//!
//! `m2m gba extend --gateway DIR --node NAME --out EDGE` reads the gateway's B-TID and NAF
//! key from `DIR` (what `bootstrap` wrote), derives the node's key with
//! `manager::kdf::gba_edge_node_key` (the CSE derives the same from the key the BSF gives it),
//! and writes `EDGE/kpsa-id` (`<node>.<B-TID>`), `EDGE/kpsa.hex` (mode 600) and
//! `EDGE/expires` in the same layout, so the edge node connects with the same options. No
//! network is involved. The CSE must have `[gba] edge_nodes = true`.
//!
//! Exit codes: 0 done, 1 refused (by the BSF, or the BSF failed to authenticate itself),
//! 2 usage (arguments, key file, output folder), 3 no answer.

use crate::secret_files::{read_hex_key, write_private};
use anyhow::{anyhow, Context};
use clap::Args;
use client::{Blocking, Client};
use manager::kdf::{
    self, BootstrapTransactionId, EdgeIdentity, EdgeNodeName, Fqdn, GbaBootstrapKey, GbaRand, Impi,
    NafId, NafKey,
};
use openssl::{hash::MessageDigest, memcmp, pkey::PKey, sign::Signer};
use security::gba::zn::{key_kind, MAX_ANSWER};
use security::gba::UA_TLS_PSK;
use serde::Deserialize;
use std::path::{Path, PathBuf};
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

/// The arguments of `m2m gba extend`.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The gateway's folder, as `m2m gba bootstrap --out` wrote it (`kpsa-id`, `kpsa.hex`).
    #[arg(long, value_name = "DIR")]
    pub gateway: PathBuf,
    /// The edge node's name: 1-64 ASCII letters, digits, '_' and '-'.
    #[arg(long, value_name = "NAME")]
    pub node: String,
    /// Folder to write the node's `kpsa-id`, `kpsa.hex` (mode 600) and `expires` into;
    /// created when missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `m2m gba ...`.
#[derive(Debug, clap::Subcommand)]
pub enum GbaCommand {
    /// Bootstrap with the BSF and derive the PSK (Kpsa = Ks_NAF, KpsaID = B-TID) for a CSE.
    Bootstrap(GbaArgs),
    /// As a bootstrapped gateway, derive the PSK of an edge node behind it (KpsaID =
    /// `<node>.<B-TID>`); the CSE needs `[gba] edge_nodes = true`.
    Extend(ExtendArgs),
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
    let result = match command {
        GbaCommand::Bootstrap(args) => bootstrap(args, timeout),
        GbaCommand::Extend(args) => extend(args).map_err(GbaError::Usage),
    };
    match result {
        Ok(report) => {
            crate::out!("{report}");
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
    let client = Client::new(&args.bsf)
        .map_err(|e| usage(anyhow!("--bsf: {e}")))?
        .with_timeout(timeout)
        .with_max_body_bytes(MAX_ANSWER);
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

    // Blocking: `m2m gba` runs without a runtime of its own.
    let blocking = Blocking::new("m2m-gba");
    let post = |body: serde_json::Value| -> Result<(u16, Zeroizing<Vec<u8>>), GbaError> {
        let no_answer = |e: client::ClientError| {
            GbaError::NoAnswer(format!(
                "{}/ub/bootstrap: {e}",
                args.bsf.trim_end_matches('/')
            ))
        };
        let content = ("application/json", body.to_string().into_bytes());
        let req = client
            .http_request(http::Method::POST, "/ub/bootstrap", Some(content))
            .map_err(no_answer)?;
        let c = client.clone();
        let answer = blocking
            .run(async move { c.request(req).await })
            .map_err(no_answer)?;
        Ok((answer.status(), answer.into_secret_body()))
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
    write_expires(&args.out, done.expires).map_err(usage)?;
    Ok(format!(
        "B-TID    {btid}\nexpires  {}\nNAF      {} ({})\nkey file {}\n",
        security::enrolment::rfc3339(done.expires),
        naf.fqdn.as_str(),
        args.naf_key,
        key_file.display()
    ))
}

/// Writes `DIR/expires`: the end of the key lifetime, RFC 3339 (not secret).
fn write_expires(dir: &Path, expires: u64) -> anyhow::Result<()> {
    let path = dir.join("expires");
    std::fs::write(
        &path,
        format!("{}\n", security::enrolment::rfc3339(expires)),
    )
    .with_context(|| format!("cannot write {}", path.display()))
}

/// `m2m gba extend`: the edge node's key from the gateway's NAF key, no network.
fn extend(args: &ExtendArgs) -> anyhow::Result<String> {
    let node = EdgeNodeName::new(&args.node).map_err(|e| anyhow!("--node: {e}"))?;
    let id_file = args.gateway.join("kpsa-id");
    let btid = std::fs::read_to_string(&id_file)
        .with_context(|| format!("the gateway's B-TID: {}", id_file.display()))?;
    let btid = BootstrapTransactionId::new(btid.trim())
        .map_err(|e| anyhow!("{}: {e}", id_file.display()))?;
    let identity = EdgeIdentity::new(node, btid).map_err(|e| anyhow!("{e}"))?;
    let key = read_hex_key(&args.gateway.join("kpsa.hex"), "the gateway's NAF key")?;
    let gateway_key = NafKey::from_slice(&key)
        .map_err(|e| anyhow!("{}: {e}", args.gateway.join("kpsa.hex").display()))?;
    let edge = edge_key(&gateway_key, &identity)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let key_file = args.out.join("kpsa.hex");
    write_private(
        &key_file,
        &format!("{}\n", *Zeroizing::new(hex::encode(edge.expose()))),
    )?;
    let id_out = args.out.join("kpsa-id");
    std::fs::write(&id_out, format!("{identity}\n"))
        .with_context(|| format!("cannot write {}", id_out.display()))?;
    // The node's key ends with the gateway's: copy the gateway's lifetime when it is known.
    let expires = std::fs::read_to_string(args.gateway.join("expires"))
        .ok()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    if let Some(expires) = &expires {
        let path = args.out.join("expires");
        std::fs::write(&path, format!("{expires}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(format!(
        "identity {identity}\ngateway  {}\nexpires  {}\nkey file {}\n",
        identity.gateway(),
        expires
            .as_deref()
            .unwrap_or("with the gateway's key (unknown here)"),
        key_file.display()
    ))
}

/// The edge node's Kpsa: one derivation, shared with the CSE (`security::gba`).
fn edge_key(
    gateway_key: &NafKey,
    identity: &EdgeIdentity,
) -> anyhow::Result<kdf::ProvisionedSecureConnectionKey> {
    Ok(
        kdf::gba_edge_node_key(gateway_key, identity.gateway(), identity.node())
            .map_err(|e| anyhow!("edge key: {e}"))?
            .into_provisioned_secure_connection_key(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use security::association::{CredentialBinding, PeerIdentity};
    use security::gba::{GbaConfig, GbaNaf, ZnAnswer, ZnError, ZnSource};
    use std::sync::Arc;

    const BTID: &str = "WlpaWlpaWlpaWlpaWlpaWg==@bsf.secure-cse.example";
    const GATEWAY_KEY: &str = "0cdcf1701ff873aaa4032bb5db793f841881c1f8b7f79a167a6ceabf98db9e8c";

    /// The BSF as the CSE sees it: the gateway's NAF key for its B-TID.
    #[derive(Debug)]
    struct Bsf;

    impl ZnSource for Bsf {
        fn naf_key(
            &self,
            btid: &BootstrapTransactionId,
            _naf: &NafId,
            _kind: kdf::GbaNafKeyKind,
        ) -> Result<ZnAnswer, ZnError> {
            if btid.as_str() != BTID {
                return Err(ZnError::UnknownBtid);
            }
            let key: [u8; 32] = hex::decode(GATEWAY_KEY)
                .expect("hex")
                .try_into()
                .expect("32");
            Ok(ZnAnswer {
                key: NafKey::from_bytes(key),
                expires: u64::MAX,
                enrolee_id: Some("Cgateway".into()),
            })
        }
    }

    fn gateway_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tmp");
        write_private(&dir.path().join("kpsa.hex"), &format!("{GATEWAY_KEY}\n")).expect("key");
        std::fs::write(dir.path().join("kpsa-id"), format!("{BTID}\n")).expect("id");
        std::fs::write(dir.path().join("expires"), "2026-11-28T04:00:00Z\n").expect("expires");
        dir
    }

    #[test]
    fn the_gateway_and_the_cse_derive_the_same_edge_key() {
        let dir = gateway_dir();
        let out = dir.path().join("meter-7");
        let report = extend(&ExtendArgs {
            gateway: dir.path().to_owned(),
            node: "meter-7".into(),
            out: out.clone(),
        })
        .expect("extend");
        let identity = format!("meter-7.{BTID}");
        assert!(report.contains(&format!("identity {identity}")), "{report}");
        assert!(report.contains("2026-11-28T04:00:00Z"), "{report}");
        assert_eq!(
            std::fs::read_to_string(out.join("kpsa-id"))
                .expect("id")
                .trim(),
            identity
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(out.join("kpsa.hex"))
                .expect("key")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let written = read_hex_key(&out.join("kpsa.hex"), "edge key").expect("key");

        // The CSE side: the NAF key of the gateway's B-TID from the BSF, then the derivation.
        let naf = GbaNaf::new(
            GbaConfig {
                btid_domain: Fqdn::new("bsf.secure-cse.example").expect("fqdn"),
                naf: NafId {
                    fqdn: Fqdn::new("id-in.secure-cse.example").expect("fqdn"),
                    ua_protocol: UA_TLS_PSK,
                },
                key: kdf::GbaNafKeyKind::KsNaf,
                default_binding: CredentialBinding {
                    identity: PeerIdentity::AllowedAes(vec!["C*".into()]),
                    admin: false,
                    allowed_apps: vec![],
                    level: None,
                },
                max_cached: 8,
                edge_nodes: true,
            },
            Arc::new(Bsf),
        );
        let cse = naf
            .lookup_at(&identity, std::time::SystemTime::now())
            .expect("usable")
            .expect("known");
        assert_eq!(cse.key.expose(), written.as_slice());
        assert_eq!(
            hex::encode(cse.key.expose()),
            "7ece6e1afafea8ef327c78178ee1e1d1d862ac5d6dfaa1372a5abe44e2ec89e2",
            "the fixed vector of manager's kdf_vectors"
        );
        assert_eq!(
            cse.binding.identity,
            PeerIdentity::AllowedAes(vec!["C*".into()]),
            "not the gateway's Enrolee-ID"
        );
    }

    #[test]
    fn extend_refuses_bad_names_and_edge_gateways() {
        let dir = gateway_dir();
        for bad in ["", "a.b", "a b", "x@y", &"n".repeat(65)] {
            let err = extend(&ExtendArgs {
                gateway: dir.path().to_owned(),
                node: bad.into(),
                out: dir.path().join("out"),
            })
            .expect_err(bad);
            assert!(err.to_string().contains("--node"), "{bad}: {err}");
        }
        assert!(!dir.path().join("out").exists(), "nothing written");
        // An edge node's own folder cannot be extended further.
        extend(&ExtendArgs {
            gateway: dir.path().to_owned(),
            node: "n".into(),
            out: dir.path().join("n"),
        })
        .expect("extend");
        let err = extend(&ExtendArgs {
            gateway: dir.path().join("n"),
            node: "m".into(),
            out: dir.path().join("m"),
        })
        .expect_err("edge of an edge");
        assert!(err.to_string().contains("cannot extend"), "{err}");
        // A key readable by others is refused.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("kpsa.hex"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let err = extend(&ExtendArgs {
            gateway: dir.path().to_owned(),
            node: "p".into(),
            out: dir.path().join("p"),
        })
        .expect_err("open key");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
