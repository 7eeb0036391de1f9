//! The three patch flavours the API server accepts: JSON patch (RFC 6902), JSON merge patch
//! (RFC 7386) and strategic merge patch for the fields Aegis and kubectl touch.

use serde_json::{Map, Value};

/// The patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// Recognises a `Content-Type` header value.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }
}

/// Applies a patch of the given type to `doc`.
pub fn apply(doc: &Value, patch: &Value, patch_type: PatchType) -> Result<Value, String> {
    let mut out = doc.clone();
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| format!("invalid JSON patch: {e}"))?;
            json_patch::patch(&mut out, &ops).map_err(|e| e.to_string())?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err("a merge patch must be a JSON object".into());
            }
            json_patch::merge(&mut out, patch);
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err("a strategic merge patch must be a JSON object".into());
            }
            strategic_merge(&mut out, patch, "");
        }
    }
    Ok(out)
}

/// The merge key of lists that strategic merge patch merges element by element, by field name
/// (the Kubernetes `patchMergeKey` tags of the types kube-sim serves).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "ownerReferences" => Some(match field {
            "ownerReferences" => "uid",
            _ => "name",
        }),
        "volumeMounts" | "volumeDevices" => Some("mountPath"),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

/// Strategic merge of `patch` into `target` (both objects).
fn strategic_merge(target: &mut Value, patch: &Value, _path: &str) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return;
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_map) = target.as_object_mut() else {
        return;
    };
    if let Some(keep) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target_map.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch_map {
        if key.starts_with('$') {
            if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(list)), Some(remove)) =
                    (target_map.get_mut(field), value.as_array())
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        match (target_map.get_mut(key), value) {
            (Some(existing @ Value::Array(_)), Value::Array(items)) => {
                if let Some(merge_key) = merge_key(key) {
                    merge_list(existing, items, merge_key);
                    let order_key = format!("$setElementOrder/{key}");
                    if let Some(Value::Array(order)) = patch_map.get(&order_key) {
                        reorder(existing, order, merge_key);
                    }
                } else {
                    *existing = strip_directives(value);
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(existing, value, key);
            }
            _ => {
                target_map.insert(key.clone(), strip_directives(value));
            }
        }
    }
}

/// Removes `$`-directives from a value that is inserted wholesale.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|v| v.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_list(existing: &mut Value, items: &[Value], key: &str) {
    let Value::Array(list) = existing else {
        return;
    };
    for item in items {
        let Some(id) = item.get(key) else {
            list.push(strip_directives(item));
            continue;
        };
        let position = list.iter().position(|e| e.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (Some(i), false) => {
                if let Some(slot) = list.get_mut(i) {
                    strategic_merge(slot, item, key);
                }
            }
            (None, true) => {}
            (None, false) => list.push(strip_directives(item)),
        }
    }
}

fn reorder(existing: &mut Value, order: &[Value], key: &str) {
    let Value::Array(list) = existing else {
        return;
    };
    let rank = |v: &Value| {
        v.get(key)
            .and_then(|id| order.iter().position(|o| o.get(key) == Some(id)))
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_updates_a_container_by_name_and_keeps_the_others() {
        let doc = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "img:v1", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "side:v1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "sidecar"}],
            "containers": [{"image": "img:v2", "name": "c"}]
        }}}});
        let out = apply(&doc, &patch, PatchType::StrategicMerge).unwrap();
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("img:v2"))
        );
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/ports/0/containerPort"),
            Some(&json!(80))
        );
        assert_eq!(
            out.pointer("/spec/template/spec/containers/1/image"),
            Some(&json!("side:v1"))
        );
    }

    #[test]
    fn strategic_merge_deletes_list_elements_and_null_fields() {
        let doc = json!({"spec": {"paused": true, "containers": [{"name": "a"}, {"name": "b"}]}});
        let patch =
            json!({"spec": {"paused": null, "containers": [{"name": "a", "$patch": "delete"}]}});
        let out = apply(&doc, &patch, PatchType::StrategicMerge).unwrap();
        assert_eq!(out, json!({"spec": {"containers": [{"name": "b"}]}}));
    }

    #[test]
    fn merge_patch_replaces_lists_and_json_patch_applies_ops() {
        let doc = json!({"a": [1, 2], "b": {"c": 1}});
        let merged = apply(&doc, &json!({"a": [3], "b": {"d": 2}}), PatchType::Merge).unwrap();
        assert_eq!(merged, json!({"a": [3], "b": {"c": 1, "d": 2}}));
        let patched = apply(
            &doc,
            &json!([{"op": "replace", "path": "/b/c", "value": 5}]),
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(patched.pointer("/b/c"), Some(&json!(5)));
        assert!(
            apply(
                &doc,
                &json!([{"op": "test", "path": "/b/c", "value": 9}]),
                PatchType::Json
            )
            .is_err()
        );
    }
}
