//! `m2m`: a command-line oneM2M client for secure-cse, or any CSE with the TS-0009 HTTP
//! binding.
//!
//! It sends one request primitive and prints the response status code (on standard error)
//! and the content as pretty JSON (on standard output), so `m2m retrieve cse-in | jq` works.
//!
//! `https://` URLs use one of the TS-0003 security association frameworks: certificates
//! (`--cacert`, optionally `--cert`/`--key`) or a pre-shared key (`--psk-identity` with
//! `--psk-key-file`). `m2m associations` asks the CSE's admin interface for its live
//! associations.
//!
//! Exit codes: 0 when the CSE answered 2xxx, 1 when it answered any other status, 2 for a
//! usage error, 3 when no response arrived (connection, timeout, unreadable response).
#![forbid(unsafe_code)]

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use client::{Client, ClientError, Psk, TlsError, TlsOptions};
use model::codec::Format;
use model::{FilterCriteria, Operation, Request, ResourceType, Response, ResultContent};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Send oneM2M requests to a CSE over HTTP or HTTPS.
#[derive(Debug, Parser)]
#[command(
    name = "m2m",
    version,
    about,
    after_help = "Exit codes: 0 success (2xxx), 1 error status from the CSE, 2 usage error, 3 no response."
)]
struct Cli {
    /// Base URL of the CSE.
    #[arg(
        long,
        global = true,
        env = "M2M_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Originator (X-M2M-Origin). Default: CAdmin; for `register`: C (let the CSE assign an AE-ID).
    #[arg(long, global = true, env = "M2M_ORIGIN")]
    origin: Option<String>,
    /// Use CBOR instead of JSON on the wire (output is always JSON).
    #[arg(long, global = true)]
    cbor: bool,
    /// Release version indicator (X-M2M-RVI).
    #[arg(long, global = true, default_value = "3")]
    rvi: String,
    /// Seconds to wait for the response.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(subcommand)]
    command: Command,
}

/// How to secure an `https://` URL, as typed. clap checks that the flags fit together;
/// [`TlsArgs::options`] reads the files.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS (https:// URLs)")]
struct TlsArgs {
    /// CA certificates (PEM) trusted to issue the CSE's certificate, repeatable
    /// (certificate framework; the system trust store is not used).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "psk_identity"
    )]
    cacert: Vec<PathBuf>,
    /// Client certificate chain (PEM, leaf first), sent when the CSE asks for one.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "psk_identity"
    )]
    cert: Option<PathBuf>,
    /// Private key (PEM) of --cert; the file must not be accessible by group or others.
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// PSK identity (KpsaID), e.g. dev1@sp.example (PSK framework; no certificates).
    #[arg(long, global = true, value_name = "ID", requires = "psk_key_file")]
    psk_identity: Option<String>,
    /// File holding the PSK as hex digits; it must not be accessible by group or others.
    #[arg(long, global = true, value_name = "FILE", requires = "psk_identity")]
    psk_key_file: Option<PathBuf>,
    /// Server name for SNI and certificate verification instead of the URL's host.
    #[arg(long, global = true, value_name = "NAME")]
    servername: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Retrieve a resource (GET).
    Retrieve {
        /// Target address: CSE-relative (cse-in/ae), SP-relative (/id-in/cse-in) or absolute (//sp/id-in/...).
        to: String,
        /// Result content (rcn), e.g. 1 attributes, 4 with children, 6 child references.
        #[arg(long)]
        rcn: Option<u64>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Partial retrieve: attribute names (atrl), repeatable.
        #[arg(long)]
        atrl: Vec<String>,
    },
    /// Create a child resource (POST with ty).
    Create {
        /// Parent address.
        to: String,
        /// Resource type number (ty), e.g. 2 AE, 3 container, 4 content instance, 23 subscription.
        #[arg(long)]
        ty: u64,
        /// Content: JSON text, @FILE, or - for standard input.
        #[arg(long)]
        body: String,
        /// Result content (rcn).
        #[arg(long)]
        rcn: Option<u64>,
    },
    /// Update a resource (PUT).
    Update {
        /// Target address.
        to: String,
        /// Content: JSON text, @FILE, or - for standard input.
        #[arg(long)]
        body: String,
        /// Result content (rcn).
        #[arg(long)]
        rcn: Option<u64>,
    },
    /// Delete a resource and everything below it (DELETE).
    Delete {
        /// Target address.
        to: String,
    },
    /// Discover resources below a target (GET with fu=1).
    Discover {
        /// Where to start.
        to: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Discovery result type: 1 structured (default), 2 unstructured.
        #[arg(long)]
        drt: Option<u8>,
    },
    /// Register an application entity (CREATE <AE> under the CSEBase).
    Register {
        /// App-ID (api), e.g. Nmyapp.
        #[arg(long)]
        api: String,
        /// Resource name of the AE.
        #[arg(long)]
        rn: Option<String>,
        /// Resource name of the CSEBase to register with.
        #[arg(long, default_value = "cse-in")]
        cse: String,
        /// Point of access for notifications (makes the AE request-reachable), repeatable.
        #[arg(long)]
        poa: Vec<String>,
    },
    /// List the CSE's live security associations (admin: GET /.admin/associations; the
    /// origin defaults to CAdmin).
    Associations,
    /// The key homes of a CSE configuration (local: no request is sent).
    Keys(::cli::keys_cmd::KeysArgs),
    /// The CSE's certificate authority (local: issue, list, show, revoke, suspend, resume,
    /// crl). With the TLS flags and --url, revoke/suspend/resume also tell the running CSE.
    Ca(::cli::ca_cmd::CaArgs),
    /// Enrol with the CSE's MEF using a pre-provisioned enrolee key (TLS-PSK to the enrolment
    /// listener given by --url), and write the derived PSK for the normal TLS-PSK listener.
    Enrol(::cli::enrol_cmd::EnrolArgs),
    /// Enrol with a device (manufacturer) certificate at the MEF's device enrolment listener
    /// (--url; the CSE's CA --cacert): a new key, a CSR, and the AE-ID certificate issued.
    EnrolCert(::cli::cert_enrol_cmd::CertEnrolArgs),
    /// Network-provided keys (GBA): bootstrap with a BSF and derive the PSK for a CSE, whose
    /// identity is the B-TID (local: the BSF's URL is --bsf, not --url).
    #[command(subcommand)]
    Gba(::cli::gba_cmd::GbaCommand),
    /// Verify or show the security audit log (local: no request is sent).
    #[command(subcommand)]
    Audit(::cli::audit_cmd::AuditCommand),
    /// Explain the access control decision for a request: which policies and rules were
    /// considered and which condition failed (admin: GET /.admin/explain; the origin
    /// defaults to CAdmin).
    Explain(ExplainArgs),
    /// Withdraw credentials or list the withdrawn ones (admin: /.admin/withdrawn, revoke,
    /// suspend, resume; the origin defaults to CAdmin). A withdrawal refuses the
    /// credential's new handshakes and closes its live associations at once.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Pseudonyms: resolve an AE-ID the CSE assigned to the credential behind it (admin:
    /// POST /.admin/resolve; written to the audit log with the purpose given), or, as an AE,
    /// take a fresh AE-ID (POST /.privacy/rotate-ae-id).
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Re-read the TLS listeners' certificates, keys, CRLs and credentials without a restart
    /// (admin: POST /.admin/reload-tls; SIGHUP does the same).
    ReloadTls,
    /// Keys between applications through the CSE's MAF: register a key for named AEs,
    /// retrieve one by its identifier, delete one (/.maf/keys; the origin is your AE-ID, over
    /// your own security association).
    #[command(subcommand)]
    Maf(::cli::maf_cmd::MafCommand),
    /// As an Enrolment Target, fetch from the CSE's MEF the key derived for an enrolee that
    /// named you (/.mef/fetch-credentials; the origin is your AE-ID or CSE-ID, over your own
    /// security association).
    #[command(subcommand)]
    Mef(::cli::fetch_cmd::MefCommand),
    // Further administration subcommands go here, each mapped to an `Action::Admin` in
    // `action_for`.
}

/// `m2m privacy ...`: what only an authorised role may do with pseudonyms.
#[derive(Debug, Subcommand)]
enum PrivacyCommand {
    /// The Credential-ID(s) behind an assigned AE-ID.
    Resolve {
        /// The AE-ID.
        pseudonym: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        purpose: String,
        /// The pseudonym is the alias a notification target was shown: its URL.
        #[arg(long)]
        target: Option<String>,
    },
    /// As a registered AE (`--origin` = your current AE-ID, over your own association),
    /// take a fresh random AE-ID; your resources, subscriptions and credential stay yours.
    /// Prints your AE resource with the new AE-ID (`aei`).
    Rotate,
}

/// `m2m credentials ...`: credentials by Credential-ID (`12-<KpsaID>` for a PSK,
/// `3x-<SHA-256>` for a certificate, as `m2m associations` shows them).
#[derive(Debug, Subcommand)]
enum CredentialsCommand {
    /// The revoked and suspended credentials.
    List,
    /// Revoke a credential for good.
    Revoke {
        /// The Credential-ID.
        credential: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Suspend a credential until it is resumed.
    Suspend {
        /// The Credential-ID.
        credential: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension.
    Resume {
        /// The Credential-ID.
        credential: String,
    },
    /// The Credential-ID digest of a certificate file (PEM or DER; local, no request): the
    /// SHA-256 of what its issuer signed, the same for every encoding of its signature. The
    /// Credential-ID is `33-<digest>` for an AE-ID certificate, `32-` for a CSE-ID one and
    /// `31-` for any other.
    Id {
        /// The certificate file.
        certificate: std::path::PathBuf,
    },
    /// How credentials were used since the CSE started: first and last use, associations,
    /// refused handshakes, requests, peer addresses (admin: GET /.admin/usage).
    Usage {
        /// One Credential-ID; default: every credential seen.
        credential: Option<String>,
    },
}

/// The request `m2m explain` asks about, and the facts access control contexts look at.
#[derive(Debug, Args)]
struct ExplainArgs {
    /// Originator of the request to explain (any AE-ID or CSE-ID form).
    #[arg(long)]
    from: String,
    /// Target address of the request to explain.
    #[arg(long)]
    to: String,
    /// Operation: create, retrieve, update, delete, notify or discover.
    #[arg(long)]
    op: String,
    /// For create: the resource type number to create.
    #[arg(long)]
    ty: Option<u64>,
    /// Explain an UPDATE of the target's acpi (checked against pvs).
    #[arg(long)]
    acpi: bool,
    /// The request came over a security association (rq_authn).
    #[arg(long)]
    authn: bool,
    /// The peer's IP address.
    #[arg(long)]
    ip: Option<String>,
    /// Credential level (1-3) of the peer's security association.
    #[arg(long)]
    level: Option<u8>,
    /// Role-IDs the originator holds, comma-separated.
    #[arg(long)]
    roles: Option<String>,
    /// When the request is received (oneM2M timestamp, e.g. 20260302T100000); default now.
    #[arg(long)]
    time: Option<String>,
    /// The originator's latitude (with --lon).
    #[arg(long, requires = "lon", allow_negative_numbers = true)]
    lat: Option<f64>,
    /// The originator's longitude (with --lat).
    #[arg(long, requires = "lat", allow_negative_numbers = true)]
    lon: Option<f64>,
    /// The originator's country (ISO 3166-1 alpha-2; alone, or with --lat and --lon).
    #[arg(long)]
    country: Option<String>,
}

impl ExplainArgs {
    /// The query parameters of `/.admin/explain`.
    fn params(&self) -> Vec<(String, String)> {
        let mut p = vec![
            ("from".to_owned(), self.from.clone()),
            ("to".to_owned(), self.to.clone()),
            ("op".to_owned(), self.op.clone()),
        ];
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                p.push((k.to_owned(), v));
            }
        };
        opt("ty", self.ty.map(|t| t.to_string()));
        opt("acpi", self.acpi.then(|| "true".to_owned()));
        opt("authn", self.authn.then(|| "true".to_owned()));
        opt("ip", self.ip.clone());
        opt("level", self.level.map(|l| l.to_string()));
        opt("roles", self.roles.clone());
        opt("time", self.time.clone());
        opt("lat", self.lat.map(|v| v.to_string()));
        opt("lon", self.lon.map(|v| v.to_string()));
        opt("country", self.country.clone());
        p
    }
}

/// What a subcommand sends.
#[derive(Debug)]
enum Action {
    /// A request primitive.
    Request(Box<Request>),
    /// An administration request (`GET /.admin/<command>`).
    Admin {
        /// The admin command, e.g. `associations`.
        command: &'static str,
        /// The originator.
        origin: String,
    },
    /// An administration request that changes something (`POST /.admin/<command>?k=v&..`).
    AdminChange {
        /// The admin command, e.g. `revoke`.
        command: &'static str,
        /// The originator.
        origin: String,
        /// The query parameters.
        params: Vec<(String, String)>,
    },
    /// An administration request with query parameters (`GET /.admin/<command>?k=v&..`).
    AdminQuery {
        /// The admin command, e.g. `explain`.
        command: &'static str,
        /// The originator.
        origin: String,
        /// The query parameters.
        params: Vec<(String, String)>,
    },
}

/// Filter criteria given as `--filter KEY=VALUE`.
#[derive(Debug, Args)]
struct FilterArgs {
    /// Filter criterion as KEY=VALUE (ty=3, lbl=a+b, lim=10, cra=20250101T000000, ...), repeatable.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    filters: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let timeout = Duration::from_secs(cli.timeout);
    let outcome = match &cli.command {
        Command::Audit(audit) if audit.is_local() => Ok(::cli::audit_cmd::run(audit)),
        Command::Credentials(CredentialsCommand::Id { certificate }) => {
            Ok(certificate_digest(certificate))
        }
        // JSON exchanges with the BSF (not primitives), through `client::Blocking`.
        Command::Gba(gba) => Ok(::cli::gba_cmd::run(gba, timeout)),
        // The key goes to a file, never to standard output.
        Command::Maf(maf) => {
            needs_origin(&cli, "m2m maf needs --origin (your AE-ID)").and_then(|origin| {
                let client = client_for(&cli.url, &cli.tls).map_err(Failure::Usage)?;
                Ok(::cli::maf_cmd::run(
                    client.with_timeout(timeout),
                    origin,
                    maf,
                ))
            })
        }
        // The key goes to a file, never to standard output.
        Command::Mef(mef) => needs_origin(&cli, "m2m mef needs --origin (your AE-ID or CSE-ID)")
            .and_then(|origin| {
                let client = client_for(&cli.url, &cli.tls).map_err(Failure::Usage)?;
                Ok(::cli::fetch_cmd::run(
                    client.with_timeout(timeout),
                    origin,
                    mef,
                ))
            }),
        // Its own TLS-PSK connection with the exporter; blocking, no runtime needed.
        Command::Enrol(args) => Ok(::cli::enrol_cmd::run(&cli.url, timeout, args)),
        Command::EnrolCert(args) => {
            let name = cli.tls.servername.as_deref();
            Ok(::cli::cert_enrol_cmd::run(
                &cli.url,
                timeout,
                &cli.tls.cacert,
                name,
                args,
            ))
        }
        // Local, with the CA key in its home; the running CSE is told about withdrawals
        // when admin credentials (the TLS flags) are given.
        Command::Ca(ca) => match cli.tls.any() {
            false => Ok(None),
            true => client_for(&cli.url, &cli.tls)
                .map(|client| {
                    Some(::cli::ca_cmd::Live {
                        client: client.with_timeout(timeout),
                        origin: cli.origin.clone().unwrap_or_else(|| "CAdmin".to_owned()),
                    })
                })
                .map_err(Failure::Usage),
        }
        .map(|live| ::cli::ca_cmd::run(ca, live)),
        // Local: reads the configuration and opens the key homes.
        Command::Keys(keys) => ::cli::keys_cmd::run(keys)
            .map(|text| {
                ::cli::out!("{text}");
                ExitCode::SUCCESS
            })
            .map_err(Failure::Usage),
        // Everything else is a request primitive (or an admin command) sent to the CSE.
        _ => request(cli),
    };
    outcome.unwrap_or_else(|failure| failure.exit_code())
}

/// `--origin`, which the command needs; `why` says so when it is missing.
fn needs_origin<'a>(cli: &'a Cli, why: &str) -> Result<&'a str, Failure> {
    cli.origin
        .as_deref()
        .ok_or_else(|| Failure::Usage(anyhow::anyhow!("{why}")))
}

/// Sends the command's request primitive and shows the response.
fn request(cli: Cli) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::NoResponse(anyhow::anyhow!("cannot start the runtime: {e}")))?;
    runtime.block_on(run(cli)).map(|resp| report(&resp))
}

/// Why no command output can be shown; the one place that picks the exit code for it.
enum Failure {
    /// The arguments do not make a valid request: exit 2.
    Usage(anyhow::Error),
    /// The request was valid but no response came back: exit 3.
    NoResponse(anyhow::Error),
}

impl Failure {
    /// Says what went wrong on stderr and returns the exit code.
    fn exit_code(self) -> ExitCode {
        let (e, code) = match self {
            Failure::Usage(e) => (e, 2),
            Failure::NoResponse(e) => (e, 3),
        };
        eprintln!("error: {e:#}");
        ExitCode::from(code)
    }
}

async fn run(cli: Cli) -> Result<Response, Failure> {
    let format = if cli.cbor { Format::Cbor } else { Format::Json };
    let client = client_for(&cli.url, &cli.tls)
        .map_err(Failure::Usage)?
        .with_format(format)
        .with_timeout(Duration::from_secs(cli.timeout));
    let sent = match action_for(cli.command, cli.origin).map_err(Failure::Usage)? {
        Action::Request(mut req) => {
            req.rvi = Some(cli.rvi);
            client.send(&req).await
        }
        Action::Admin { command, origin } => client.admin(command, &origin).await,
        Action::AdminQuery {
            command,
            origin,
            params,
        } => {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.admin_with(command, &params, &origin).await
        }
        Action::AdminChange {
            command,
            origin,
            params,
        } => {
            let params: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.admin_post(command, &params, &origin).await
        }
    };
    sent.map_err(|e| Failure::NoResponse(e.into()))
}

/// The client for `--url`: plain for `http://`, with the TLS flags for `https://`.
fn client_for(url: &str, tls: &TlsArgs) -> anyhow::Result<Client> {
    let https = url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if !https {
        if tls.any() {
            bail!("the TLS flags (--cacert, --cert, --key, --psk-identity, --psk-key-file, --servername) apply only to https:// URLs, and --url is {url}");
        }
        return Ok(Client::new(url)?);
    }
    if tls.cacert.is_empty() && tls.psk_identity.is_none() {
        bail!("an https:// URL needs --cacert FILE (certificate framework) or --psk-identity ID with --psk-key-file FILE (PSK framework)");
    }
    Ok(Client::with_tls(url, tls.options()?)?)
}

impl TlsArgs {
    /// Whether any TLS flag was given.
    fn any(&self) -> bool {
        !self.cacert.is_empty()
            || self.cert.is_some()
            || self.key.is_some()
            || self.psk_identity.is_some()
            || self.psk_key_file.is_some()
            || self.servername.is_some()
    }

    /// The TLS options the flags describe. Reads the PSK file now; the certificate files
    /// are read by [`Client::with_tls`].
    fn options(&self) -> anyhow::Result<TlsOptions> {
        let mut options = TlsOptions::new();
        for ca in &self.cacert {
            options = options.trust_anchor_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            options = options.client_cert_files(cert, key);
        }
        if let (Some(identity), Some(path)) = (&self.psk_identity, &self.psk_key_file) {
            let psk = Psk::from_hex_file(identity.as_str(), path).map_err(|e| match e {
                // The other errors name the file themselves.
                TlsError::InvalidPsk(_) => anyhow!("--psk-key-file {}: {e}", path.display()),
                e => ClientError::Tls(e).into(),
            })?;
            options = options.psk(psk);
        }
        if let Some(name) = &self.servername {
            options = options.server_name(name);
        }
        Ok(options)
    }
}

/// What to send for a subcommand: usually a request primitive.
fn action_for(command: Command, origin: Option<String>) -> anyhow::Result<Action> {
    let admin = || Some(origin.clone().unwrap_or_else(|| "CAdmin".to_owned()));
    let req = match command {
        Command::Retrieve {
            to,
            rcn,
            filter,
            atrl,
        } => {
            let mut req = Request::new(Operation::Retrieve, to, admin());
            req.rcn = rcn.map(ResultContent::from_code).transpose()?;
            req.fc = filter.criteria()?;
            req.atrl = atrl;
            req
        }
        Command::Create { to, ty, body, rcn } => {
            let mut req = Request::new(Operation::Create, to, admin());
            req.ty = Some(ResourceType::from_code(ty)?);
            req.pc = Some(content(&body)?);
            req.rcn = rcn.map(ResultContent::from_code).transpose()?;
            req
        }
        Command::Update { to, body, rcn } => {
            let mut req = Request::new(Operation::Update, to, admin());
            req.pc = Some(content(&body)?);
            req.rcn = rcn.map(ResultContent::from_code).transpose()?;
            req
        }
        Command::Delete { to } => Request::new(Operation::Delete, to, admin()),
        Command::Discover { to, filter, drt } => {
            let mut req = Request::new(Operation::Retrieve, to, admin());
            req.fc = filter.criteria()?;
            req.fc.fu = Some(1);
            req.drt = drt;
            req
        }
        Command::Register { api, rn, cse, poa } => {
            let mut ae = json!({ "api": api, "rr": !poa.is_empty(), "srv": ["3"] });
            if let Some(rn) = rn {
                ae["rn"] = json!(rn);
            }
            if !poa.is_empty() {
                ae["poa"] = json!(poa);
            }
            let mut req = Request::new(
                Operation::Create,
                cse,
                Some(origin.unwrap_or_else(|| "C".to_owned())),
            );
            req.ty = Some(ResourceType::Ae);
            req.pc = Some(json!({ "m2m:ae": ae }));
            req
        }
        Command::Keys(_) => bail!("m2m keys runs locally and sends no request"),
        Command::Ca(_) => bail!("m2m ca runs locally"),
        Command::Enrol(_) => bail!("m2m enrol makes its own connection"),
        Command::EnrolCert(_) => bail!("m2m enrol-cert makes its own connection"),
        Command::Gba(_) => bail!("m2m gba makes its own connections"),
        Command::Maf(_) => bail!("m2m maf writes keys to files"),
        Command::Mef(_) => bail!("m2m mef writes keys to files"),
        Command::Audit(::cli::audit_cmd::AuditCommand::Head) => {
            return Ok(Action::Admin {
                command: "audit-head",
                origin: origin.unwrap_or_else(|| "CAdmin".to_owned()),
            })
        }
        Command::Audit(_) => bail!("m2m audit runs locally and sends no request"),
        Command::Associations => {
            return Ok(Action::Admin {
                command: "associations",
                origin: origin.unwrap_or_else(|| "CAdmin".to_owned()),
            })
        }
        Command::Explain(args) => {
            return Ok(Action::AdminQuery {
                command: "explain",
                origin: origin.unwrap_or_else(|| "CAdmin".to_owned()),
                params: args.params(),
            })
        }
        Command::ReloadTls => {
            return Ok(Action::AdminChange {
                command: "reload-tls",
                origin: origin.unwrap_or_else(|| "CAdmin".to_owned()),
                params: Vec::new(),
            });
        }
        Command::Privacy(PrivacyCommand::Resolve {
            pseudonym,
            purpose,
            target,
        }) => {
            let mut params = vec![
                ("pseudonym".to_owned(), pseudonym),
                ("purpose".to_owned(), purpose),
            ];
            params.extend(target.map(|t| ("target".to_owned(), t)));
            return Ok(Action::AdminChange {
                command: "resolve",
                origin: origin.unwrap_or_else(|| "CAdmin".to_owned()),
                params,
            });
        }
        Command::Privacy(PrivacyCommand::Rotate) => {
            let Some(origin) = origin else {
                bail!("m2m privacy rotate needs --origin (your current AE-ID)");
            };
            let path = cse::security_manager::pseudonyms::ROTATE_PATH.trim_start_matches('/');
            Request::new(Operation::Create, path.to_owned(), Some(origin))
        }
        Command::Credentials(command) => {
            let origin = origin.unwrap_or_else(|| "CAdmin".to_owned());
            let pair = |k: &str, v: String| (k.to_owned(), v);
            let (command, params) = match command {
                CredentialsCommand::List => {
                    return Ok(Action::Admin {
                        command: "withdrawn",
                        origin,
                    })
                }
                CredentialsCommand::Usage { credential: None } => {
                    return Ok(Action::Admin {
                        command: "usage",
                        origin,
                    })
                }
                CredentialsCommand::Usage {
                    credential: Some(credential),
                } => {
                    return Ok(Action::AdminQuery {
                        command: "usage",
                        origin,
                        params: vec![pair("credential", credential)],
                    })
                }
                CredentialsCommand::Id { .. } => bail!("m2m credentials id runs locally"),
                CredentialsCommand::Revoke { credential, reason } => (
                    "revoke",
                    vec![pair("credential", credential), pair("reason", reason)],
                ),
                CredentialsCommand::Suspend { credential, reason } => (
                    "suspend",
                    vec![pair("credential", credential), pair("reason", reason)],
                ),
                CredentialsCommand::Resume { credential } => {
                    ("resume", vec![pair("credential", credential)])
                }
            };
            return Ok(Action::AdminChange {
                command,
                origin,
                params,
            });
        }
    };
    Ok(Action::Request(Box::new(req)))
}

impl FilterArgs {
    /// Parses and checks the criteria here, so a typo fails before anything is sent.
    fn criteria(&self) -> anyhow::Result<FilterCriteria> {
        let mut fc = FilterCriteria::default();
        for f in &self.filters {
            let (key, value) = f
                .split_once('=')
                .ok_or_else(|| anyhow!("--filter '{f}' is not KEY=VALUE"))?;
            fc.add(key, value)
                .with_context(|| format!("--filter '{f}'"))?;
        }
        fc.validate()?;
        Ok(fc)
    }
}

/// Reads `--body`: JSON text, `@FILE`, or `-` for standard input.
fn content(body: &str) -> anyhow::Result<Value> {
    let text = if body == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        s
    } else if let Some(path) = body.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
    } else {
        body.to_owned()
    };
    let value: Value = serde_json::from_str(&text).context("--body is not valid JSON")?;
    if !value.is_object() {
        bail!("--body must be a JSON object such as {{\"m2m:cnt\": {{...}}}}");
    }
    Ok(value)
}

/// Prints the response and chooses the exit code.
fn report(resp: &Response) -> ExitCode {
    eprintln!("{}", resp.rsc);
    if let Some(location) = &resp.location {
        eprintln!("Content-Location: {location}");
    }
    if let Some(aei) = resp
        .pc
        .as_ref()
        .and_then(|pc| pc.pointer("/m2m:ae/aei"))
        .and_then(Value::as_str)
    {
        eprintln!("AE-ID: {aei}");
    }
    if let Some(pc) = &resp.pc {
        match serde_json::to_string_pretty(pc) {
            Ok(text) => ::cli::outln!("{text}"),
            Err(e) => eprintln!("error: cannot print the content: {e}"),
        }
    }
    if resp.rsc.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `m2m credentials id FILE`: prints the certificate's Credential-ID digest (exit 2 when the
/// file is not a certificate).
fn certificate_digest(path: &std::path::Path) -> ExitCode {
    let digest = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            security::tls::certificate_id::certificate_digest_of_file(&bytes)
                .map_err(|e| e.to_string())
        });
    match digest {
        Ok(digest) => {
            println!("{digest}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("m2m: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).expect("valid arguments")
    }

    fn request(args: &[&str]) -> anyhow::Result<Request> {
        let cli = parse(args);
        match action_for(cli.command, cli.origin)? {
            Action::Request(req) => Ok(*req),
            Action::Admin { .. } | Action::AdminQuery { .. } | Action::AdminChange { .. } => {
                Err(anyhow!("not a request primitive"))
            }
        }
    }

    #[test]
    fn command_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn retrieve_with_filters() {
        let req = request(&[
            "m2m",
            "retrieve",
            "cse-in/ae",
            "--rcn",
            "4",
            "--filter",
            "ty=3+4",
            "--filter",
            "lim=2",
        ])
        .expect("valid");
        assert_eq!(
            (req.op, req.to.as_str(), req.fr.as_deref()),
            (Operation::Retrieve, "cse-in/ae", Some("CAdmin"))
        );
        assert_eq!(req.rcn, Some(ResultContent::AttributesAndChildResources));
        assert_eq!(
            req.fc.ty,
            vec![ResourceType::Container, ResourceType::ContentInstance]
        );
        assert_eq!(req.fc.lim, Some(2));
        assert!(request(&["m2m", "retrieve", "cse-in", "--filter", "nope=1"]).is_err());
        assert!(request(&["m2m", "retrieve", "cse-in", "--filter", "ty"]).is_err());
    }

    #[test]
    fn create_update_delete_discover() {
        let req = request(&[
            "m2m",
            "--origin",
            "Cae",
            "create",
            "cse-in",
            "--ty",
            "3",
            "--body",
            r#"{"m2m:cnt":{}}"#,
        ])
        .expect("valid");
        assert_eq!(
            (req.op, req.ty, req.fr.as_deref()),
            (
                Operation::Create,
                Some(ResourceType::Container),
                Some("Cae")
            )
        );
        assert!(request(&["m2m", "create", "cse-in", "--ty", "3", "--body", "[1]"]).is_err());
        assert!(request(&["m2m", "create", "cse-in", "--ty", "77", "--body", "{}"]).is_err());
        let req = request(&[
            "m2m",
            "update",
            "cse-in/c",
            "--body",
            r#"{"m2m:cnt":{"mni":1}}"#,
        ])
        .expect("valid");
        assert_eq!(req.op, Operation::Update);
        assert_eq!(
            request(&["m2m", "delete", "cse-in/c"]).map(|r| r.op).ok(),
            Some(Operation::Delete)
        );
        let req = request(&[
            "m2m", "discover", "cse-in", "--filter", "lbl=x", "--drt", "2",
        ])
        .expect("valid");
        assert!(req.is_discovery());
        assert_eq!(
            (req.drt, req.fc.lbl.clone()),
            (Some(2), vec!["x".to_owned()])
        );
    }

    #[test]
    fn register_builds_an_ae() {
        let req = request(&["m2m", "register", "--api", "Nmyapp", "--rn", "app"]).expect("valid");
        assert_eq!(
            (req.op, req.ty, req.to.as_str(), req.fr.as_deref()),
            (
                Operation::Create,
                Some(ResourceType::Ae),
                "cse-in",
                Some("C")
            )
        );
        assert_eq!(
            req.pc,
            Some(json!({"m2m:ae": {"api": "Nmyapp", "rr": false, "srv": ["3"], "rn": "app"}}))
        );
        let req = request(&[
            "m2m",
            "register",
            "--api",
            "Nx",
            "--poa",
            "http://h:1",
            "--origin",
            "Cme",
        ])
        .expect("valid");
        assert_eq!(req.fr.as_deref(), Some("Cme"));
        assert_eq!(
            req.pc.as_ref().and_then(|p| p.pointer("/m2m:ae/rr")),
            Some(&json!(true))
        );
    }

    #[test]
    fn credentials_usage_is_an_admin_query() {
        let cli = parse(&["m2m", "credentials", "usage"]);
        assert!(matches!(
            action_for(cli.command, cli.origin).expect("valid"),
            Action::Admin {
                command: "usage",
                ..
            }
        ));
        let cli = parse(&["m2m", "credentials", "usage", "12-a@b.example"]);
        match action_for(cli.command, cli.origin).expect("valid") {
            Action::AdminQuery {
                command: "usage",
                params,
                ..
            } => assert_eq!(
                params,
                vec![("credential".to_owned(), "12-a@b.example".to_owned())]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn associations_is_an_admin_request() {
        let cli = parse(&["m2m", "associations"]);
        assert!(matches!(
            action_for(cli.command, cli.origin).expect("valid"),
            Action::Admin { command: "associations", origin } if origin == "CAdmin"
        ));
        let cli = parse(&["m2m", "associations", "--origin", "CRoot"]);
        assert!(matches!(
            action_for(cli.command, cli.origin).expect("valid"),
            Action::Admin { origin, .. } if origin == "CRoot"
        ));
    }

    #[test]
    fn explain_is_an_admin_request_with_parameters() {
        let cli = parse(&[
            "m2m",
            "explain",
            "--from",
            "Cae1",
            "--to",
            "cse-in/ae/cnt",
            "--op",
            "create",
            "--ty",
            "4",
            "--ip",
            "10.0.0.1",
            "--lat",
            "-33.9",
            "--lon",
            "18.4",
        ]);
        let Ok(Action::AdminQuery {
            command,
            origin,
            params,
        }) = action_for(cli.command, cli.origin)
        else {
            panic!("explain is an admin request with parameters");
        };
        assert_eq!((command, origin.as_str()), ("explain", "CAdmin"));
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("from"), Some("Cae1"));
        assert_eq!(get("to"), Some("cse-in/ae/cnt"));
        assert_eq!(get("op"), Some("create"));
        assert_eq!(get("ty"), Some("4"));
        assert_eq!(get("lat"), Some("-33.9"));
        assert_eq!(get("authn"), None);
        assert!(Cli::try_parse_from(["m2m", "explain", "--from", "C", "--to", "x"]).is_err());
        assert!(
            Cli::try_parse_from([
                "m2m", "explain", "--from", "C", "--to", "x", "--op", "retrieve", "--lat", "1"
            ])
            .is_err(),
            "--lat needs --lon"
        );
        // A country alone is a location fact (for `accc`), without coordinates.
        let cli = parse(&[
            "m2m",
            "explain",
            "--from",
            "C",
            "--to",
            "x",
            "--op",
            "retrieve",
            "--country",
            "KR",
        ]);
        let Ok(Action::AdminQuery { params, .. }) = action_for(cli.command, cli.origin) else {
            panic!("explain is an admin request with parameters");
        };
        assert!(params.iter().any(|(k, v)| k == "country" && v == "KR"));
        assert!(!params.iter().any(|(k, _)| k == "lat"));
    }

    #[test]
    fn tls_flags() {
        let cli = parse(&[
            "m2m",
            "--url",
            "https://127.0.0.1:8443",
            "--cacert",
            "ca.pem",
            "--cacert",
            "ca2.pem",
            "--cert",
            "admin.pem",
            "--key",
            "admin.key",
            "retrieve",
            "cse-in",
            "--servername",
            "cse.example",
        ]);
        let tls = &cli.tls;
        assert_eq!(
            tls.cacert,
            vec![PathBuf::from("ca.pem"), PathBuf::from("ca2.pem")]
        );
        assert_eq!(
            (tls.cert.as_deref(), tls.key.as_deref()),
            (Some("admin.pem".as_ref()), Some("admin.key".as_ref()))
        );
        assert_eq!(tls.servername.as_deref(), Some("cse.example"));
        assert!(tls.psk_identity.is_none() && tls.any());
        // Flags are global: they may follow the subcommand.
        let cli = parse(&[
            "m2m",
            "associations",
            "--psk-identity",
            "dev1@sp.example",
            "--psk-key-file",
            "dev1.psk",
        ]);
        assert_eq!(cli.tls.psk_identity.as_deref(), Some("dev1@sp.example"));
        assert_eq!(cli.tls.psk_key_file.as_deref(), Some("dev1.psk".as_ref()));
        assert!(!parse(&["m2m", "delete", "x"]).tls.any());
    }

    #[test]
    fn tls_flags_that_do_not_fit_together() {
        let bad: &[&[&str]] = &[
            &["m2m", "--cert", "c.pem", "delete", "x"],
            &["m2m", "--key", "c.key", "delete", "x"],
            &["m2m", "--psk-identity", "dev1", "delete", "x"],
            &["m2m", "delete", "x", "--psk-key-file", "k"],
            &[
                "m2m",
                "--psk-identity",
                "dev1",
                "--psk-key-file",
                "k",
                "--cacert",
                "ca.pem",
                "delete",
                "x",
            ],
            &[
                "m2m",
                "--psk-identity",
                "dev1",
                "--psk-key-file",
                "k",
                "--cert",
                "c.pem",
                "--key",
                "c.key",
                "delete",
                "x",
            ],
        ];
        for args in bad {
            assert!(Cli::try_parse_from(*args).is_err(), "{args:?}");
        }
    }

    fn client(args: &[&str]) -> anyhow::Result<Client> {
        let cli = parse(args);
        client_for(&cli.url, &cli.tls)
    }

    #[test]
    fn tls_flags_need_an_https_url_and_the_other_way_round() {
        let err = client(&["m2m", "--cacert", "ca.pem", "delete", "x"]).expect_err("http");
        assert!(err.to_string().contains("only to https://"), "{err}");
        let err = client(&["m2m", "--url", "https://h", "delete", "x"]).expect_err("no flags");
        assert!(err.to_string().contains("--cacert"), "{err}");
        let err = client(&[
            "m2m",
            "--url",
            "https://h",
            "--cacert",
            "/nonexistent.pem",
            "delete",
            "x",
        ])
        .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
        assert!(client(&["m2m", "delete", "x"]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn psk_key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dev1.psk");
        let path_text = path.to_str().expect("utf-8 path");
        std::fs::write(&path, "00112233445566778899aabbccddeeff\n").expect("write");
        let args = [
            "m2m",
            "--url",
            "https://127.0.0.1:8443",
            "--psk-identity",
            "dev1@sp.example",
            "--psk-key-file",
            path_text,
            "associations",
        ];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = client(&args).expect_err("readable by others");
        let text = format!("{err:#}");
        assert!(
            text.contains(path_text) && text.contains("chmod 600") && text.contains("0644"),
            "{text}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(client(&args).is_ok());
        std::fs::write(&path, "not hex").expect("write");
        let err = client(&args).expect_err("not hex");
        assert!(err.to_string().contains("--psk-key-file"), "{err}");
    }
}
