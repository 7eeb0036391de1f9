//! The `kube-sim` binary: parse flags and environment, start the simulator, print or write the
//! kubeconfig, and serve until Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::process::ExitCode;

use kube_sim::KubeSim;
use kube_sim::config::{self, Command};
use tracing_subscriber::EnvFilter;

// The controllers copy and drop many small JSON values on every write: glibc's allocator spent
// a third of a `PATCH …/scale` in malloc and free; mimalloc, as in the services, far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
// Named for its features: `no_thp`, so that a touched byte never makes 2 MiB resident.
use libmimalloc_sys as _;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("kube_sim=info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kube-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // Listening starts first, so a SIGTERM during start-up is remembered, not fatal.
    aegis_common::server::listen_for_shutdown();
    let options = match config::parse_command(std::env::args().skip(1), |k| std::env::var(k).ok())?
    {
        Command::Help => {
            // Ignore a closed pipe (`kube-sim --help | head`).
            let _ = writeln!(std::io::stdout(), "{}", config::USAGE);
            return Ok(());
        }
        Command::Run(options) => options,
    };
    let sim = KubeSim::start(options.config).await?;
    match &options.kubeconfig_out {
        Some(path) => {
            sim.write_kubeconfig(path).map_err(|e| {
                anyhow::anyhow!("failed to write kubeconfig to {}: {e}", path.display())
            })?;
            eprintln!(
                "kube-sim serving {} (kubeconfig written to {})",
                sim.base_url(),
                path.display()
            );
        }
        None => {
            eprintln!("kube-sim serving {}; kubeconfig follows", sim.base_url());
            std::io::stdout()
                .write_all(sim.kubeconfig_yaml().as_bytes())
                .map_err(|e| anyhow::anyhow!("failed to print the kubeconfig: {e}"))?;
        }
    }
    aegis_common::server::shutdown_signal().await;
    eprintln!("kube-sim shutting down");
    sim.shutdown().await;
    Ok(())
}
