//! `cse`: the secure-cse server. Reads the configuration, loads credentials and TLS
//! settings, opens the store, starts the listeners, and runs until Ctrl-C or SIGTERM.

use clap::Parser;
use cli::startup::{self, Overrides, StartError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// Every exit returns from here rather than calling `process::exit`, which would skip the
/// destructors: the key homes are closed when the assembled CSE is dropped, on every path.
fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match &args.command {
        Some(CseCommand::Init(init)) => init_cmd(init),
        None => serve(&Overrides {
            config: args.config,
            http: args.http,
            data: args.data,
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let StartError::Run(_) = &e {
                tracing::error!("{e}");
            }
            eprintln!("cse: {e}");
            e.exit_code()
        }
    }
}

/// `cse init`: a new secure CSE directory; any failure is a configuration error (exit 64).
fn init_cmd(init: &cli::init_cmd::InitArgs) -> Result<(), StartError> {
    let report =
        cli::init_cmd::run(init).map_err(|e| StartError::Config(format!("init: {e:#}")))?;
    cli::out!("{report}");
    Ok(())
}

/// The server: settings, log, every part opened and checked, then the listeners until
/// Ctrl-C or SIGTERM.
fn serve(overrides: &Overrides) -> Result<(), StartError> {
    let settings = overrides.settings()?;
    startup::init_logging(&settings);
    let cse = startup::assemble(overrides, settings)?;
    cse.serve(startup::serve::shutdown_signal())
}
