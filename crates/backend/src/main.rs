//! `aegis-backend [serve|migrate]`: see the library for everything else.

/// mimalloc, with the housekeeping of [`aegis_common::alloc`].
#[global_allocator]
static GLOBAL: aegis_common::alloc::MiMalloc = aegis_common::alloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    aegis_common::alloc::disable_transparent_huge_pages();
    aegis_common::alloc::spawn_housekeeping();
    aegis_backend::startup::main_entry().await
}
