//! What each command does: the calls it makes and what it prints.

use std::{
    collections::HashMap,
    io::{BufRead as _, Read as _},
    path::Path,
    time::Duration,
};

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
    let path = cli.config.clone().unwrap_or_else(credentials::default_path);
    let stored = match &cli.command {
        // A damaged or too-open token file must not stop a fresh login or a logout.
        Command::Login(_) => None,
        Command::Logout { everywhere: false } => None,
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
                        me["email"].as_str().unwrap_or("-"),
                        roles_of(&me),
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
        Command::Incidents(Incidents::Follow { filter, interval }) => {
            follow(
                &mut api,
                &filter,
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

/// Polls the incidents and prints every timeline step not printed before. Steps that already
/// existed when it started are not printed: it shows what happens from now on.
async fn follow(
    api: &mut Api,
    filter: &Filter,
    interval: Duration,
    json_out: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    let mut filter = filter.clone();
    filter.limit = 100;
    let query = incidents_query(&filter);
    // Per incident: its `updatedAt` and the newest step id printed (or skipped at start).
    let mut seen: HashMap<String, (String, i64)> = HashMap::new();
    let mut first = true;
    loop {
        let list = api.get(&query).await?;
        let mut incidents: Vec<&Value> = list
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        // Oldest first, so steps print in the order they happened across incidents.
        incidents.reverse();
        for incident in incidents {
            let Some(id) = incident["id"].as_str() else {
                continue;
            };
            let updated = incident["updatedAt"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if seen.get(id).is_some_and(|(u, _)| *u == updated) {
                continue;
            }
            let detail = match api.get(&format!("/remediation/incidents/{id}")).await {
                Ok(d) => d,
                // Deleted between the list and the read: nothing to print.
                Err(Failure::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let last = seen
                .get(id)
                .map_or(if first { i64::MAX } else { 0 }, |(_, l)| *l);
            let mut newest = if first { i64::MIN } else { last };
            for event in detail["timeline"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let step = event["id"].as_i64().unwrap_or_default();
                newest = newest.max(step);
                if first || step <= last {
                    continue;
                }
                if json_out {
                    emit(
                        out,
                        &json!({
                            "incident": {
                                "id": id,
                                "namespace": detail["namespace"],
                                "deployment": detail["deployment"],
                                "kind": detail["kind"],
                                "status": detail["status"],
                            },
                            "event": event,
                        }),
                    )?;
                } else {
                    line(out, &render::followed(&detail, event))?;
                }
            }
            seen.insert(id.to_owned(), (updated, newest.max(0)));
        }
        out.flush().map_err(output_failed)?;
        if first {
            // On standard error, so JSON output stays one event per line; printed once the
            // first poll has taken stock, so every step from here on is shown.
            eprintln!(
                "Following {} incidents at {} every {} s (Ctrl-C to stop) ...",
                seen.len(),
                api.server(),
                interval.as_secs()
            );
        }
        first = false;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
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
            answer["id"].as_str().unwrap_or("-"),
            answer["status"].as_str().unwrap_or("-")
        ),
    )
}

/// Prints a policy answer; a denial is exit 1.
fn judged(out: &mut dyn std::io::Write, json_out: bool, answer: &Value) -> Result<(), Failure> {
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
