//! `m2m enrol`: the enrolee side of the pre-provisioned symmetric enrolee key RSPF (TS-0003
//! clause 8.3.2.1) against a CSE that hosts a MEF.
//!
//! 1. TLS-PSK to the enrolment listener with the enrolee key Kpm (`psk_identity` = KpmID),
//!    TLS 1.3 or 1.2, with OpenSSL directly (the exporter is not reachable through the HTTP
//!    client);
//! 2. the `EXPORTER-oneM2M-Bootstrap` output (48 bytes), the same value the MEF computes;
//! 3. one request, `POST /.mef/enrol`, asking for a key for the PSK-based SAEF (SUID 22);
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
use anyhow::{anyhow, bail, Context};
use clap::Args;
use manager::kdf::{self, EnroleeId, ExporterLabel, ExporterOutput, KeId};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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
        EnrolmentSession::connect(url, &args.enrolee_identity, key, args.tls12, timeout)?;
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

/// One HTTP answer, as read off the enrolment association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// The HTTP status.
    pub status: u16,
    /// `X-M2M-RSC`, when present.
    pub rsc: Option<u16>,
    /// The body.
    pub body: Vec<u8>,
}

/// An enrolment association, client side: the TLS-PSK connection with the enrolee key and
/// its `EXPORTER-oneM2M-Bootstrap` output. Public so that tests can also misuse it
/// (replay, truncation).
pub struct EnrolmentSession {
    stream: SslStream<TcpStream>,
    exporter: Zeroizing<[u8; kdf::EXPORTER_LEN]>,
    host: String,
    requests: u32,
}

impl std::fmt::Debug for EnrolmentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentSession")
            .field("host", &self.host)
            .field("protocol", &self.stream.ssl().version_str())
            .finish_non_exhaustive()
    }
}

/// Largest answer read (the MEF's answers are a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

impl EnrolmentSession {
    /// Connects to `url` (`https://HOST:PORT`) and runs the MEF handshake with the enrolee
    /// key `key` under `identity`; TLS 1.2 only when `tls12`, else TLS 1.3.
    pub fn connect(
        url: &str,
        identity: &str,
        key: Zeroizing<Vec<u8>>,
        tls12: bool,
        timeout: Duration,
    ) -> Result<Self, EnrolError> {
        let connector = Self::connector(identity, key, tls12)?;
        Self::connect_with(&connector, url, timeout)
    }

    /// The TLS configuration of an enrolee: its key under `identity`, TLS 1.2 only when
    /// `tls12`, else TLS 1.3. Building it reads the system's CA store (tens of
    /// milliseconds), so an enrolee that connects often keeps it.
    pub fn connector(
        identity: &str,
        key: Zeroizing<Vec<u8>>,
        tls12: bool,
    ) -> Result<SslConnector, EnrolError> {
        let no_answer = |e: anyhow::Error| EnrolError::NoAnswer(e);
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .context("OpenSSL")
            .map_err(no_answer)?;
        let version = if tls12 {
            SslVersion::TLS1_2
        } else {
            SslVersion::TLS1_3
        };
        b.set_min_proto_version(Some(version))
            .and_then(|()| b.set_max_proto_version(Some(version)))
            .and_then(|()| b.set_cipher_list(PSK_TLS12_CIPHERS))
            .and_then(|()| b.set_ciphersuites(PSK_TLS13_SUITES))
            .context("OpenSSL settings")
            .map_err(no_answer)?;
        // NOTE(psk): the enrolee key authenticates the MEF; a certificate is never accepted
        // instead (a TLS 1.3 server not taking the PSK would fall back to one).
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| false);
        let id = identity.as_bytes().to_vec();
        b.set_psk_client_callback(move |_ssl, _hint, identity_out, key_out| {
            if id.len() >= identity_out.len() || key.len() > key_out.len() {
                return Err(openssl::error::ErrorStack::get());
            }
            identity_out[..id.len()].copy_from_slice(&id);
            identity_out[id.len()] = 0;
            key_out[..key.len()].copy_from_slice(&key);
            Ok(key.len())
        });
        Ok(b.build())
    }

    /// [`EnrolmentSession::connect`] with a [`EnrolmentSession::connector`] already built.
    pub fn connect_with(
        connector: &SslConnector,
        url: &str,
        timeout: Duration,
    ) -> Result<Self, EnrolError> {
        let (host, port) = parse_url(url).map_err(EnrolError::Usage)?;
        let no_answer = |e: anyhow::Error| EnrolError::NoAnswer(e);
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))
            .map_err(no_answer)?
            .next()
            .ok_or_else(|| no_answer(anyhow!("{host} has no address")))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("cannot connect to {addr}"))
            .map_err(no_answer)?;
        tcp.set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)))
            .and_then(|()| tcp.set_nodelay(true))
            .context("socket options")
            .map_err(no_answer)?;
        let config = connector
            .configure()
            .map(|c| c.verify_hostname(false))
            .context("OpenSSL")
            .map_err(no_answer)?;
        let stream = config.connect(&host, tcp).map_err(|e| {
            no_answer(anyhow!(
                "the MEF handshake failed (wrong or expired enrolee key, or not an enrolment listener): {e}"
            ))
        })?;
        let mut exporter = Zeroizing::new([0u8; kdf::EXPORTER_LEN]);
        stream
            .ssl()
            .export_keying_material(&mut exporter[..], ExporterLabel::Bootstrap.as_str(), None)
            .context("the TLS exporter")
            .map_err(no_answer)?;
        Ok(Self {
            stream,
            exporter,
            host: format!("{host}:{port}"),
            requests: 0,
        })
    }

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
        self.stream.ssl().version_str()
    }

    /// The bytes of an enrolment request (`POST /.mef/enrol`) carrying `body`.
    pub fn request_bytes(&mut self, body: &str) -> Vec<u8> {
        self.requests += 1;
        format!(
            "POST /.mef/enrol HTTP/1.1\r\nHost: {}\r\nX-M2M-RI: enrol-{}\r\nX-M2M-RVI: 3\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.requests,
            body.len()
        )
        .into_bytes()
    }

    /// Writes raw bytes on the association.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Ends the sending side (TLS close_notify); answers can still be read.
    pub fn close_sending(&mut self) {
        let _ = self.stream.shutdown();
    }

    /// Reads one HTTP answer (with a `Content-Length`).
    pub fn read_answer(&mut self) -> anyhow::Result<RawAnswer> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_ANSWER {
                bail!("answer head too long");
            }
            let n = self.stream.read(&mut chunk).context("reading the answer")?;
            if n == 0 {
                bail!("the MEF closed the connection without an answer");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..head_end]).context("answer head is not text")?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("no HTTP status line"))?;
        let mut rsc = None;
        let mut length = 0usize;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("x-m2m-rsc") {
                    rsc = value.parse().ok();
                } else if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().context("bad Content-Length")?;
                }
            }
        }
        if length > MAX_ANSWER {
            bail!("answer body too long");
        }
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = self.stream.read(&mut chunk).context("reading the answer")?;
            if n == 0 {
                bail!("the answer was cut short");
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
        Ok(RawAnswer { status, rsc, body })
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
        let bytes = self.request_bytes(&request.to_string());
        self.send_raw(&bytes)
            .context("sending the enrolment request")
            .map_err(EnrolError::NoAnswer)?;
        let answer = self.read_answer().map_err(EnrolError::NoAnswer)?;
        let content: serde_json::Value = serde_json::from_slice(&answer.body)
            .context("the answer is not JSON")
            .map_err(EnrolError::NoAnswer)?;
        if answer.rsc != Some(2001) {
            return Err(EnrolError::Refused {
                rsc: answer.rsc.unwrap_or(answer.status),
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

/// TLS 1.2 PSK suites offered, the mandatory one (TS-0003 clause 10.2) included.
const PSK_TLS12_CIPHERS: &str =
    "PSK-AES128-CBC-SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256";
/// TLS 1.3: OpenSSL's PSK client callback makes an external PSK for SHA-256 suites only.
const PSK_TLS13_SUITES: &str = "TLS_AES_128_GCM_SHA256";

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `https://HOST[:PORT][/...]` to host and port (443 by default).
fn parse_url(url: &str) -> anyhow::Result<(String, u16)> {
    crate::https_url::host_and_port(url, "enrolment listener")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_the_enrolment_listener() {
        assert_eq!(
            parse_url("https://127.0.0.1:8445").expect("ok"),
            ("127.0.0.1".to_owned(), 8445)
        );
        assert_eq!(
            parse_url("HTTPS://[::1]:9/x").expect("ok"),
            ("::1".to_owned(), 9)
        );
        assert_eq!(
            parse_url("https://mef.example").expect("ok"),
            ("mef.example".to_owned(), 443)
        );
        for bad in [
            "http://127.0.0.1:1",
            "https://:1",
            "https://h:x",
            "https://[::1:1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

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
