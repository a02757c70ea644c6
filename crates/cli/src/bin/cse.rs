//! `cse`: the secure-cse server. Reads the configuration, loads credentials and TLS
//! settings, opens the store, starts the listeners, and runs until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use cli::config::{FileConfig, Settings};
use cli::keyhomes::KeyHomes;
use cse::security_manager::enrolment::{certificate, fetch, mef};
use cse::security_manager::{audit, maf, reload};
use security::credentials::{CredentialStore, FileCredentials};
use security::enrolment::EnroleeKeys;
use security::provisioned::{EnrolledBy, ProvisionedKeys, WithProvisioned};
use security::revocation::{DerivedCredentials, DerivedRules};
use security::revocation::{Revocations, Withdrawable};
use security::tls::{AcceptorSlot, LocalIdentity, TlsAcceptor};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A oneM2M Common Services Entity built around the oneM2M security architecture.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the plaintext HTTP listener (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Data folder of the embedded store (default ./data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// TOML configuration file; every option is optional (docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Without a subcommand, `cse` runs the server.
    #[command(subcommand)]
    command: Option<CseCommand>,
}

/// What `cse` does instead of running the server.
#[derive(Debug, clap::Subcommand)]
enum CseCommand {
    /// Make a secure CSE in a new directory: key home, CA, certificates, PSKs, CRL, signed
    /// audit log, credentials.toml and cse.toml; then `cse --config DIR/cse.toml`.
    Init(cli::init_cmd::InitArgs),
}

/// mimalloc: the request path allocates and frees many small objects on two kinds of
/// threads (tokio workers and the store writer), where glibc's allocator spends a
/// noticeable share of the time consolidating and locking (measured: `docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for an unusable configuration (EX_USAGE), before any socket opens.
const EXIT_CONFIG: u8 = 64;

/// Every exit returns from here rather than calling `process::exit`, which would skip the
/// destructors: the key homes must be closed on every path (a TPM home flushes the objects
/// it loaded, or the next start finds the TPM's object slots full).
fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(CseCommand::Init(init)) = &args.command {
        match cli::init_cmd::run(init) {
            Ok(report) => cli::out!("{report}"),
            Err(e) => return fail_config(&format!("init: {e:#}")),
        }
        return ExitCode::SUCCESS;
    }
    let file = match args.config.as_deref().map(FileConfig::load).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return fail_config(&e),
    };
    let settings = match file.resolve(args.http, args.data.clone()) {
        Ok(s) => s,
        Err(e) => return fail_config(&e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The data folder is private (mode 700) before anything is written into it.
    if let Err(e) = cli::secret_files::private_folder(&settings.data) {
        fail_config(&format!("{e:#}"));
    }
    // Key homes, credentials and TLS material are checked before anything listens. A home
    // that cannot be opened, a key missing from its home or below the policy: exit 64.
    let homes = match key_homes(&settings) {
        Ok(h) => h.map(Arc::new),
        Err(e) => return fail_config(&e),
    };
    // Closes the homes when `main` returns, on every path from here, whoever still holds
    // them (listeners, the reloader).
    let _close_homes = homes.clone().map(cli::keyhomes::CloseOnExit);
    // The audit log is checked too: a log altered since the last run stops the start.
    let audit = match audit_trail(&settings, homes.as_deref()) {
        Ok(a) => a,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    // Withdrawn credentials: a journal that cannot be read stops the start, so that no
    // revocation is ever forgotten.
    let revocations = match open_revocations(&settings) {
        Ok(r) => r,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    // Keys the MEF issued: a journal that cannot be read stops the start too.
    let provisioned = match open_provisioned(&settings) {
        Ok(p) => p,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    let acceptors: Vec<Arc<AcceptorSlot>> = match tls_acceptors(
        &settings,
        homes.as_deref(),
        &revocations,
        &provisioned,
        audit.as_ref(),
    ) {
        Ok(a) => a
            .into_iter()
            .map(|a| Arc::new(AcceptorSlot::new(a)))
            .collect(),
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    let device = match cli::cert_enrolment::open(&settings, homes.as_deref(), &revocations) {
        Ok(d) => d.map(|(acceptor, mef)| (Arc::new(AcceptorSlot::new(Arc::new(acceptor))), mef)),
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    // What `reload-tls` and SIGHUP re-read: the same file, the same overrides.
    let reloader = Reloader {
        config: args.config.clone(),
        http: args.http,
        data: args.data.clone(),
        homes: homes.clone(),
        revocations: revocations.clone(),
        provisioned: provisioned.clone(),
        audit: audit.clone(),
        listeners: settings
            .tls
            .iter()
            .map(|t| (t.name.clone(), t.listen))
            .zip(acceptors.iter().cloned())
            .map(|((name, listen), slot)| (name, listen, slot))
            .collect(),
        device: device.as_ref().map(|(slot, _)| slot.clone()),
    };
    let enrolment = match enrolment(&settings, &provisioned, &revocations) {
        Ok(e) => e,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    let mut settings = settings;
    match published_crls(&settings) {
        Ok(crls) => settings.cse.published_crls = crls,
        Err(e) => return fail_config(&format!("{e:#}")),
    }
    // Token issuers' keys are read now: a missing or unusable key exits 64.
    let mut issuers = security::token::Issuers::new();
    for issuer in &settings.token_issuers {
        if let Err(e) = issuer.load(&mut issuers) {
            return fail_config(&e);
        }
    }
    settings.cse.dynamic_authorization.issuers = Arc::new(issuers);
    if let Some(tls) = &settings.cse.notification_tls {
        if let Err(e) = cse::notification::check_tls(tls) {
            return fail_config(&format!("[notifications] TLS: {e}"));
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cse: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (enrolment, mef) = enrolment.unzip();
    let (device_enrolment, device_mef) = device.unzip();
    let pseudonyms = match pseudonym_vault(&settings, homes.as_deref()) {
        Ok(v) => v,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    // The MAF's registrations: a journal that cannot be read or opened stops the start.
    let maf = match maf(&settings) {
        Ok(m) => m,
        Err(e) => return fail_config(&format!("{e:#}")),
    };
    let services = cse::Services {
        audit,
        revocations,
        mef,
        device_mef,
        maf,
        pseudonyms: Some(pseudonyms),
        supervision: settings.supervision.clone(),
        tls_reload: Some(Arc::new(reloader)),
    };
    if let Err(e) = runtime.block_on(run(
        settings,
        acceptors,
        enrolment,
        device_enrolment,
        services,
    )) {
        tracing::error!("{e:#}");
        eprintln!("cse: {e:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Reports an unusable configuration; `main` returns the code, so that what was opened
/// before (the key homes) is closed on the way out.
fn fail_config(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("cse: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// Opens the configured key homes and checks the keys the CSE needs outside TLS (the CA
/// key); `None` without a `[keystore]` home.
fn key_homes(settings: &Settings) -> Result<Option<KeyHomes>, cli::keyhomes::KeyHomeError> {
    if settings.keystore.is_empty() {
        return Ok(None);
    }
    let homes = KeyHomes::open(&settings.keystore, false)?;
    for home in homes.store().homes() {
        tracing::info!(home = %home.id(), level = home.level().number(), "key home opened");
    }
    if let Some(key) = &settings.keystore.ca_key {
        let ca = homes.signing_key("keystore.ca_key", key, keystore::KeyRole::CaSigning)?;
        tracing::info!(key = %key, level = ca.level().number(), "CA key checked");
    }
    Ok(Some(homes))
}

/// The pseudonym vault: over `[privacy] mapping_key` in its key home, or the default
/// level-1 home in the data folder.
fn pseudonym_vault(
    settings: &Settings,
    homes: Option<&KeyHomes>,
) -> anyhow::Result<Arc<security::privacy::PseudonymVault>> {
    use security::privacy::PseudonymVault;
    let vault = match (&settings.mapping_key, homes) {
        (Some(key), Some(homes)) => {
            let handle = homes.open_key(
                "privacy.mapping_key",
                key,
                keystore::KeyRole::PseudonymMapping,
            )?;
            let home = homes.store().home(handle.home())?.clone();
            let store = keystore::KeyStore::new(homes.store().policy().clone()).with_home(home);
            PseudonymVault::new(store, handle)?
        }
        (Some(key), None) => {
            anyhow::bail!("privacy.mapping_key: {key}, but no key home is configured")
        }
        (None, _) => PseudonymVault::in_data_folder(&settings.data)?,
    };
    tracing::info!(key = %vault.describe(), "pseudonym vault open");
    Ok(Arc::new(vault))
}

/// Rebuilds the `[[tls]]` listeners' acceptors from the configuration file, for `reload-tls`
/// and SIGHUP. Key homes, journals and the audit trail are the running ones; adding, removing
/// or moving a listener needs a restart (and is refused here).
#[derive(Debug)]
struct Reloader {
    config: Option<PathBuf>,
    http: Option<SocketAddr>,
    data: Option<PathBuf>,
    homes: Option<Arc<KeyHomes>>,
    revocations: Arc<Revocations>,
    provisioned: Arc<ProvisionedKeys>,
    audit: Option<audit::AuditTrail>,
    listeners: Vec<(String, SocketAddr, Arc<AcceptorSlot>)>,
    /// The device enrolment listener (`[enrolment] device_listen`): its manufacturer CAs and
    /// CRLs are re-read too.
    device: Option<Arc<AcceptorSlot>>,
}

impl reload::TlsReload for Reloader {
    fn reload(&self) -> Result<reload::Reloaded, String> {
        let file = match self.config.as_deref().map(FileConfig::load).transpose() {
            Ok(f) => f.unwrap_or_default(),
            Err(e) => return Err(e.to_string()),
        };
        let settings = file
            .resolve(self.http, self.data.clone())
            .map_err(|e| e.to_string())?;
        let now: Vec<(String, SocketAddr)> = settings
            .tls
            .iter()
            .map(|t| (t.name.clone(), t.listen))
            .collect();
        let before: Vec<(String, SocketAddr)> = self
            .listeners
            .iter()
            .map(|(n, l, _)| (n.clone(), *l))
            .collect();
        if now != before {
            return Err(
                "the [[tls]] listeners were added, removed, renamed or moved: restart the CSE"
                    .into(),
            );
        }
        let acceptors = tls_acceptors(
            &settings,
            self.homes.as_deref(),
            &self.revocations,
            &self.provisioned,
            self.audit.as_ref(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let device =
            cli::cert_enrolment::acceptor(&settings, self.homes.as_deref(), &self.revocations)
                .map_err(|e| format!("{e:#}"))?;
        let device = match (&self.device, device) {
            (Some(slot), Some(acceptor)) => Some((slot, acceptor)),
            (None, None) => None,
            _ => {
                return Err(
                    "[enrolment] device_listen was added or removed: restart the CSE".into(),
                )
            }
        };
        let published_crls = published_crls(&settings).map_err(|e| format!("{e:#}"))?;
        // Everything was built: only now is anything replaced.
        let mut names: Vec<String> = self.listeners.iter().map(|(n, _, _)| n.clone()).collect();
        for ((name, _, slot), acceptor) in self.listeners.iter().zip(acceptors) {
            slot.replace(acceptor);
            tracing::info!(listener = %name, "TLS listener reloaded");
        }
        if let Some((slot, acceptor)) = device {
            slot.replace(Arc::new(acceptor));
            tracing::info!(
                listener = %certificate::DEVICE_ENROLMENT_LISTENER,
                "TLS listener reloaded"
            );
            names.push(certificate::DEVICE_ENROLMENT_LISTENER.to_owned());
        }
        Ok(reload::Reloaded {
            listeners: names,
            published_crls,
        })
    }
}

/// Opens the journal of withdrawn credentials in the data folder.
fn open_revocations(settings: &Settings) -> anyhow::Result<Arc<Revocations>> {
    Ok(Arc::new(Revocations::open(
        &settings.data.join("revocations.jsonl"),
    )?))
}

/// Opens the journal of pre-shared keys the MEF issued, in the data folder.
/// The MAF (`[maf]`): its sealed registrations in the data folder, keys named
/// `HEX@<cse public domain name>`.
fn maf(settings: &Settings) -> anyhow::Result<Option<Arc<maf::Maf>>> {
    use security::maf_store::{KeySeal, MafKeys};
    let Some(m) = &settings.maf else {
        return Ok(None);
    };
    let seal = KeySeal::in_data_folder(&settings.data).context("[maf] sealing key")?;
    let described = seal.describe();
    let keys = Arc::new(MafKeys::open(
        &settings.data.join("maf-keys.jsonl"),
        seal,
        m.limits,
    )?);
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    let maf = maf::Maf::new(keys.clone(), &local.public_domain_name(), m.max_lifetime)
        .map_err(|e| anyhow::anyhow!("[maf]: {e}"))?;
    tracing::info!(registrations = keys.len(), seal = %described, "key distribution function (MAF) configured");
    Ok(Some(Arc::new(maf)))
}

fn open_provisioned(settings: &Settings) -> anyhow::Result<Arc<ProvisionedKeys>> {
    let seal = security::provisioned::seal_in_data_folder(&settings.data)
        .context("the sealing key of provisioned keys")?;
    let described = seal.describe();
    let keys = ProvisionedKeys::open(&settings.data.join("provisioned-psk.jsonl"), seal)?;
    tracing::debug!(seal = %described, "provisioned keys open");
    Ok(Arc::new(keys))
}

/// The enrolment listener's acceptor (TLS-PSK with the enrolee keys) and the MEF, when
/// `[enrolment]` is configured.
fn enrolment(
    settings: &Settings,
    provisioned: &Arc<ProvisionedKeys>,
    revocations: &Arc<Revocations>,
) -> anyhow::Result<Option<(Arc<TlsAcceptor>, Arc<mef::Mef>)>> {
    let Some(e) = &settings.enrolment else {
        return Ok(None);
    };
    let enrolees = Arc::new(EnroleeKeys::load(&e.enrolees).context("[enrolment] enrolees")?);
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    let policy = security::tls::TlsPolicy {
        psk: true,
        ..security::tls::TlsPolicy::default()
    };
    // Enrolee keys can be revoked like any credential (`10-<KpmID>`).
    let guarded: Arc<dyn CredentialStore> = Arc::new(Withdrawable::enrolees(
        enrolees.clone(),
        revocations.clone(),
    ));
    let acceptor =
        TlsAcceptor::enrolment(&policy, guarded, local.clone()).context("[enrolment] listener")?;
    let mef = mef::Mef::new(
        enrolees.clone(),
        provisioned.clone(),
        e.lifetime,
        &local.public_domain_name(),
        &settings.cse.cse_id,
    )
    .map_err(|m| anyhow::anyhow!("[enrolment]: {m}"))?;
    // fetchCredentials (cse::security_manager::enrolment::fetch): only when some target may fetch.
    let mef = if e.targets.is_empty() {
        mef
    } else {
        use security::enrolment_keys::{seal_in_data_folder, EnrolmentKeys};
        let seal = seal_in_data_folder(&settings.data).context("[enrolment] sealing key")?;
        let kept = Arc::new(EnrolmentKeys::open(
            &settings.data.join("enrolment-keys.jsonl"),
            seal,
            security::enrolment_keys::DEFAULT_MAX_ENROLMENTS,
        )?);
        let fetch = fetch::CredentialFetch::new(kept, e.targets.clone())
            .map_err(|m| anyhow::anyhow!("[[enrolment.target]]: {m}"))?;
        mef.with_credential_fetch(fetch)
    };
    tracing::info!(
        enrolees = enrolees.len(),
        issued = provisioned.len(),
        "enrolment function (MEF) configured"
    );
    Ok(Some((Arc::new(acceptor), Arc::new(mef))))
}

/// Opens (or starts) the audit log, signed when `[audit] signing_key` names a key.
fn audit_trail(
    settings: &Settings,
    homes: Option<&KeyHomes>,
) -> anyhow::Result<Option<audit::AuditTrail>> {
    let Some(audit) = &settings.audit else {
        return Ok(None);
    };
    let signer = match (&audit.signing_key, homes) {
        (Some(key), Some(homes)) => {
            Some(homes.signing_key("audit.signing_key", key, keystore::KeyRole::AuditLog)?)
        }
        (Some(key), None) => {
            anyhow::bail!("audit.signing_key: {key}, but no key home is configured")
        }
        (None, _) => None,
    };
    if let Some(dir) = audit.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        cli::secret_files::create_private_folder(dir)?;
    }
    // One writer per log: the log holds its lock (manager::audit::WriterLock) for as long as
    // the CSE runs, so `m2m ca` does not fork the chain meanwhile.
    let log = match manager::audit::AuditLog::open_with(&audit.file, signer, audit.layout.clone()) {
        Err(e @ manager::audit::AuditError::InUse { .. }) => return Err(e.into()),
        opened => opened.with_context(|| format!("audit log {}", audit.file.display()))?,
    };
    tracing::info!(file = %audit.file.display(), signed = audit.signing_key.is_some(), "audit log open");
    Ok(Some(audit::AuditTrail::start(
        log,
        settings.cse.refusal_window,
    )?))
}

/// The CRLs of every TLS listener, DER-encoded by file name, to publish.
fn published_crls(settings: &Settings) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for path in settings
        .tls
        .iter()
        .filter_map(|t| t.certificate.as_ref())
        .flat_map(|c| &c.crls)
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, security::tls::crl_der(path)?));
        }
    }
    Ok(out)
}

/// Loads the credential file and builds one TLS acceptor per `[[tls]]` listener.
fn tls_acceptors(
    settings: &Settings,
    homes: Option<&KeyHomes>,
    revocations: &Arc<Revocations>,
    provisioned: &Arc<ProvisionedKeys>,
    audit: Option<&audit::AuditTrail>,
) -> anyhow::Result<Vec<Arc<TlsAcceptor>>> {
    // `derive_from` entries open their PSK master keys in the configured homes now.
    let masters: &dyn security::credentials::PskMasterSource = match homes {
        Some(homes) => homes,
        None => &security::credentials::NoKeyHomes,
    };
    let credentials: Arc<dyn CredentialStore> = match &settings.credentials {
        Some(path) => Arc::new(FileCredentials::load_with(path, masters)?),
        None => Arc::new(FileCredentials::default()),
    };
    // The MEF's enrolled keys in front of the file's, both subject to withdrawal.
    let credentials: Arc<dyn CredentialStore> =
        Arc::new(WithProvisioned::new(credentials, provisioned.clone()));
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    // Network-provided keys: B-TIDs of the BSF's domain, keys from the BSF (also withdrawable).
    let naf = match &settings.gba {
        Some(g) => Some(Arc::new(gba_naf(g, &local, audit)?)),
        None => None,
    };
    let credentials: Arc<dyn CredentialStore> = match &naf {
        Some(naf) => Arc::new(security::gba::WithGba::new(credentials, naf.clone())),
        None => credentials,
    };
    let credentials: Arc<dyn CredentialStore> =
        Arc::new(Withdrawable::new(credentials, revocations.clone()));
    let acceptors = settings
        .tls
        .iter()
        .map(|t| {
            let policy = t.policy(homes)?;
            if let Some(c) = &policy.certificate {
                tracing::info!(listener = %t.name, key = %c.key.describe(), level = c.key.level().number(), "TLS server key");
            }
            TlsAcceptor::new(&policy, credentials.clone(), local.clone())
                .map(Arc::new)
                .with_context(|| format!("[[tls]] {}", t.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Withdrawing a GBA gateway withdraws its edge nodes: the NAF names their parent; with
    // `[enrolment] withdraw_enrolled`, withdrawing an enrolee key withdraws what it enrolled.
    // Set once everything was built, so a failed reload leaves the rules of the running
    // listeners.
    let mut rules: Vec<Arc<dyn DerivedCredentials>> = Vec::new();
    if let Some(naf) = naf {
        rules.push(naf);
    }
    if settings
        .enrolment
        .as_ref()
        .is_some_and(|e| e.withdraw_enrolled)
    {
        rules.push(Arc::new(EnrolledBy(provisioned.clone())));
    }
    revocations.set_derived(match rules.len() {
        0 => None,
        _ => Some(Arc::new(DerivedRules(rules))),
    });
    Ok(acceptors)
}

/// The NAF of network-provided keys (`[gba]`): asks the BSF for the keys of B-TIDs, and
/// writes each key it receives to the audit log as `credential-issued` (`12-<B-TID>`), as
/// well as each edge-node key it derives (`12-<node>.<B-TID>`, parent = the gateway B-TID).
fn gba_naf(
    g: &cli::config::GbaSettings,
    local: &LocalIdentity,
    audit: Option<&audit::AuditTrail>,
) -> anyhow::Result<security::gba::GbaNaf> {
    use manager::kdf::{Fqdn, NafId};
    use security::association::{CredentialBinding, PeerIdentity};
    let zn = security::gba::HttpZn::new(&g.bsf_url, g.timeout)
        .map_err(|m| anyhow::anyhow!("[gba] bsf_url: {m}"))?;
    let config = security::gba::GbaConfig {
        btid_domain: Fqdn::new(&g.btid_domain).context("[gba] btid_domain")?,
        naf: NafId {
            // Clause 8.3.2.3: the NAF FQDN of a CSE is the public domain name of its CSE-ID.
            fqdn: Fqdn::new(&local.public_domain_name()).context("the NAF FQDN (CSE-ID.SP-ID)")?,
            ua_protocol: security::gba::UA_TLS_PSK,
        },
        key: g.key,
        default_binding: CredentialBinding {
            identity: PeerIdentity::AllowedAes(g.allowed_aes.clone()),
            admin: false,
            allowed_apps: Vec::new(),
            level: None,
        },
        max_cached: g.max_cached,
        edge_nodes: g.edge_nodes,
    };
    tracing::info!(bsf = %zn.url(), naf = %config.naf.fqdn.as_str(), btid_domain = %g.btid_domain, edge_nodes = g.edge_nodes, "network-provided keys (GBA NAF) configured");
    let mut naf = security::gba::GbaNaf::new(config, Arc::new(zn));
    if let Some(audit) = audit.cloned() {
        naf = naf.with_events(Arc::new(move |event: &security::gba::GbaEvent| {
            use security::gba::GbaEvent;
            // Both are keys the CSE now holds: `credential-issued`, with the key each one
            // derives from as parent (a B-TID is its own KeID; an edge key's is the gateway's).
            let (holder, parent) = match event {
                GbaEvent::KeyFetched { btid, holder, .. } => (holder, btid),
                GbaEvent::EdgeKeyDerived {
                    gateway, holder, ..
                } => (holder, gateway),
            };
            audit.record(manager::audit::Event::CredentialIssued {
                credential: event.credential(),
                holder: holder.clone(),
                parent: Some(parent.clone()),
            });
        }));
    }
    Ok(naf)
}

async fn run(
    mut settings: Settings,
    acceptors: Vec<Arc<AcceptorSlot>>,
    enrolment: Option<Arc<TlsAcceptor>>,
    device_enrolment: Option<Arc<AcceptorSlot>>,
    services: cse::Services,
) -> anyhow::Result<()> {
    let plain = match settings.http_enabled {
        true => Some(bind(settings.listen).await?),
        false => None,
    };
    let mut secure = Vec::new();
    for (t, acceptor) in settings.tls.iter().zip(acceptors) {
        secure.push((t.name.clone(), bind(t.listen).await?, acceptor));
    }
    let enrolment = match (enrolment, &settings.enrolment) {
        (Some(acceptor), Some(e)) => {
            Some((bind(e.listen).await?, Arc::new(AcceptorSlot::new(acceptor))))
        }
        _ => None,
    };
    let enrolment_addr = enrolment
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let device_enrolment = match (device_enrolment, &settings.device_enrolment) {
        (Some(slot), Some(d)) => Some((bind(d.listen).await?, slot)),
        _ => None,
    };
    let device_addr = device_enrolment
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let mut advertised = Vec::new();
    if let Some(l) = &plain {
        advertised.push(format!("http://{}", l.local_addr()?));
    }
    for (_, l, _) in &secure {
        advertised.push(format!("https://{}", l.local_addr()?));
    }
    if settings.cse.poa.is_empty() {
        settings.cse.poa = advertised.clone();
    }

    let store = store::SqliteStore::open(&settings.data, settings.store.clone())
        .with_context(|| format!("cannot open the store in {}", settings.data.display()))?;
    let cse = cse::Cse::open_with(settings.cse.clone(), Arc::new(store), services)
        .await
        .context("cannot initialise the CSE")?;
    cse::expiry::spawn(cse.clone());
    // SIGHUP re-reads the TLS material, as `m2m reload-tls` does.
    let on_hup = cse.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = on_hup.reload_tls("SIGHUP").await {
                tracing::error!(reason = %model::Untrusted(&e.message), "SIGHUP: TLS material not reloaded");
            }
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    // Every connection is a descriptor: raise the soft limit, and keep the listeners'
    // connection limits within it (beyond them the oldest idle connection makes room).
    let listeners = usize::from(plain.is_some())
        + secure.len()
        + usize::from(enrolment.is_some())
        + usize::from(device_enrolment.is_some());
    let (fd_limit, raised_from) = cli::fd_limit::raise();
    if let Some(before) = raised_from {
        tracing::info!(
            before,
            now = fd_limit,
            "file-descriptor limit raised to the hard limit"
        );
    }
    let per_listener =
        cli::fd_limit::connections_per_listener(fd_limit, listeners, settings.http.max_connections);
    if per_listener < settings.http.max_connections {
        tracing::warn!(
            configured = settings.http.max_connections,
            used = per_listener,
            fd_limit,
            listeners,
            "http.max_connections lowered to fit the file-descriptor limit"
        );
        settings.http.max_connections = per_listener;
    }
    let mut servers = tokio::task::JoinSet::new();
    if let Some(listener) = plain {
        // An operator who turned it on knowingly still reads here what it exposes.
        let admin = if settings.cse.admin_requires_association {
            "the admin originator is refused on it"
        } else {
            "the admin originator has full access on it WITHOUT ANY CREDENTIAL"
        };
        tracing::warn!(
            listen = %listener.local_addr()?,
            "plaintext listener: its requests have no security association; it serves AEs that registered without a credential, refuses AEs bound to a credential (4107); {admin}"
        );
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve(listener, cse, limits, "http".to_owned(), stop).await
        });
    }
    for (name, listener, acceptor) in secure {
        let transport = http_binding::Tls {
            listener: name,
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::Mca,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    if let Some((listener, acceptor)) = enrolment {
        let transport = http_binding::Tls {
            listener: security::association::ENROLMENT_LISTENER.to_owned(),
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::MefEnrolment,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    if let Some((listener, acceptor)) = device_enrolment {
        let transport = http_binding::Tls {
            listener: certificate::DEVICE_ENROLMENT_LISTENER.to_owned(),
            acceptor,
            registry: cse.associations().clone(),
            role: cse::ListenerRole::DeviceEnrolment,
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    tracing::info!(cse_id = %settings.cse.cse_id, data = %settings.data.display(), "CSE {} started", settings.cse.cse_name);
    // Scripts and tests read these lines to learn the ports when binding to port 0.
    for url in &advertised {
        cli::stdout::announce(&format!("listening on {url}"));
    }
    // The enrolment listener last, and not a point of access of the CSE.
    if let Some(addr) = enrolment_addr {
        cli::stdout::announce(&format!("listening on https://{addr}"));
    }
    // Then the device (certificate-based) enrolment listener.
    if let Some(addr) = device_addr {
        cli::stdout::announce(&format!("listening on https://{addr}"));
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    while let Some(done) = servers.join_next().await {
        done.context("a listener task failed")?
            .context("a listener failed")?;
    }
    // The listeners are closed: write the refusal counts and whatever the audit writer holds.
    if let Some(audit) = cse.audit().cloned() {
        let flushed =
            tokio::task::spawn_blocking(move || audit.flush(std::time::Duration::from_secs(10)))
                .await
                .unwrap_or(false);
        if !flushed {
            tracing::error!("the audit writer did not finish within 10 s: queued events lost");
        }
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
