//! The query string of a Kubernetes request: its decoding and the parameters the verbs use.

use crate::error::StatusError;

/// Decodes `application/x-www-form-urlencoded` query pairs.
pub(super) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(v) = hex {
                        out.push(v);
                        i += 2;
                    } else {
                        out.push(b'%');
                    }
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Query parameters the verbs understand.
#[derive(Debug, Default)]
pub(super) struct Params {
    pub(super) dry_run: bool,
    pub(super) label_selector: Option<String>,
    pub(super) field_selector: Option<String>,
    pub(super) propagation: Option<String>,
    pub(super) include_object: Option<String>,
    pub(super) watch: bool,
    pub(super) resource_version: Option<u64>,
    pub(super) timeout_seconds: Option<u64>,
}

impl Params {
    pub(super) fn parse(query: Option<&str>) -> Result<Params, StatusError> {
        let mut params = Params::default();
        for (key, value) in parse_query(query) {
            match key.as_str() {
                "dryRun" => match value.as_str() {
                    "All" => params.dry_run = true,
                    "" => {}
                    other => {
                        return Err(StatusError::bad_request(format!(
                            "Invalid dryRun value {other:?}: only \"All\" is supported"
                        )));
                    }
                },
                "labelSelector" => params.label_selector = Some(value),
                "fieldSelector" => params.field_selector = Some(value),
                "propagationPolicy" => params.propagation = Some(value),
                "includeObject" => params.include_object = Some(value),
                "watch" => params.watch = matches!(value.as_str(), "true" | "1"),
                "resourceVersion" => params.resource_version = value.parse().ok(),
                "timeoutSeconds" => params.timeout_seconds = value.parse().ok(),
                _ => {}
            }
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let pairs = parse_query(Some("labelSelector=app%3Dapi%2Ctier+in+(a)&dryRun=All"));
        assert_eq!(
            pairs[0],
            ("labelSelector".into(), "app=api,tier in (a)".into())
        );
        assert_eq!(pairs[1], ("dryRun".into(), "All".into()));
    }
}
