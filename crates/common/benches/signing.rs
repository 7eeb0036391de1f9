#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! HMAC v1 and v2 verification of a typical scale request (the executor's hot path).

use aegis_common::signing::{
    RequestedBy, SignedFields, V2Fields, sign_v1, sign_v2, verify_v1, verify_v2,
};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use std::hint::black_box;

fn params() -> Map<String, Value> {
    match json!({"namespace": "production", "deploymentName": "api-deployment", "replicas": 5, "dryRun": false})
    {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn bench(c: &mut Criterion) {
    let key = b"0123456789abcdef0123456789abcdef";
    let p = params();
    let fields = SignedFields {
        action_type: "scale_deployment",
        action_params: &p,
        requested_by: RequestedBy::Value("aegis-backend"),
    };
    let v2 = V2Fields {
        timestamp: "1700000000000",
        nonce: "n0nce-0001-abcdef-xyz",
    };
    let s1 = sign_v1(key, &fields);
    let s2 = sign_v2(key, &fields, &v2);
    c.bench_function("hmac_v1_verify", |b| {
        b.iter(|| {
            assert!(verify_v1(
                black_box(key),
                black_box(&fields),
                black_box(&s1)
            ))
        })
    });
    c.bench_function("hmac_v2_verify", |b| {
        b.iter(|| {
            assert!(verify_v2(
                black_box(key),
                black_box(&fields),
                black_box(&v2),
                black_box(&s2)
            ))
        })
    });
    c.bench_function("hmac_v2_sign", |b| {
        b.iter(|| sign_v2(black_box(key), black_box(&fields), black_box(&v2)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
