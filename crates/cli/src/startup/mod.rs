//! Start-up as a library: a CSE assembled from its configuration (the settings resolved, then
//! every part opened and checked before anything listens), served until a stop signal, with
//! one mapping from what went wrong to the exit code. `bin/cse.rs` only calls these; tests
//! call them too.

pub mod parts;
pub mod reload;
pub mod serve;

use crate::config::{FileConfig, Settings};
use crate::keyhomes::CloseOnExit;
use reload::Reloader;
use security::tls::{AcceptorSlot, TlsAcceptor};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code for an unusable configuration (EX_USAGE), before any socket opens.
pub const EXIT_CONFIG: u8 = 64;

/// Why the CSE did not start or stopped on an error; each maps to one exit code
/// ([`StartError::exit_code`]), documented in `docs/configuration.md`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration, a key home, a key, a journal, the audit log or some TLS material is
    /// unusable: nothing listened yet. Exit 64.
    #[error("{0}")]
    Config(String),
    /// The asynchronous runtime could not start. Exit 1.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The CSE failed while starting its listeners or serving (an address in use, a store
    /// that does not open, a listener that failed). Exit 1.
    #[error("{0:#}")]
    Run(anyhow::Error),
}

impl StartError {
    /// A configuration error from anything displayable (the alternate form, with causes).
    fn config(e: impl std::fmt::Display) -> Self {
        StartError::Config(format!("{e:#}"))
    }

    /// The one place where a failed start becomes an exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            StartError::Config(_) => ExitCode::from(EXIT_CONFIG),
            StartError::Runtime(_) | StartError::Run(_) => ExitCode::FAILURE,
        }
    }
}

/// What the command line says about the configuration; kept, because `reload-tls` and SIGHUP
/// re-read the same file with the same overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The TOML configuration file (`--config`); without it every option has its default.
    pub config: Option<PathBuf>,
    /// The plaintext HTTP listener's address (`--http`).
    pub http: Option<SocketAddr>,
    /// The data folder (`--data`).
    pub data: Option<PathBuf>,
}

impl Overrides {
    /// Reads the configuration file and resolves it with the overrides.
    pub fn settings(&self) -> Result<Settings, StartError> {
        let file = self
            .config
            .as_deref()
            .map(FileConfig::load)
            .transpose()
            .map_err(StartError::config)?
            .unwrap_or_default();
        file.resolve(self.http, self.data.clone())
            .map_err(StartError::config)
    }
}

/// Sends the log to stderr at `settings.log` (or `RUST_LOG`), coloured on a terminal.
pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A CSE whose every part was opened and checked, ready to listen. Dropping it (on every
/// path, served or not) closes the key homes: a TPM home flushes the objects it loaded, or
/// the next start finds the TPM's object slots full.
#[derive(Debug)]
pub struct Assembled {
    settings: Settings,
    acceptors: Vec<Arc<AcceptorSlot>>,
    enrolment: Option<Arc<TlsAcceptor>>,
    device_enrolment: Option<Arc<AcceptorSlot>>,
    services: cse::Services,
    /// Last field: dropped after everything that may still use the homes.
    _close_homes: Option<CloseOnExit>,
}

/// Opens every part of the CSE from `settings`, in the order an operator reads the errors:
/// data folder, key homes, audit log, journals, TLS acceptors, enrolment, CRLs, token
/// issuers, notification TLS, pseudonym vault, MAF. Any failure is [`StartError::Config`].
pub fn assemble(overrides: &Overrides, settings: Settings) -> Result<Assembled, StartError> {
    // One clock everywhere: the TLS listeners check certificates by the CSE's clock.
    let clock = settings.cse.clock.clone();
    let mut settings = settings.with_clock(clock);
    // The data folder is private (mode 700) before anything is written into it. (A failure
    // is reported and the start goes on, as it always did; the store then says what is wrong.)
    if let Err(e) = crate::secret_files::private_folder(&settings.data) {
        eprintln!("cse: {e:#}");
    }
    // Key homes, credentials and TLS material are checked before anything listens. A home
    // that cannot be opened, a key missing from its home or below the policy: exit 64.
    let homes = parts::key_homes(&settings)
        .map_err(StartError::config)?
        .map(Arc::new);
    // Closes the homes on every path from here, whoever still holds them (listeners, the
    // reloader).
    let close_homes = homes.clone().map(CloseOnExit);
    // The audit log is checked too: a log altered since the last run stops the start.
    let audit = parts::audit_trail(&settings, homes.as_deref()).map_err(StartError::config)?;
    // Withdrawn credentials: a journal that cannot be read stops the start, so that no
    // revocation is ever forgotten.
    let revocations = parts::open_revocations(&settings).map_err(StartError::config)?;
    // Keys the MEF issued: a journal that cannot be read stops the start too.
    let provisioned = parts::open_provisioned(&settings).map_err(StartError::config)?;
    let acceptors: Vec<Arc<AcceptorSlot>> = parts::tls_acceptors(
        &settings,
        homes.as_deref(),
        &revocations,
        &provisioned,
        audit.as_ref(),
    )
    .map_err(StartError::config)?
    .into_iter()
    .map(|a| Arc::new(AcceptorSlot::new(a)))
    .collect();
    // The credential entries' `allowed_apps` seed the service subscription's rules.
    if let Some(path) = &settings.credentials {
        settings.cse.app_rule_seeds = security::credentials::FileCredentials::app_rules(path)
            .map_err(StartError::config)?
            .into_iter()
            .map(
                |(credential_id, allowed_apps)| cse::service_subscription::AppRuleSeed {
                    credential_id,
                    allowed_apps,
                },
            )
            .collect();
    }
    let device = crate::cert_enrolment::open(&settings, homes.as_deref(), &revocations)
        .map_err(StartError::config)?
        .map(|(acceptor, mef)| (Arc::new(AcceptorSlot::new(Arc::new(acceptor))), mef));
    // What `reload-tls` and SIGHUP re-read: the same file, the same overrides.
    let reloader = Reloader {
        config: overrides.config.clone(),
        http: overrides.http,
        data: overrides.data.clone(),
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
        clock: settings.cse.clock.clone(),
    };
    let enrolment =
        parts::enrolment(&settings, &provisioned, &revocations).map_err(StartError::config)?;
    settings.cse.published_crls = parts::published_crls(&settings).map_err(StartError::config)?;
    // Token issuers' keys are read now: a missing or unusable key exits 64.
    let mut issuers = security::token::Issuers::new();
    for issuer in &settings.token_issuers {
        issuer.load(&mut issuers).map_err(StartError::config)?;
    }
    settings.cse.dynamic_authorization.issuers = Arc::new(issuers);
    // The door out: notification and DAS targets over the HTTP binding's client side.
    let outbound =
        http_binding::outbound::HttpSender::senders(settings.cse.notification_tls.as_ref())
            .map_err(|e| StartError::Config(format!("[notifications] TLS: {e}")))?;
    let (enrolment, mef) = enrolment.unzip();
    let (device_enrolment, device_mef) = device.unzip();
    let pseudonyms =
        parts::pseudonym_vault(&settings, homes.as_deref()).map_err(StartError::config)?;
    // The MAF's registrations: a journal that cannot be read or opened stops the start.
    let maf = parts::maf(&settings).map_err(StartError::config)?;
    let services = cse::Services {
        audit,
        revocations,
        mef,
        device_mef,
        maf,
        pseudonyms: Some(pseudonyms),
        supervision: settings.supervision.clone(),
        tls_reload: Some(Arc::new(reloader)),
        outbound,
    };
    Ok(Assembled {
        settings,
        acceptors,
        enrolment,
        device_enrolment,
        services,
        _close_homes: close_homes,
    })
}

impl Assembled {
    /// Starts a runtime and serves every listener until `stop` completes, then closes the
    /// listeners, flushes the audit writer and closes the key homes. Announces each
    /// listener on standard output as `listening on URL` (scripts and tests read these lines
    /// to learn the ports when binding to port 0).
    pub fn serve(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
        self.serve_with(
            stop,
            |urls| {
                for url in urls {
                    crate::stdout::announce(&format!("listening on {url}"));
                }
            },
            None,
        )
    }

    /// [`Assembled::serve`] for a CSE served inside another program (the in-process tests,
    /// which give it a [`ManualClock`](model::clock::ManualClock) through
    /// [`Settings::with_clock`]): `listening` gets the listeners' URLs instead of standard
    /// output, and with `log` every thread of the CSE's runtime logs there rather than to the
    /// program's global subscriber.
    pub fn serve_with(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
        listening: impl FnOnce(Vec<String>),
        log: Option<tracing::Dispatch>,
    ) -> Result<(), StartError> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(log) = log.clone() {
            // The runtime's threads live as long as it does; so does their default.
            builder.on_thread_start(move || {
                std::mem::forget(tracing::dispatcher::set_default(&log));
            });
        }
        let runtime = builder.enable_all().build().map_err(StartError::Runtime)?;
        let _log = log.as_ref().map(tracing::dispatcher::set_default);
        let Assembled {
            settings,
            acceptors,
            enrolment,
            device_enrolment,
            services,
            _close_homes,
        } = self;
        runtime
            .block_on(serve::run(
                settings,
                acceptors,
                enrolment,
                device_enrolment,
                services,
                stop,
                listening,
            ))
            .map_err(StartError::Run)
    }
}
