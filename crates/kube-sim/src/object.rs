//! Small helpers for reading and writing Kubernetes objects held as `serde_json::Value`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The current time as the API server writes timestamps (`2026-01-02T03:04:05Z`).
pub fn now_timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A fresh object UID.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A string under `metadata`.
pub fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(key)?.as_str()
}

/// `metadata.name`, empty when missing.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.namespace`, empty when missing.
pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

/// `metadata.uid`, empty when missing.
pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or("")
}

/// `metadata` as a mutable map, created when missing or not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    object_field_mut(obj, "metadata")
}

/// The object stored under `key` of `obj`, created when missing or not an object.
/// A non-object `obj` is replaced by an empty object first.
pub fn object_field_mut<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(map) = obj else {
        unreachable!("value was just made an object")
    };
    let entry = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("entry was just made an object"),
    }
}

/// Labels as an ordered map (non-string values are skipped).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.get("metadata").and_then(|m| m.get("labels")))
}

/// A `map[string]string` field as an ordered map.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// An annotation value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// Sets an annotation.
pub fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    let meta = metadata_mut(obj);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Value::Object(map) = annotations {
        map.insert(key.to_owned(), json!(value));
    }
}

/// Sets a label.
pub fn set_label(obj: &mut Value, key: &str, value: &str) {
    let meta = metadata_mut(obj);
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Value::Object(map) = labels {
        map.insert(key.to_owned(), json!(value));
    }
}

/// The UID of the owner reference marked `controller: true`.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    owner_references(obj)
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// All owner references.
pub fn owner_references(obj: &Value) -> &[Value] {
    obj.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A controller owner reference pointing at `owner`.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `metadata.resourceVersion`, if set and non-empty.
pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

/// An integer at a JSON pointer.
pub fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// Whether two objects are equal apart from `metadata.resourceVersion`, compared in place.
pub fn equal_ignoring_resource_version(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return a == b;
    };
    let meta_equal = match (a.get("metadata"), b.get("metadata")) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
            let counted =
                |m: &Map<String, Value>| m.len() - usize::from(m.contains_key("resourceVersion"));
            counted(ma) == counted(mb)
                && ma
                    .iter()
                    .filter(|(k, _)| *k != "resourceVersion")
                    .all(|(k, v)| mb.get(k) == Some(v))
        }
        (ma, mb) => ma == mb,
    };
    meta_equal
        && a.len() == b.len()
        && a.iter()
            .filter(|(k, _)| *k != "metadata")
            .all(|(k, v)| b.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_only_the_resource_version() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"r": 1}});
        let same = json!({"spec": {"r": 1}, "metadata": {"resourceVersion": "7", "name": "x"}});
        assert!(equal_ignoring_resource_version(&a, &same));
        let unversioned = json!({"metadata": {"name": "x"}, "spec": {"r": 1}});
        assert!(equal_ignoring_resource_version(&a, &unversioned));
        for other in [
            json!({"metadata": {"name": "y", "resourceVersion": "1"}, "spec": {"r": 1}}),
            json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"r": 2}}),
            json!({"metadata": {"name": "x", "resourceVersion": "1", "uid": "u"}, "spec": {"r": 1}}),
            json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"r": 1}, "status": {}}),
            json!({"metadata": {"name": "x", "resourceVersion": "1"}}),
            json!({"spec": {"r": 1}}),
        ] {
            assert!(!equal_ignoring_resource_version(&a, &other), "{other}");
            assert!(!equal_ignoring_resource_version(&other, &a), "{other}");
        }
    }
}
