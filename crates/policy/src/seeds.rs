//! The seven seed policies, in the port's operator form.

use serde_json::{Value, json};

use crate::model::PolicyDefinition;

/// The seed policies as API-shaped JSON definitions (a JSON array), for the backend's
/// idempotent-by-name seed command.
pub fn seed_policies() -> Value {
    json!([
        {
            "name": "Allow Admin Full Access",
            "description": "Administrators may perform any action on any API resource",
            "type": "api_access",
            "effect": "allow",
            "priority": 100,
            "conditions": {"role": "admin"},
            "actions": ["*"],
            "resources": ["/api/*"],
            "isActive": true
        },
        {
            "name": "Allow User Read Access",
            "description": "Regular users may read their own profile",
            "type": "api_access",
            "effect": "allow",
            "priority": 50,
            "conditions": {"role": "user"},
            "actions": ["read", "list"],
            "resources": ["/api/users/me", "/api/profile"],
            "isActive": true
        },
        {
            "name": "Deny User Delete Operations",
            "description": "Regular users may never delete anything",
            "type": "api_access",
            "effect": "deny",
            "priority": 200,
            "conditions": {"role": "user"},
            "actions": ["delete"],
            "resources": ["/api/*"],
            "isActive": true
        },
        {
            "name": "Allow Auditor Read-Only Access",
            "description": "Auditors may read audit trails and logs",
            "type": "api_access",
            "effect": "allow",
            "priority": 75,
            "conditions": {"role": "auditor"},
            "actions": ["read", "list"],
            "resources": ["/api/audit/*", "/api/logs/*", "/api/policy/audit/logs"],
            "isActive": true
        },
        {
            "name": "Auto Restart Failed Services",
            "description": "Restart a service that is unhealthy after at least three failures",
            "type": "self_healing",
            "effect": "allow",
            "priority": 100,
            "conditions": {"metadata": {"healthStatus": "unhealthy", "failureCount": {"$gte": 3}}},
            "actions": ["restart", "notify"],
            "resources": ["service:*"],
            "isActive": true
        },
        {
            "name": "Scale Up on High Load",
            "description": "Scale up when CPU usage stays at or above 80% for five minutes",
            "type": "self_healing",
            "effect": "allow",
            "priority": 90,
            "conditions": {"metadata": {"cpuUsage": {"$gte": 80}, "duration": {"$gte": 300}}},
            "actions": ["scale_up", "alert"],
            "resources": ["service:api", "service:worker"],
            "isActive": true
        },
        {
            "name": "Roll Back a Deploy That Broke",
            "description": "Roll back a deployment whose Kubernetes failure began within the window after its rollout; a rollback in a production namespace still waits for approval",
            "type": "self_healing",
            "effect": "allow",
            "priority": 110,
            "conditions": {"metadata": {"source": "kubernetes", "afterRollout": true}},
            "actions": ["rollback"],
            "resources": ["service:*"],
            "isActive": true
        }
    ])
}

/// The seed policies as typed definitions.
pub fn seed_policy_definitions() -> Vec<PolicyDefinition> {
    match seed_policies() {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_converts_to_a_typed_definition() {
        assert_eq!(seed_policy_definitions().len(), 7);
    }
}
