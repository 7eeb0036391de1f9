//! `aegis-executor [serve|migrate|--healthcheck]`: see the library for everything else.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--healthcheck") {
        return aegis_executor::startup::healthcheck().await;
    }
    aegis_executor::startup::main_entry().await
}
