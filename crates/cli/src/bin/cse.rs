//! `cse`: the secure-cse server. Reads the configuration, loads credentials and TLS
//! settings, opens the store, starts the listeners, and runs until Ctrl-C or SIGTERM.

use clap::Parser;
use cli::config::FileConfig;
use cli::startup::parts::{
    audit_trail, enrolment, key_homes, maf, open_provisioned, open_revocations, pseudonym_vault,
    published_crls, tls_acceptors,
};
use cli::startup::reload::Reloader;
use cli::startup::serve::run;
use security::tls::AcceptorSlot;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
