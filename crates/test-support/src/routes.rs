//! The paths an axum router serves, for tests that compare a router with its OpenAPI document.
//!
//! axum has no public route listing; its `Debug` output names every path of the path router
//! (`Node { paths: {RouteId(0): "/health", ...} }`). This reads them from there. If a new axum
//! release changes that output, [`served_paths`] returns an empty set and the callers' "known
//! routes are present" assertions fail loudly rather than pass silently.

use std::collections::BTreeSet;

/// Every path template the router's path router holds (fallbacks excluded).
#[must_use]
pub fn served_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let Some(start) = debug.find("path_router:") else {
        return BTreeSet::new();
    };
    let end = debug[start..]
        .find("fallback_router:")
        .map_or(debug.len(), |i| start + i);
    let Ok(re) = regex::Regex::new(r#"RouteId\(\d+\): "((?:[^"\\]|\\.)*)""#) else {
        return BTreeSet::new();
    };
    re.captures_iter(&debug[start..end])
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use axum::routing::{get, post};

    #[test]
    fn lists_plain_and_nested_paths_but_no_fallback() {
        let inner = axum::Router::new().route("/b/{id}", post(|| async {}));
        let router = axum::Router::new()
            .route("/a", get(|| async {}))
            .nest("/v1", inner)
            .fallback(|| async {});
        let paths: Vec<String> = served_paths(&router).into_iter().collect();
        assert_eq!(paths, ["/a", "/v1/b/{id}"]);
    }
}
