//! Output for people: tables of incidents, a timeline, a policy decision, the chain report.
//! Every function takes the backend's JSON as it came and tolerates missing fields (shown as
//! `-`), so an older or newer backend never makes the CLI fail to print.

use std::fmt::Write as _;

use serde_json::Value;

/// Text from the backend made safe for a terminal: a line break becomes ` ↵ ` and any other
/// control character (ESC starts every terminal control sequence) becomes `�`. What a
/// workload writes reaches these strings (a crashed pod's last log lines are evidence), and
/// it must not be able to drive the terminal of whoever reads them.
#[must_use]
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str(" ↵ "),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A field as text: strings as they are (cleaned), numbers and booleans printed, anything
/// else `-`.
fn field(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => clean(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "-".to_owned(),
    }
}

/// `namespace/deployment`, with the pod when there is one.
fn target(incident: &Value) -> String {
    let mut t = format!(
        "{}/{}",
        field(&incident["namespace"]),
        field(&incident["deployment"])
    );
    if let Some(pod) = incident["pod"].as_str().filter(|p| !p.is_empty()) {
        let _ = write!(t, " (pod {})", clean(pod));
    }
    t
}

/// `incidents list`: one row per incident.
#[must_use]
pub fn incidents(list: &Value) -> String {
    let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "No incidents.\n".to_owned();
    }
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|i| {
            let action = clean(
                i["actionType"]
                    .as_str()
                    .or_else(|| i["recommendedAction"].as_str())
                    .unwrap_or("-"),
            );
            [
                field(&i["id"]),
                field(&i["status"]),
                field(&i["severity"]),
                target(i),
                field(&i["kind"]),
                action,
                field(&i["updatedAt"]),
            ]
        })
        .collect();
    let header = [
        "ID", "STATUS", "SEVERITY", "TARGET", "KIND", "ACTION", "UPDATED",
    ];
    // Each column as wide as its widest cell, so long targets never shift the next column.
    let mut widths = header.map(|h| h.chars().count());
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &table {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// `incidents show`: the incident, then its timeline.
#[must_use]
pub fn incident(detail: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Incident   {}", field(&detail["id"]));
    let _ = writeln!(
        out,
        "Status     {} (severity {}, score {}, confidence {})",
        field(&detail["status"]),
        field(&detail["severity"]),
        number(&detail["score"]),
        number(&detail["confidence"]),
    );
    let _ = writeln!(out, "Target     {}", target(detail));
    let _ = writeln!(
        out,
        "Signal     {} from {}",
        field(&detail["kind"]),
        field(&detail["source"])
    );
    let _ = writeln!(
        out,
        "Decision   {} (policy {}, mode {})",
        detail["actionType"]
            .as_str()
            .or_else(|| detail["recommendedAction"].as_str())
            .unwrap_or("-"),
        field(&detail["policyName"]),
        field(&detail["mode"]),
    );
    if let Some(by) = detail["decidedBy"].as_str() {
        let _ = writeln!(out, "Decided by {}", clean(by));
    }
    if let Some(until) = detail["approvalExpiresAt"].as_str()
        && detail["status"] == "awaiting_approval"
    {
        let _ = writeln!(out, "Approve by {}", clean(until));
    }
    if let Some(audit) = detail["executorAuditId"].as_str() {
        let _ = writeln!(out, "Audit row  {}", clean(audit));
    }
    let _ = writeln!(
        out,
        "Opened     {}, updated {}",
        field(&detail["createdAt"]),
        field(&detail["updatedAt"])
    );
    let _ = writeln!(out, "\nTimeline");
    for event in detail["timeline"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let _ = writeln!(out, "  {}", event_line(event));
        for line in details(&event["details"]) {
            let _ = writeln!(out, "      {line}");
        }
    }
    out
}

/// One timeline step: `time  step → status`.
#[must_use]
pub fn event_line(event: &Value) -> String {
    format!(
        "{}  {:<10} → {}",
        field(&event["at"]),
        field(&event["step"]),
        field(&event["status"])
    )
}

/// `incidents follow`: a step with the incident it belongs to.
#[must_use]
pub fn followed(incident: &Value, event: &Value) -> String {
    let mut line = format!(
        "{}  {}  {}  {}",
        event_line(event),
        target(incident),
        field(&incident["kind"]),
        field(&incident["id"]),
    );
    if let Some(reason) = event["details"]["reason"].as_str() {
        let _ = write!(line, "  ({})", clean(reason));
    }
    line
}

/// A step's details, one `key: value` per line; nested values as compact JSON, cut at 160
/// characters (`incidents show -o json` has them whole).
fn details(details: &Value) -> Vec<String> {
    let Some(map) = details.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            // Serialised JSON escapes control characters itself; plain strings are cleaned.
            let text = match v {
                Value::String(s) => clean(s),
                other => other.to_string(),
            };
            let cut: String = text.chars().take(160).collect();
            if cut.len() < text.len() {
                format!("{}: {cut}…", clean(k))
            } else {
                format!("{}: {cut}", clean(k))
            }
        })
        .collect()
}

fn number(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |n| format!("{n:.2}"))
}

/// `policy evaluate` and `policy dry-run`: the decision, the policies that applied, and each
/// policy's verdict when the answer explains itself.
#[must_use]
pub fn decision(answer: &Value) -> String {
    let mut out = String::new();
    let verdict = if answer["allowed"] == true {
        "ALLOWED"
    } else {
        "DENIED"
    };
    let dry = if answer["dryRun"] == true {
        " (dry run against the draft policies)"
    } else {
        ""
    };
    let _ = writeln!(out, "{verdict}{dry}: {}", field(&answer["reason"]));
    let applied: Vec<String> = answer["appliedPolicies"]
        .as_array()
        .map(|a| a.iter().map(field).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Applied policies: {}",
        if applied.is_empty() {
            "none".to_owned()
        } else {
            applied.join(", ")
        }
    );
    if let Some(id) = answer["decisionId"].as_str() {
        let _ = writeln!(out, "Decision id: {id}");
    }
    if let Some(traces) = answer["explanation"]["policies"].as_array() {
        let _ = writeln!(out, "Every policy of the type:");
        for t in traces {
            let _ = writeln!(out, "  {}", field(&t["message"]));
        }
    }
    out
}

/// `audit verify`: intact or where it breaks.
#[must_use]
pub fn chain(report: &Value) -> String {
    let mut out = String::new();
    if report["valid"] == true {
        let _ = writeln!(
            out,
            "The audit chain is intact: {} rows checked, head #{} {}.",
            field(&report["checked"]),
            field(&report["headSeq"]),
            field(&report["headHash"]),
        );
    } else {
        let broken = &report["firstBroken"];
        let _ = writeln!(
            out,
            "The audit chain is BROKEN at #{} (row {}): {}.",
            field(&broken["chainSeq"]),
            field(&broken["id"]),
            field(&broken["reason"]),
        );
        let _ = writeln!(out, "{} rows checked.", field(&report["checked"]));
    }
    if let Some(anchor) = report["anchor"].as_object() {
        let _ = writeln!(
            out,
            "Checked from the retention anchor at #{}.",
            field(anchor.get("chainSeq").unwrap_or(&Value::Null))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_has_a_row_per_incident_and_tolerates_gaps() {
        let out = incidents(&json!([
            {"id": "a1", "status": "open", "severity": "high", "namespace": "production",
             "deployment": "api", "kind": "cpu_anomaly", "updatedAt": "2026-12-06T10:00:00.000Z"},
            {"id": "b2"}
        ]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[1].contains("production/api") && lines[1].contains("cpu_anomaly"));
        assert!(lines[2].starts_with("b2") && lines[2].contains("-/-"));
        // Columns line up: every row's TARGET starts where the header's does.
        let at = lines[0].find("TARGET").unwrap();
        assert_eq!(&lines[1][at..at + 14], "production/api");
        assert_eq!(incidents(&json!([])), "No incidents.\n");
    }

    #[test]
    fn a_timeline_lists_each_step_with_its_details() {
        let out = incident(&json!({
            "id": "a1", "status": "resolved", "namespace": "production", "deployment": "api",
            "score": 0.91, "timeline": [
                {"at": "t1", "step": "signal", "status": "open", "details": {"score": 0.91}},
                {"at": "t2", "step": "policy", "status": "executing",
                 "details": {"policyName": "scale api", "long": "x".repeat(300)}}
            ]
        }));
        assert!(out.contains("t1  signal     → open"), "{out}");
        assert!(out.contains("policyName: scale api"));
        assert!(out.contains(&format!("long: {}…", "x".repeat(160))));
        assert!(out.contains("score 0.91"));
    }

    #[test]
    fn nothing_from_the_backend_reaches_the_terminal_as_a_control_sequence() {
        let hostile = "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2Jcrash\nnext";
        let out = incident(&json!({"id": "a", "pod": hostile, "timeline": [
            {"at": "t", "step": "signal", "status": "open", "details": {"logs": hostile, "nested": {"x": hostile}}}
        ]}));
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("crash ↵ next"));
        let line = followed(
            &json!({"id": "a"}),
            &json!({"details": {"reason": hostile}}),
        );
        assert!(!line.contains('\u{1b}'), "{line:?}");
        let list = incidents(&json!([{"id": hostile, "kind": hostile}]));
        assert!(!list.contains('\u{1b}'), "{list:?}");
    }

    #[test]
    fn a_broken_chain_names_the_row() {
        let out = chain(&json!({"valid": false, "checked": 3,
            "firstBroken": {"chainSeq": 2, "id": "r2", "reason": "hash mismatch"}}));
        assert!(
            out.contains("BROKEN at #2 (row r2): hash mismatch"),
            "{out}"
        );
        let out = chain(&json!({"valid": true, "checked": 3, "headSeq": 3, "headHash": "ab"}));
        assert!(out.contains("intact: 3 rows checked, head #3 ab"), "{out}");
    }

    #[test]
    fn a_decision_shows_each_policy_verdict() {
        let out = decision(&json!({"allowed": false, "reason": "denied by x",
            "appliedPolicies": ["x"], "explanation": {"policies": [{"message": "x: matched (deny)"}]}}));
        assert!(out.starts_with("DENIED: denied by x"), "{out}");
        assert!(out.contains("  x: matched (deny)"));
    }
}
