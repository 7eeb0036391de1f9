//! The binary's start-up rules.

use std::process::Command;

fn run(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis-executor"));
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PROD: [(&str, &str); 3] = [
    ("APP_ENV", "production"),
    ("DATABASE_URL", "postgres://u:p@127.0.0.1:1/aegis_executor"),
    ("AUDIT_API_TOKEN", "Tq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sB"),
];

#[test]
fn production_refuses_a_missing_or_weak_hmac_key_and_names_it() {
    let (ok, stderr) = run(&PROD);
    assert!(!ok);
    assert!(stderr.contains("EXECUTOR_HMAC_SECRET"), "{stderr}");

    let mut weak = PROD.to_vec();
    weak.push(("EXECUTOR_HMAC_SECRET", "test-secret"));
    let (ok, stderr) = run(&weak);
    assert!(!ok);
    assert!(stderr.contains("EXECUTOR_HMAC_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("test-secret"),
        "the secret itself is never printed"
    );

    let mut fallback = PROD.to_vec();
    fallback.push(("JWT_SECRET", "short"));
    let (ok, stderr) = run(&fallback);
    assert!(!ok);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

#[test]
fn production_refuses_unsigned_actions_and_names_the_variable() {
    let mut env = PROD.to_vec();
    env.push(("EXECUTOR_HMAC_SECRET", "Zq8vN2xL0pR7tY4wK1mB6cD9fG3hJ5sA"));
    env.push(("REQUIRE_ACTION_SIGNATURE", "false"));
    let (ok, stderr) = run(&env);
    assert!(!ok);
    assert!(stderr.contains("REQUIRE_ACTION_SIGNATURE"), "{stderr}");
}

#[test]
fn a_non_boolean_is_a_startup_error() {
    let (ok, stderr) = run(&[
        ("EXECUTOR_HMAC_SECRET", "k"),
        ("REQUIRE_ACTION_SIGNATURE", "maybe"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("REQUIRE_ACTION_SIGNATURE"), "{stderr}");
}

#[test]
fn healthcheck_flag_fails_when_nothing_listens() {
    let out = Command::new(env!("CARGO_BIN_EXE_aegis-executor"))
        .arg("--healthcheck")
        .env_clear()
        .env("PORT", "9")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
