//! `aegis-executor [serve|migrate|--healthcheck]`: see the library for everything else.

/// mimalloc, with the housekeeping of [`aegis_common::alloc`].
#[global_allocator]
static GLOBAL: aegis_common::alloc::MiMalloc = aegis_common::alloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aegis_common::alloc::run(|| async {
        if std::env::args().nth(1).as_deref() == Some("--healthcheck") {
            return aegis_executor::startup::healthcheck().await;
        }
        aegis_executor::startup::main_entry().await
    })
}
