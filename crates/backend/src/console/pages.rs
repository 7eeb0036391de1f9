//! The console's handlers: each reads the session's [`Viewer`], calls the API, renders.

use axum::{
    Extension, Form,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Console, Viewer, error_page,
    session::{self, CsrfRefusal},
    views,
};
use crate::auth::client::ClientInfo;

/// Where a page that needs a session sends the browser: the login, remembering the page.
/// Fragments and forms get a plain 401 (a script or a resubmitted form cannot follow a login).
pub fn signed_out(request: &Request) -> Response {
    let path = request.uri().path();
    if request.method() != Method::GET || path.ends_with("/rows") {
        return (
            StatusCode::UNAUTHORIZED,
            views::error(
                None,
                StatusCode::UNAUTHORIZED,
                "Your session has ended: sign in again.",
            ),
        )
            .into_response();
    }
    let next = request
        .uri()
        .path_and_query()
        .map_or("/console", |p| p.as_str());
    Redirect::to(&format!("/console/login?next={}", views::encode(next))).into_response()
}

/// `next` only ever points inside the console (no open redirect).
fn safe_next(next: &str) -> &str {
    if next.starts_with("/console")
        && !next.starts_with("//")
        && !next.contains("://")
        && !next.contains('\\')
    {
        next
    } else {
        // The home page sends each role where it can go.
        "/console"
    }
}

/// `GET /console`: the incidents, for those who may read them.
pub async fn home(Extension(viewer): Extension<Viewer>) -> Response {
    if viewer.reads_incidents() {
        Redirect::to("/console/incidents").into_response()
    } else {
        (
            StatusCode::OK,
            views::page(
                "Aegis",
                Some(&viewer),
                maud::html! {
                    h1 { "Aegis" }
                    p { "Your role (" (viewer.user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) ") reads no incidents. An admin can grant the operator or auditor role." }
                },
            ),
        )
            .into_response()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// `GET /console/login`: the form, with a CSRF cookie set when there is none.
pub async fn login_form(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let (csrf, fresh) = match session::cookie(&headers, session::CSRF) {
        Some(c) => (c.to_owned(), false),
        None => (session::new_csrf_token(), true),
    };
    let mut response = views::login(&csrf, safe_next(&q.next), "", None).into_response();
    if fresh {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(session::CSRF, &csrf, 12 * 3600, console.secure),
        );
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    aegis_csrf: String,
}

fn csrf_refused(refusal: CsrfRefusal, viewer: Option<&Viewer>) -> Response {
    let why = match refusal {
        CsrfRefusal::CrossSite => "This form was sent from another site and was refused.",
        CsrfRefusal::TokenMismatch => {
            "This form's security token is missing or stale: reload the page and try again."
        }
    };
    error_page(StatusCode::FORBIDDEN, viewer, why)
}

/// `POST /console/login`: the API's login; its tokens become the session cookies.
pub async fn login(
    State(console): State<Console>,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(refusal) = session::check_csrf(&headers, Some(&form.aegis_csrf)) {
        return csrf_refused(refusal, None);
    }
    let answer = console
        .api
        .call(
            Method::POST,
            "/auth/login",
            None,
            &client,
            Some(&json!({"email": form.email, "password": form.password})),
        )
        .await;
    let (Some(access), Some(refresh)) = (
        answer.body["accessToken"].as_str().filter(|_| answer.ok()),
        answer.body["refreshToken"].as_str(),
    ) else {
        let status = if answer.status.is_client_error() {
            answer.status
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let problem = if answer.status == StatusCode::UNAUTHORIZED {
            "The e-mail or the password is wrong.".to_owned()
        } else {
            answer.message()
        };
        return (
            status,
            views::login(
                &form.aegis_csrf,
                safe_next(&form.next),
                &form.email,
                Some(&problem),
            ),
        )
            .into_response();
    };
    let ttl = console.state.auth.keys.refresh_ttl().as_secs();
    // A new CSRF token with the new session: a token seen before login is not reused after.
    let csrf = session::new_csrf_token();
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::ACCESS, access, ttl, console.secure),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::REFRESH, refresh, ttl, console.secure),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(session::CSRF, &csrf, ttl, console.secure),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    aegis_csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/logout`: the API's logout (it ends every session of the user, as
/// `POST /auth/logout` does for any client), then the cookies are cleared.
pub async fn logout(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session::check_csrf(&headers, Some(&form.aegis_csrf)) {
        return csrf_refused(refusal, Some(&viewer));
    }
    let _ = console
        .call(&viewer, Method::POST, "/auth/logout", None)
        .await;
    let mut response = Redirect::to("/console/login").into_response();
    let h = response.headers_mut();
    for name in [session::ACCESS, session::REFRESH, session::CSRF] {
        h.append(
            header::SET_COOKIE,
            session::set_cookie(name, "", 0, console.secure),
        );
    }
    response
}

/// The incidents of `filter`, from the API (severity is filtered here: the API has no such
/// filter), or the API's refusal.
async fn list(
    console: &Console,
    viewer: &Viewer,
    filter: &views::Filter,
) -> Result<Vec<Value>, super::api::Answer> {
    let mut path = "/remediation/incidents?limit=200".to_owned();
    if !filter.status.is_empty() {
        path.push_str(&format!("&status={}", views::encode(&filter.status)));
    }
    if !filter.namespace.is_empty() {
        path.push_str(&format!("&namespace={}", views::encode(&filter.namespace)));
    }
    let answer = console.get(viewer, &path).await;
    if !answer.ok() {
        return Err(answer);
    }
    Ok(answer
        .body
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|i| filter.severity.is_empty() || i["severity"] == filter.severity.as_str())
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

/// `GET /console/incidents`: filters and the live table.
pub async fn incidents(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<views::Filter>,
) -> Response {
    match list(&console, &viewer, &filter).await {
        Ok(rows) => {
            views::incidents(&viewer, &filter, &views::incident_rows(&rows), None).into_response()
        }
        Err(answer)
            if answer.status.is_client_error() && answer.status != StatusCode::FORBIDDEN =>
        {
            (
                answer.status,
                views::incidents(
                    &viewer,
                    &filter,
                    &views::incident_rows(&[]),
                    Some(&answer.message()),
                ),
            )
                .into_response()
        }
        Err(answer) => error_page(answer.status, Some(&viewer), &answer.message()),
    }
}

/// `GET /console/incidents/rows`: the table's rows alone, for the live refresh.
pub async fn incident_rows(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<views::Filter>,
) -> Response {
    match list(&console, &viewer, &filter).await {
        Ok(rows) => views::incident_rows(&rows).into_response(),
        Err(answer) => (answer.status, answer.message()).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// `GET /console/incidents/{id}`.
pub async fn incident(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let notice = match done.done.as_str() {
        "approved" => Some((true, "Approved: the action runs now.".to_owned())),
        "rejected" => Some((
            true,
            "Rejected: the incident is closed without acting.".to_owned(),
        )),
        _ => None,
    };
    render_incident(&console, &viewer, &id, notice, StatusCode::OK).await
}

async fn render_incident(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    notice: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    let call = |path: String| async move { console.get(viewer, &path).await };
    let answer = call(format!("/remediation/incidents/{}", views::encode(id))).await;
    if !answer.ok() {
        return error_page(answer.status, Some(viewer), &answer.message());
    }
    let incident = answer.body;
    let mut extras = views::IncidentExtras {
        notice,
        ..Default::default()
    };
    if let Some(cid) = incident["correlationId"].as_str() {
        let cid = views::encode(cid);
        // Each of these is the API's to allow: an operator reads no executor audit, and the
        // page says nothing of what it could not read.
        let (audit, decisions, chain) = tokio::join!(
            call(format!("/executor/audit/logs?correlationId={cid}")),
            call(format!("/policy/audit/logs?correlationId={cid}")),
            call("/executor/audit/verify".to_owned()),
        );
        if audit.ok() {
            extras.audit_rows = rows_of(&audit.body);
        }
        if decisions.ok() {
            extras.decisions = rows_of(&decisions.body);
        }
        if chain.ok() {
            extras.chain = Some(chain.body);
        }
    }
    (status, views::incident(viewer, &incident, &extras)).into_response()
}

/// A list answer: a bare array, or `{"data": [...]}` / `{"logs": [...]}`.
fn rows_of(body: &Value) -> Vec<Value> {
    body.as_array()
        .or_else(|| body["data"].as_array())
        .or_else(|| body["logs"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// `POST /console/incidents/{id}/approve`.
pub async fn approve(
    state: State<Console>,
    viewer: Extension<Viewer>,
    headers: HeaderMap,
    path: Path<String>,
    form: Form<CsrfForm>,
) -> Response {
    decide(state, viewer, headers, path, form, "approve").await
}

/// `POST /console/incidents/{id}/reject`.
pub async fn reject(
    state: State<Console>,
    viewer: Extension<Viewer>,
    headers: HeaderMap,
    path: Path<String>,
    form: Form<CsrfForm>,
) -> Response {
    decide(state, viewer, headers, path, form, "reject").await
}

async fn decide(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
    verb: &str,
) -> Response {
    if let Err(refusal) = session::check_csrf(&headers, Some(&form.aegis_csrf)) {
        return csrf_refused(refusal, Some(&viewer));
    }
    let reason = form.reason.trim();
    let body = if reason.is_empty() {
        json!({})
    } else {
        json!({"reason": reason})
    };
    let path = format!("/remediation/incidents/{}/{verb}", views::encode(&id));
    let answer = console
        .call(&viewer, Method::POST, &path, Some(&body))
        .await;
    if answer.ok() {
        let done = if verb == "approve" {
            "approved"
        } else {
            "rejected"
        };
        let mut response = Redirect::to(&format!(
            "/console/incidents/{}?done={done}",
            views::encode(&id)
        ))
        .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    // Refused (a role without the right, a conflict, an expired approval): the incident page
    // again, with the API's reason and its status.
    let what = if verb == "approve" {
        "approved"
    } else {
        "rejected"
    };
    let message = format!("Not {what}: {}", answer.message());
    render_incident(
        &console,
        &viewer,
        &id,
        Some((false, message)),
        answer.status,
    )
    .await
}

/// `GET /console/audit` (the API allows admins and auditors).
pub async fn audit(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let (rows, chain) = tokio::join!(
        console.get(&viewer, "/executor/audit/logs?limit=100"),
        console.get(&viewer, "/executor/audit/verify"),
    );
    if !rows.ok() {
        return error_page(rows.status, Some(&viewer), &rows.message());
    }
    let chain = chain.ok().then_some(&chain.body);
    views::audit(&viewer, &rows_of(&rows.body), chain).into_response()
}

/// `GET /console/mode`.
pub async fn mode(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Query(done): Query<Done>,
) -> Response {
    let notice = (done.done == "mode").then(|| (true, "The mode is set.".to_owned()));
    render_mode(&console, &viewer, notice, StatusCode::OK).await
}

async fn render_mode(
    console: &Console,
    viewer: &Viewer,
    notice: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    render_from(console, viewer, "/remediation/mode", status, |modes| {
        views::mode(viewer, modes, notice)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct ModeForm {
    #[serde(default)]
    aegis_csrf: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/mode`: the global mode, through `PUT /remediation/mode`.
pub async fn set_mode(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(form): Form<ModeForm>,
) -> Response {
    if let Err(refusal) = session::check_csrf(&headers, Some(&form.aegis_csrf)) {
        return csrf_refused(refusal, Some(&viewer));
    }
    let mut body = json!({"mode": form.mode});
    if !form.reason.trim().is_empty() {
        body["reason"] = json!(form.reason.trim());
    }
    let answer = console
        .call(&viewer, Method::PUT, "/remediation/mode", Some(&body))
        .await;
    if answer.ok() {
        return Redirect::to("/console/mode?done=mode").into_response();
    }
    let message = format!("The mode was not changed: {}", answer.message());
    render_mode(&console, &viewer, Some((false, message)), answer.status).await
}

/// `GET /console/alerts`.
pub async fn alerts(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let answer = console.get(&viewer, "/alerts?limit=100").await;
    if !answer.ok() {
        return error_page(answer.status, Some(&viewer), &answer.message());
    }
    views::alerts(&viewer, &rows_of(&answer.body)).into_response()
}

/// A stored policy as a definition, as `POST /policy` takes it: no id, author or timestamps.
fn definition(row: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for &key in aegis_policy::DEFINITION_FIELDS {
        if let Some(v) = row.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// `GET /console/policies` (the API lets admins and auditors read them).
pub async fn policies(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let answer = console.get(&viewer, "/policy").await;
    if !answer.ok() {
        return error_page(answer.status, Some(&viewer), &answer.message());
    }
    views::policies(&viewer, &rows_of(&answer.body)).into_response()
}

/// `GET /console/policies/new`: a draft to start from.
pub async fn new_policy(Extension(viewer): Extension<Viewer>) -> Response {
    let draft = json!({
        "name": "", "description": "", "type": "self_healing", "effect": "allow",
        "priority": 500, "conditions": {}, "actions": ["scale_up"],
        "resources": ["service:api"], "isActive": true, "remediationMode": "approval"
    });
    let form = views::PolicyForm {
        draft: serde_json::to_string_pretty(&draft).unwrap_or_default(),
        ..Default::default()
    };
    views::policy_form(&viewer, &form).into_response()
}

/// `GET /console/policies/{id}`: the policy as an editable draft.
pub async fn edit_policy(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let answer = console
        .get(&viewer, &format!("/policy/{}", views::encode(&id)))
        .await;
    if !answer.ok() {
        return error_page(answer.status, Some(&viewer), &answer.message());
    }
    let form = views::PolicyForm {
        id,
        draft: serde_json::to_string_pretty(&definition(&answer.body)).unwrap_or_default(),
        notice: (done.done == "saved")
            .then(|| "Saved: the engine uses it from the next decision.".to_owned()),
        ..Default::default()
    };
    views::policy_form(&viewer, &form).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct PolicyFormBody {
    #[serde(default)]
    aegis_csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    policy: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    meta: String,
    #[serde(default, rename = "do")]
    act: String,
}

/// `POST /console/policies/edit`: save the draft (`do=save`), or evaluate the what-if request
/// against the saved policies with the draft in place (`do=draft`, a dry run) or against the
/// saved policies alone (`do=saved`, with the explanation). Problems are shown next to the
/// draft, which is kept as written.
pub async fn policy_post(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Form(body): Form<PolicyFormBody>,
) -> Response {
    if let Err(refusal) = session::check_csrf(&headers, Some(&body.aegis_csrf)) {
        return csrf_refused(refusal, Some(&viewer));
    }
    let mut form = views::PolicyForm {
        id: body.id.clone(),
        draft: body.policy.clone(),
        action: body.action.clone(),
        resource: body.resource.clone(),
        meta: body.meta.clone(),
        ..Default::default()
    };
    let draft: Result<Value, String> = serde_json::from_str::<Value>(&body.policy)
        .map_err(|e| format!("The policy is not JSON: {e}"))
        .and_then(|v| {
            if v.is_object() {
                Ok(v)
            } else {
                Err("The policy must be a JSON object".to_owned())
            }
        });
    let reply = |status: StatusCode, form: &views::PolicyForm| {
        (status, views::policy_form(&viewer, form)).into_response()
    };
    match body.act.as_str() {
        "save" => {
            let draft = match draft {
                Ok(d) => d,
                Err(e) => {
                    form.errors.push(e);
                    return reply(StatusCode::BAD_REQUEST, &form);
                }
            };
            let (method, path) = if body.id.is_empty() {
                (Method::POST, "/policy".to_owned())
            } else {
                (
                    Method::PATCH,
                    format!("/policy/{}", views::encode(&body.id)),
                )
            };
            let answer = console.call(&viewer, method, &path, Some(&draft)).await;
            if answer.ok() {
                let id = answer.body["id"].as_str().unwrap_or(&body.id).to_owned();
                return Redirect::to(&format!(
                    "/console/policies/{}?done=saved",
                    views::encode(&id)
                ))
                .into_response();
            }
            form.errors = answer.messages();
            reply(answer.status, &form)
        }
        "draft" | "saved" => {
            let request = match what_if_request(&body) {
                Ok(r) => r,
                Err(e) => {
                    form.errors.push(e);
                    return reply(StatusCode::BAD_REQUEST, &form);
                }
            };
            let answer = if body.act == "saved" {
                console
                    .call(
                        &viewer,
                        Method::POST,
                        "/policy/evaluate?explain=true",
                        Some(&request),
                    )
                    .await
            } else {
                let draft = match draft {
                    Ok(d) => d,
                    Err(e) => {
                        form.errors.push(e);
                        return reply(StatusCode::BAD_REQUEST, &form);
                    }
                };
                // The saved set with the draft in place: what the engine would decide if it
                // were saved now.
                let saved = console.get(&viewer, "/policy").await;
                if !saved.ok() {
                    form.errors.push(saved.message());
                    return reply(saved.status, &form);
                }
                let mut set: Vec<Value> = rows_of(&saved.body)
                    .into_iter()
                    .filter(|p| body.id.is_empty() || p["id"] != body.id.as_str())
                    .map(|p| definition(&p))
                    .collect();
                set.push(draft);
                let body = json!({"policies": set, "request": request});
                console
                    .call(&viewer, Method::POST, "/policy/dry-run", Some(&body))
                    .await
            };
            if !answer.ok() {
                form.errors = answer.messages();
                return reply(answer.status, &form);
            }
            let against = if body.act == "saved" {
                "the saved policies"
            } else {
                "the saved policies with this draft in place"
            };
            form.result = Some((against.to_owned(), answer.body));
            reply(StatusCode::OK, &form)
        }
        other => {
            form.errors.push(format!("Unknown action {other:?}"));
            reply(StatusCode::BAD_REQUEST, &form)
        }
    }
}

/// The what-if request from the form: a `self_healing` request with the action, the resource
/// and the optional metadata object.
fn what_if_request(body: &PolicyFormBody) -> Result<Value, String> {
    if body.action.trim().is_empty() || body.resource.trim().is_empty() {
        return Err("A what-if needs an action and a resource".to_owned());
    }
    let mut context = json!({});
    if !body.meta.trim().is_empty() {
        let meta: Value = serde_json::from_str(&body.meta)
            .map_err(|e| format!("The context metadata is not JSON: {e}"))?;
        if !meta.is_object() {
            return Err("The context metadata must be a JSON object".to_owned());
        }
        context["metadata"] = meta;
    }
    Ok(json!({
        "type": "self_healing",
        "action": body.action.trim(),
        "resource": body.resource.trim(),
        "context": context,
    }))
}

/// `GET /console/users` (admins).
pub async fn users(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    Query(done): Query<Done>,
) -> Response {
    let notice = (done.done == "roles").then(|| (true, "The roles are set.".to_owned()));
    render_users(&console, &viewer, notice, StatusCode::OK).await
}

async fn render_users(
    console: &Console,
    viewer: &Viewer,
    notice: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    render_from(console, viewer, "/users", status, |users| {
        views::users(viewer, &rows_of(users), notice)
    })
    .await
}

/// A page built from one API answer, or the API's refusal as an error page.
async fn render_from(
    console: &Console,
    viewer: &Viewer,
    path: &str,
    status: StatusCode,
    build: impl FnOnce(&Value) -> maud::Markup,
) -> Response {
    let answer = console.get(viewer, path).await;
    if !answer.ok() {
        return error_page(answer.status, Some(viewer), &answer.message());
    }
    (status, build(&answer.body)).into_response()
}

/// `POST /console/users/{id}/roles`: the checked roles, through `PUT /users/{id}/roles`.
/// A form repeats `role`, which a plain form decoder would not collect: the body is read as
/// pairs.
pub async fn set_roles(
    State(console): State<Console>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "aegis_csrf")
        .map(|(_, v)| v.as_str());
    if let Err(refusal) = session::check_csrf(&headers, csrf) {
        return csrf_refused(refusal, Some(&viewer));
    }
    let roles: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "role")
        .map(|(_, v)| v.as_str())
        .collect();
    let path = format!("/users/{}/roles", views::encode(&id));
    let body = json!({"roles": roles});
    let answer = console.call(&viewer, Method::PUT, &path, Some(&body)).await;
    if answer.ok() {
        return Redirect::to("/console/users?done=roles").into_response();
    }
    let message = format!("The roles were not changed: {}", answer.message());
    render_users(&console, &viewer, Some((false, message)), answer.status).await
}
