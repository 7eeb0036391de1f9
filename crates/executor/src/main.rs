//! `aegis-executor [serve|migrate|--healthcheck]`: see the library for everything else.

/// mimalloc, with the housekeeping of [`aegis_common::alloc`].
#[global_allocator]
static GLOBAL: aegis_common::alloc::MiMalloc = aegis_common::alloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--healthcheck") {
        return aegis_executor::startup::healthcheck().await;
    }
    aegis_common::alloc::disable_transparent_huge_pages();
    aegis_common::alloc::spawn_housekeeping();
    aegis_executor::startup::main_entry().await
}
