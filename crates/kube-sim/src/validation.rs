//! Defaulting and validation, a small subset of what the API server does for the fields
//! kube-sim and its clients care about.

use aegis_common::names::{is_dns_label, is_dns_subdomain};
use serde_json::{Map, Value, json};

use crate::error::{FieldCause, StatusError};
use crate::object;
use crate::resource::Resource;
use crate::selector::LabelSelector;

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_owned()).or_insert(value);
}

fn default_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    if let Some(Value::Array(containers)) = spec.get_mut("containers") {
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let image = container
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let tag = image.rsplit('/').next().unwrap_or("");
            let policy = if !tag.contains(':') || tag.ends_with(":latest") {
                "Always"
            } else {
                "IfNotPresent"
            };
            set_default(container, "imagePullPolicy", json!(policy));
            set_default(container, "resources", json!({}));
            set_default(
                container,
                "terminationMessagePath",
                json!("/dev/termination-log"),
            );
            set_default(container, "terminationMessagePolicy", json!("File"));
            if let Some(Value::Array(ports)) = container.get_mut("ports") {
                for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
    }
}

/// Fills in the defaults the API server would.
pub fn apply_defaults(resource: Resource, obj: &mut Value) {
    match resource {
        Resource::Namespace => {
            let name = object::name(obj).to_owned();
            object::set_label(obj, "kubernetes.io/metadata.name", &name);
            if let Some(map) = obj.as_object_mut() {
                map.entry("spec")
                    .or_insert_with(|| json!({"finalizers": ["kubernetes"]}));
                map.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        Resource::Pod => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        Resource::Lease => {
            if let Some(map) = obj.as_object_mut() {
                map.entry("spec").or_insert_with(|| json!({}));
            }
        }
        Resource::Event => {}
        Resource::Deployment | Resource::ReplicaSet => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            if resource == Resource::Deployment {
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
            }
            if let Some(template) = spec.get_mut("template").filter(|t| t.is_object()) {
                // The API server always shows a null creationTimestamp in pod templates.
                object::metadata_mut(template)
                    .entry("creationTimestamp")
                    .or_insert(Value::Null);
                if let Some(template_spec) = template.get_mut("spec") {
                    default_pod_spec(template_spec);
                }
            }
        }
    }
}

fn validate_containers(value: Option<&Value>, field: &str, causes: &mut Vec<FieldCause>) {
    let containers = value.and_then(Value::as_array);
    match containers {
        None => causes.push(FieldCause::required(field)),
        Some(list) if list.is_empty() => causes.push(FieldCause::required(field)),
        Some(list) => {
            for (i, container) in list.iter().enumerate() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(FieldCause::required(&format!("{field}[{i}].name")));
                } else if !is_dns_label(name) {
                    causes.push(FieldCause::invalid(
                        &format!("{field}[{i}].name"),
                        &json!(name),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    ));
                }
                let image = container.get("image").and_then(Value::as_str).unwrap_or("");
                if image.trim().is_empty() {
                    causes.push(FieldCause::required(&format!("{field}[{i}].image")));
                }
            }
        }
    }
}

/// Validates an object about to be stored; answers `422 Invalid` with every cause found.
pub fn validate(resource: Resource, obj: &Value) -> Result<(), StatusError> {
    let name = object::name(obj);
    let mut causes = Vec::new();
    let name_ok = match resource {
        Resource::Namespace => is_dns_label(name),
        _ => is_dns_subdomain(name),
    };
    if name.is_empty() {
        causes.push(FieldCause::required("metadata.name"));
    } else if !name_ok {
        causes.push(FieldCause::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    match resource {
        Resource::Namespace => {}
        Resource::Event => {
            if !obj.get("involvedObject").is_some_and(Value::is_object) {
                causes.push(FieldCause::required("involvedObject"));
            }
        }
        Resource::Lease => {
            if let Some(duration) = obj.pointer("/spec/leaseDurationSeconds")
                && duration.as_i64().is_none_or(|d| d <= 0)
            {
                causes.push(FieldCause::invalid(
                    "spec.leaseDurationSeconds",
                    duration,
                    "must be greater than 0",
                ));
            }
            if let Some(holder) = obj.pointer("/spec/holderIdentity")
                && !holder.is_string()
                && !holder.is_null()
            {
                causes.push(FieldCause::invalid(
                    "spec.holderIdentity",
                    holder,
                    "must be a string",
                ));
            }
        }
        Resource::Pod => {
            validate_containers(
                obj.pointer("/spec/containers"),
                "spec.containers",
                &mut causes,
            );
        }
        Resource::Deployment | Resource::ReplicaSet => {
            if let Some(replicas) = obj.pointer("/spec/replicas")
                && replicas.as_i64().is_none_or(|r| r < 0)
            {
                causes.push(FieldCause::invalid(
                    "spec.replicas",
                    replicas,
                    "must be greater than or equal to 0",
                ));
            }
            match obj.pointer("/spec/selector") {
                None | Some(Value::Null) => causes.push(FieldCause::required("spec.selector")),
                Some(selector) => {
                    let match_labels = object::string_map(selector.get("matchLabels"));
                    if match_labels.is_empty() {
                        causes.push(FieldCause::invalid(
                            "spec.selector",
                            selector,
                            "empty selector is invalid for deployment",
                        ));
                    } else {
                        let template_labels =
                            object::string_map(obj.pointer("/spec/template/metadata/labels"));
                        if !LabelSelector::from_match_labels(&match_labels)
                            .matches(&template_labels)
                        {
                            causes.push(FieldCause::invalid(
                                "spec.template.metadata.labels",
                                &json!(template_labels),
                                "`selector` does not match template `labels`",
                            ));
                        }
                    }
                }
            }
            validate_containers(
                obj.pointer("/spec/template/spec/containers"),
                "spec.template.spec.containers",
                &mut causes,
            );
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(StatusError::invalid(resource, name, &causes))
    }
}

/// Rejects changes to immutable fields on update.
pub fn validate_update(resource: Resource, old: &Value, new: &Value) -> Result<(), StatusError> {
    if matches!(resource, Resource::Deployment | Resource::ReplicaSet) {
        let old_selector = old.pointer("/spec/selector");
        let new_selector = new.pointer("/spec/selector");
        if old_selector != new_selector {
            return Err(StatusError::invalid(
                resource,
                object::name(new),
                &[FieldCause::invalid(
                    "spec.selector",
                    new_selector.unwrap_or(&Value::Null),
                    "field is immutable",
                )],
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_replica_count_is_invalid_with_the_real_message() {
        let obj = json!({
            "metadata": {"name": "x"},
            "spec": {
                "replicas": -1,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            }
        });
        let err = validate(Resource::Deployment, &obj).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            err.message,
            "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn defaults_fill_the_pod_template() {
        let mut obj = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        apply_defaults(Resource::Deployment, &mut obj);
        assert_eq!(obj.pointer("/spec/replicas"), Some(&json!(1)));
        assert_eq!(
            obj.pointer("/spec/template/spec/containers/0/imagePullPolicy"),
            Some(&json!("Always"))
        );
    }
}
