//! The whole `main` of a service binary: its command line, configuration errors, telemetry,
//! and a fatal error reported with its causes.

use std::{future::Future, process::ExitCode};

use crate::{
    config::{ConfigError, Env},
    telemetry::TelemetryConfig,
};

/// Errors a service binary reports before exiting.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a service binary provides to [`run_binary`].
pub trait ServiceBinary {
    /// Binary name, e.g. `aegis-backend`.
    const NAME: &'static str;
    /// The service's typed configuration.
    type Config: Send + 'static;
    /// Reads the configuration; errors name the variable.
    fn load(env: &Env) -> Result<Self::Config, ConfigError>;
    /// Telemetry settings from the configuration.
    fn telemetry(config: &Self::Config) -> TelemetryConfig;
    /// `migrate`: apply migrations and return.
    fn migrate(config: Self::Config) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// `serve`: run until SIGTERM or Ctrl-C.
    fn serve(config: Self::Config) -> impl Future<Output = Result<(), BoxError>> + Send;
    /// An extra tracing layer installed with the global subscriber (none by default).
    fn log_layer(_config: &Self::Config) -> Option<crate::telemetry::ExtraLayer> {
        None
    }
}

/// The whole `main` of a service: `NAME [serve|migrate]`, configuration errors on stderr with
/// exit code 2 (never a panic), telemetry, deprecation notes, then the command.
pub async fn run_binary<B: ServiceBinary>() -> ExitCode {
    crate::health::mark_start();
    let usage = format!(
        "usage: {name} [serve|migrate]\n  serve    run the service (default); migrates first unless AUTO_MIGRATE=false\n  migrate  apply the database migrations and exit\nConfiguration comes from the environment; see README.md.",
        name = B::NAME
    );
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    if !matches!(command.as_str(), "serve" | "migrate") {
        eprintln!("{}: unknown command {command:?}\n{usage}", B::NAME);
        return ExitCode::from(2);
    }
    let env = Env::from_process();
    let config = match B::load(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: configuration error: {e}", B::NAME);
            return ExitCode::from(2);
        }
    };
    let _telemetry =
        match crate::telemetry::init_with(&B::telemetry(&config), B::log_layer(&config)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{}: {e}", B::NAME);
                return ExitCode::from(2);
            }
        };
    for note in env.deprecation_notes() {
        tracing::warn!("{note}");
    }
    crate::server::listen_for_shutdown();
    let result = if command == "migrate" {
        B::migrate(config).await
    } else {
        // A shutdown signal during start-up (a hung database, a rollout that moved on) ends
        // the process cleanly; once the service serves, the signal drains it instead.
        tokio::select! {
            result = B::serve(config) => result,
            () = crate::server::stopped_during_start_up() => {
                tracing::info!("{} stopped during start-up", B::NAME);
                Ok(())
            }
        }
    };
    match result {
        Ok(()) => {
            tracing::info!("{} stopped", B::NAME);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let chain = error_chain(e.as_ref());
            tracing::error!(error = %chain, "{} stopped with an error", B::NAME);
            eprintln!("{}: {chain}", B::NAME);
            ExitCode::FAILURE
        }
    }
}

/// `error` and every cause under it, `outer: inner: root`, so that the message an operator
/// reads names the cause and not only the step that failed.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // anyhow prints its own chain with `{:#}`; never repeat a cause already shown.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_error_is_reported_with_its_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "pool timed out");
        let e = anyhow::Error::new(io).context("failed to migrate the aegis_backend database");
        let boxed: BoxError = e.into();
        assert_eq!(
            error_chain(boxed.as_ref()),
            "failed to migrate the aegis_backend database: pool timed out"
        );
    }
}
