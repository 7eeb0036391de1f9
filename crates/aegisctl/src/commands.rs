//! What each command does: the calls it makes and what it prints.

use std::{
    collections::HashMap,
    io::{BufRead as _, Read as _},
    path::Path,
    time::Duration,
};

use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};

use crate::{
    Failure,
    api::Api,
    cli::{Audit, Cli, Command, Filter, Incidents, Output, Policy, PolicyRequest},
    credentials, render,
};

/// The server when neither `--server` nor a login names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:3000";

/// Runs one parsed command line; what it prints goes to `out`.
pub async fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let path = match cli.config.clone() {
        Some(path) => path,
        None => credentials::default_path()?,
    };
    // Forgetting the tokens needs no server, and a damaged or too-open file must not stop it.
    if let Command::Logout { everywhere: false } = cli.command {
        let had = credentials::remove(&path)?;
        return if cli.output == Output::Json {
            emit(out, &json!({"removed": had, "everywhere": false}))
        } else if had {
            line(out, &format!("Logged out; removed {}.", path.display()))
        } else {
            line(out, "Not logged in; nothing to remove.")
        };
    }
    let stored = match &cli.command {
        // A damaged or too-open token file must not stop a fresh login.
        Command::Login(_) => None,
        _ => credentials::load(&path)?,
    };
    let server = cli
        .server
        .clone()
        .or_else(|| stored.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    // Tokens are only ever sent to the server that issued them.
    let stored = stored.filter(|c| c.server.trim_end_matches('/') == server.trim_end_matches('/'));
    let json_out = cli.output == Output::Json;
    let mut api = Api::new(&server, stored, path.clone())?;
    match cli.command {
        Command::Login(login) => {
            let password = read_password(login.password_stdin, &login.email, api.server())?;
            let answer = api.login(&login.email, &password).await?;
            if json_out {
                emit(
                    out,
                    &json!({"server": api.server(), "user": answer["user"], "credentials": path}),
                )
            } else {
                let roles = roles_of(&answer["user"]);
                line(
                    out,
                    &format!(
                        "Logged in to {} as {} ({}). Tokens kept in {} (mode 600).",
                        api.server(),
                        login.email,
                        roles,
                        path.display()
                    ),
                )
            }
        }
        Command::Logout { everywhere } => {
            let had = api.logout(everywhere).await?;
            if json_out {
                emit(out, &json!({"removed": had, "everywhere": everywhere}))
            } else if had {
                line(
                    out,
                    &format!(
                        "Logged out{}; removed {}.",
                        if everywhere { " everywhere" } else { "" },
                        path.display()
                    ),
                )
            } else {
                line(out, "Not logged in; nothing to remove.")
            }
        }
        Command::Token => {
            let credentials = api.credentials().ok_or_else(|| {
                Failure::Unauthenticated(format!("not logged in to {server}: run `aegisctl login`"))
            })?;
            let token = credentials.access_token.clone();
            if json_out {
                emit(out, &json!({"accessToken": token}))
            } else {
                line(out, &token)
            }
        }
        Command::Whoami => {
            let me = api.get("/users/me").await?;
            if json_out {
                emit(out, &me)
            } else {
                line(
                    out,
                    &format!(
                        "{} ({}) at {}",
                        render::clean(me["email"].as_str().unwrap_or("-")),
                        render::clean(&roles_of(&me)),
                        api.server()
                    ),
                )
            }
        }
        Command::Incidents(Incidents::List(filter)) => {
            let list = api.get(&incidents_query(&filter)).await?;
            if json_out {
                emit(out, &list)
            } else {
                write(out, &render::incidents(&list))
            }
        }
        Command::Incidents(Incidents::Show { id }) => {
            let detail = api
                .get(&format!("/remediation/incidents/{}", segment(&id)?))
                .await?;
            if json_out {
                emit(out, &detail)
            } else {
                write(out, &render::incident(&detail))
            }
        }
        Command::Incidents(Incidents::Follow {
            status,
            namespace,
            interval,
        }) => {
            let query = incidents_query(&Filter {
                status,
                namespace,
                limit: 100,
            });
            follow(
                &mut api,
                &query,
                Duration::from_secs(interval),
                json_out,
                out,
            )
            .await
        }
        Command::Approve {
            id,
            reason,
            override_guardrails,
        } => {
            let mut body = json!({});
            if let Some(reason) = reason {
                body["reason"] = json!(reason);
            }
            if override_guardrails {
                body["overrideGuardrails"] = json!(true);
            }
            let answer = api
                .post(
                    &format!("/remediation/incidents/{}/approve", segment(&id)?),
                    &body,
                )
                .await?;
            decided(out, json_out, "Approved", &answer)
        }
        Command::Reject { id, reason } => {
            let body = reason.map_or_else(|| json!({}), |r| json!({"reason": r}));
            let answer = api
                .post(
                    &format!("/remediation/incidents/{}/reject", segment(&id)?),
                    &body,
                )
                .await?;
            decided(out, json_out, "Rejected", &answer)
        }
        Command::Policy(Policy::Evaluate { request, explain }) => {
            let request = policy_request(&request)?;
            let path = if explain {
                "/policy/evaluate?explain=true"
            } else {
                "/policy/evaluate"
            };
            let answer = api.post(path, &request).await?;
            judged(out, json_out, &answer)
        }
        Command::Policy(Policy::DryRun { policies, request }) => {
            let policies = read_json(&policies, "the draft policies")?;
            if !policies.is_array() {
                return Err(Failure::Usage(
                    "the draft policies must be a JSON array of policies".into(),
                ));
            }
            let body = json!({"policies": policies, "request": policy_request(&request)?});
            let answer = api.post("/policy/dry-run", &body).await?;
            judged(out, json_out, &answer)
        }
        Command::Audit(Audit::Verify) => {
            let report = api.get("/executor/audit/verify").await?;
            if !report["valid"].is_boolean() {
                return Err(Failure::Unavailable(
                    "the backend's answer to /executor/audit/verify is not a chain report".into(),
                ));
            }
            if json_out {
                emit(out, &report)?;
            } else {
                write(out, &render::chain(&report))?;
            }
            if report["valid"] == true {
                Ok(())
            } else {
                Err(Failure::Negative(format!(
                    "the executor's audit chain is broken at #{}",
                    report["firstBroken"]["chainSeq"]
                )))
            }
        }
    }
}

/// What `follow` remembers of an incident: its last `updatedAt`, the steps to leave out (at or
/// before `since`), and the newest step printed.
struct Known {
    updated: String,
    since: DateTime<FixedOffset>,
    last_event: i64,
}

/// Polls the incidents and prints each timeline step that happens after it started, once, in
/// the order the backend recorded them (steps' ids are one sequence across incidents). Only
/// incidents whose `updatedAt` changed are read again, so a quiet poll is one request. A rate
/// limit or an outage is reported on standard error and retried at the next poll; only a
/// refused credential or role ends it. Ctrl-C stops it at any point.
async fn follow(
    api: &mut Api,
    query: &str,
    interval: Duration,
    json_out: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let work = async {
        let mut known: HashMap<String, Known> = HashMap::new();
        let mut start: Option<DateTime<FixedOffset>> = None;
        let mut failing = false;
        loop {
            match follow_poll(api, query, &mut known, &mut start, json_out, out).await {
                Ok(first) => {
                    if failing {
                        eprintln!("aegisctl: the backend answers again");
                        failing = false;
                    }
                    if first {
                        // On standard error, so JSON output stays one event per line; printed
                        // once the first poll has taken stock, so every later step is shown.
                        eprintln!(
                            "Following {} incidents at {} every {} s (Ctrl-C to stop) ...",
                            known.len(),
                            api.server(),
                            interval.as_secs()
                        );
                    }
                }
                Err(Failure::Unavailable(message)) => {
                    if !failing {
                        eprintln!(
                            "aegisctl: {message}; trying again every {} s",
                            interval.as_secs()
                        );
                    }
                    failing = true;
                }
                Err(other) => return Err(other),
            }
            tokio::time::sleep(interval).await;
        }
    };
    tokio::select! {
        result = work => result,
        _ = &mut stop => Ok(()),
    }
}

/// One poll of [`follow`]; `Ok(true)` when it was the first (which only takes stock).
async fn follow_poll(
    api: &mut Api,
    query: &str,
    known: &mut HashMap<String, Known>,
    start: &mut Option<DateTime<FixedOffset>>,
    json_out: bool,
    out: &mut dyn std::io::Write,
) -> Result<bool, Failure> {
    let (list, date) = api.get_dated(query).await?;
    let first = start.is_none();
    let now = date.unwrap_or_else(|| chrono::Utc::now().fixed_offset());
    let start = *start.get_or_insert(now);
    let mut printed: Vec<(i64, String)> = Vec::new();
    for incident in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        // An id goes into a path: one that is not an id is skipped, never followed.
        let Some(id) = incident["id"].as_str().and_then(|id| segment(id).ok()) else {
            continue;
        };
        let updated = incident["updatedAt"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if first {
            let since = DateTime::parse_from_rfc3339(&updated).unwrap_or(start);
            known.insert(
                id.to_owned(),
                Known {
                    updated,
                    since,
                    last_event: 0,
                },
            );
            continue;
        }
        if known.get(id).is_some_and(|k| k.updated == updated) {
            continue;
        }
        let detail = match api.get(&format!("/remediation/incidents/{id}")).await {
            Ok(d) => d,
            // Deleted between the list and the read: nothing to print.
            Err(Failure::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let entry = known.entry(id.to_owned()).or_insert(Known {
            updated: String::new(),
            since: start,
            last_event: 0,
        });
        for event in detail["timeline"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let step = event["id"].as_i64().unwrap_or_default();
            let at = event["at"]
                .as_str()
                .and_then(|a| DateTime::parse_from_rfc3339(a).ok());
            if step <= entry.last_event || at.is_some_and(|at| at <= entry.since) {
                continue;
            }
            entry.last_event = step;
            let text = if json_out {
                json!({
                    "incident": {
                        "id": id,
                        "namespace": detail["namespace"],
                        "deployment": detail["deployment"],
                        "kind": detail["kind"],
                        "status": detail["status"],
                    },
                    "event": event,
                })
                .to_string()
            } else {
                render::followed(&detail, event)
            };
            printed.push((step, text));
        }
        entry.updated = updated;
    }
    printed.sort_by_key(|(step, _)| *step);
    for (_, text) in printed {
        line(out, &text)?;
    }
    out.flush().map_err(output_failed)?;
    Ok(first)
}

fn incidents_query(filter: &Filter) -> String {
    let mut query = format!("/remediation/incidents?limit={}", filter.limit);
    if let Some(status) = &filter.status {
        query.push_str(&format!("&status={}", encode(status)));
    }
    if let Some(ns) = &filter.namespace {
        query.push_str(&format!("&namespace={}", encode(ns)));
    }
    query
}

/// Percent-encodes a query value (RFC 3986 unreserved characters and `,` stay).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An id as one path segment: anything that could leave the segment is refused here, before
/// a request is made.
fn segment(id: &str) -> Result<&str, Failure> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Failure::Usage(format!(
            "{id:?} is not an incident id (a UUID such as 0b6a7c1e-…)"
        )));
    }
    Ok(id)
}

fn policy_request(request: &PolicyRequest) -> Result<Value, Failure> {
    if let Some(path) = &request.request {
        return read_json(path, "the request");
    }
    let mut context = json!({});
    if let Some(role) = &request.role {
        context["role"] = json!(role);
    }
    if !request.meta.is_empty() {
        let mut metadata = serde_json::Map::new();
        for pair in &request.meta {
            let Some((key, raw)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                return Err(Failure::Usage(format!(
                    "--meta takes KEY=VALUE, got {pair:?}"
                )));
            };
            // A number, boolean or JSON value is sent as such (policies compare numbers);
            // anything else is a string.
            let value = serde_json::from_str(raw).unwrap_or_else(|_| json!(raw));
            metadata.insert(key.to_owned(), value);
        }
        context["metadata"] = Value::Object(metadata);
    }
    Ok(json!({
        "type": request.policy_type,
        "action": request.action,
        "resource": request.resource,
        "context": context,
    }))
}

/// A JSON document from a file, or from standard input for `-`.
fn read_json(path: &Path, what: &str) -> Result<Value, Failure> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read {what} from standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!("cannot read {what} from {}: {e}", path.display()))
        })?
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{what} in {} is not JSON: {e}", path.display())))
}

fn read_password(from_stdin: bool, email: &str, server: &str) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut first = String::new();
        std::io::stdin().lock().read_line(&mut first).map_err(|e| {
            Failure::Usage(format!("cannot read the password from standard input: {e}"))
        })?;
        first.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        rpassword::prompt_password(format!("Password for {email} at {server}: ")).map_err(|e| {
            Failure::Usage(format!(
                "cannot ask for the password ({e}); use --password-stdin"
            ))
        })?
    };
    if password.is_empty() {
        return Err(Failure::Usage("the password is empty".into()));
    }
    Ok(password)
}

fn roles_of(user: &Value) -> String {
    // Roles come as objects (`{"name": "admin", ...}`); plain names are accepted too.
    let roles: Vec<&str> = user["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|role| role.as_str().or_else(|| role["name"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        "no roles".to_owned()
    } else {
        roles.join(", ")
    }
}

fn decided(
    out: &mut dyn std::io::Write,
    json_out: bool,
    verb: &str,
    answer: &Value,
) -> Result<(), Failure> {
    if json_out {
        return emit(out, answer);
    }
    line(
        out,
        &format!(
            "{verb} incident {}: now {}.",
            render::clean(answer["id"].as_str().unwrap_or("-")),
            render::clean(answer["status"].as_str().unwrap_or("-"))
        ),
    )
}

/// Prints a policy answer; a denial is exit 1.
fn judged(out: &mut dyn std::io::Write, json_out: bool, answer: &Value) -> Result<(), Failure> {
    if !answer["allowed"].is_boolean() {
        return Err(Failure::Unavailable(
            "the backend's answer is not a policy decision".into(),
        ));
    }
    if json_out {
        emit(out, answer)?;
    } else {
        write(out, &render::decision(answer))?;
    }
    if answer["allowed"] == true {
        Ok(())
    } else {
        Err(Failure::Negative(format!(
            "denied: {}",
            answer["reason"].as_str().unwrap_or("no reason given")
        )))
    }
}

fn output_failed(e: std::io::Error) -> Failure {
    Failure::Usage(format!("cannot write the output: {e}"))
}

fn emit(out: &mut dyn std::io::Write, value: &Value) -> Result<(), Failure> {
    writeln!(out, "{value}").map_err(output_failed)
}

fn line(out: &mut dyn std::io::Write, text: &str) -> Result<(), Failure> {
    writeln!(out, "{text}").map_err(output_failed)
}

fn write(out: &mut dyn std::io::Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes()).map_err(output_failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert!(segment("0b6a7c1e-2f0d-4c2a-9d55-5c8f1f1f1f1f").is_ok());
        for bad in ["", "../users", "a/b", "a?b", "a b"] {
            assert_eq!(segment(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn filters_are_encoded_into_the_query() {
        let q = incidents_query(&Filter {
            status: Some("open,awaiting_approval".into()),
            namespace: Some("a&b".into()),
            limit: 5,
        });
        assert_eq!(
            q,
            "/remediation/incidents?limit=5&status=open,awaiting_approval&namespace=a%26b"
        );
    }

    #[test]
    fn a_policy_request_from_flags() {
        let r = policy_request(&PolicyRequest {
            request: None,
            policy_type: "self_healing".into(),
            action: Some("scale_up".into()),
            resource: Some("service:api".into()),
            role: Some("operator".into()),
            meta: vec![
                "cpuUsage=95".into(),
                "namespace=production".into(),
                "ok=true".into(),
            ],
        })
        .unwrap();
        assert_eq!(
            r,
            json!({"type": "self_healing", "action": "scale_up", "resource": "service:api",
                   "context": {"role": "operator", "metadata":
                       {"cpuUsage": 95, "namespace": "production", "ok": true}}})
        );
        let bad = PolicyRequest {
            request: None,
            policy_type: "self_healing".into(),
            action: Some("a".into()),
            resource: Some("b".into()),
            role: None,
            meta: vec!["novalue".into()],
        };
        assert_eq!(policy_request(&bad).unwrap_err().exit_code(), 2);
    }
}
