//! `aegis-ai-engine [serve|migrate]`: see the library for everything else.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    aegis_common::service::run_binary::<aegis_ai_engine::startup::AiEngine>().await
}
