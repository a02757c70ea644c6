//! `cse`: the secure-cse server. Reads the configuration, opens the store, starts the HTTP
//! listener, and runs until Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use cli::config::FileConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A oneM2M Common Services Entity built around the oneM2M security architecture.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the HTTP listener (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Data folder of the embedded store (default ./data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// TOML configuration file; every option is optional (docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
}

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
    if let Err(e) = runtime.block_on(run(settings)) {
        tracing::error!("{e:#}");
        eprintln!("cse: {e:#}");
        std::process::exit(1);
    }
}

fn fail_config(e: &dyn std::fmt::Display) -> ! {
    eprintln!("cse: {e}");
    std::process::exit(EXIT_CONFIG)
}

async fn run(mut settings: cli::config::Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let local = listener.local_addr()?;
    if settings.cse.poa.is_empty() {
        settings.cse.poa = vec![format!("http://{local}")];
    }
    let store = store::SqliteStore::open(&settings.data, settings.store.clone())
        .with_context(|| format!("cannot open the store in {}", settings.data.display()))?;
    let cse = cse::Cse::open(settings.cse.clone(), Arc::new(store))
        .await
        .context("cannot initialise the CSE")?;
    cse::expiry::spawn(cse.clone());
    tracing::info!(
        cse_id = %settings.cse.cse_id,
        data = %settings.data.display(),
        "CSE {} listening on http://{local}",
        settings.cse.cse_name
    );
    // Scripts and tests read this line to learn the port when binding to port 0.
    println!("listening on http://{local}");
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down");
    };
    http_binding::serve(listener, cse, settings.http, "http".to_owned(), shutdown).await?;
    Ok(())
}
