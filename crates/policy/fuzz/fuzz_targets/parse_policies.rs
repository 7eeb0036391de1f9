//! Feeds arbitrary bytes to the policy file parser as JSON and as YAML. A file that validates
//! is compiled and evaluated, and explain must agree with evaluate.
#![no_main]

use aegis_policy::{
    Context, PolicySet, PolicyType, Request, parse_policies_json, parse_policies_yaml,
};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [parse_policies_json(text), parse_policies_yaml(text)] {
        let Ok(policies) = parsed else { continue };
        let set = PolicySet::new(policies);
        let Some(now) = Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).single() else {
            return;
        };
        for t in PolicyType::ALL {
            let request = Request {
                policy_type: t,
                action: "read",
                resource: "/api/users/1",
                context: Context {
                    role: Some("user"),
                    ip_address: Some("10.0.0.1"),
                    ..Context::default()
                },
            };
            let decision = set.evaluate(&request, now).to_body();
            assert_eq!(set.explain(&request, now).decision.to_body(), decision);
        }
    }
});
