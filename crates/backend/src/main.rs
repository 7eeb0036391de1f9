//! `aegis-backend [serve|migrate]`: see the library for everything else.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    aegis_backend::startup::main_entry().await
}
