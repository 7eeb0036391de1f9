//! `aegis-backend [serve|migrate]`: see the library for everything else.

/// mimalloc, with the housekeeping of [`aegis_common::alloc`].
#[global_allocator]
static GLOBAL: aegis_common::alloc::MiMalloc = aegis_common::alloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aegis_common::alloc::run(aegis_backend::startup::main_entry)
}
