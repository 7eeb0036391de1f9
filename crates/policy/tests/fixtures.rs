#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The example policy files load, validate and decide as documented.

use aegis_policy::{
    Context, Format, PolicySet, PolicyType, Request, parse_policies, parse_policies_yaml,
};
use chrono::{TimeZone, Utc};
use serde_json::json;

const JSON: &str = include_str!("fixtures/policy-definitions.json");
const YAML: &str = include_str!("fixtures/policy-definitions.yaml");

#[test]
fn the_json_example_file_validates_with_eight_entries() {
    let policies = parse_policies(JSON, Format::Json).unwrap();
    assert_eq!(policies.len(), 8);
    let lockdown = policies
        .iter()
        .find(|p| p.name() == "Emergency Lockdown")
        .unwrap();
    assert!(!lockdown.is_active());
    assert_eq!(lockdown.priority().get(), 1000);
}

#[test]
fn the_yaml_example_file_validates_with_fourteen_entries() {
    let policies = parse_policies(YAML, Format::Yaml).unwrap();
    assert_eq!(policies.len(), 14);
    let set = PolicySet::new(policies);
    assert_eq!(set.candidates_of(PolicyType::SelfHealing).len(), 4);
    assert_eq!(set.candidates_of(PolicyType::ResourceLimit).len(), 2);
}

#[test]
fn the_json_file_keeps_the_original_literal_thresholds() {
    // [O] values: only exactly 80 % CPU matched; the seeds use $gte instead.
    let set = PolicySet::from_json_str(JSON).unwrap();
    let ask = |cpu: i64| {
        let metadata = json!({"cpuUsage": cpu, "duration": 300});
        let request = Request {
            policy_type: PolicyType::SelfHealing,
            action: "scale_up",
            resource: "service:api",
            context: Context {
                metadata: metadata.as_object(),
                ..Context::default()
            },
        };
        set.evaluate(&request, Utc::now()).allowed()
    };
    assert!(ask(80));
    assert!(!ask(95));
}

#[test]
fn peak_hours_deny_applies_between_nine_and_five_utc() {
    let set = PolicySet::from_yaml_str(YAML).unwrap();
    let request = Request {
        policy_type: PolicyType::SelfHealing,
        action: "drop",
        resource: "database:orders",
        context: Context::default(),
    };
    let ten = Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap();
    let six_pm = Utc.with_ymd_and_hms(2026, 3, 2, 18, 0, 0).unwrap();
    assert_eq!(
        set.evaluate(&request, ten).reason().to_string(),
        "Denied by policy: Deny Destructive Actions During Peak Hours"
    );
    assert_eq!(
        set.evaluate(&request, six_pm).reason().to_string(),
        "No matching policy found"
    );
}

#[test]
fn yaml_resource_limits_and_pii_rules_decide_as_documented() {
    let set = PolicySet::from_yaml_str(YAML).unwrap();
    let now = Utc::now();
    let calls = |n: i64| {
        let metadata = json!({"hourlyCallCount": n});
        let request = Request {
            policy_type: PolicyType::ResourceLimit,
            action: "read",
            resource: "/api/alerts",
            context: Context {
                role: Some("user"),
                metadata: metadata.as_object(),
                ..Context::default()
            },
        };
        set.evaluate(&request, now).allowed()
    };
    assert!(calls(999));
    assert!(!calls(1000));

    let pii = |role: &'static str, audit: bool| {
        let metadata = json!({"auditInProgress": audit});
        let request = Request {
            policy_type: PolicyType::DataAccess,
            action: "export",
            resource: "data:pii:ssn",
            context: Context {
                role: Some(role),
                metadata: metadata.as_object(),
                ..Context::default()
            },
        };
        set.evaluate(&request, now).to_body()
    };
    assert!(pii("auditor", false).allowed);
    assert!(!pii("user", false).allowed);
    let during_audit = pii("admin", true);
    assert_eq!(
        during_audit.reason,
        "Denied by policy: Deny Export During Audit"
    );
    assert_eq!(
        during_audit.applied_policies,
        vec!["Deny Export During Audit"]
    );
}

#[test]
fn unquoted_yaml_times_are_read_as_strings() {
    // YAML 1.2 has no sexagesimal integers, so 09:00 stays the string "09:00".
    let yaml = "- name: t\n  type: self_healing\n  effect: deny\n  conditions:\n    timeRange: {start: 09:00, end: 17:00}\n  actions: [x]\n  resources: [y]\n";
    let policies = parse_policies_yaml(yaml).unwrap();
    assert_eq!(policies.len(), 1);
}

#[test]
fn a_file_error_names_the_policy_and_field() {
    let broken = YAML.replacen("$gte: 80", "$gtt: 80", 1);
    let err = parse_policies_yaml(&broken).unwrap_err().to_string();
    assert_eq!(
        err,
        "policies[8].conditions.metadata.cpuUsage.$gtt: unknown operator"
    );
}
