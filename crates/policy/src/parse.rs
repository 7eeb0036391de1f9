//! Parsing and validation: JSON/YAML text or `serde_json::Value` in, compiled [`Policy`]s out,
//! errors naming the field path.

use std::collections::HashMap;

use aegis_contracts::PolicyType;
use serde_json::Value;

pub use crate::condition::MAX_REGEX_LEN;
use crate::condition::{Conditions, join, string};
use crate::error::{PolicyFileError, ValidationError, ValidationErrorKind as K};
use crate::model::{Effect, PolicyDefinition, Priority, RemediationMode};
use crate::policy::Policy;

/// Fields a policy object may carry. Server-side fields are accepted (so exported policies
/// re-import) and ignored, except `id`, which orders ties.
const POLICY_FIELDS: &[&str] = &[
    "id",
    "name",
    "description",
    "type",
    "effect",
    "conditions",
    "actions",
    "resources",
    "priority",
    "isActive",
    "enabled",
    "remediationMode",
    "createdBy",
    "createdAt",
    "updatedAt",
];

/// The fields of a policy's definition: what a PATCH body may carry, and what a stored policy
/// holds besides its server-side fields (id, author, timestamps).
pub const DEFINITION_FIELDS: &[&str] = &[
    "name",
    "description",
    "type",
    "effect",
    "conditions",
    "actions",
    "resources",
    "priority",
    "isActive",
    "enabled",
    "remediationMode",
];

/// Top-level keys of the `{policies: [...]}` file shape besides `policies`.
const FILE_FIELDS: &[&str] = &["policies", "version", "description"];

/// The text format of a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (1.2, via serde_norway).
    Yaml,
}

impl Format {
    /// `json` → JSON, `yaml`/`yml` → YAML (case-insensitive).
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Validates and compiles one policy as the create endpoint receives it.
/// Error paths are relative to the policy (`conditions.metadata.cpu.$gtt`).
pub fn validate_policy(value: &Value) -> Result<Policy, ValidationError> {
    parse_policy(value, "")
}

/// Validates a whole policy file already parsed to JSON: an array of policies or
/// `{"policies": [...]}`. Names must be unique. Paths look like `policies[2].priority`
/// (or `[2].priority` for a bare array).
pub fn validate_policies(value: &Value) -> Result<Vec<Policy>, ValidationError> {
    let (items, prefix) = match value {
        Value::Array(items) => (items, ""),
        Value::Object(map) => {
            for key in map.keys() {
                if !FILE_FIELDS.contains(&key.as_str()) {
                    return Err(ValidationError::new(key.clone(), K::UnknownField));
                }
            }
            match map.get("policies") {
                Some(Value::Array(items)) => (items, "policies"),
                Some(_) => {
                    return Err(ValidationError::new("policies", K::WrongType("an array")));
                }
                None => return Err(ValidationError::new("policies", K::Missing)),
            }
        }
        _ => {
            return Err(ValidationError::new(
                "",
                K::WrongType("an array of policies or an object {\"policies\": [...]}"),
            ));
        }
    };
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    let mut policies = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        let policy = parse_policy(item, &path)?;
        if seen.contains_key(policy.name()) {
            return Err(ValidationError::new(
                join(&path, "name"),
                K::DuplicateName(policy.name().to_owned()),
            ));
        }
        if let Some(Value::String(name)) = item.get("name") {
            seen.insert(name, i);
        }
        policies.push(policy);
    }
    Ok(policies)
}

/// Parses and validates a JSON policy file.
pub fn parse_policies_json(text: &str) -> Result<Vec<Policy>, PolicyFileError> {
    let value: Value = serde_json::from_str(text)?;
    Ok(validate_policies(&value)?)
}

/// Parses and validates a YAML policy file.
pub fn parse_policies_yaml(text: &str) -> Result<Vec<Policy>, PolicyFileError> {
    let value: Value = serde_norway::from_str(text)?;
    Ok(validate_policies(&value)?)
}

/// Parses and validates a policy file in the given format.
pub fn parse_policies(text: &str, format: Format) -> Result<Vec<Policy>, PolicyFileError> {
    match format {
        Format::Json => parse_policies_json(text),
        Format::Yaml => parse_policies_yaml(text),
    }
}

/// Applies a PATCH body (any subset of the policy fields, `enabled` accepted for `isActive`)
/// to a stored definition and validates the result; `conditions` are re-validated.
pub fn merge_patch(existing: &PolicyDefinition, patch: &Value) -> Result<Policy, ValidationError> {
    let Value::Object(patch) = patch else {
        return Err(ValidationError::new("", K::WrongType("an object")));
    };
    for key in patch.keys() {
        if !DEFINITION_FIELDS.contains(&key.as_str()) {
            return Err(ValidationError::new(key.clone(), K::UnknownField));
        }
    }
    let mut base = match serde_json::to_value(existing) {
        Ok(Value::Object(map)) => map,
        _ => return Err(ValidationError::new("", K::WrongType("an object"))),
    };
    if patch.contains_key("enabled") || patch.contains_key("isActive") {
        base.remove("isActive");
    }
    for (key, value) in patch {
        base.insert(key.clone(), value.clone());
    }
    parse_policy(&Value::Object(base), "")
}

fn parse_policy(value: &Value, path: &str) -> Result<Policy, ValidationError> {
    let Value::Object(map) = value else {
        return Err(ValidationError::new(path, K::WrongType("an object")));
    };
    for key in map.keys() {
        if !POLICY_FIELDS.contains(&key.as_str()) {
            return Err(ValidationError::new(join(path, key), K::UnknownField));
        }
    }
    let p = |name: &str| join(path, name);
    let required = |name: &str| -> Result<&Value, ValidationError> {
        match map.get(name) {
            None | Some(Value::Null) => Err(ValidationError::new(p(name), K::Missing)),
            Some(v) => Ok(v),
        }
    };
    let optional_string = |name: &str| -> Result<Option<String>, ValidationError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => string(v, &p(name)).map(|s| Some(s.to_owned())),
        }
    };

    let id = optional_string("id")?;
    let name = string(required("name")?, &p("name"))?.to_owned();
    let description = optional_string("description")?;
    let policy_type = match required("type")? {
        Value::String(s) => s
            .parse::<PolicyType>()
            .map_err(|_| ValidationError::new(p("type"), K::PolicyType))?,
        _ => return Err(ValidationError::new(p("type"), K::PolicyType)),
    };
    let effect = match required("effect")?.as_str() {
        Some("allow") => Effect::Allow,
        Some("deny") => Effect::Deny,
        _ => return Err(ValidationError::new(p("effect"), K::Effect)),
    };
    let conditions = match required("conditions") {
        Ok(Value::Object(c)) => c.clone(),
        Ok(_) => {
            return Err(ValidationError::new(
                p("conditions"),
                K::ConditionsNotObject,
            ));
        }
        Err(e) => return Err(e),
    };
    let actions = string_list(required("actions")?, &p("actions"))?;
    let resources = string_list(required("resources")?, &p("resources"))?;
    let priority = match map.get("priority") {
        None | Some(Value::Null) => Priority::DEFAULT,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|v| Priority::new(v).ok())
            .ok_or_else(|| ValidationError::new(p("priority"), K::Priority))?,
        Some(_) => return Err(ValidationError::new(p("priority"), K::Priority)),
    };
    let is_active = match (map.get("isActive"), map.get("enabled")) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(p("enabled"), K::ActiveAliasConflict));
        }
        (None, None) => true,
        (Some(v), None) => boolean(v, &p("isActive"))?,
        (None, Some(v)) => boolean(v, &p("enabled"))?,
    };
    let remediation_mode = match optional_string("remediationMode")? {
        None => None,
        Some(s) => Some(
            RemediationMode::parse(&s)
                .ok_or_else(|| ValidationError::new(p("remediationMode"), K::RemediationMode))?,
        ),
    };
    check_definition(
        PolicyDefinition {
            id,
            name,
            description,
            policy_type,
            effect,
            conditions,
            actions,
            resources,
            priority,
            is_active,
            remediation_mode,
        },
        path,
    )
}

// Here rather than beside the rest of `Policy`'s impl: the checks are parsing's, and policy.rs
// must not depend on parse.rs, which builds on it.
impl Policy {
    /// Validates a definition that arrived through serde and compiles it.
    pub fn from_definition(definition: PolicyDefinition) -> Result<Self, ValidationError> {
        check_definition(definition, "")
    }
}

/// The checks serde cannot express, then compilation.
fn check_definition(definition: PolicyDefinition, path: &str) -> Result<Policy, ValidationError> {
    let p = |name: &str| join(path, name);
    let name_len = definition.name.chars().count();
    if !(1..=255).contains(&name_len) || definition.name.trim().is_empty() {
        return Err(ValidationError::new(p("name"), K::NameLength));
    }
    for (field, list) in [
        ("actions", &definition.actions),
        ("resources", &definition.resources),
    ] {
        if list.is_empty() {
            return Err(ValidationError::new(p(field), K::EmptyList));
        }
        if let Some(i) = list.iter().position(String::is_empty) {
            return Err(ValidationError::new(
                format!("{}[{i}]", p(field)),
                K::EmptyString,
            ));
        }
    }
    if definition.remediation_mode.is_some() && definition.policy_type != PolicyType::SelfHealing {
        return Err(ValidationError::new(
            p("remediationMode"),
            K::RemediationModeNotSelfHealing,
        ));
    }
    let conditions = Conditions::compile(&definition.conditions, &p("conditions"))?;
    Ok(Policy::from_parts(definition, conditions))
}

fn string_list(value: &Value, path: &str) -> Result<Vec<String>, ValidationError> {
    let Value::Array(items) = value else {
        return Err(ValidationError::new(
            path,
            K::WrongType("an array of strings"),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| string(v, &format!("{path}[{i}]")).map(str::to_owned))
        .collect()
}

fn boolean(value: &Value, path: &str) -> Result<bool, ValidationError> {
    value
        .as_bool()
        .ok_or_else(|| ValidationError::new(path, K::WrongType("a boolean")))
}
