#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Evaluation latency against 10, 100 and 1,000 policies: a realistic mix of the four types,
//! most not matching the request, some with metadata operators, time and IP conditions.

use std::hint::black_box;

use aegis_policy::{EvaluationRequest, PolicySet, Request, validate_policy};
use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const TYPES: [&str; 4] = [
    "api_access",
    "self_healing",
    "data_access",
    "resource_limit",
];
const ROLES: [&str; 3] = ["admin", "user", "auditor"];
const ACTIONS: [&str; 8] = [
    "read", "list", "delete", "scale_up", "restart", "export", "rollback", "notify",
];

fn policy(i: usize) -> Value {
    let t = TYPES[i % 4];
    let action = match i % 7 {
        0 => "*".to_owned(),
        1 => "scale_*".to_owned(),
        _ => ACTIONS[i % ACTIONS.len()].to_owned(),
    };
    let resource = match i % 5 {
        0 => "service:*".to_owned(),
        1 => format!("service:svc{}", i % 50),
        2 => format!("/api/v1/res{i}/*"),
        3 => format!("data:table{i}:?"),
        _ => format!("service:svc{}-canary", i % 13),
    };
    let conditions = match i % 6 {
        0 => json!({"role": ROLES[i % 3]}),
        1 => json!({"metadata": {"cpuUsage": {"$gte": 50 + (i % 50)}, "duration": {"$gte": 300}}}),
        2 => json!({"metadata": {"healthStatus": "unhealthy", "failureCount": {"$gte": 3}}}),
        3 => {
            json!({"roles": ["admin", "service"], "metadata": {"namespace": {"$in": ["production", "staging"]}}})
        }
        4 => {
            json!({"ipRange": ["10.0.0.0/8", "2001:db8::/32"], "timeRange": {"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}})
        }
        _ => json!({"metadata": {"pod": {"$regex": "^svc[0-9]+-"}, "errorRate": {"$lt": 0.05}}}),
    };
    // Denies must not match the request, so every candidate is visited (the worst case).
    let conditions = if i.is_multiple_of(9) {
        json!({"role": "user", "metadata": {"maintenance": true}})
    } else {
        conditions
    };
    json!({
        "name": format!("policy {i:04}"),
        "type": t,
        "effect": if i.is_multiple_of(9) { "deny" } else { "allow" },
        "priority": (i * 37) % 1001,
        "conditions": conditions,
        "actions": [action],
        "resources": [resource],
        "isActive": !i.is_multiple_of(17),
    })
}

fn set_of(n: usize) -> PolicySet {
    PolicySet::new((0..n).map(|i| validate_policy(&policy(i)).unwrap()))
}

/// The remediation loop's request (docs/contracts.md, "Loop → policy").
fn loop_request() -> EvaluationRequest {
    serde_json::from_value(json!({
        "type": "self_healing",
        "action": "scale_up",
        "resource": "service:svc7",
        "context": {
            "userId": "aegis-remediation",
            "role": "service",
            "metadata": {
                "namespace": "production", "deployment": "svc7", "pod": "svc7-5c9d-x2",
                "severity": "high", "confidence": 0.93, "anomalyScore": 0.71,
                "cpuUsage": 87.5, "memoryUsage": 64.0, "errorRate": 0.02,
                "failureCount": 1, "duration": 420
            }
        }
    }))
    .unwrap()
}

fn evaluate(c: &mut Criterion) {
    let owned = loop_request();
    let request = Request::from(&owned);
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 30, 0).unwrap();
    let mut group = c.benchmark_group("evaluate");
    for n in [10usize, 100, 1000] {
        let set = set_of(n);
        let decision = set.evaluate(&request, now);
        eprintln!(
            "{n} policies: {} {} candidates, allowed={}, applied={}",
            set.candidates_of(request.policy_type).len(),
            request.policy_type,
            decision.allowed(),
            decision.applied_policies().len()
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| set.evaluate(black_box(&request), black_box(now)).allowed());
        });
    }
    group.finish();

    let set = set_of(100);
    c.bench_function("explain/100", |b| {
        b.iter(|| {
            set.explain(black_box(&request), black_box(now))
                .policies
                .len()
        });
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
