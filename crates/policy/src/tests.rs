//! Unit tests of conditions, validation and evaluation.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::*;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap()
}

fn policy(conditions: Value) -> Value {
    json!({
        "name": "p", "type": "api_access", "effect": "allow",
        "conditions": conditions, "actions": ["*"], "resources": ["*"]
    })
}

fn set_of(conditions: Value) -> PolicySet {
    PolicySet::new([validate_policy(&policy(conditions)).unwrap()])
}

fn ctx_allowed(conditions: Value, context: Value, now: DateTime<Utc>) -> bool {
    let set = set_of(conditions);
    let owned: EvaluationContext = serde_json::from_value(context).unwrap();
    let request = Request {
        policy_type: PolicyType::ApiAccess,
        action: "read",
        resource: "/x",
        context: Context::from(&owned),
    };
    let allowed = set.evaluate(&request, now).allowed();
    // explain must always agree with evaluate
    assert_eq!(set.explain(&request, now).decision.allowed(), allowed);
    allowed
}

fn md(conditions: Value, metadata: Value) -> bool {
    ctx_allowed(
        json!({"metadata": conditions}),
        json!({"metadata": metadata}),
        at(12, 0),
    )
}

fn error_of(value: Value) -> String {
    validate_policy(&value).unwrap_err().to_string()
}

// ---------- time ranges ----------

#[test]
fn office_hours_window_matches_at_ten_and_not_at_eighteen() {
    let c = json!({"timeRange": {"start": "09:00", "end": "17:00"}});
    assert!(ctx_allowed(c.clone(), json!({}), at(10, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(9, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(17, 0)));
    assert!(!ctx_allowed(c.clone(), json!({}), at(18, 0)));
    assert!(!ctx_allowed(c, json!({}), at(8, 59)));
}

#[test]
fn window_crossing_midnight_matches_late_evening_and_early_morning() {
    let c = json!({"timeRange": {"start": "22:00", "end": "06:00"}});
    assert!(ctx_allowed(c.clone(), json!({}), at(23, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(5, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(0, 0)));
    assert!(!ctx_allowed(c.clone(), json!({}), at(12, 0)));
    assert!(!ctx_allowed(c, json!({}), at(21, 59)));
}

#[test]
fn string_alias_is_accepted_and_means_utc() {
    let c = json!({"timeRange": "22:00-06:00"});
    assert!(ctx_allowed(c.clone(), json!({}), at(23, 30)));
    assert!(!ctx_allowed(c, json!({}), at(7, 0)));
    assert!(ctx_allowed(
        json!({"timeRange": "09:00 - 17:30:15"}),
        json!({}),
        at(17, 30)
    ));
}

#[test]
fn time_zone_is_honoured_including_daylight_saving() {
    // 09:00-17:00 in New York: in January that is 14:00-22:00 UTC (EST, UTC-5).
    let c =
        json!({"timeRange": {"start": "09:00", "end": "17:00", "timezone": "America/New_York"}});
    assert!(!ctx_allowed(c.clone(), json!({}), at(10, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(15, 0)));
    assert!(!ctx_allowed(c.clone(), json!({}), at(22, 30)));
    // In July it is EDT, UTC-4: 13:00-21:00 UTC.
    let july = Utc.with_ymd_and_hms(2026, 7, 15, 13, 30, 0).unwrap();
    assert!(ctx_allowed(c, json!({}), july));
    // Tokyo crossing midnight locally.
    let c = json!({"timeRange": {"start": "22:00", "end": "02:00", "timezone": "Asia/Tokyo"}});
    assert!(ctx_allowed(c.clone(), json!({}), at(14, 0))); // 23:00 JST
    assert!(!ctx_allowed(c, json!({}), at(23, 0))); // 08:00 JST
}

#[test]
fn absolute_rfc3339_range_is_inclusive() {
    let c =
        json!({"timeRange": {"start": "2026-01-15T10:00:00Z", "end": "2026-01-15T12:00:00+01:00"}});
    assert!(ctx_allowed(c.clone(), json!({}), at(10, 0)));
    assert!(ctx_allowed(c.clone(), json!({}), at(11, 0)));
    assert!(!ctx_allowed(c.clone(), json!({}), at(11, 1)));
    assert!(!ctx_allowed(c, json!({}), at(9, 59)));
}

#[test]
fn bad_times_and_zones_are_rejected_with_their_path() {
    assert_eq!(
        error_of(policy(
            json!({"timeRange": {"start": "25:00", "end": "17:00"}})
        )),
        "conditions.timeRange.start: invalid time \"25:00\" (expected HH:MM, HH:MM:SS or an RFC 3339 date-time)"
    );
    assert_eq!(
        error_of(policy(
            json!({"timeRange": {"start": "09:00", "end": "17:00", "timezone": "Mars/Olympus"}})
        )),
        "conditions.timeRange.timezone: unknown time zone \"Mars/Olympus\""
    );
    assert!(
        error_of(policy(json!({"timeRange": {"start": "09:00"}})))
            .starts_with("conditions.timeRange.end: is required")
    );
    assert!(
        error_of(policy(
            json!({"timeRange": {"start": "09:00", "end": "2026-01-01T00:00:00Z"}})
        ))
        .contains("both be times of day")
    );
    assert!(error_of(policy(json!({"timeRange": "0900-1700"}))).contains("invalid time"));
    assert!(
        error_of(policy(
            json!({"timeRange": {"start": "09:00", "end": "17:00", "tz": "UTC"}})
        ))
        .starts_with("conditions.timeRange.tz: unknown field")
    );
    assert!(error_of(policy(json!({"timeRange": 5}))).starts_with("conditions.timeRange: must be"));
    assert!(error_of(policy(json!({"timeRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "timezone": "UTC"}}))).contains("timezone only applies"));
    assert!(
        error_of(policy(
            json!({"timeRange": {"start": "9:60", "end": "17:00"}})
        ))
        .contains("invalid time")
    );
    assert_eq!(
        error_of(policy(
            json!({"timeRange": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}})
        )),
        "conditions.timeRange: start must not be after end for RFC 3339 ranges"
    );
}

// ---------- ip ranges ----------

#[test]
fn ip_range_really_checks_ipv4() {
    let c = json!({"ipRange": "10.0.0.0/8"});
    assert!(ctx_allowed(
        c.clone(),
        json!({"ipAddress": "10.1.2.3"}),
        at(12, 0)
    ));
    assert!(!ctx_allowed(
        c.clone(),
        json!({"ipAddress": "11.1.2.3"}),
        at(12, 0)
    ));
    assert!(!ctx_allowed(
        c.clone(),
        json!({"ipAddress": "not-an-ip"}),
        at(12, 0)
    ));
    assert!(!ctx_allowed(c.clone(), json!({}), at(12, 0)));
    assert!(!ctx_allowed(
        c.clone(),
        json!({"ipAddress": "fd00::1"}),
        at(12, 0)
    ));
    // IPv4-mapped IPv6 is the same client.
    assert!(ctx_allowed(
        c,
        json!({"ipAddress": "::ffff:10.9.9.9"}),
        at(12, 0)
    ));
}

#[test]
fn ip_range_really_checks_ipv6_and_lists_and_bare_addresses() {
    let c = json!({"ipRange": ["2001:db8::/32", "192.168.1.7", "::1"]});
    assert!(ctx_allowed(
        c.clone(),
        json!({"ipAddress": "2001:db8:1::5"}),
        at(12, 0)
    ));
    assert!(!ctx_allowed(
        c.clone(),
        json!({"ipAddress": "2001:db9::5"}),
        at(12, 0)
    ));
    assert!(ctx_allowed(
        c.clone(),
        json!({"ipAddress": "192.168.1.7"}),
        at(12, 0)
    ));
    assert!(!ctx_allowed(
        c.clone(),
        json!({"ipAddress": "192.168.1.8"}),
        at(12, 0)
    ));
    assert!(ctx_allowed(c, json!({"ipAddress": "::1"}), at(12, 0)));
}

#[test]
fn bad_cidrs_are_rejected_with_their_path() {
    assert_eq!(
        error_of(policy(json!({"ipRange": ["10.0.0.0/8", "10.0.0.0/33"]}))),
        "conditions.ipRange[1]: invalid CIDR or IP address \"10.0.0.0/33\""
    );
    assert!(error_of(policy(json!({"ipRange": []}))).contains("at least one"));
    assert!(error_of(policy(json!({"ipRange": 10}))).starts_with("conditions.ipRange: must be"));
}

// ---------- role, roles, userId, ipAddress, userAgent ----------

#[test]
fn identity_conditions_are_strict_equality() {
    assert!(ctx_allowed(
        json!({"role": "admin"}),
        json!({"role": "admin"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(
        json!({"role": "admin"}),
        json!({"role": "Admin"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(json!({"role": "admin"}), json!({}), at(1, 0)));
    assert!(ctx_allowed(
        json!({"roles": ["admin", "auditor"]}),
        json!({"role": "auditor"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(
        json!({"roles": ["admin", "auditor"]}),
        json!({"role": "user"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(
        json!({"roles": ["admin"]}),
        json!({}),
        at(1, 0)
    ));
    assert!(ctx_allowed(
        json!({"userId": "u1"}),
        json!({"userId": "u1"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(
        json!({"userId": "u1"}),
        json!({"userId": "u2"}),
        at(1, 0)
    ));
    assert!(ctx_allowed(
        json!({"ipAddress": "1.2.3.4"}),
        json!({"ipAddress": "1.2.3.4"}),
        at(1, 0)
    ));
    assert!(ctx_allowed(
        json!({"userAgent": "curl/8"}),
        json!({"userAgent": "curl/8"}),
        at(1, 0)
    ));
    assert!(!ctx_allowed(
        json!({"userAgent": "curl/8"}),
        json!({"userAgent": "curl/7"}),
        at(1, 0)
    ));
    assert!(ctx_allowed(json!({}), json!({}), at(1, 0)));
}

#[test]
fn condition_values_are_type_checked() {
    assert!(
        error_of(policy(json!({"role": ["admin"]})))
            .starts_with("conditions.role: must be a string")
    );
    assert!(
        error_of(policy(json!({"roles": "admin"})))
            .starts_with("conditions.roles: must be an array")
    );
    assert!(
        error_of(policy(json!({"roles": ["a", 1]})))
            .starts_with("conditions.roles[1]: must be a string")
    );
    assert!(
        error_of(policy(json!({"ipaddress": "x"})))
            .starts_with("conditions.ipaddress: unknown condition")
    );
    assert!(
        error_of(policy(json!({"metadata": [1]})))
            .starts_with("conditions.metadata: must be an object")
    );
}

// ---------- metadata operators ----------

#[test]
fn plain_metadata_values_use_json_equality() {
    assert!(md(json!({"n": 3}), json!({"n": 3.0})));
    assert!(!md(json!({"n": 3}), json!({"n": "3"})));
    assert!(md(json!({"flag": false}), json!({"flag": false})));
    assert!(md(
        json!({"tags": ["a", {"b": 1}]}),
        json!({"tags": ["a", {"b": 1.0}]})
    ));
    assert!(md(json!({"o": {}}), json!({"o": {}})));
    assert!(!md(json!({"n": null}), json!({})));
    assert!(md(json!({"n": null}), json!({"n": null})));
}

#[test]
fn comparison_operators_hold_only_between_numbers() {
    assert!(md(json!({"c": {"$gte": 80}}), json!({"c": 80})));
    assert!(md(json!({"c": {"$gte": 80}}), json!({"c": 80.5})));
    assert!(!md(json!({"c": {"$gte": 80}}), json!({"c": 79.9})));
    assert!(!md(json!({"c": {"$gte": 80}}), json!({"c": "90"})));
    assert!(md(json!({"c": {"$gt": 80}}), json!({"c": 81})));
    assert!(!md(json!({"c": {"$gt": 80}}), json!({"c": 80})));
    assert!(md(json!({"c": {"$lt": 1000}}), json!({"c": 999})));
    assert!(!md(json!({"c": {"$lt": 1000}}), json!({"c": 1000})));
    assert!(md(json!({"c": {"$lte": 1000}}), json!({"c": 1000.0})));
    assert!(md(json!({"c": {"$gt": 1, "$lt": 5}}), json!({"c": 3})));
    assert!(!md(json!({"c": {"$gt": 1, "$lt": 5}}), json!({"c": 6})));
    assert!(md(json!({"c": {"$gt": -1}}), json!({"c": u64::MAX})));
}

#[test]
fn eq_ne_in_nin_follow_json_equality() {
    assert!(md(json!({"s": {"$eq": "a"}}), json!({"s": "a"})));
    assert!(!md(json!({"s": {"$eq": "a"}}), json!({"s": "b"})));
    assert!(md(json!({"s": {"$ne": "a"}}), json!({"s": "b"})));
    assert!(!md(json!({"s": {"$ne": "a"}}), json!({"s": "a"})));
    assert!(md(json!({"s": {"$in": ["a", 2]}}), json!({"s": 2.0})));
    assert!(!md(json!({"s": {"$in": ["a", 2]}}), json!({"s": "2"})));
    assert!(md(json!({"s": {"$nin": ["a", "b"]}}), json!({"s": "c"})));
    assert!(!md(json!({"s": {"$nin": ["a", "b"]}}), json!({"s": "a"})));
}

#[test]
fn missing_key_makes_every_operator_false_except_exists_false() {
    for op in [
        json!({"$eq": 1}),
        json!({"$ne": 1}),
        json!({"$gt": 1}),
        json!({"$gte": 1}),
        json!({"$lt": 1}),
        json!({"$lte": 1}),
        json!({"$in": [1]}),
        json!({"$nin": [1]}),
        json!({"$regex": ".*"}),
        json!({"$exists": true}),
    ] {
        assert!(
            !md(json!({"k": op.clone()}), json!({})),
            "{op} on a missing key"
        );
        // Absent metadata altogether: no error, same answer.
        assert!(
            !ctx_allowed(json!({"metadata": {"k": op.clone()}}), json!({}), at(1, 0)),
            "{op}"
        );
    }
    assert!(md(json!({"k": {"$exists": false}}), json!({})));
    assert!(ctx_allowed(
        json!({"metadata": {"k": {"$exists": false}}}),
        json!({}),
        at(1, 0)
    ));
    assert!(!md(json!({"k": {"$exists": false}}), json!({"k": 1})));
    assert!(md(json!({"k": {"$exists": true}}), json!({"k": null})));
    assert!(!md(json!({"k": {"$exists": false, "$eq": 1}}), json!({})));
}

#[test]
fn regex_is_unanchored_rust_syntax_on_strings_only() {
    assert!(md(
        json!({"pod": {"$regex": "^api-[0-9]+$"}}),
        json!({"pod": "api-12"})
    ));
    assert!(md(
        json!({"pod": {"$regex": "api"}}),
        json!({"pod": "my-api-pod"})
    ));
    assert!(!md(
        json!({"pod": {"$regex": "^api"}}),
        json!({"pod": "my-api-pod"})
    ));
    assert!(!md(json!({"n": {"$regex": "1"}}), json!({"n": 1})));
    assert!(md(
        json!({"pod": {"$regex": "(?i)API"}}),
        json!({"pod": "api"})
    ));
}

#[test]
fn regex_limits_are_enforced_at_validation() {
    let long = "a".repeat(MAX_REGEX_LEN + 1);
    assert_eq!(
        error_of(policy(json!({"metadata": {"x": {"$regex": long}}}))),
        "conditions.metadata.x.$regex: regex is longer than 1024 bytes"
    );
    let ok = "a".repeat(MAX_REGEX_LEN);
    assert!(validate_policy(&policy(json!({"metadata": {"x": {"$regex": ok}}}))).is_ok());
    assert!(
        error_of(policy(json!({"metadata": {"x": {"$regex": "(unclosed"}}})))
            .starts_with("conditions.metadata.x.$regex: invalid regex")
    );
    // Short but explosive once compiled.
    assert!(
        error_of(policy(
            json!({"metadata": {"x": {"$regex": "\\w{1000}{1000}"}}})
        ))
        .contains("invalid regex")
    );
    assert!(
        error_of(policy(json!({"metadata": {"x": {"$regex": 5}}}))).contains("must be a string")
    );
}

#[test]
fn unknown_operators_and_bad_operands_name_the_field() {
    assert_eq!(
        error_of(policy(json!({"metadata": {"cpu": {"$gtt": 5}}}))),
        "conditions.metadata.cpu.$gtt: unknown operator"
    );
    assert!(
        error_of(policy(json!({"metadata": {"cpu": {"$gte": "80"}}})))
            .starts_with("conditions.metadata.cpu.$gte: must be a number")
    );
    assert!(
        error_of(policy(json!({"metadata": {"cpu": {"$in": 3}}})))
            .starts_with("conditions.metadata.cpu.$in: must be an array")
    );
    assert!(
        error_of(policy(json!({"metadata": {"cpu": {"$exists": 1}}})))
            .starts_with("conditions.metadata.cpu.$exists: must be a boolean")
    );
    assert!(
        error_of(policy(json!({"metadata": {"cpu": {"$gte": 1, "x": 2}}})))
            .starts_with("conditions.metadata.cpu.x: cannot mix")
    );
}

// ---------- policy fields ----------

#[test]
fn policy_fields_are_validated_as_the_spec_says() {
    let base = policy(json!({}));
    let with = |k: &str, v: Value| {
        let mut p = base.clone();
        p[k] = v;
        p
    };
    assert_eq!(
        error_of(with("priority", json!(5.5))),
        "priority: priority must be an integer between 0 and 1000"
    );
    assert!(error_of(with("priority", json!(1001))).contains("between 0 and 1000"));
    assert!(error_of(with("priority", json!(-1))).contains("between 0 and 1000"));
    assert!(validate_policy(&with("priority", json!(1000))).is_ok());
    assert!(validate_policy(&with("priority", json!(0))).is_ok());
    assert_eq!(
        error_of(with("conditions", json!([]))),
        "conditions: Policy conditions must be a valid JSON object"
    );
    assert_eq!(
        error_of(with("conditions", json!(null))),
        "conditions: is required"
    );
    assert_eq!(
        error_of(with("actions", json!([]))),
        "actions: must contain at least one element"
    );
    assert_eq!(
        error_of(with("resources", json!(["a", ""]))),
        "resources[1]: must not be empty"
    );
    assert_eq!(
        error_of(with("type", json!("nope"))),
        "type: type must be one of: api_access, self_healing, data_access, resource_limit"
    );
    assert!(error_of(with("effect", json!("maybe"))).contains("allow, deny"));
    assert!(error_of(with("name", json!(""))).contains("between 1 and 255"));
    assert!(error_of(with("name", json!("x".repeat(256)))).contains("between 1 and 255"));
    assert!(validate_policy(&with("name", json!("é".repeat(255)))).is_ok());
    assert_eq!(
        error_of(with("colour", json!("red"))),
        "colour: unknown field"
    );
    assert!(error_of(json!([])).contains("must be an object"));
    assert_eq!(error_of(with("", json!(1))), "[\"\"]: unknown field");
    assert_eq!(
        error_of(policy(json!({"metadata": {"a.b c": {"$x": 1}}}))),
        "conditions.metadata[\"a.b c\"].$x: unknown operator"
    );
}

#[test]
fn enabled_is_an_alias_of_is_active_and_defaults_are_applied() {
    let mut p = policy(json!({}));
    p["enabled"] = json!(false);
    let def = validate_policy(&p).unwrap().into_definition();
    assert!(!def.is_active);
    assert_eq!(def.priority, Priority::DEFAULT);
    p["isActive"] = json!(true);
    assert!(error_of(p).contains("aliases"));
    let typed: PolicyDefinition = serde_json::from_value(json!({
        "name": "p", "type": "api_access", "effect": "allow", "conditions": {},
        "actions": ["*"], "resources": ["*"], "enabled": false
    }))
    .unwrap();
    assert!(!typed.is_active);
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back["isActive"], json!(false));
    assert!(back.get("enabled").is_none());
}

#[test]
fn remediation_mode_is_only_for_self_healing_policies() {
    let mut p = policy(json!({}));
    p["remediationMode"] = json!("approval");
    assert_eq!(
        error_of(p.clone()),
        "remediationMode: remediationMode is only allowed on self_healing policies"
    );
    p["type"] = json!("self_healing");
    let compiled = validate_policy(&p).unwrap();
    assert_eq!(compiled.remediation_mode(), Some(RemediationMode::Approval));
    p["remediationMode"] = json!("yolo");
    assert!(error_of(p).contains("off, dry_run, approval, auto"));
}

#[test]
fn the_stricter_remediation_mode_wins_whichever_side_it_is_on() {
    use RemediationMode::{Approval, Auto, DryRun, Off};
    let all = [Off, DryRun, Approval, Auto];
    for (i, a) in all.into_iter().enumerate() {
        for (j, b) in all.into_iter().enumerate() {
            let expected = all[i.min(j)];
            assert_eq!(a.stricter(b), expected, "{a:?} vs {b:?}");
        }
        assert_eq!(RemediationMode::parse(a.as_str()), Some(a));
    }
    assert_eq!(RemediationMode::parse("yolo"), None);
}

#[test]
fn merge_patch_applies_a_subset_and_revalidates() {
    let existing = validate_policy(&policy(json!({"role": "admin"})))
        .unwrap()
        .into_definition();
    let patched = merge_patch(&existing, &json!({"enabled": false, "priority": 7})).unwrap();
    assert!(!patched.is_active());
    assert_eq!(patched.priority().get(), 7);
    assert_eq!(
        patched.definition().conditions.get("role"),
        Some(&json!("admin"))
    );
    assert_eq!(
        merge_patch(
            &existing,
            &json!({"conditions": {"metadata": {"a": {"$bad": 1}}}})
        )
        .unwrap_err()
        .to_string(),
        "conditions.metadata.a.$bad: unknown operator"
    );
    assert!(merge_patch(&existing, &json!({"id": "x"})).is_err());
}

#[test]
fn file_errors_name_the_policy_index() {
    let file = json!({"policies": [
        policy(json!({})),
        {"name": "q", "type": "api_access", "effect": "allow", "conditions": {}, "actions": ["*"], "resources": ["*"]},
        {"name": "r", "type": "api_access", "effect": "allow", "conditions": {"metadata": {"cpu": {"$gtt": 1}}}, "actions": ["*"], "resources": ["*"]}
    ]});
    assert_eq!(
        validate_policies(&file).unwrap_err().to_string(),
        "policies[2].conditions.metadata.cpu.$gtt: unknown operator"
    );
    let dup = json!([policy(json!({})), policy(json!({}))]);
    assert_eq!(
        validate_policies(&dup).unwrap_err().to_string(),
        "[1].name: duplicate policy name \"p\""
    );
    assert!(validate_policies(&json!({"policy": []})).is_err());
    assert!(validate_policies(&json!("x")).is_err());
}

// ---------- evaluation ----------

fn named(name: &str, effect: &str, priority: i64, conditions: Value) -> Policy {
    validate_policy(&json!({
        "name": name, "type": "api_access", "effect": effect, "priority": priority,
        "conditions": conditions, "actions": ["*"], "resources": ["*"]
    }))
    .unwrap()
}

fn run(set: &PolicySet, context: Context<'_>) -> DecisionBody {
    let request = Request {
        policy_type: PolicyType::ApiAccess,
        action: "read",
        resource: "/r",
        context,
    };
    let body = set.evaluate(&request, at(12, 0)).to_body();
    assert_eq!(set.explain(&request, at(12, 0)).decision.to_body(), body);
    body
}

#[test]
fn no_match_is_a_default_deny() {
    let set = PolicySet::new([named("a", "allow", 1, json!({"role": "x"}))]);
    let body = run(&set, Context::default());
    assert_eq!(
        body,
        DecisionBody {
            allowed: false,
            reason: "No matching policy found".into(),
            applied_policies: vec![]
        }
    );
    assert_eq!(
        run(&PolicySet::default(), Context::default()).reason,
        NO_MATCH_REASON
    );
}

#[test]
fn a_matching_deny_wins_over_higher_priority_allows() {
    let set = PolicySet::new([
        named("high allow", "allow", 900, json!({})),
        named("low deny", "deny", 1, json!({})),
        named("lower allow", "allow", 0, json!({})),
    ]);
    let body = run(&set, Context::default());
    assert!(!body.allowed);
    assert_eq!(body.reason, "Denied by policy: low deny");
    assert_eq!(body.applied_policies, vec!["high allow", "low deny"]);
}

#[test]
fn an_allow_decision_names_the_last_matching_allow() {
    let set = PolicySet::new([
        named("b", "allow", 50, json!({})),
        named("a", "allow", 100, json!({})),
        named("c", "allow", 10, json!({"role": "nobody"})),
    ]);
    let body = run(&set, Context::default());
    assert!(body.allowed);
    assert_eq!(body.reason, "Allowed by policy: b");
    assert_eq!(body.applied_policies, vec!["a", "b"]);
}

#[test]
fn ties_order_deny_first_then_name_then_id() {
    let set = PolicySet::new([
        named("zeta", "allow", 5, json!({})),
        named("alpha", "allow", 5, json!({})),
        named("omega", "deny", 5, json!({})),
    ]);
    let names: Vec<&str> = set
        .candidates_of(PolicyType::ApiAccess)
        .iter()
        .map(Policy::name)
        .collect();
    assert_eq!(names, vec!["omega", "alpha", "zeta"]);
    let body = run(&set, Context::default());
    assert_eq!(body.applied_policies, vec!["omega"]);

    let with_id = |id: &str| {
        let mut def = named("same", "allow", 5, json!({})).into_definition();
        def.id = Some(id.into());
        Policy::from_definition(def).unwrap()
    };
    let set = PolicySet::new([with_id("b"), with_id("a")]);
    let ids: Vec<Option<&str>> = set.policies().iter().map(Policy::id).collect();
    assert_eq!(ids, vec![Some("a"), Some("b")]);
}

#[test]
fn inactive_and_other_type_policies_are_never_candidates() {
    let mut inactive = named("off", "deny", 1000, json!({})).into_definition();
    inactive.is_active = false;
    let mut other = named("other", "deny", 1000, json!({})).into_definition();
    other.policy_type = PolicyType::DataAccess;
    let set = PolicySet::new([
        Policy::from_definition(inactive).unwrap(),
        Policy::from_definition(other).unwrap(),
        named("on", "allow", 1, json!({})),
    ]);
    assert_eq!(
        run(&set, Context::default()).reason,
        "Allowed by policy: on"
    );
    assert_eq!(set.candidates_of(PolicyType::ApiAccess).len(), 1);
    assert_eq!(set.candidates_of(PolicyType::DataAccess).len(), 1);
    assert_eq!(set.candidates_of(PolicyType::SelfHealing).len(), 0);
}

#[test]
fn actions_and_resources_are_matched_as_literal_globs() {
    let p = validate_policy(&json!({
        "name": "g", "type": "api_access", "effect": "allow", "conditions": {},
        "actions": ["api.*"], "resources": ["/api/users/?"]
    }))
    .unwrap();
    let set = PolicySet::new([p]);
    let req = |action, resource| Request {
        policy_type: PolicyType::ApiAccess,
        action,
        resource,
        context: Context::default(),
    };
    assert!(
        set.evaluate(&req("api.read", "/api/users/1"), at(1, 0))
            .allowed()
    );
    assert!(
        !set.evaluate(&req("apiXfoo", "/api/users/1"), at(1, 0))
            .allowed()
    );
    assert!(
        !set.evaluate(&req("api.read", "/api/users/12"), at(1, 0))
            .allowed()
    );
}

fn seed_set() -> PolicySet {
    PolicySet::new(validate_policies(&seed_policies()).unwrap())
}

#[test]
fn seeds_decide_the_documented_api_cases() {
    let set = seed_set();
    let ask = |action: &str, resource: &str, role: &str| {
        let request = Request {
            policy_type: PolicyType::ApiAccess,
            action,
            resource,
            context: Context {
                role: Some(role),
                ..Context::default()
            },
        };
        set.evaluate(&request, at(12, 0)).to_body()
    };
    let admin = ask("delete", "/api/users/5", "admin");
    assert_eq!(admin.reason, "Allowed by policy: Allow Admin Full Access");
    let user_delete = ask("delete", "/api/users/5", "user");
    assert!(!user_delete.allowed);
    assert_eq!(
        user_delete.reason,
        "Denied by policy: Deny User Delete Operations"
    );
    assert!(ask("read", "/api/users/me", "user").allowed);
    assert!(!ask("read", "/api/users/5", "user").allowed);
    assert!(ask("list", "/api/policy/audit/logs", "auditor").allowed);
    assert!(!ask("update", "/api/audit/x", "auditor").allowed);
}

/// The remediation loop's request (docs/contracts.md, "Loop → policy").
fn loop_request(action: &str, deployment: &str, metadata: Value) -> EvaluationRequest {
    let mut md: Map<String, Value> = json!({
        "namespace": "production", "deployment": deployment, "pod": format!("{deployment}-7d9f-abc"),
        "severity": "high", "confidence": 0.92, "anomalyScore": 0.81,
        "cpuUsage": 45.0, "memoryUsage": 60.0, "errorRate": 0.01, "failureCount": 0, "duration": 0
    })
    .as_object()
    .cloned()
    .unwrap();
    if let Value::Object(extra) = metadata {
        md.extend(extra);
    }
    serde_json::from_value(json!({
        "type": "self_healing", "action": action, "resource": format!("service:{deployment}"),
        "context": {"userId": "aegis-remediation", "role": "service", "metadata": md}
    }))
    .unwrap()
}

#[test]
fn remediation_loop_requests_evaluate_against_the_seed_self_healing_policies() {
    let set = seed_set();
    let decide = |r: EvaluationRequest| set.evaluate(&Request::from(&r), at(12, 0)).to_body();

    let hot = decide(loop_request(
        "scale_up",
        "api",
        json!({"cpuUsage": 92.5, "duration": 300}),
    ));
    assert_eq!(
        hot,
        DecisionBody {
            allowed: true,
            reason: "Allowed by policy: Scale Up on High Load".into(),
            applied_policies: vec!["Scale Up on High Load".into()]
        }
    );
    assert!(
        !decide(loop_request(
            "scale_up",
            "api",
            json!({"cpuUsage": 79.9, "duration": 600})
        ))
        .allowed
    );
    assert!(
        !decide(loop_request(
            "scale_up",
            "api",
            json!({"cpuUsage": 95, "duration": 120})
        ))
        .allowed
    );
    assert!(
        !decide(loop_request(
            "scale_up",
            "payments",
            json!({"cpuUsage": 95, "duration": 600})
        ))
        .allowed
    );
    assert!(
        decide(loop_request(
            "scale_up",
            "worker",
            json!({"cpuUsage": 80, "duration": 300})
        ))
        .allowed
    );

    // The rollback seed allows a rollback only for a Kubernetes failure that began after a rollout.
    let after_rollout = decide(loop_request(
        "rollback",
        "checkout",
        json!({"source": "kubernetes", "afterRollout": true, "healthStatus": "unhealthy"}),
    ));
    assert_eq!(
        after_rollout.reason,
        "Allowed by policy: Roll Back a Deploy That Broke"
    );
    assert!(
        !decide(loop_request(
            "rollback",
            "checkout",
            json!({"source": "kubernetes", "afterRollout": false})
        ))
        .allowed
    );

    // The restart seed needs healthStatus, which the loop sends for a Kubernetes failure: without it, deny.
    let no_status = decide(loop_request("restart", "api", json!({"failureCount": 5})));
    assert_eq!(no_status.reason, "No matching policy found");
    let unhealthy = decide(loop_request(
        "restart",
        "api",
        json!({"failureCount": 3, "healthStatus": "unhealthy"}),
    ));
    assert_eq!(
        unhealthy.reason,
        "Allowed by policy: Auto Restart Failed Services"
    );
    assert!(
        !decide(loop_request(
            "restart",
            "api",
            json!({"failureCount": 2, "healthStatus": "unhealthy"})
        ))
        .allowed
    );
    assert!(
        !decide(loop_request(
            "rollback",
            "api",
            json!({"cpuUsage": 99, "duration": 900})
        ))
        .allowed
    );
}

// ---------- explain ----------

#[test]
fn explain_says_which_condition_failed_and_why() {
    let set = seed_set();
    let r = loop_request("scale_up", "api", json!({"cpuUsage": 50, "duration": 400}));
    let explanation = set.explain(&Request::from(&r), at(12, 0));
    assert!(!explanation.decision.allowed());
    let scale = explanation
        .policies
        .iter()
        .find(|t| t.policy.name() == "Scale Up on High Load")
        .unwrap();
    assert_eq!(scale.applicability, Applicability::Applicable);
    assert!(!scale.matched);
    assert_eq!(scale.failures.len(), 1);
    match &scale.failures[0] {
        ConditionFailure::Metadata {
            key,
            expected,
            actual,
            problem,
        } => {
            assert_eq!(key, "cpuUsage");
            assert_eq!(expected, "$gte 80");
            assert_eq!(actual, &Some(json!(50)));
            assert_eq!(
                *problem,
                MetadataProblem::OperatorFailed { operator: "$gte" }
            );
        }
        other => panic!("unexpected failure {other:?}"),
    }
    assert_eq!(
        scale.failures[0].to_string(),
        "metadata.cpuUsage is 50, needs $gte 80"
    );
    let restart = explanation
        .policies
        .iter()
        .find(|t| t.policy.name() == "Auto Restart Failed Services")
        .unwrap();
    assert_eq!(restart.applicability, Applicability::ActionNotMatched);
    assert!(
        restart
            .message()
            .contains("not applicable (action does not match)")
    );
    let json = serde_json::to_value(&explanation).unwrap();
    assert_eq!(json["decision"]["reason"], "No matching policy found");
    let scale_json = json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Scale Up on High Load")
        .unwrap();
    assert_eq!(scale_json["failures"][0]["condition"], "metadata");
    assert_eq!(
        scale_json["failures"][0]["problem"],
        json!({"operatorFailed": {"operator": "$gte"}})
    );
    assert_eq!(scale_json["applicability"], "applicable");
}

#[test]
fn explain_reports_unreached_policies_after_a_deny_and_inactive_ones() {
    let mut inactive = named("sleeping", "allow", 1, json!({})).into_definition();
    inactive.is_active = false;
    let set = PolicySet::new([
        named("deny all", "deny", 10, json!({})),
        named("allow all", "allow", 5, json!({})),
        named(
            "admins",
            "allow",
            1,
            json!({"role": "admin", "ipRange": "10.0.0.0/8", "timeRange": "00:00-01:00"}),
        ),
        Policy::from_definition(inactive).unwrap(),
    ]);
    let request = Request {
        policy_type: PolicyType::ApiAccess,
        action: "read",
        resource: "/r",
        context: Context {
            role: Some("user"),
            ip_address: Some("bogus"),
            ..Context::default()
        },
    };
    let e = set.explain(&request, at(12, 0));
    let states: Vec<(&str, Applicability, bool, bool)> = e
        .policies
        .iter()
        .map(|t| (t.policy.name(), t.applicability, t.matched, t.reached))
        .collect();
    assert_eq!(
        states,
        vec![
            ("deny all", Applicability::Applicable, true, true),
            ("allow all", Applicability::Applicable, true, false),
            ("admins", Applicability::Applicable, false, false),
            ("sleeping", Applicability::Inactive, false, false),
        ]
    );
    let admins = &e.policies[2];
    let messages: Vec<String> = admins.failures.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        vec![
            "role is \"user\", expected \"admin\"",
            "ipRange: ipAddress \"bogus\" is not an IP address",
            "timeRange: local time 12:00:00 is outside 00:00:00-01:00:00 UTC",
        ]
    );
    assert_eq!(e.decision.to_body().applied_policies, vec!["deny all"]);
}

#[test]
fn missing_metadata_is_explained_not_an_error() {
    let set = set_of(json!({"metadata": {"cpu": {"$gte": 1}}}));
    let request = Request {
        policy_type: PolicyType::ApiAccess,
        action: "a",
        resource: "r",
        context: Context::default(),
    };
    let e = set.explain(&request, at(1, 0));
    assert_eq!(
        e.policies[0].failures[0].to_string(),
        "metadata.cpu: the context has no metadata (needs $gte 1)"
    );
}

#[test]
fn policy_set_is_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicySet>();
    assert_send_sync::<std::sync::Arc<PolicySet>>();
}
