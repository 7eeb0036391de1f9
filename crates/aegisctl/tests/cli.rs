//! The binary's own contract, without a backend: help, version, and the exit codes of what
//! fails before or at the connection. `crates/dev/tests/aegisctl.rs` drives it against the
//! real services.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn aegisctl(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aegisctl"))
        .args(args)
        .env("AEGISCTL_CONFIG", config)
        .env_remove("AEGIS_SERVER")
        .output()
        .unwrap()
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "aegisctl-cli-{tag}-{}-{nanos}.json",
        std::process::id()
    ))
}

#[test]
fn help_lists_the_commands_and_the_exit_codes() {
    let out = aegisctl(&["--help"], &scratch("help"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["login", "incidents", "approve", "reject", "policy", "audit"] {
        assert!(text.contains(command), "{command} missing:\n{text}");
    }
    assert!(text.contains("Exit codes: 0 done"), "{text}");
    let version = aegisctl(&["--version"], &scratch("version"));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("aegisctl {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_exit_2() {
    let config = scratch("usage");
    assert_eq!(
        aegisctl(&["incidents", "lst"], &config).status.code(),
        Some(2)
    );
    assert_eq!(
        aegisctl(&["incidents", "list", "--limit", "0"], &config)
            .status
            .code(),
        Some(2)
    );
    let out = aegisctl(
        &["--server", "localhost:3000", "incidents", "list"],
        &config,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http:// or https://"));
}

#[test]
fn without_a_login_it_is_exit_3_and_says_what_to_do() {
    let out = aegisctl(&["incidents", "list"], &scratch("nologin"));
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `aegisctl login`"));
}

#[test]
fn an_unreachable_backend_is_exit_7() {
    let config = scratch("unreachable");
    let out = Command::new(env!("CARGO_BIN_EXE_aegisctl"))
        .args([
            "--server",
            "http://127.0.0.1:9",
            "login",
            "--email",
            "a@b.c",
            "--password-stdin",
        ])
        .env("AEGISCTL_CONFIG", &config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"secret\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!config.exists());
}
