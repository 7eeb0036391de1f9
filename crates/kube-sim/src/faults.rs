//! Fault injection: latency, error answers and hangs per path prefix and HTTP method, so
//! executor tests can exercise timeouts, retries and API errors.

use serde::{Deserialize, Serialize};

use crate::error::{StatusError, reason_for_code};

/// One fault rule. A request matches when its path starts with `path_prefix` and (if set) its
/// method equals `method`. The first matching rule applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Path prefix, e.g. `/apis/apps/v1/namespaces/production/deployments`. `/` matches all.
    #[serde(default = "root")]
    pub path_prefix: String,
    /// HTTP method (`GET`, `PATCH`, ...), any when absent. Case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// Delay before answering (or before failing), in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Answer with this HTTP status and a `Status` body instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// Status reason; defaults to the API server's reason for the code.
    #[serde(default)]
    pub reason: Option<String>,
    /// Status message; defaults to a message naming the injected fault.
    #[serde(default)]
    pub message: Option<String>,
    /// Probability in `0.0..=1.0` that a matching request gets the error or hang (1 when absent).
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Never answer (the client's timeout fires).
    #[serde(default)]
    pub hang: bool,
    /// Apply to this many matching requests only, then disappear (forever when absent).
    #[serde(default)]
    pub times: Option<u32>,
}

fn root() -> String {
    "/".to_owned()
}

impl FaultRule {
    /// A rule matching every request under `path_prefix` that does nothing yet; chain the
    /// builder methods.
    pub fn new(path_prefix: impl Into<String>) -> Self {
        FaultRule {
            path_prefix: path_prefix.into(),
            method: None,
            latency_ms: None,
            status: None,
            reason: None,
            message: None,
            error_rate: None,
            hang: false,
            times: None,
        }
    }

    /// Restricts the rule to one HTTP method.
    #[must_use]
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Adds latency.
    #[must_use]
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = Some(ms);
        self
    }

    /// Answers with an error status.
    #[must_use]
    pub fn status(mut self, code: u16) -> Self {
        self.status = Some(code);
        self
    }

    /// Sets the error message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the probability of the error or hang.
    #[must_use]
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = Some(rate);
        self
    }

    /// Makes matching requests hang.
    #[must_use]
    pub fn hang(mut self) -> Self {
        self.hang = true;
        self
    }

    /// Limits the rule to `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Checks the rule's values.
    pub fn validate(&self) -> Result<(), String> {
        if !self.path_prefix.starts_with('/') {
            return Err(format!(
                "pathPrefix must start with '/': {:?}",
                self.path_prefix
            ));
        }
        if let Some(rate) = self.error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("errorRate must be within 0..=1, got {rate}"));
        }
        if let Some(code) = self.status
            && !(400..=599).contains(&code)
        {
            return Err(format!(
                "status must be an HTTP error code 400..=599, got {code}"
            ));
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    /// The error this rule answers with, if it has a status.
    pub fn error(&self, method: &str, path: &str) -> Option<StatusError> {
        let code = self.status?;
        Some(StatusError::new(
            code,
            self.reason
                .clone()
                .unwrap_or_else(|| reason_for_code(code).to_owned()),
            self.message
                .clone()
                .unwrap_or_else(|| format!("kube-sim injected fault for {method} {path}")),
        ))
    }
}

/// What the fault layer decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultDecision {
    /// Delay first.
    pub latency_ms: u64,
    /// Then fail with this error...
    pub error: Option<StatusError>,
    /// ...or never answer.
    pub hang: bool,
}

/// Picks the first matching rule, consumes one of its `times`, and rolls its error rate.
pub fn decide(rules: &mut Vec<FaultRule>, method: &str, path: &str) -> Option<FaultDecision> {
    let index = rules.iter().position(|r| r.matches(method, path))?;
    let rule = rules.get_mut(index)?;
    let decision_rule = rule.clone();
    if let Some(times) = rule.times.as_mut() {
        *times = times.saturating_sub(1);
        if *times == 0 {
            rules.remove(index);
        }
    }
    let fires = decision_rule
        .error_rate
        .is_none_or(|rate| rand::random::<f64>() < rate);
    Some(FaultDecision {
        latency_ms: decision_rule.latency_ms.unwrap_or(0),
        error: if fires {
            decision_rule.error(method, path)
        } else {
            None
        },
        hang: fires && decision_rule.hang,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_applies_and_times_run_out() {
        let mut rules = vec![
            FaultRule::new("/api/v1")
                .method("delete")
                .status(500)
                .times(1),
            FaultRule::new("/").latency_ms(5),
        ];
        let first = decide(&mut rules, "DELETE", "/api/v1/namespaces/a/pods/p").unwrap();
        assert_eq!(first.error.unwrap().reason, "InternalError");
        let second = decide(&mut rules, "DELETE", "/api/v1/namespaces/a/pods/p").unwrap();
        assert!(second.error.is_none());
        assert_eq!(second.latency_ms, 5);
    }

    #[test]
    fn an_error_rate_of_zero_never_fires() {
        let mut rules = vec![FaultRule::new("/").status(503).error_rate(0.0)];
        for _ in 0..20 {
            assert!(decide(&mut rules, "GET", "/api").unwrap().error.is_none());
        }
    }
}
