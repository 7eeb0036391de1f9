#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Invariants of evaluation and parsing, checked on generated inputs.

use aegis_policy::{
    Context, Effect, EvaluationContext, Policy, PolicySet, PolicyType, Request,
    parse_policies_json, parse_policies_yaml, validate_policies, validate_policy,
};
use chrono::{DateTime, TimeZone, Utc};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Number, Value, json};

const ROLES: &[&str] = &["admin", "user", "auditor", "service"];
const ACTIONS: &[&str] = &["read", "list", "delete", "scale_up", "restart"];
const RESOURCES: &[&str] = &[
    "/api/users/1",
    "/api/audit/x",
    "service:api",
    "data:pii:ssn",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        "[a-z0-9:./*?$-]{0,8}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(arb_key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "name",
            "type",
            "effect",
            "conditions",
            "actions",
            "resources",
            "priority",
            "isActive",
            "enabled",
            "remediationMode",
            "policies",
            "role",
            "roles",
            "userId",
            "ipRange",
            "timeRange",
            "metadata",
            "start",
            "end",
            "timezone",
            "$eq",
            "$ne",
            "$gt",
            "$gte",
            "$lt",
            "$lte",
            "$in",
            "$nin",
            "$exists",
            "$regex",
            "cpuUsage",
        ])
        .prop_map(str::to_owned),
        "[a-z$]{0,6}",
    ]
}

/// A valid condition object drawn from every condition kind.
fn arb_conditions() -> impl Strategy<Value = Value> {
    let one = prop_oneof![
        prop::sample::select(ROLES).prop_map(|r| json!({"role": r})),
        prop::sample::subsequence(ROLES, 1..3).prop_map(|rs| json!({"roles": rs})),
        Just(json!({"ipRange": ["10.0.0.0/8", "2001:db8::/32"]})),
        Just(json!({"timeRange": {"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin"}})),
        Just(json!({"timeRange": "09:00-17:00"})),
        (0i64..100).prop_map(|n| json!({"metadata": {"cpuUsage": {"$gte": n}}})),
        (0i64..100).prop_map(
            |n| json!({"metadata": {"cpuUsage": {"$lt": n}, "mode": {"$exists": false}}})
        ),
        Just(json!({"metadata": {"mode": {"$in": ["a", "b"]}, "pod": {"$regex": "^api-"}}})),
        Just(json!({"metadata": {"mode": {"$nin": ["a"]}, "flag": true}})),
        Just(json!({})),
    ];
    vec(one, 0..3).prop_map(|parts| {
        let mut out = Map::new();
        for part in parts {
            if let Value::Object(m) = part {
                out.extend(m);
            }
        }
        Value::Object(out)
    })
}

#[derive(Debug, Clone)]
struct Spec {
    effect: Effect,
    priority: i64,
    conditions: Value,
    action: &'static str,
    resource: &'static str,
    active: bool,
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![Just(Effect::Allow), Just(Effect::Deny)],
        0i64..=1000,
        arb_conditions(),
        prop::sample::select(vec!["*", "read", "delete", "scale_*", "re?tart"]),
        prop::sample::select(vec![
            "*",
            "/api/*",
            "service:*",
            "data:pii:*",
            "/api/users/?",
        ]),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(effect, priority, conditions, action, resource, active)| Spec {
                effect,
                priority,
                conditions,
                action,
                resource,
                active,
            },
        )
}

fn build(name: String, t: PolicyType, spec: &Spec) -> Policy {
    validate_policy(&json!({
        "name": name, "type": t.as_str(), "effect": spec.effect.as_str(),
        "priority": spec.priority, "conditions": spec.conditions,
        "actions": [spec.action], "resources": [spec.resource], "isActive": spec.active
    }))
    .unwrap()
}

fn policies(specs: &[Spec], t: PolicyType) -> Vec<Policy> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| build(format!("p{i:03}"), t, s))
        .collect()
}

#[derive(Debug, Clone)]
struct Ask {
    action: &'static str,
    resource: &'static str,
    context: EvaluationContext,
    now: DateTime<Utc>,
}

fn arb_context() -> impl Strategy<Value = EvaluationContext> {
    (
        prop::option::of(prop::sample::select(ROLES)),
        prop::option::of(prop::sample::select(vec![
            "10.1.2.3",
            "192.168.0.1",
            "2001:db8::1",
            "::1",
            "junk",
        ])),
        prop::option::of(btree_map(
            prop::sample::select(vec!["cpuUsage", "mode", "pod", "flag", "other"])
                .prop_map(str::to_owned),
            prop_oneof![
                (0i64..120).prop_map(|n| json!(n)),
                (0.0f64..120.0).prop_map(|n| json!(n)),
                prop::sample::select(vec!["a", "b", "api-1", "x"]).prop_map(|s| json!(s)),
                any::<bool>().prop_map(Value::Bool),
                arb_json(),
            ],
            0..5,
        )),
        prop::option::of(any::<String>()),
        prop::option::of(any::<String>()),
    )
        .prop_map(
            |(role, ip, metadata, user_id, user_agent)| EvaluationContext {
                user_id,
                role: role.map(str::to_owned),
                metadata: metadata.map(|m| m.into_iter().collect()),
                ip_address: ip.map(str::to_owned),
                user_agent,
            },
        )
}

fn arb_ask() -> impl Strategy<Value = Ask> {
    (
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
        arb_context(),
        0i64..(400 * 24 * 3600),
    )
        .prop_map(|(action, resource, context, secs)| Ask {
            action,
            resource,
            context,
            now: Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap(),
        })
}

fn request<'a>(t: PolicyType, ask: &'a Ask) -> Request<'a> {
    Request {
        policy_type: t,
        action: ask.action,
        resource: ask.resource,
        context: Context::from(&ask.context),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_matching_deny_always_wins(
        specs in vec(arb_spec(), 0..20),
        deny_priority in 0i64..=1000,
        ask in arb_ask(),
        rotate in 0usize..20,
    ) {
        let t = PolicyType::ApiAccess;
        let mut all = policies(&specs, t);
        let deny = Spec { effect: Effect::Deny, priority: deny_priority, conditions: json!({}), action: "*", resource: "*", active: true };
        all.push(build("the deny".into(), t, &deny));
        let len = all.len();
        all.rotate_left(rotate % len);
        let set = PolicySet::new(all);
        let decision = set.evaluate(&request(t, &ask), ask.now);
        prop_assert!(!decision.allowed());
        let deciding = decision.deciding_policy().unwrap();
        prop_assert_eq!(deciding.effect(), Effect::Deny);
        prop_assert_eq!(decision.reason().to_string(), format!("Denied by policy: {}", deciding.name()));
        // Everything before the deciding deny is an allow.
        let applied = decision.applied_policies();
        prop_assert!(applied[..applied.len() - 1].iter().all(|p| p.effect() == Effect::Allow));
    }

    #[test]
    fn input_order_never_changes_a_decision(
        specs in vec(arb_spec(), 0..20),
        ask in arb_ask(),
        rotate in 0usize..20,
    ) {
        let t = PolicyType::ApiAccess;
        let a = PolicySet::new(policies(&specs, t));
        let mut shuffled = policies(&specs, t);
        shuffled.reverse();
        if !shuffled.is_empty() {
            let len = shuffled.len();
            shuffled.rotate_left(rotate % len);
        }
        let b = PolicySet::new(shuffled);
        let r = request(t, &ask);
        prop_assert_eq!(a.evaluate(&r, ask.now).to_body(), b.evaluate(&r, ask.now).to_body());
    }

    #[test]
    fn adding_a_non_matching_policy_never_changes_a_decision(
        specs in vec(arb_spec(), 0..20),
        extra in arb_spec(),
        how in 0u8..4,
        ask in arb_ask(),
    ) {
        let t = PolicyType::SelfHealing;
        let before = PolicySet::new(policies(&specs, t));
        let mut extra = extra;
        let mut extra_type = t;
        match how {
            0 => extra.action = "never-an-action",
            1 => extra.conditions = json!({"role": "no-such-role"}),
            2 => extra.active = false,
            _ => extra_type = PolicyType::DataAccess,
        }
        let mut with_extra = policies(&specs, t);
        with_extra.push(build("zz extra".into(), extra_type, &extra));
        let after = PolicySet::new(with_extra);
        let r = request(t, &ask);
        prop_assert_eq!(before.evaluate(&r, ask.now).to_body(), after.evaluate(&r, ask.now).to_body());
    }

    #[test]
    fn evaluation_never_panics_on_arbitrary_contexts_and_explain_agrees(
        specs in vec(arb_spec(), 0..12),
        metadata in prop::option::of(btree_map(arb_key(), arb_json(), 0..8)),
        role in prop::option::of(any::<String>()),
        ip in prop::option::of(any::<String>()),
        action in any::<String>(),
        resource in any::<String>(),
        secs in any::<i32>(),
    ) {
        let t = PolicyType::DataAccess;
        let set = PolicySet::new(policies(&specs, t));
        let metadata: Option<Map<String, Value>> = metadata.map(|m| m.into_iter().collect());
        let context = Context {
            user_id: None,
            role: role.as_deref(),
            ip_address: ip.as_deref(),
            user_agent: None,
            metadata: metadata.as_ref(),
        };
        let r = Request { policy_type: t, action: &action, resource: &resource, context };
        let now = Utc.timestamp_opt(i64::from(secs), 0).unwrap();
        let decision = set.evaluate(&r, now).to_body();
        let explained = set.explain(&r, now);
        prop_assert_eq!(&explained.decision.to_body(), &decision);
        prop_assert!(serde_json::to_string(&explained).is_ok());
    }

    #[test]
    fn parsing_never_panics_on_arbitrary_json_and_is_deterministic(value in arb_json()) {
        let once = validate_policy(&value).map(|p| p.name().to_owned()).map_err(|e| e.to_string());
        let twice = validate_policy(&value).map(|p| p.name().to_owned()).map_err(|e| e.to_string());
        prop_assert_eq!(once, twice);
        let file = validate_policies(&value).map(|ps| ps.len()).map_err(|e| e.to_string());
        let again = validate_policies(&value).map(|ps| ps.len()).map_err(|e| e.to_string());
        prop_assert_eq!(file, again);
    }

    #[test]
    fn policy_shaped_json_either_validates_or_names_a_field(
        fields in btree_map(arb_key(), arb_json(), 0..10),
        conditions in arb_json(),
    ) {
        let mut object: Map<String, Value> = fields.into_iter().collect();
        object.insert("conditions".into(), json!({"metadata": conditions}));
        let value = Value::Object(object);
        if let Err(e) = validate_policy(&value) {
            // Every error but a wrong top-level shape names a field.
            prop_assert!(!e.path.is_empty(), "{}", e);
        }
    }

    #[test]
    fn text_parsing_never_panics(text in any::<String>()) {
        let json = parse_policies_json(&text).map(|p| p.len()).map_err(|e| e.to_string());
        prop_assert_eq!(json.clone(), parse_policies_json(&text).map(|p| p.len()).map_err(|e| e.to_string()));
        let yaml = parse_policies_yaml(&text).map(|p| p.len()).map_err(|e| e.to_string());
        prop_assert_eq!(yaml, parse_policies_yaml(&text).map(|p| p.len()).map_err(|e| e.to_string()));
    }
}
