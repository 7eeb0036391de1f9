//! Compiles the vendored Kubernetes `.proto` files into one descriptor set, which
//! `src/protobuf.rs` embeds to read `application/vnd.kubernetes.protobuf` bodies.
//!
//! protox is a pure-Rust protobuf compiler, so the build needs no `protoc`.

use std::path::PathBuf;

/// The message files of the types kube-sim accepts; their imports come along.
const FILES: [&str; 4] = [
    "api/core/v1/generated.proto",
    "api/apps/v1/generated.proto",
    "api/autoscaling/v1/generated.proto",
    "apimachinery/pkg/runtime/generated.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", include.display());
    let mut compiler = protox::Compiler::new([&include])?;
    compiler
        .include_imports(true)
        .include_source_info(false)
        .open_files(FILES)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("kubernetes.binpb");
    std::fs::write(out, compiler.encode_file_descriptor_set())?;
    Ok(())
}
