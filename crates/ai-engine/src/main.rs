//! `aegis-ai-engine [serve|migrate]`: see the library for everything else.

/// mimalloc, with the housekeeping of [`aegis_common::alloc`].
#[global_allocator]
static GLOBAL: aegis_common::alloc::MiMalloc = aegis_common::alloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aegis_common::alloc::run(
        aegis_common::service::run_binary::<aegis_ai_engine::startup::AiEngine>,
    )
}
