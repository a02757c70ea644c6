//! `cse`: the secure-cse server. Reads the configuration, loads credentials and TLS
//! settings, opens the store, starts the listeners, and runs until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use cli::config::{FileConfig, Settings};
use security::credentials::{CredentialStore, FileCredentials};
use security::tls::{LocalIdentity, TlsAcceptor};
use std::net::SocketAddr;
use std::path::PathBuf;
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
}

/// mimalloc: the request path allocates and frees many small objects on two kinds of
/// threads (tokio workers and the store writer), where glibc's allocator spends a
/// noticeable share of the time consolidating and locking (measured: `docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for an unusable configuration (EX_USAGE), before any socket opens.
const EXIT_CONFIG: i32 = 64;

fn main() {
    let args = Args::parse();
    let file = match args.config.as_deref().map(FileConfig::load).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => fail_config(&e),
    };
    let settings = match file.resolve(args.http, args.data) {
        Ok(s) => s,
        Err(e) => fail_config(&e),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Credentials and TLS material are checked before anything listens.
    let acceptors = match tls_acceptors(&settings) {
        Ok(a) => a,
        Err(e) => fail_config(&format!("{e:#}")),
    };
    let mut settings = settings;
    match published_crls(&settings) {
        Ok(crls) => settings.cse.published_crls = crls,
        Err(e) => fail_config(&format!("{e:#}")),
    }
    if let Some(tls) = &settings.cse.notification_tls {
        if let Err(e) = cse::notification::check_tls(tls) {
            fail_config(&format!("[notifications] TLS: {e}"));
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cse: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(settings, acceptors)) {
        tracing::error!("{e:#}");
        eprintln!("cse: {e:#}");
        std::process::exit(1);
    }
}

fn fail_config(e: &dyn std::fmt::Display) -> ! {
    eprintln!("cse: {e}");
    std::process::exit(EXIT_CONFIG)
}

/// The CRLs of every TLS listener, DER-encoded by file name, to publish.
fn published_crls(settings: &Settings) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for path in settings
        .tls
        .iter()
        .filter_map(|t| t.policy.certificate.as_ref())
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
fn tls_acceptors(settings: &Settings) -> anyhow::Result<Vec<Arc<TlsAcceptor>>> {
    let credentials: Arc<dyn CredentialStore> = match &settings.credentials {
        Some(path) => Arc::new(FileCredentials::load(path)?),
        None => Arc::new(FileCredentials::default()),
    };
    let local = LocalIdentity {
        sp_id: settings.cse.sp_id.clone(),
        cse_id: settings.cse.cse_id.clone(),
    };
    settings
        .tls
        .iter()
        .map(|t| {
            TlsAcceptor::new(&t.policy, credentials.clone(), local.clone())
                .map(Arc::new)
                .with_context(|| format!("[[tls]] {}", t.name))
        })
        .collect()
}

async fn run(mut settings: Settings, acceptors: Vec<Arc<TlsAcceptor>>) -> anyhow::Result<()> {
    let plain = match settings.http_enabled {
        true => Some(bind(settings.listen).await?),
        false => None,
    };
    let mut secure = Vec::new();
    for (t, acceptor) in settings.tls.iter().zip(acceptors) {
        secure.push((t.name.clone(), bind(t.listen).await?, acceptor));
    }
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
    let cse = cse::Cse::open(settings.cse.clone(), Arc::new(store))
        .await
        .context("cannot initialise the CSE")?;
    cse::expiry::spawn(cse.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut servers = tokio::task::JoinSet::new();
    if let Some(listener) = plain {
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
        };
        let (cse, limits, stop) = (cse.clone(), settings.http, stopped());
        servers.spawn(async move {
            http_binding::serve_with(listener, cse, limits, transport, stop).await
        });
    }
    tracing::info!(cse_id = %settings.cse.cse_id, data = %settings.data.display(), "CSE {} started", settings.cse.cse_name);
    // Scripts and tests read these lines to learn the ports when binding to port 0.
    for url in &advertised {
        println!("listening on {url}");
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
