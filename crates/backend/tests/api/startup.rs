//! The binary's start-up rules.

use std::process::Command;

#[test]
fn production_with_a_placeholder_jwt_secret_refuses_to_start_and_names_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-backend"))
        .env_clear()
        .env("APP_ENV", "production")
        .env("JWT_SECRET", "change_this")
        .env(
            "JWT_REFRESH_SECRET",
            "another-value-that-is-long-enough-0123",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("change_this"),
        "the secret itself is never printed"
    );
}

#[test]
fn unknown_commands_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-backend"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
