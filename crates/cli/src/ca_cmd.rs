//! `m2m ca`: the operator's commands for the certificate authority of a CSE configuration
//! (`manager::ca`), run locally with the CA key opened in its key home, never exported.
//!
//! * The configuration (`--config FILE`) gives the CA key (`[keystore] ca_key`), the homes,
//!   the SP-ID and CSE-ID, the audit log, and the CA directory: the directory of the
//!   `ca.pem` that the `[[tls]]` listeners trust, when it holds the CA's records (`cse init`
//!   lays it out so); `--ca DIR` names another one.
//! * `renew` rotates a certificate: a new one for the same identity (new key from a CSR, or
//!   the same key); the old one stays valid until it expires unless `--revoke-old`.
//! * Every change writes a new CRL where those listeners read it (their `crls`).
//! * `revoke`, `suspend` and `resume` also tell a running CSE at once when the TLS flags
//!   (admin credentials over `--url`) are given: `POST /.admin/revoke|suspend|resume` with the
//!   certificate's Credential-ID, so new handshakes are refused and live associations closed
//!   without waiting for the CSE to re-read the new CRL (`m2m reload-tls` or SIGHUP).
//! * Each action that changes anything is audited: appended to the configured audit log
//!   under its lock (`manager::audit::WriterLock`, taken before the action and held until the
//!   entries are appended), or, while a CSE runs with that log, recorded by the CSE, which
//!   the command tells over `--url`. Without `--url` such an action is refused (exit 2)
//!   before anything is done.
//!
//! Exit codes: 0 done, 1 refused (by the CA: wrong identity, forged CSR, impossible
//! transition; or by the CSE), 2 unusable arguments, configuration or files, 3 the CSE did
//! not answer.

use crate::config::{AuditSettings, FileConfig, Settings};
use crate::keyhomes::KeyHomes;
use crate::keys_cmd::utc;
use anyhow::{anyhow, bail, Context};
use keystore::KeyRole;
use manager::audit::{AuditLog, Event, WriterLock};
use manager::ca::{
    AfterRenewal, CaConfig, CaError, CertificateAuthority, CertificateRecord, Grant, Identity,
    RevocationReason, Serial, Status, Validity, CA_CERTIFICATE_FILE, RECORDS_FILE,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `m2m ca ...`
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// The CSE's configuration file (its [keystore] ca_key, homes, [[tls]] and [audit]).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The CA directory (ca.pem, records.sqlite); default: the one the [[tls]] listeners trust.
    #[arg(long = "ca", global = true, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: CaAction,
}

/// The `m2m ca` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CaAction {
    /// Issue a certificate for one AE-ID or CSE-ID to the key of a CSR (PKCS#10, PEM or DER).
    /// The CSR gives only the public key; a CSR naming another identity is refused.
    Issue {
        /// The certificate signing request.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// The AE-ID to certify (Cxyz, /id-in/Cxyz or //sp/id-in/Cxyz).
        #[arg(long, group = "identity", required_unless_present = "cse_id")]
        ae_id: Option<String>,
        /// The CSE-ID to certify (id-mn, /id-mn).
        #[arg(long, group = "identity")]
        cse_id: Option<String>,
        /// Validity in days from now.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Where to write the certificate (PEM); an existing file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Renew a certificate (rotation): a new certificate for the same identity, to the key of
    /// a CSR (a new key) or, without --csr, to the same public key. The old one stays valid
    /// until it expires, unless --revoke-old revokes it (reason superseded).
    Renew {
        /// The serial number of the certificate to renew.
        serial: String,
        /// The certificate signing request of the new key (default: keep the same key).
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        /// Validity in days from now.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Where to write the new certificate (PEM); an existing file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Revoke the old certificate at once (reason superseded; with --url and admin
        /// credentials the running CSE is told, as for revoke).
        #[arg(long)]
        revoke_old: bool,
    },
    /// List every certificate the CA issued.
    List,
    /// Show one certificate's record and its PEM.
    Show {
        /// The serial number (hex, as `list` shows it).
        serial: String,
    },
    /// Revoke a certificate for good (and write the new CRL).
    Revoke {
        /// The serial number.
        serial: String,
        /// key-compromise, affiliation-changed, superseded, cessation-of-operation,
        /// privilege-withdrawn or unspecified.
        #[arg(long)]
        reason: String,
    },
    /// Suspend a certificate (certificateHold on the CRL) until it is resumed.
    Suspend {
        /// The serial number.
        serial: String,
        /// Why (for the audit log and the CSE).
        #[arg(long, default_value = "suspended by the CA operator")]
        reason: String,
    },
    /// Lift a suspension (the next CRL leaves the certificate off).
    Resume {
        /// The serial number.
        serial: String,
    },
    /// Sign a new CRL and write it where the listeners read it (and to --out).
    Crl {
        /// Also write it (DER) to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// A running CSE to tell about withdrawals: a client with admin credentials, and the admin
/// originator.
#[derive(Debug)]
pub struct Live {
    /// The client, built from `--url` and the TLS flags.
    pub client: client::Client,
    /// The admin originator (`--origin`, default CAdmin).
    pub origin: String,
}

/// How a command ended: the exit code's cause.
#[derive(Debug)]
enum Failure {
    /// The CA or the CSE refused (exit 1).
    Refused(anyhow::Error),
    /// Arguments, configuration or files (exit 2).
    Usage(anyhow::Error),
    /// The CSE did not answer (exit 3).
    NoResponse(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Usage(e)
    }
}

/// The CA's refusals of a request (as opposed to a broken set-up).
fn ca_failure(e: CaError) -> Failure {
    match e {
        CaError::IdentityMismatch { .. }
        | CaError::InvalidCsr(..)
        | CaError::CsrSignature
        | CaError::UnsupportedKey(..)
        | CaError::InvalidIdentity { .. }
        | CaError::OutsideNameConstraints { .. }
        | CaError::InvalidValidity(..)
        | CaError::InvalidTransition { .. }
        | CaError::UnknownSerial { .. } => Failure::Refused(e.into()),
        other => Failure::Usage(other.into()),
    }
}

/// Runs `m2m ca`, printing what it did; `live` is the running CSE to tell about withdrawals.
pub fn run(args: &CaArgs, live: Option<Live>) -> ExitCode {
    match execute(args, live) {
        Ok(text) => {
            crate::out!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Refused(e)) => {
            eprintln!("refused: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::NoResponse(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn execute(args: &CaArgs, live: Option<Live>) -> Result<String, Failure> {
    let config = args
        .config
        .as_deref()
        .ok_or_else(|| anyhow!("m2m ca needs --config FILE (the CSE's configuration)"))?;
    let ctx = Ca::load(config, args.ca_dir.as_deref())?;
    // Taken before anything changes and held until the entries are appended, so that an
    // action is never done unaudited: see `AuditWriter`.
    let writer = match &args.action {
        CaAction::List | CaAction::Show { .. } | CaAction::Crl { .. } => AuditWriter::Nobody,
        _ => AuditWriter::claim(ctx.settings.audit.as_ref(), live.is_some())?,
    };
    let mut out = String::new();
    let mut events = Vec::new();
    let mut withdrawal = None;
    match &args.action {
        CaAction::Issue {
            csr,
            ae_id,
            cse_id,
            days,
            out: path,
        } => {
            let csr = std::fs::read(csr)
                .with_context(|| format!("cannot read the CSR {}", csr.display()))?;
            let identity = match (ae_id, cse_id) {
                (Some(ae), _) => ctx.ca.names().ae(ae),
                (None, Some(cse)) => ctx.ca.names().cse(cse),
                (None, None) => return Err(anyhow!("give --ae-id or --cse-id").into()),
            }
            .map_err(ca_failure)?;
            let validity = Validity::For(Duration::from_secs(days.saturating_mul(86_400)));
            let issued = ctx
                .ca
                .issue(&csr, &Grant::new(identity, validity))
                .map_err(ca_failure)?;
            write_new(path, issued.pem().as_bytes(), 0o644)?;
            out.push_str(&format!(
                "issued {} to {} (serial {}, valid until {}, Credential-ID {})\nwrote {}\n",
                kind(&issued.identity),
                issued.identity,
                issued.serial,
                utc(issued.not_after),
                credential_id(&issued.identity, &issued.der).map_err(Failure::Refused)?,
                path.display()
            ));
            events.push(Event::CertificateIssued {
                subject: issued.identity.as_str().to_owned(),
                serial: issued.serial.to_string(),
                not_after: utc(issued.not_after),
            });
        }
        CaAction::Renew {
            serial,
            csr,
            days,
            out: path,
            revoke_old,
        } => {
            let old = parse_serial(serial)?;
            let before = ctx.ca.show(&old).map_err(ca_failure)?;
            let validity = Validity::For(Duration::from_secs(days.saturating_mul(86_400)));
            let after = if *revoke_old {
                AfterRenewal::Revoke
            } else {
                AfterRenewal::KeepUntilExpiry
            };
            let issued = match csr {
                Some(csr) => {
                    let csr = std::fs::read(csr)
                        .with_context(|| format!("cannot read the CSR {}", csr.display()))?;
                    ctx.ca.renew(&old, &csr, validity, after)
                }
                None => ctx.ca.renew_same_key(&old, validity, after),
            }
            .map_err(ca_failure)?;
            write_new(path, issued.pem().as_bytes(), 0o644)?;
            let old_cred =
                credential_id(&before.identity, &before.der).map_err(Failure::Refused)?;
            out.push_str(&format!(
                "renewed {old} ({old_cred}) with {} to {} (serial {}, {}, valid until {}, Credential-ID {})\nwrote {}\n",
                kind(&issued.identity),
                issued.identity,
                issued.serial,
                if csr.is_some() { "the CSR's key" } else { "the same key" },
                utc(issued.not_after),
                credential_id(&issued.identity, &issued.der).map_err(Failure::Refused)?,
                path.display()
            ));
            events.push(Event::CertificateIssued {
                subject: issued.identity.as_str().to_owned(),
                serial: issued.serial.to_string(),
                not_after: utc(issued.not_after),
            });
            if *revoke_old {
                let reason = RevocationReason::Superseded;
                out.push_str(&format!(
                    "revoked {old} ({old_cred}): {reason} by {}\n",
                    issued.serial
                ));
                events.push(Event::Revoked {
                    credential: old_cred.clone(),
                    actor: actor(),
                    reason: format!("{reason} (CA serial {old}, renewed as {})", issued.serial),
                });
                withdrawal = Some(("revoke", old_cred, Some(reason.to_string())));
            } else {
                out.push_str(&format!(
                    "{old} stays valid until {} (--revoke-old to revoke it now)\n",
                    utc(before.not_after)
                ));
            }
        }
        CaAction::List => {
            let records = ctx.ca.list().map_err(ca_failure)?;
            return Ok(render(&records));
        }
        CaAction::Show { serial } => {
            let record = ctx.ca.show(&parse_serial(serial)?).map_err(ca_failure)?;
            let mut text = render(std::slice::from_ref(&record));
            text.push_str(&format!(
                "Credential-ID {}\n",
                credential_id(&record.identity, &record.der).map_err(Failure::Refused)?
            ));
            if let Some(next) = &record.superseded_by {
                text.push_str(&format!("superseded by {next}\n"));
            }
            text.push_str(&pem(&record.der));
            return Ok(text);
        }
        CaAction::Revoke { serial, reason } => {
            let reason = parse_reason(reason)?;
            let record = ctx
                .ca
                .revoke(&parse_serial(serial)?, reason)
                .map_err(ca_failure)?;
            let cred = credential_id(&record.identity, &record.der).map_err(Failure::Refused)?;
            out.push_str(&format!("revoked {} ({}): {reason}\n", record.serial, cred));
            events.push(Event::Revoked {
                credential: cred.clone(),
                actor: actor(),
                reason: format!("{reason} (CA serial {})", record.serial),
            });
            withdrawal = Some(("revoke", cred, Some(reason.to_string())));
        }
        CaAction::Suspend { serial, reason } => {
            let record = ctx.ca.suspend(&parse_serial(serial)?).map_err(ca_failure)?;
            let cred = credential_id(&record.identity, &record.der).map_err(Failure::Refused)?;
            out.push_str(&format!("suspended {} ({})\n", record.serial, cred));
            events.push(Event::Suspended {
                credential: cred.clone(),
                actor: actor(),
                reason: format!("{reason} (CA serial {})", record.serial),
            });
            withdrawal = Some(("suspend", cred, Some(reason.clone())));
        }
        CaAction::Resume { serial } => {
            let record = ctx.ca.resume(&parse_serial(serial)?).map_err(ca_failure)?;
            let cred = credential_id(&record.identity, &record.der).map_err(Failure::Refused)?;
            out.push_str(&format!("resumed {} ({})\n", record.serial, cred));
            events.push(Event::Resumed {
                credential: cred.clone(),
                actor: actor(),
            });
            withdrawal = Some(("resume", cred, None));
        }
        CaAction::Crl { out: path } => {
            let crl = ctx.write_crl(&mut out)?;
            if let Some(path) = path {
                crl.write_der(path).map_err(ca_failure)?;
                out.push_str(&format!("wrote {}\n", path.display()));
            }
        }
    }
    if withdrawal.is_some() {
        ctx.write_crl(&mut out)?;
    }
    let issued: Vec<[(&'static str, String); 3]> = events
        .iter()
        .filter_map(|e| match e {
            Event::CertificateIssued {
                subject,
                serial,
                not_after,
            } => Some([
                ("subject", subject.clone()),
                ("serial", serial.clone()),
                ("not_after", not_after.clone()),
            ]),
            _ => None,
        })
        .collect();
    match writer {
        AuditWriter::Us(lock, audit) => {
            out.push_str(&append_locked(lock, audit, &ctx.homes, events)?);
        }
        // The running CSE holds its log (and `claim` made sure it can be told): it records
        // the issue itself when told, and the withdrawal below when told about it.
        AuditWriter::TheCse(audit) => {
            out.push_str(&format!(
                "the audit log {} is held by the running CSE, which records this action\n",
                audit.file.display()
            ));
            if let Some(live) = &live {
                for params in &issued {
                    out.push_str(&record_in_cse(live, params)?);
                }
            }
        }
        AuditWriter::Nobody => {
            if !events.is_empty() {
                out.push_str("the audit log is disabled ([audit] enabled = false)\n");
            }
        }
    }
    if let Some((command, credential, reason)) = withdrawal {
        match live {
            Some(live) => out.push_str(&tell_cse(&live, command, &credential, reason)?),
            None => out.push_str(
                "the running CSE reads the new CRL on `m2m reload-tls` or SIGHUP; or repeat this \
                 with --url and admin credentials to tell it at once\n",
            ),
        }
    }
    Ok(out)
}

/// The CA of a configuration, its homes, and where its CRLs go.
struct Ca {
    ca: CertificateAuthority,
    homes: KeyHomes,
    settings: Settings,
    crls: Vec<PathBuf>,
}

impl Ca {
    fn load(config: &Path, ca_dir: Option<&Path>) -> anyhow::Result<Self> {
        let settings = FileConfig::load(config)?.resolve(None, None)?;
        let key = settings.keystore.ca_key.clone().ok_or_else(|| {
            anyhow!(
                "{} has no [keystore] ca_key: the CA key's home and id",
                config.display()
            )
        })?;
        let homes = KeyHomes::open(&settings.keystore, false)?;
        let handle = homes.open_key("keystore.ca_key", &key, KeyRole::CaSigning)?;
        let dir = match ca_dir {
            Some(dir) => dir.to_owned(),
            None => trusted_ca_dir(&settings)?,
        };
        let crls = crl_targets(&settings, &dir);
        let ca = CertificateAuthority::open(
            &dir,
            ca_config(&settings.cse.sp_id, &settings.cse.cse_id),
            homes.shared_store(),
            handle,
        )
        .with_context(|| format!("the CA in {}", dir.display()))?;
        Ok(Self {
            ca,
            homes,
            settings,
            crls,
        })
    }

    /// Signs a CRL and writes it to every place a listener reads it (or, without any, to
    /// `ca.crl` in the CA directory).
    fn write_crl(&self, out: &mut String) -> Result<manager::ca::Crl, Failure> {
        let crl = self.ca.crl().map_err(ca_failure)?;
        let fallback = [self.ca.dir().join("ca.crl")];
        let targets: &[PathBuf] = if self.crls.is_empty() {
            out.push_str("note: no [[tls]] listener reads a CRL of this CA (crls)\n");
            &fallback
        } else {
            &self.crls
        };
        for path in targets {
            crl.write_der(path).map_err(ca_failure)?;
            out.push_str(&format!(
                "wrote CRL number {} ({} listed) to {}\n",
                crl.number,
                crl.entries,
                path.display()
            ));
        }
        Ok(crl)
    }
}

/// The CA settings `cse init` creates a CA with and `m2m ca` opens it with.
pub(crate) fn ca_config(sp_id: &str, cse_id: &str) -> CaConfig {
    CaConfig::new(sp_id, cse_id)
}

/// The directory of the `ca.pem` the `[[tls]]` listeners trust that holds CA records.
pub(crate) fn trusted_ca_dir(settings: &Settings) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for anchor in settings
        .tls
        .iter()
        .filter_map(|t| t.certificate.as_ref())
        .flat_map(|c| &c.trust_anchors)
    {
        let Some(dir) = anchor.parent() else { continue };
        let is_ca = anchor.file_name().is_some_and(|n| n == CA_CERTIFICATE_FILE)
            && dir.join(RECORDS_FILE).exists();
        if is_ca && !found.iter().any(|d| same(d, dir)) {
            found.push(dir.to_owned());
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no [[tls]] trust anchor is the ca.pem of a CA directory (with {RECORDS_FILE}); name the CA directory with --ca DIR"
        ),
        _ => bail!("the [[tls]] listeners trust several CA directories; name one with --ca DIR"),
    }
}

/// The CRL files of the listeners that trust the CA in `dir`: all of a listener's CRLs when
/// it trusts only this CA, else those in the CA directory.
fn crl_targets(settings: &Settings, dir: &Path) -> Vec<PathBuf> {
    let ca_pem = dir.join(CA_CERTIFICATE_FILE);
    let mut out: Vec<PathBuf> = Vec::new();
    for c in settings.tls.iter().filter_map(|t| t.certificate.as_ref()) {
        if !c.trust_anchors.iter().any(|a| same(a, &ca_pem)) {
            continue;
        }
        for crl in &c.crls {
            let ours = c.trust_anchors.len() == 1 || crl.parent().is_some_and(|p| same(p, dir));
            if ours && !out.iter().any(|o| same(o, crl)) {
                out.push(crl.clone());
            }
        }
    }
    out
}

/// Whether two paths name the same file (compared canonically when both exist).
fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Who writes the audit entries of a CA action, decided before the action is done.
#[derive(Debug)]
enum AuditWriter<'a> {
    /// This command, which holds the audit log's lock until it ends.
    Us(WriterLock, &'a AuditSettings),
    /// The running CSE (it holds the log), told over `--url`.
    TheCse(&'a AuditSettings),
    /// Nobody: the audit log is disabled, or the action changes nothing.
    Nobody,
}

impl<'a> AuditWriter<'a> {
    /// Takes the audit log's lock, or, when the running CSE holds it, accepts only a command
    /// that can tell the CSE (`--url`): otherwise the CA would issue or withdraw with no audit
    /// entry anywhere. Refused before anything is done.
    fn claim(audit: Option<&'a AuditSettings>, can_tell_cse: bool) -> anyhow::Result<Self> {
        let Some(audit) = audit else {
            return Ok(Self::Nobody);
        };
        if let Some(dir) = audit.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::secret_files::create_private_folder(dir)?;
        }
        let file = &audit.file;
        match WriterLock::try_take(file)
            .with_context(|| format!("cannot lock the audit log {}", file.display()))?
        {
            Some(lock) => Ok(Self::Us(lock, audit)),
            None if can_tell_cse => Ok(Self::TheCse(audit)),
            None => bail!(
                "a CSE is running with this configuration (it holds the audit log {}): give \
                 --url and admin credentials so that it records this action in its audit log; \
                 nothing was done",
                file.display()
            ),
        }
    }
}

/// Appends `events` to the configured audit log when no running CSE holds it; says what
/// happened (`cse init`, which runs before any CSE).
pub(crate) fn append_events(
    audit: Option<&AuditSettings>,
    homes: &KeyHomes,
    events: Vec<Event>,
) -> anyhow::Result<String> {
    match AuditWriter::claim(audit, false)? {
        AuditWriter::Us(lock, audit) => append_locked(lock, audit, homes, events),
        AuditWriter::TheCse(_) | AuditWriter::Nobody => Ok(if events.is_empty() {
            String::new()
        } else {
            "the audit log is disabled ([audit] enabled = false)\n".into()
        }),
    }
}

/// Appends `events` to the audit log, whose lock the caller holds; says where.
fn append_locked(
    lock: WriterLock,
    audit: &AuditSettings,
    homes: &KeyHomes,
    events: Vec<Event>,
) -> anyhow::Result<String> {
    if events.is_empty() {
        return Ok(String::new());
    }
    let file = &audit.file;
    let signer = match &audit.signing_key {
        Some(key) => Some(homes.signing_key("audit.signing_key", key, KeyRole::AuditLog)?),
        None => None,
    };
    let anchoring = homes.audit_anchoring(audit)?;
    let log = AuditLog::open_anchored(lock, signer, audit.layout.clone(), anchoring)
        .with_context(|| format!("audit log {}", file.display()))?;
    let mut last = 0;
    for event in events {
        last = log
            .append(event)
            .with_context(|| format!("cannot append to {}", file.display()))?
            .seq;
    }
    Ok(format!("audit log {}: entry {last}\n", file.display()))
}

/// Asks the running CSE to record an issued certificate in its audit log.
fn record_in_cse(live: &Live, params: &[(&'static str, String); 3]) -> Result<String, Failure> {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(anyhow!("cannot start the runtime: {e}")))?;
    let response = runtime
        .block_on(
            live.client
                .admin_post("record-issued", &params, &live.origin),
        )
        .map_err(|e| Failure::NoResponse(anyhow!("the CSE did not record the issue: {e}")))?;
    if !response.rsc.is_success() {
        return Err(Failure::Refused(anyhow!(
            "the CSE refused to record the issue: {}",
            response.rsc
        )));
    }
    Ok("the running CSE recorded the issue in its audit log\n".to_owned())
}

/// Tells the running CSE: `POST /.admin/<command>?credential=..&reason=..`.
fn tell_cse(
    live: &Live,
    command: &str,
    credential: &str,
    reason: Option<String>,
) -> Result<String, Failure> {
    let mut params = vec![("credential", credential.to_owned())];
    if let Some(reason) = reason {
        params.push(("reason", reason));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(anyhow!("cannot start the runtime: {e}")))?;
    let response = runtime
        .block_on(live.client.admin_post(command, &params, &live.origin))
        .map_err(|e| {
            Failure::NoResponse(anyhow!(
                "the CA changed and wrote the CRL, but the CSE did not answer: {e}"
            ))
        })?;
    if !response.rsc.is_success() {
        let detail = response.pc.map(|pc| pc.to_string()).unwrap_or_default();
        return Err(Failure::Refused(anyhow!(
            "the CA changed and wrote the CRL, but the CSE answered {} {detail}",
            response.rsc
        )));
    }
    let closed = response
        .pc
        .as_ref()
        .and_then(|pc| {
            pc.pointer("/associationsClosed")
                .or_else(|| pc.get("associationsClosed"))
        })
        .map_or_else(|| "?".to_owned(), |v| v.to_string());
    Ok(format!(
        "the CSE applied it at once ({command}: {}; associations closed: {closed})\n",
        response.rsc
    ))
}

/// Who acts, for the audit log.
fn actor() -> String {
    match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("m2m ca ({user})"),
        _ => "m2m ca".to_owned(),
    }
}

/// `33-<digest>` for an AE certificate, `32-<digest>` for a CSE's: the Credential-ID the TLS
/// layer gives the certificate (`m2m associations` shows it). The digest is over what the CA
/// signed, so every encoding of the certificate has this one ID.
pub(crate) fn credential_id(identity: &Identity, der: &[u8]) -> anyhow::Result<String> {
    let digest = security::tls::certificate_id::certificate_digest(der)
        .map_err(|e| anyhow!("a CA record's certificate: {e}"))?;
    Ok(match identity {
        Identity::Ae(_) => format!("33-{digest}"),
        Identity::Cse(_) => format!("32-{digest}"),
    })
}

fn kind(identity: &Identity) -> &'static str {
    match identity {
        Identity::Ae(_) => "an AE certificate",
        Identity::Cse(_) => "a CSE certificate",
    }
}

fn parse_serial(serial: &str) -> Result<Serial, Failure> {
    serial
        .parse()
        .map_err(|e: CaError| Failure::Usage(e.into()))
}

fn parse_reason(reason: &str) -> Result<RevocationReason, Failure> {
    const ALL: [RevocationReason; 6] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::PrivilegeWithdrawn,
    ];
    ALL.into_iter().find(|r| r.name() == reason).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "--reason {reason:?} is not one of {}",
            ALL.map(RevocationReason::name).join(", ")
        ))
    })
}

/// Writes a new file (never replacing one) with `mode`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn pem(der: &[u8]) -> String {
    openssl::x509::X509::from_der(der)
        .and_then(|c| c.to_pem())
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_default()
}

/// One line per certificate, aligned.
fn render(records: &[CertificateRecord]) -> String {
    let mut rows = vec![["SERIAL", "IDENTITY", "STATUS", "NOT AFTER", "ISSUED"].map(str::to_owned)];
    for r in records {
        let status = match r.status {
            Status::Active => "active".to_owned(),
            Status::Suspended { since } => format!("suspended since {}", utc(since)),
            Status::Revoked { reason, at } => format!("revoked {} ({reason})", utc(at)),
        };
        rows.push([
            r.serial.to_string(),
            r.identity.to_string(),
            status,
            utc(r.not_after),
            utc(r.issued_at),
        ]);
    }
    let mut widths = [0usize; 5];
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
    if records.is_empty() {
        out.push_str("(no certificates)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_the_records_names() {
        assert!(matches!(
            parse_reason("key-compromise"),
            Ok(RevocationReason::KeyCompromise)
        ));
        assert!(matches!(parse_reason("stolen"), Err(Failure::Usage(_))));
    }

    #[test]
    fn credential_ids_follow_the_tls_layer() {
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group"),
        )
        .and_then(openssl::pkey::PKey::from_ec_key)
        .expect("key");
        let mut b = openssl::x509::X509Builder::new().expect("builder");
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "t").expect("cn");
        let name = name.build();
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        let now = openssl::asn1::Asn1Time::days_from_now(0).expect("now");
        b.set_not_before(&now).expect("not before");
        b.set_not_after(&now).expect("not after");
        b.set_pubkey(&key).expect("key");
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        let der = b.build().to_der().expect("der");
        let digest = security::tls::certificate_id::certificate_digest(&der).expect("digest");
        let ae = Identity::Ae("//sp/id-in/Cx".into());
        let id = credential_id(&ae, &der).expect("id");
        assert_eq!(id, format!("33-{digest}"));
        let cse = credential_id(&Identity::Cse("/id-mn".into()), &der).expect("id");
        assert_eq!(cse, format!("32-{digest}"));
        assert!(credential_id(&ae, b"der").is_err());
    }
}
