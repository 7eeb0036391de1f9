//! Reading an OpenAPI document in the services' document tests.

use std::collections::BTreeSet;

use serde_json::Value;

/// The HTTP methods whose operations the services document.
pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `(METHOD, path)` of every documented operation (path templates as documented).
#[must_use]
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            let upper = method.to_uppercase();
            if METHODS.contains(&upper.as_str()) {
                out.insert((upper, path.clone()));
            }
        }
    }
    out
}

/// A concrete URL path for a template: every `{parameter}` segment becomes `value`.
#[must_use]
pub fn concrete(path: &str, value: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { value } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_and_concrete_paths() {
        let doc = json!({"paths": {
            "/a/{id}": {"get": {}, "parameters": [], "delete": {}},
            "/b": {"post": {}}
        }});
        let ops: Vec<(String, String)> = operations(&doc).into_iter().collect();
        assert_eq!(
            ops,
            [
                ("DELETE".to_owned(), "/a/{id}".to_owned()),
                ("GET".to_owned(), "/a/{id}".to_owned()),
                ("POST".to_owned(), "/b".to_owned()),
            ]
        );
        assert_eq!(concrete("/a/{id}/x/{n}", "default"), "/a/default/x/default");
        assert!(operations(&json!({})).is_empty());
    }
}
