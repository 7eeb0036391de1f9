//! `aegisctl`: see the crate documentation for the commands and the exit codes.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = aegisctl::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match aegisctl::commands::run(cli, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // The backend's messages may quote input; nothing reaches the terminal as control.
            eprintln!(
                "aegisctl: {}",
                aegisctl::render::clean(&failure.to_string())
            );
            ExitCode::from(failure.exit_code())
        }
    }
}
