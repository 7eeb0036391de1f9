//! The executor's request path up to the Kubernetes call, without I/O (issue 11): JSON parse,
//! envelope parse, namespace check, v2 signature verification and parameter validation of a
//! signed `scale_deployment`. The I/O steps that follow (nonce claim, rate-limit count, audit
//! row, advisory lock) are measured by `bench/run.sh`'s `execute-dry-run` scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use aegis_common::{
    config::Env,
    contracts::{ActionType, ExecuteRequest},
    signing::{RequestedBy, SignedFields, V2Fields, verify_v2},
};
use aegis_executor::{config::Config, request, safety};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

const KEY: &str = "bench-hmac-secret-0123456789abcdef";

fn signed_body() -> Vec<u8> {
    let mut params = Map::new();
    params.insert("namespace".into(), json!("production"));
    params.insert("deploymentName".into(), json!("api"));
    params.insert("replicas".into(), json!(5));
    let mut req = ExecuteRequest {
        action_type: ActionType::ScaleDeployment,
        action_params: params,
        requested_by: Some("aegis-backend".into()),
        policy_decision: None,
        timestamp: None,
        nonce: None,
        signature: None,
    };
    req.sign_v2(KEY.as_bytes(), 1_795_600_000_000);
    serde_json::to_vec(&req).unwrap()
}

fn request_path(c: &mut Criterion) {
    let config = Config::from_env(&Env::from_pairs([
        ("APP_ENV", "test"),
        ("EXECUTOR_HMAC_SECRET", KEY),
        ("ALLOWED_NAMESPACES", "default,production"),
    ]))
    .unwrap();
    let raw = signed_body();
    c.bench_function(
        "executor request path to the Kubernetes call (no I/O)",
        |b| {
            b.iter(|| {
                let value: Value = serde_json::from_slice(black_box(&raw)).unwrap();
                let body = request::parse_envelope(value).unwrap();
                safety::check_namespace(&config, body.namespace(), &body.namespace_display())
                    .unwrap();
                let fields = SignedFields {
                    action_type: body.action_type.as_str(),
                    action_params: &body.action_params,
                    requested_by: RequestedBy::from_json(body.requested_by_raw.as_ref())
                        .unwrap_or(RequestedBy::Absent),
                };
                let (Some(ts), Some(nonce), Some(sig)) =
                    (&body.timestamp, &body.nonce, &body.signature)
                else {
                    panic!("signed body");
                };
                assert!(verify_v2(
                    config.hmac_key_bytes(),
                    &fields,
                    &V2Fields {
                        timestamp: ts,
                        nonce
                    },
                    sig
                ));
                black_box(request::validate_params(&body, &config).unwrap());
            });
        },
    );
}

criterion_group!(benches, request_path);
criterion_main!(benches);
