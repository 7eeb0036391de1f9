//! The console's markup (maud escapes every interpolated value) and its two static assets.

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Viewer;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// `GET /console/assets/{name}`: the style sheet and the script, cached for a day (their URLs
/// carry the crate version, so a new release is fetched anew).
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        body,
    )
        .into_response()
}

fn asset_url(name: &str) -> String {
    format!("/console/assets/{name}?v={}", env!("CARGO_PKG_VERSION"))
}

/// The page around `content`: the header with the navigation the role may use, and the
/// sign-out form.
pub fn page(title: &str, viewer: Option<&Viewer>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Aegis" }
                link rel="stylesheet" href=(asset_url("console.css"));
                script src=(asset_url("console.js")) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console" { "Aegis" }
                    @if let Some(v) = viewer {
                        nav aria-label="Console" {
                            ul {
                                @if v.reads_incidents() {
                                    li { a href="/console/incidents" { "Incidents" } }
                                    li { a href="/console/mode" { "Remediation mode" } }
                                }
                                @if v.reads_audit() {
                                    li { a href="/console/audit" { "Audit" } }
                                    li { a href="/console/policies" { "Policies" } }
                                }
                                li { a href="/console/alerts" { "Alerts" } }
                                @if v.user.is_admin() {
                                    li { a href="/console/users" { "Users" } }
                                }
                            }
                        }
                        form class="who" method="post" action="/console/logout" {
                            span { (v.user.email) " (" (roles(v)) ")" }
                            input type="hidden" name="aegis_csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (content) }
            }
        }
    }
}

fn roles(viewer: &Viewer) -> String {
    viewer
        .user
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An error page.
pub fn error(viewer: Option<&Viewer>, status: StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Error"),
        viewer,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p class="error" role="alert" { (message) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

/// The sign-in page.
pub fn login(csrf: &str, next: &str, email: &str, problem: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to Aegis" }
            @if let Some(p) = problem {
                p class="error" role="alert" id="login-error" { (p) }
            }
            form method="post" action="/console/login" class="stack" {
                input type="hidden" name="aegis_csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="email" { "E-mail" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A JSON field as text (`-` when absent).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "-".to_owned(),
        Value::String(_) => "-".to_owned(),
        other => other.to_string(),
    }
}

fn target(i: &Value) -> String {
    let mut t = format!("{}/{}", text(&i["namespace"]), text(&i["deployment"]));
    if let Some(pod) = i["pod"].as_str() {
        t.push_str(&format!(" (pod {pod})"));
    }
    t
}

/// The filter form's values.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    /// A status, or empty for all.
    #[serde(default)]
    pub status: String,
    /// A namespace, or empty for all.
    #[serde(default)]
    pub namespace: String,
    /// A severity, or empty for all.
    #[serde(default)]
    pub severity: String,
}

impl Filter {
    /// The filter as a query string (values percent-encoded).
    #[must_use]
    pub fn query(&self) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("status", &self.status),
            ("namespace", &self.namespace),
            ("severity", &self.severity),
        ] {
            if !v.is_empty() {
                q.push(format!("{k}={}", encode(v)));
            }
        }
        q.join("&")
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const STATUSES: [&str; 10] = [
    "open",
    "awaiting_approval",
    "executing",
    "verifying",
    "resolved",
    "rejected",
    "failed",
    "escalated",
    "suppressed",
    "expired",
];
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// The incidents page: the filter form and the live table.
pub fn incidents(viewer: &Viewer, filter: &Filter, rows: &Markup, problem: Option<&str>) -> Markup {
    let live = format!("/console/incidents/rows?{}", filter.query());
    page(
        "Incidents",
        Some(viewer),
        html! {
            h1 { "Incidents" }
            form method="get" action="/console/incidents" class="filters" aria-label="Filter incidents" {
                label for="f-status" { "Status" }
                select id="f-status" name="status" {
                    option value="" selected[filter.status.is_empty()] { "any" }
                    @for s in STATUSES {
                        option value=(s) selected[filter.status == s] { (s) }
                    }
                }
                label for="f-namespace" { "Namespace" }
                input id="f-namespace" name="namespace" value=(filter.namespace) size="16";
                label for="f-severity" { "Severity" }
                select id="f-severity" name="severity" {
                    option value="" selected[filter.severity.is_empty()] { "any" }
                    @for s in SEVERITIES {
                        option value=(s) selected[filter.severity == s] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if let Some(p) = problem {
                p class="error" role="alert" { (p) }
            }
            table class="incidents" {
                caption { "Newest first; updates every " (super::LIVE_INTERVAL.as_secs()) " s." }
                thead {
                    tr {
                        th scope="col" { "Opened" }
                        th scope="col" { "Status" }
                        th scope="col" { "Severity" }
                        th scope="col" { "Target" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Action" }
                        th scope="col" { "Updated" }
                    }
                }
                tbody id="incident-rows" data-live=(live) aria-live="polite" { (rows) }
            }
        },
    )
}

/// The rows of the incidents table (also the live fragment).
pub fn incident_rows(list: &[Value]) -> Markup {
    html! {
        @if list.is_empty() {
            tr { td colspan="7" { "No incidents match." } }
        }
        @for i in list {
            @let id = text(&i["id"]);
            tr data-incident=(id) {
                td { a href={ "/console/incidents/" (id) } { (text(&i["createdAt"])) } }
                td { span class={ "status " (text(&i["status"])) } { (text(&i["status"])) } }
                td { span class={ "sev " (text(&i["severity"])) } { (text(&i["severity"])) } }
                td { (target(i)) }
                td { (text(&i["kind"])) }
                td { (i["actionType"].as_str().or_else(|| i["recommendedAction"].as_str()).unwrap_or("-")) }
                td { (text(&i["updatedAt"])) }
            }
        }
    }
}

/// Key–value rows of a JSON object; nested values as indented JSON.
fn details(v: &Value) -> Markup {
    html! {
        @if let Some(map) = v.as_object() {
            dl class="details" {
                @for (k, val) in map {
                    @if !val.is_null() {
                        dt { (k) }
                        dd {
                            @match val {
                                Value::Object(_) | Value::Array(_) => {
                                    pre { (serde_json::to_string_pretty(val).unwrap_or_default()) }
                                }
                                other => { (text(other)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the incident page shows besides the incident itself.
#[derive(Debug, Default)]
pub struct IncidentExtras {
    /// The executor's audit rows of the incident's correlation id.
    pub audit_rows: Vec<Value>,
    /// The chain verification report, when the role may read it.
    pub chain: Option<Value>,
    /// The policy audit rows of the incident's correlation id.
    pub decisions: Vec<Value>,
    /// A message after an action (approved, rejected, or why not).
    pub notice: Option<(bool, String)>,
}

/// One incident: summary, timeline with every step's details, the policy decision, the
/// executor's audit row with its chain position, and approve/reject where allowed.
pub fn incident(viewer: &Viewer, i: &Value, extras: &IncidentExtras) -> Markup {
    let id = text(&i["id"]);
    let status = text(&i["status"]);
    let decidable = matches!(status.as_str(), "open" | "awaiting_approval");
    page(
        &format!("Incident {}", target(i)),
        Some(viewer),
        html! {
            p { a href="/console/incidents" { "← All incidents" } }
            h1 { "Incident on " (target(i)) }
            @if let Some((ok, message)) = &extras.notice {
                p class=(if *ok { "notice" } else { "error" }) role="status" id="notice" { (message) }
            }
            dl class="summary" {
                dt { "Id" } dd { code { (id) } }
                dt { "Status" } dd { span class={ "status " (status) } id="incident-status" { (status) } }
                dt { "Signal" } dd { (text(&i["kind"])) " from " (text(&i["source"])) ", severity " (text(&i["severity"])) ", score " (text(&i["score"])) ", confidence " (text(&i["confidence"])) }
                dt { "Recommended" } dd { (text(&i["recommendedAction"])) }
                dt { "Decision" } dd { (text(&i["actionType"])) " by policy " (text(&i["policyName"])) ", mode " (text(&i["mode"])) }
                @if let Some(by) = i["decidedBy"].as_str() { dt { "Decided by" } dd { (by) } }
                @if let Some(until) = i["approvalExpiresAt"].as_str() { dt { "Approval expires" } dd { (until) } }
                dt { "Correlation id" } dd { code { (text(&i["correlationId"])) } }
            }
            @if decidable && viewer.approves() {
                section aria-labelledby="decide" class="decide" {
                    h2 id="decide" { "Decide" }
                    form method="post" action={ "/console/incidents/" (id) "/approve" } class="stack" {
                        input type="hidden" name="aegis_csrf" value=(viewer.csrf);
                        label for="approve-reason" { "Reason (optional)" }
                        input id="approve-reason" name="reason" maxlength="1000";
                        button type="submit" id="approve" disabled[status != "awaiting_approval"] { "Approve" }
                    }
                    form method="post" action={ "/console/incidents/" (id) "/reject" } class="stack" {
                        input type="hidden" name="aegis_csrf" value=(viewer.csrf);
                        label for="reject-reason" { "Reason" }
                        input id="reject-reason" name="reason" maxlength="1000";
                        button type="submit" id="reject" { "Reject" }
                    }
                }
            }
            section aria-labelledby="timeline" {
                h2 id="timeline" { "Timeline" }
                ol class="timeline" {
                    @for e in i["timeline"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        li data-step=(text(&e["step"])) {
                            h3 { time { (text(&e["at"])) } " " (text(&e["step"])) " → " (text(&e["status"])) }
                            (details(&e["details"]))
                        }
                    }
                }
            }
            section aria-labelledby="policy" {
                h2 id="policy" { "Policy decision" }
                @if let Some(step) = i["timeline"].as_array().and_then(|t| t.iter().find(|e| e["step"] == "policy")) {
                    p id="policy-verdict" {
                        (if step["details"]["allowed"] == true { "Allowed" } else { "Denied" }) ": "
                        (text(&step["details"]["reason"]))
                    }
                    @if let Some(lines) = step["details"]["explanation"].as_array() {
                        p { "Each policy of the type, in evaluation order, at the time of the decision:" }
                        ul id="policy-trace" {
                            @for line in lines { li { (text(line)) } }
                        }
                    }
                }
                @if extras.decisions.is_empty() {
                    p { "No policy decision is recorded for this incident." }
                }
                @for d in &extras.decisions {
                    (details(d))
                }
            }
            section aria-labelledby="audit" {
                h2 id="audit" { "Executor audit" }
                @if extras.audit_rows.is_empty() {
                    p { "The executor recorded no action for this incident." }
                }
                @for row in &extras.audit_rows {
                    p { "Chain position " strong { "#" (text(&row["chainSeq"])) } ", hash " code { (text(&row["hash"])) } }
                    (details(row))
                }
                @if let Some(chain) = &extras.chain {
                    @if chain["valid"] == true {
                        p class="notice" { "The audit chain verifies: " (text(&chain["checked"])) " rows, head #" (text(&chain["headSeq"])) "." }
                    } @else {
                        p class="error" { "The audit chain is broken at #" (text(&chain["firstBroken"]["chainSeq"])) ": " (text(&chain["firstBroken"]["reason"])) "." }
                    }
                }
            }
        },
    )
}

/// The executor's audit trail with the chain's verification; the row where it breaks is
/// marked.
pub fn audit(viewer: &Viewer, rows: &[Value], chain: Option<&Value>) -> Markup {
    let broken_seq = chain.and_then(|c| c["firstBroken"]["chainSeq"].as_i64());
    page(
        "Audit",
        Some(viewer),
        html! {
            h1 { "Executor audit" }
            @match chain {
                Some(c) if c["valid"] == true => {
                    p class="notice" id="chain" {
                        "The hash chain verifies: " (text(&c["checked"])) " rows checked, head #"
                        (text(&c["headSeq"])) " " code { (text(&c["headHash"])) } "."
                    }
                }
                Some(c) => {
                    p class="error" id="chain" role="alert" {
                        "The hash chain is broken at #" (text(&c["firstBroken"]["chainSeq"]))
                        " (row " code { (text(&c["firstBroken"]["id"])) } "): "
                        (text(&c["firstBroken"]["reason"])) ". Rows from there on cannot be trusted."
                    }
                }
                None => { p id="chain" { "The chain's verification could not be read." } }
            }
            table class="audit" {
                caption { "Newest first, the last " (rows.len()) " rows." }
                thead {
                    tr {
                        th scope="col" { "Chain #" }
                        th scope="col" { "At" }
                        th scope="col" { "Action" }
                        th scope="col" { "Target" }
                        th scope="col" { "Status" }
                        th scope="col" { "Requested by" }
                        th scope="col" { "Hash" }
                    }
                }
                tbody {
                    @if rows.is_empty() {
                        tr { td colspan="7" { "No audit rows." } }
                    }
                    @for r in rows {
                        @let broken = broken_seq.is_some() && r["chainSeq"].as_i64() == broken_seq;
                        tr class=[broken.then_some("broken")] data-seq=(text(&r["chainSeq"])) {
                            td { (text(&r["chainSeq"])) @if broken { " " strong { "← breaks here" } } }
                            td { (text(&r["createdAt"])) }
                            td { (text(&r["actionType"])) }
                            td { (text(&r["namespace"])) "/" (text(&r["resourceName"])) }
                            td { (text(&r["status"])) }
                            td { (text(&r["requestedBy"])) }
                            td { code { (r["hash"].as_str().map_or("-", |h| &h[..h.len().min(16)])) } }
                        }
                    }
                }
            }
        },
    )
}

/// The remediation mode: the global one, the namespaces' own, and the switch where the role
/// allows.
pub fn mode(viewer: &Viewer, modes: &Value, notice: Option<(bool, String)>) -> Markup {
    let global = &modes["global"];
    page(
        "Remediation mode",
        Some(viewer),
        html! {
            h1 { "Remediation mode" }
            @if let Some((ok, message)) = &notice {
                p class=(if *ok { "notice" } else { "error" }) role="status" id="notice" { (message) }
            }
            p {
                "For every namespace: " strong id="global-mode" { (text(&global["mode"])) }
                ", set by " (text(&global["updatedBy"])) " at " (text(&global["updatedAt"]))
                @if let Some(r) = global["reason"].as_str() { " (" (r) ")" }
                "."
            }
            @if let Some(list) = modes["namespaces"].as_array().filter(|l| !l.is_empty()) {
                table {
                    caption { "Namespaces with their own, stricter mode" }
                    thead { tr { th scope="col" { "Namespace" } th scope="col" { "Mode" } th scope="col" { "Set by" } th scope="col" { "Reason" } } }
                    tbody {
                        @for m in list {
                            tr { td { (text(&m["scope"])) } td { (text(&m["mode"])) } td { (text(&m["updatedBy"])) } td { (text(&m["reason"])) } }
                        }
                    }
                }
            }
            @if viewer.approves() {
                form method="post" action="/console/mode" class="stack" {
                    input type="hidden" name="aegis_csrf" value=(viewer.csrf);
                    label for="mode" { "New mode for every namespace" }
                    select id="mode" name="mode" {
                        @for m in ["auto", "approval", "dry_run", "off"] {
                            option value=(m) selected[global["mode"] == m] { (m) }
                        }
                    }
                    label for="mode-reason" { "Reason" }
                    input id="mode-reason" name="reason" maxlength="1000";
                    button type="submit" id="set-mode" { "Set the mode" }
                }
            }
        },
    )
}

/// Alerts, newest first.
pub fn alerts(viewer: &Viewer, list: &[Value]) -> Markup {
    page(
        "Alerts",
        Some(viewer),
        html! {
            h1 { "Alerts" }
            table {
                caption { "Newest first." }
                thead { tr { th scope="col" { "Raised" } th scope="col" { "Severity" } th scope="col" { "Status" } th scope="col" { "Title" } th scope="col" { "Description" } } }
                tbody {
                    @if list.is_empty() { tr { td colspan="5" { "No alerts." } } }
                    @for a in list {
                        tr {
                            td { (text(&a["createdAt"])) }
                            td { span class={ "sev " (text(&a["severity"])) } { (text(&a["severity"])) } }
                            td { (text(&a["status"])) }
                            td { (text(&a["title"])) }
                            td { (text(&a["description"])) }
                        }
                    }
                }
            }
        },
    )
}

/// The policies, in evaluation order.
pub fn policies(viewer: &Viewer, list: &[Value]) -> Markup {
    page(
        "Policies",
        Some(viewer),
        html! {
            h1 { "Policies" }
            @if viewer.user.is_admin() {
                p { a href="/console/policies/new" id="new-policy" { "New policy" } }
            }
            table {
                caption { "In evaluation order: priority, then deny before allow." }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Effect" }
                    th scope="col" { "Priority" } th scope="col" { "Actions" } th scope="col" { "Resources" }
                    th scope="col" { "Mode" } th scope="col" { "Active" }
                } }
                tbody {
                    @if list.is_empty() { tr { td colspan="8" { "No policies." } } }
                    @for p in list {
                        tr data-policy=(text(&p["name"])) {
                            td { a href={ "/console/policies/" (text(&p["id"])) } { (text(&p["name"])) } }
                            td { (text(&p["type"])) }
                            td { (text(&p["effect"])) }
                            td { (text(&p["priority"])) }
                            td { (list_text(&p["actions"])) }
                            td { (list_text(&p["resources"])) }
                            td { (text(&p["remediationMode"])) }
                            td { (text(&p["isActive"])) }
                        }
                    }
                }
            }
        },
    )
}

fn list_text(v: &Value) -> String {
    v.as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| text(v))
}

/// What the policy form shows: the draft, the what-if request, and results.
#[derive(Debug, Default)]
pub struct PolicyForm {
    /// The policy's id when editing one.
    pub id: String,
    /// The draft, as JSON text.
    pub draft: String,
    /// The what-if request.
    pub action: String,
    /// The what-if request.
    pub resource: String,
    /// The what-if request's context metadata, as JSON text.
    pub meta: String,
    /// Why the draft was not saved or not evaluated, one message per problem.
    pub errors: Vec<String>,
    /// A what-if answer, and what it was evaluated against.
    pub result: Option<(String, Value)>,
    /// A message after saving.
    pub notice: Option<String>,
}

/// Create or edit a policy, with a what-if against the draft and against the saved set.
pub fn policy_form(viewer: &Viewer, form: &PolicyForm) -> Markup {
    let title = if form.id.is_empty() {
        "New policy"
    } else {
        "Edit policy"
    };
    page(
        title,
        Some(viewer),
        html! {
            p { a href="/console/policies" { "← All policies" } }
            h1 { (title) }
            @if let Some(n) = &form.notice {
                p class="notice" id="notice" role="status" { (n) }
            }
            form method="post" action="/console/policies/edit" class="policy" {
                input type="hidden" name="aegis_csrf" value=(viewer.csrf);
                input type="hidden" name="id" value=(form.id);
                label for="draft" { "The policy (JSON, as the API takes it)" }
                @if !form.errors.is_empty() {
                    ul class="error" id="draft-errors" role="alert" {
                        @for e in &form.errors { li { (e) } }
                    }
                }
                textarea id="draft" name="policy" rows="12" cols="80" spellcheck="false"
                    aria-describedby=[(!form.errors.is_empty()).then_some("draft-errors")] { (form.draft) }
                fieldset {
                    legend { "What if: a request to evaluate" }
                    label for="wi-action" { "Action" }
                    input id="wi-action" name="action" value=(form.action) placeholder="scale_up";
                    label for="wi-resource" { "Resource" }
                    input id="wi-resource" name="resource" value=(form.resource) placeholder="service:api";
                    label for="wi-meta" { "Context metadata (JSON object, optional)" }
                    input id="wi-meta" name="meta" value=(form.meta) placeholder="{\"namespace\": \"production\"}";
                    button type="submit" name="do" value="draft" id="whatif-draft" { "What if, with this draft" }
                    " "
                    button type="submit" name="do" value="saved" id="whatif-saved" { "What if, with the saved policies" }
                }
                @if let Some((against, r)) = &form.result {
                    section id="whatif" aria-live="polite" {
                        h2 { "What if: " (against) }
                        p class=(if r["allowed"] == true { "notice" } else { "error" }) id="whatif-verdict" {
                            (if r["allowed"] == true { "Allowed" } else { "Denied" }) ": " (text(&r["reason"]))
                        }
                        ul {
                            @for t in r["explanation"]["policies"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                li { (text(&t["message"])) }
                            }
                        }
                    }
                }
                @if viewer.user.is_admin() {
                    p { button type="submit" name="do" value="save" id="save" { "Save the policy" } }
                }
            }
        },
    )
}

/// The roles an admin can grant.
pub const ROLES: [&str; 4] = ["admin", "operator", "auditor", "user"];

/// Users and their roles, with a form per user to change them.
pub fn users(viewer: &Viewer, list: &[Value], notice: Option<(bool, String)>) -> Markup {
    page(
        "Users",
        Some(viewer),
        html! {
            h1 { "Users and roles" }
            @if let Some((ok, message)) = &notice {
                p class=(if *ok { "notice" } else { "error" }) role="status" id="notice" { (message) }
            }
            table {
                caption { "A user without a role counts as user." }
                thead { tr { th scope="col" { "E-mail" } th scope="col" { "Active" } th scope="col" { "Roles" } } }
                tbody {
                    @for u in list {
                        @let id = text(&u["id"]);
                        @let has: Vec<&str> = u["roles"].as_array().map(|r| r.iter().filter_map(|x| x["name"].as_str().or_else(|| x.as_str())).collect()).unwrap_or_default();
                        tr data-user=(text(&u["email"])) {
                            td { (text(&u["email"])) }
                            td { (text(&u["isActive"])) }
                            td {
                                form method="post" action={ "/console/users/" (id) "/roles" } class="roles" {
                                    input type="hidden" name="aegis_csrf" value=(viewer.csrf);
                                    fieldset {
                                        legend { "Roles of " (text(&u["email"])) }
                                        @for r in ROLES {
                                            @let field = format!("role-{id}-{r}");
                                            input type="checkbox" id=(field) name="role" value=(r) checked[has.contains(&r)];
                                            label for=(field) { (r) }
                                        }
                                        button type="submit" { "Set the roles" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
