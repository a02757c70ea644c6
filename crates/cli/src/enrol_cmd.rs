//! `m2m enrol`: the enrolee side of the pre-provisioned symmetric enrolee key RSPF (TS-0003
//! clause 8.3.2.1) against a CSE that hosts a MEF.
//!
//! 1. TLS-PSK to the enrolment listener with the enrolee key Kpm (`psk_identity` = KpmID),
//!    TLS 1.3 or 1.2: one connection of the project's HTTP client (`client::Connection`),
//!    outside its pool, since the keys belong to this one association;
//! 2. the `EXPORTER-oneM2M-Bootstrap` output (48 bytes), exported by that connection right
//!    after its handshake: the same value the MEF computes;
//! 3. one request on it, `POST /.mef/enrol`, asking for a key for the PSK-based SAEF
//!    (SUID 22);
//! 4. the answer names KpsaID, KeID, the target and the expiry, never the key: the enrolee
//!    derives Ke, checks that the KeID's relative part is its own RelativeKeID (both sides
//!    saw the same exporter), then derives Kpsa (clause 10.3.3) with `manager::kdf`;
//! 5. `DIR/kpsa-id` (the KpsaID) and `DIR/kpsa.hex` (Kpsa, mode 600) are written, ready for
//!    `m2m --psk-identity "$(cat DIR/kpsa-id)" --psk-key-file DIR/kpsa.hex ...`.
//!
//! Exit codes as for the other subcommands: 0 enrolled, 1 the MEF refused (its status is
//! printed), 2 usage (arguments, key file, output folder), 3 no answer (connection or
//! handshake refused, timeout, unreadable answer).

use crate::secret_files::{read_hex_key, write_private};
use anyhow::{anyhow, Context};
use clap::Args;
use client::{
    Blocking, Client, ClientError, Connection, Exporter, Psk, RawResponse, TlsOptions, TlsProtocol,
};
use manager::kdf::{self, EnroleeId, ExporterLabel, ExporterOutput, KeId};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use zeroize::Zeroizing;

/// The arguments of `m2m enrol` (the MEF's URL is the global `--url`).
#[derive(Debug, Args)]
pub struct EnrolArgs {
    /// The enrolee's identity at the MEF (KpmID), e.g. sensor-9@mef.secure-cse.example.
    #[arg(long, value_name = "ID")]
    pub enrolee_identity: String,
    /// File holding the enrolee key Kpm as hex digits (mode 600).
    #[arg(long, value_name = "FILE")]
    pub enrolee_key_file: PathBuf,
    /// Folder to write `kpsa-id` and `kpsa.hex` (mode 600) into; created when missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The CSE-ID the key is for (Enrolee-B-ID), e.g. /id-in; default: the MEF's CSE.
    #[arg(long, value_name = "CSE-ID")]
    pub target: Option<String>,
    /// Use TLS 1.2 (TLS_PSK_WITH_AES_128_CBC_SHA256 and the other PSK suites) instead of 1.3.
    #[arg(long)]
    pub tls12: bool,
    /// An Enrolment Target (AE-ID or CSE-ID) that may fetch keys derived from this
    /// enrolment (`m2m mef fetch`), repeatable.
    #[arg(long = "enrolment-target", value_name = "ID")]
    pub enrolment_targets: Vec<String>,
}

/// Why an enrolment did not complete, by exit code.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    /// Arguments or local files are unusable (exit 2).
    #[error("{0:#}")]
    Usage(anyhow::Error),
    /// The MEF answered with a refusal (exit 1): HTTP status, oneM2M status and message.
    #[error("the MEF refused the enrolment: {rsc} ({message})")]
    Refused {
        /// `X-M2M-RSC`.
        rsc: u16,
        /// The `m2m:dbg` text, if any.
        message: String,
    },
    /// No usable answer: connection, handshake, timeout, or an answer that does not parse
    /// or does not match this side's exporter (exit 3).
    #[error("{0:#}")]
    NoAnswer(anyhow::Error),
}

impl EnrolError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Refused { .. } => 1,
            Self::NoAnswer(_) => 3,
        }
    }
}

/// `m2m enrol`: enrols and writes the key files; prints what it wrote.
pub fn run(url: &str, timeout: Duration, args: &EnrolArgs) -> ExitCode {
    match enrol_to_files(url, timeout, args) {
        Ok(e) => {
            crate::outln!("KpsaID   {}", e.kpsa_id);
            crate::outln!("KeID     {}", e.ke_id);
            crate::outln!("target   {}", e.target);
            crate::outln!("expires  {}", e.expires);
            crate::outln!("key file {}", args.out.join(KEY_FILE).display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The file the KpsaID is written to, in `--out`.
pub const ID_FILE: &str = "kpsa-id";
/// The file the Kpsa is written to (hex, mode 600), in `--out`.
pub const KEY_FILE: &str = "kpsa.hex";

fn enrol_to_files(url: &str, timeout: Duration, args: &EnrolArgs) -> Result<Enrolled, EnrolError> {
    let key = read_hex_key(&args.enrolee_key_file, "an enrolee key").map_err(EnrolError::Usage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))
        .map_err(EnrolError::Usage)?;
    let mut session =
        EnrolmentClient::new(url, &args.enrolee_identity, key, args.tls12, timeout)?.connect()?;
    let enrolled = session.enrol_towards(args.target.as_deref(), &args.enrolment_targets)?;
    write_private(&args.out.join(KEY_FILE), &enrolled.key_hex()).map_err(EnrolError::Usage)?;
    std::fs::write(args.out.join(ID_FILE), format!("{}\n", enrolled.kpsa_id))
        .with_context(|| format!("cannot write {}", args.out.join(ID_FILE).display()))
        .map_err(EnrolError::Usage)?;
    Ok(enrolled)
}

/// What an enrolment gave: the identifiers from the MEF's answer and the Kpsa derived here.
pub struct Enrolled {
    /// KpsaID, the `psk_identity` to use with the CSE.
    pub kpsa_id: String,
    /// KeID of the Enrolment Key.
    pub ke_id: String,
    /// The CSE-ID the key is for (Enrolee-B-ID).
    pub target: String,
    /// When the key expires (RFC 3339).
    pub expires: String,
    kpsa: kdf::ProvisionedSecureConnectionKey,
}

impl Enrolled {
    /// The Kpsa as hex digits, for the key file.
    fn key_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.kpsa.expose()))
    }
}

impl std::fmt::Debug for Enrolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolled")
            .field("kpsa_id", &self.kpsa_id)
            .field("ke_id", &self.ke_id)
            .field("target", &self.target)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// An enrolee's client for one MEF: its enrolee key and TLS version, and the thread its
/// exchanges run on. Building it reads the system's OpenSSL configuration (tens of
/// milliseconds), so an enrolee that connects often keeps it.
#[derive(Debug, Clone)]
pub struct EnrolmentClient {
    client: Client,
    blocking: Blocking,
}

impl EnrolmentClient {
    /// A client for the enrolment listener at `url` (`https://HOST:PORT`) with the enrolee
    /// key `key` under `identity`; TLS 1.2 only when `tls12`, else TLS 1.3; `timeout` bounds
    /// the connection with its handshake, and each exchange.
    pub fn new(
        url: &str,
        identity: &str,
        key: Zeroizing<Vec<u8>>,
        tls12: bool,
        timeout: Duration,
    ) -> Result<Self, EnrolError> {
        let psk = Psk::new(identity, key)
            .map_err(|e| EnrolError::Usage(anyhow!("the enrolee key: {e}")))?;
        // NOTE(psk): the enrolee key authenticates the MEF; the client's PSK configuration
        // never accepts a certificate instead (a TLS 1.3 server not taking the PSK would
        // fall back to one).
        let protocol = match tls12 {
            true => TlsProtocol::Tls12,
            false => TlsProtocol::Tls13,
        };
        let tls = TlsOptions::new().psk(psk).protocol(protocol);
        let client = crate::https_url::https_client(url, tls, "enrolment listener")
            .map_err(EnrolError::Usage)?
            .with_timeout(timeout)
            .with_max_body_bytes(MAX_ANSWER);
        Ok(Self {
            client,
            blocking: Blocking::new("m2m-enrol"),
        })
    }

    /// Runs the MEF handshake: a new enrolment association and its exporter output.
    pub fn connect(&self) -> Result<EnrolmentSession, EnrolError> {
        let exporter = Exporter::new(ExporterLabel::Bootstrap.as_str(), kdf::EXPORTER_LEN);
        let connection = self
            .blocking
            .run(self.client.connect(Some(exporter)))
            .map_err(|e| {
                EnrolError::NoAnswer(match e {
                    ClientError::Handshake(why) => anyhow!(
                        "the MEF handshake failed (wrong or expired enrolee key, or not an enrolment listener): {why}"
                    ),
                    other => anyhow!(other),
                })
            })?;
        let mut exporter = Zeroizing::new([0u8; kdf::EXPORTER_LEN]);
        match connection.keying_material() {
            Some(ekm) if ekm.len() == kdf::EXPORTER_LEN => exporter.copy_from_slice(ekm),
            _ => {
                return Err(EnrolError::NoAnswer(anyhow!(
                    "the TLS exporter gave no value"
                )))
            }
        }
        Ok(EnrolmentSession {
            client: self.clone(),
            connection,
            exporter,
        })
    }
}

/// An enrolment association, client side: the TLS-PSK connection with the enrolee key and
/// its `EXPORTER-oneM2M-Bootstrap` output. [`EnrolmentSession::post`] is public so that
/// tests can also misuse the association (a second request, a body that is not JSON).
pub struct EnrolmentSession {
    client: EnrolmentClient,
    connection: Connection,
    exporter: Zeroizing<[u8; kdf::EXPORTER_LEN]>,
}

impl std::fmt::Debug for EnrolmentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentSession")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// Largest answer read (the MEF's answers are a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

impl EnrolmentSession {
    /// The usage-constrained key for `suid` and the Enrolment Target `target` (TS-0003
    /// clause 10.3.7), derived on this side from the association's exporter: the key the
    /// MEF hands that target on fetchCredentials.
    pub fn usage_constrained_key(
        &self,
        suid: u8,
        target: &str,
    ) -> Result<kdf::UsageConstrainedKey, kdf::KdfError> {
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &self.exporter[..])?;
        let (ke, _) = kdf::enrolment_key(ekm)?;
        let suid = kdf::Suid::try_from(suid)?;
        kdf::usage_constrained_key(&ke, suid, &kdf::EnrolmentTargetId::new(target)?)
    }

    /// The negotiated protocol (`TLSv1.3`).
    pub fn protocol(&self) -> &'static str {
        self.connection.protocol().unwrap_or("none")
    }

    /// Sends one enrolment request (`POST /.mef/enrol`) carrying `body` on this
    /// association, and reads its answer (any status).
    pub fn post(&mut self, body: &str) -> anyhow::Result<RawResponse> {
        let content = ("application/json", body.as_bytes().to_vec());
        let (req, _) = self.client.client.manager_request(
            http::Method::POST,
            "/.mef/enrol",
            None,
            Some(content),
        )?;
        Ok(self.client.blocking.run(self.connection.send(req))?)
    }

    /// The enrolment exchange: asks for a key for the SAEF with `target` (default: the MEF's
    /// CSE), checks the answer against this side's exporter and derives the Kpsa.
    pub fn enrol(&mut self, target: Option<&str>) -> Result<Enrolled, EnrolError> {
        self.enrol_towards(target, &[])
    }

    /// [`EnrolmentSession::enrol`], naming the Enrolment Targets that may later fetch
    /// usage-constrained keys derived from this enrolment.
    pub fn enrol_towards(
        &mut self,
        target: Option<&str>,
        enrolment_targets: &[String],
    ) -> Result<Enrolled, EnrolError> {
        let mut request = serde_json::json!({"m2m:enrolReq": {"suid": 22}});
        if let Some(t) = target {
            request["m2m:enrolReq"]["target"] = t.into();
        }
        if !enrolment_targets.is_empty() {
            request["m2m:enrolReq"]["enrolmentTargets"] = enrolment_targets.into();
        }
        let answer = self
            .post(&request.to_string())
            .context("the enrolment request")
            .map_err(EnrolError::NoAnswer)?;
        let content: serde_json::Value = serde_json::from_slice(answer.body())
            .context("the answer is not JSON")
            .map_err(EnrolError::NoAnswer)?;
        if answer.rsc() != Some(2001) {
            return Err(EnrolError::Refused {
                rsc: answer.rsc().unwrap_or(answer.status()),
                message: content["m2m:dbg"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let field = |name: &str| {
            content["m2m:enrolRsp"][name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| EnrolError::NoAnswer(anyhow!("the answer has no {name}")))
        };
        let (kpsa_id, ke_id) = (field("kpsaId")?, field("keId")?);
        let (answered_target, expires) = (field("target")?, field("expires")?);
        if let Some(t) = target {
            if t.trim_start_matches('/') != answered_target.trim_start_matches('/') {
                return Err(EnrolError::NoAnswer(anyhow!(
                    "the MEF issued a key for {answered_target}, not {t}"
                )));
            }
        }
        let bad = |e: kdf::KdfError| EnrolError::NoAnswer(anyhow!("{e}"));
        let ekm = ExporterOutput::new(ExporterLabel::Bootstrap, &self.exporter[..]).map_err(bad)?;
        let (ke, relative) = kdf::enrolment_key(ekm).map_err(bad)?;
        let answered = KeId::parse(&ke_id).map_err(bad)?;
        if *answered.relative() != relative {
            return Err(EnrolError::NoAnswer(anyhow!(
                "the MEF's KeID {ke_id} is not this side's: the two ends exported different values"
            )));
        }
        let target_id = EnroleeId::new(&answered_target).map_err(bad)?;
        let kpsa = kdf::provisioned_secure_connection_key(&ke, &target_id).map_err(bad)?;
        Ok(Enrolled {
            kpsa_id,
            ke_id,
            target: answered_target,
            expires,
            kpsa,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_must_be_private_hex() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("kpm.hex");
        std::fs::write(&path, "00112233445566778899aabbccddeeff\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(read_hex_key(&path, "an enrolee key").is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_hex_key(&path, "an enrolee key").expect("ok").len(), 16);
        std::fs::write(&path, "0011").expect("write");
        assert!(read_hex_key(&path, "an enrolee key").is_err());
        let out = dir.path().join("kpsa.hex");
        write_private(&out, "ab").expect("write");
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
