//! `/remediation` first slice: signal intake with fingerprint deduplication
//! and the incident read API with its timeline.

use aegis_remediation::{Move, Status, Step, guardrail::Blocked};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    alerts::auditor,
    auth_support::{assert_error, spawn_with_admin},
    helpers::TestApp,
};

const KEY: &str = "svc-key-remediation";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn signal(pod: Option<&str>) -> Value {
    let mut target = json!({"namespace": "production", "deployment": "api-server"});
    if let Some(p) = pod {
        target["pod"] = json!(p);
    }
    json!({
        "source": "ai-engine", "kind": "anomaly", "observedAt": "2026-11-25T10:00:00Z",
        "target": target, "severity": "high", "score": 0.93, "confidence": 0.81,
        "recommendedAction": "scale_up",
        "window": {"metrics": []},
        "prediction": {"is_anomaly": true}
    })
}

/// Intake only: with the loop off, incidents stay `open` (the decision path has its own tests
/// in `remediation_loop.rs`).
async fn spawn() -> TestApp {
    spawn_with_admin(&[("SERVICE_API_KEYS", KEY), ("REMEDIATION_MODE", "off")]).await
}

async fn send_signal(app: &TestApp, body: &Value, traceparent: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/api/v1/remediation/signals", app.address))
        .header("X-API-Key", KEY)
        .json(body);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    req.send().await.unwrap()
}

async fn accepted(app: &TestApp, body: &Value) -> Value {
    let res = send_signal(app, body, None).await;
    assert_eq!(res.status(), 202);
    res.json().await.unwrap()
}

/// Reads incident `id` until `done` holds (8 s at most): the remediation loop writes its
/// steps after intake has answered.
async fn incident_once(
    app: &TestApp,
    token: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let res = app
            .get_as(&format!("/api/v1/remediation/incidents/{id}"), token)
            .await;
        assert_eq!(res.status(), 200);
        let incident: Value = res.json().await.unwrap();
        if done(&incident) {
            return incident;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "incident {id} never got there: {incident}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn remediation_signal_opens_then_deduplicates_an_incident() {
    let app = spawn().await;
    let admin = app.admin().await;
    let tp = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");

    let res = send_signal(&app, &signal(None), Some(&tp)).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["x-correlation-id"], TRACE_ID);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["correlationId"], TRACE_ID);
    assert_eq!(first["deduplicated"], false);
    let id = first["incidentId"].as_str().unwrap().to_owned();

    // Same signal again (different trace): joins the incident, keeps its correlation id.
    let second = accepted(&app, &signal(None)).await;
    assert_eq!(second["incidentId"], id.as_str());
    assert_eq!(second["deduplicated"], true);
    assert_eq!(second["correlationId"], TRACE_ID);

    // The loop notes the kill switch after intake answers, so wait for that note.
    let incident = incident_once(&app, &admin.access, &id, |i| {
        i["timeline"]
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["step"] == "decision"))
    })
    .await;
    assert_eq!(incident["id"], id.as_str());
    assert_eq!(incident["status"], "open");
    assert_eq!(incident["correlationId"], TRACE_ID);
    // printf '%s' 'anomaly|production|api-server||scale_up' | sha256sum | cut -c1-16
    assert_eq!(incident["fingerprint"], "609d1cc6ae88cbcd");
    assert_eq!(incident["namespace"], "production");
    assert_eq!(incident["deployment"], "api-server");
    assert_eq!(incident["pod"], Value::Null);
    assert_eq!(incident["recommendedAction"], "scale_up");
    assert_eq!(incident["signal"]["prediction"]["is_anomaly"], true);
    // The two signals, and (REMEDIATION_MODE=off) the note that no decision is made.
    let timeline: Vec<&Value> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["step"] == "signal")
        .collect();
    assert_eq!(timeline.len(), 2, "{incident}");
    assert!(timeline.iter().all(|e| e["status"] == "open"));
    assert!(
        incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["step"] == "decision" && e["details"]["mode"] == "off"),
        "{incident}"
    );
    assert!(timeline[0]["id"].as_i64() < timeline[1]["id"].as_i64());
    assert_eq!(timeline[0]["details"]["correlationId"], TRACE_ID);

    // A different pod is a different fingerprint, hence a new incident.
    let other = accepted(&app, &signal(Some("api-server-7d4b9c-x2x"))).await;
    assert_eq!(other["deduplicated"], false);
    assert_ne!(other["incidentId"], id.as_str());
    // Without a traceparent the middleware mints a correlation id.
    let cid = other["correlationId"].as_str().unwrap();
    assert_eq!(cid.len(), 32);
    assert!(
        cid.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[tokio::test]
async fn remediation_explicit_fingerprint_wins() {
    let app = spawn().await;
    let admin = app.admin().await;
    let mut a = signal(Some("pod-a"));
    a["fingerprint"] = json!("am-4f2a9c");
    let mut b = signal(Some("pod-b"));
    b["fingerprint"] = json!("am-4f2a9c");
    let first = accepted(&app, &a).await;
    let second = accepted(&app, &b).await;
    assert_eq!(second["deduplicated"], true);
    assert_eq!(second["incidentId"], first["incidentId"]);
    let id = first["incidentId"].as_str().unwrap();
    let incident: Value = app
        .get_as(
            &format!("/api/v1/remediation/incidents/{id}"),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(incident["fingerprint"], "am-4f2a9c");
}

#[tokio::test]
async fn remediation_concurrent_identical_signals_open_one_incident() {
    let app = spawn().await;
    let body = signal(Some("racy-pod"));
    let results = send_concurrently(&app, &body).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|v| v["incidentId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|v| v["deduplicated"] == false)
            .count(),
        1
    );
}

async fn send_concurrently(app: &TestApp, body: &Value) -> Vec<Value> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/remediation/signals", app.address);
        let body = body.clone();
        set.spawn(async move {
            let res = client
                .post(url)
                .header("X-API-Key", KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
            res.json::<Value>().await.unwrap()
        });
    }
    set.join_all().await
}

#[tokio::test]
async fn remediation_signal_validation_and_access() {
    let app = spawn().await;
    let admin = app.admin().await;

    let mut extra = signal(None);
    extra["bogus"] = json!(1);
    let res = send_signal(&app, &extra, None).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].to_string().contains("bogus"), "{body}");

    let mut bad_ns = signal(None);
    bad_ns["target"]["namespace"] = json!("Not_A_Label");
    let res = send_signal(&app, &bad_ns, None).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"].to_string().contains("target.namespace"),
        "{body}"
    );

    let mut bad_dep = signal(None);
    bad_dep["target"]["deployment"] = json!("api..server");
    let res = send_signal(&app, &bad_dep, None).await;
    assert_eq!(res.status(), 400);

    // No credentials.
    let res = app.post("/api/v1/remediation/signals", signal(None)).await;
    assert_eq!(res.status(), 401);
    let res = app.get("/api/v1/remediation/incidents").await;
    assert_eq!(res.status(), 401);

    // A plain user may neither send signals nor read incidents.
    let user = app.signup("plain@example.com", "Password123!").await;
    let res = app
        .send(
            Method::POST,
            "/api/v1/remediation/signals",
            Some(&user.access),
            Some(signal(None)),
        )
        .await;
    assert_error(res, 403, "Insufficient permissions").await;
    let res = app
        .get_as("/api/v1/remediation/incidents", &user.access)
        .await;
    assert_eq!(res.status(), 403);

    // An admin JWT may send a signal.
    let res = app
        .send(
            Method::POST,
            "/api/v1/remediation/signals",
            Some(&admin.access),
            Some(signal(None)),
        )
        .await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn remediation_list_filters_and_not_found() {
    let app = spawn().await;
    let aud = auditor(&app, "aud@example.com").await;

    let a = accepted(&app, &signal(Some("p1"))).await;
    let mut staging = signal(Some("p2"));
    staging["target"]["namespace"] = json!("staging");
    let b = accepted(&app, &staging).await;
    let c = accepted(&app, &signal(Some("p3"))).await;

    let all: Vec<Value> = app
        .get_as("/api/v1/remediation/incidents", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = all.iter().map(|i| &i["id"]).collect();
    assert_eq!(
        ids,
        vec![&c["incidentId"], &b["incidentId"], &a["incidentId"]]
    );

    let prod: Vec<Value> = app
        .get_as(
            "/api/v1/remediation/incidents?namespace=production",
            &aud.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prod.len(), 2);
    assert!(prod.iter().all(|i| i["namespace"] == "production"));

    let limited: Vec<Value> = app
        .get_as("/api/v1/remediation/incidents?limit=1", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["id"], c["incidentId"]);

    let open: Vec<Value> = app
        .get_as("/api/v1/remediation/incidents?status=open", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open.len(), 3);
    let resolved: Vec<Value> = app
        .get_as("/api/v1/remediation/incidents?status=resolved", &aud.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(resolved.is_empty());

    for bad in ["status=closed", "limit=0", "limit=501", "limit=x"] {
        let res = app
            .get_as(&format!("/api/v1/remediation/incidents?{bad}"), &aud.access)
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }

    let res = app
        .get_as(
            &format!(
                "/api/v1/remediation/incidents/{}",
                b["incidentId"].as_str().unwrap()
            ),
            &aud.access,
        )
        .await;
    assert_eq!(res.status(), 200);
    let one: Value = res.json().await.unwrap();
    assert_eq!(one["namespace"], "staging");
    let steps: Vec<&str> = one["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.iter().filter(|s| **s == "signal").count(), 1, "{one}");

    let missing = Uuid::new_v4();
    let res = app
        .get_as(
            &format!("/api/v1/remediation/incidents/{missing}"),
            &aud.access,
        )
        .await;
    assert_error(res, 404, &format!("Incident with ID {missing} not found")).await;
}

/// A real socket.io-client (the `tests/socketio` driver that `socket.rs` uses) sees the
/// `remediation` event for an accepted signal.
#[tokio::test]
async fn remediation_signal_is_pushed_over_socket_io() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let app = spawn().await;
    let admin = app.admin().await;
    crate::socket::ensure_client().await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/socketio");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("client.mjs"))
        .args([
            app.address.as_str(),
            "auth",
            admin.access.as_str(),
            "websocket",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut next = async || -> Value {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("socket line in time")
            .unwrap()
            .expect("client still running");
        serde_json::from_str(&line).unwrap()
    };
    let first = next().await;
    assert_eq!(first["type"], "connect", "{first}");

    let tp = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let accepted: Value = send_signal(&app, &signal(None), Some(&tp))
        .await
        .json()
        .await
        .unwrap();
    let pushed = loop {
        let v = next().await;
        if v["type"] == "event" && v["event"] == "remediation" {
            break v["args"][0].clone();
        }
    };
    assert_eq!(pushed["event"], "remediation");
    let data = &pushed["data"];
    assert_eq!(data["incidentId"], accepted["incidentId"]);
    assert_eq!(data["correlationId"], TRACE_ID);
    assert_eq!(data["step"], "signal");
    assert_eq!(data["status"], "open");
    assert_eq!(data["details"]["deduplicated"], false);
    assert!(data["at"].is_string());
    let _ = child.start_kill();
}

/// The guardrails and the transition they gate are one unit: a slot is taken only by an
/// incident that moves, an incident that had moved on takes none, and a blocked one is left
/// as it was.
#[tokio::test]
async fn remediation_guarded_transition_takes_a_slot_only_when_the_incident_moves() {
    use aegis_backend::db::incidents::{self, Guard, Guarded, IncidentPatch, Transition, timeline};

    let app = spawn().await;
    let db = &app.state.db;
    // An incident as the loop left it: with REMEDIATION_MODE off, the loop only records its
    // decision, so once that event is there nothing but this test writes to the incident.
    let open_incident = |pod: &'static str| {
        let app = &app;
        async move {
            let id = accepted(app, &signal(Some(pod))).await["incidentId"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap();
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while !timeline(&app.state.db, id)
                .await
                .unwrap()
                .iter()
                .any(|e| e.step == Step::Decision)
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the loop recorded no decision"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            incidents::get(&app.state.db, id).await.unwrap().unwrap()
        }
    };
    let details = json!({"by": "test"});
    let patch = IncidentPatch {
        mode: Some("auto".to_owned()),
        ..IncidentPatch::default()
    };
    let to_executing = Transition {
        to: Move::Act,
        step: Step::Execute,
        details: &details,
        patch: &patch,
    };
    let enforce = |max_per_hour, take| Guard::Enforce {
        cooldown_seconds: 300,
        max_per_hour,
        take,
    };

    // Forced, but the incident is not awaiting approval: nothing is written, no slot taken.
    let first = open_incident("web-1").await;
    let approved = Transition {
        to: Move::Approve,
        step: Step::Approved,
        ..to_executing
    };
    let verdict = incidents::guarded_transition(db, &first, Guard::Force, &approved)
        .await
        .unwrap();
    assert!(matches!(verdict, Guarded::MovedOn), "{verdict:?}");
    let unchanged = incidents::get(db, first.id).await.unwrap().unwrap();
    assert_eq!((unchanged.status, unchanged.acted_at), (Status::Open, None));
    let steps = |events: Vec<incidents::IncidentEvent>| {
        events.into_iter().map(|e| e.step).collect::<Vec<_>>()
    };
    assert!(
        !steps(timeline(db, first.id).await.unwrap()).contains(&Step::Approved),
        "a skipped step appends no event"
    );

    // Only checking moves it without taking a slot.
    let waiting = Transition {
        to: Move::AskApproval,
        step: Step::ApprovalRequired,
        ..to_executing
    };
    let Guarded::Moved(moved) =
        incidents::guarded_transition(db, &first, enforce(1, false), &waiting)
            .await
            .unwrap()
    else {
        panic!("the check allows it");
    };
    let (incident, event) = *moved;
    assert_eq!(incident.status, Status::AwaitingApproval);
    assert_eq!(incident.acted_at, None);
    assert_eq!(incident.mode.as_deref(), Some("auto"));
    assert_eq!(
        (event.step, event.status),
        (Step::ApprovalRequired, Status::AwaitingApproval)
    );
    assert_eq!(event.details, details);

    // Taking the slot stamps acted_at in the move, and the event carries the new status.
    let second = open_incident("web-2").await;
    let Guarded::Moved(moved) =
        incidents::guarded_transition(db, &second, enforce(1, true), &to_executing)
            .await
            .unwrap()
    else {
        panic!("the first action of the hour is allowed");
    };
    let (incident, event) = *moved;
    assert_eq!(incident.status, Status::Executing);
    let acted = incident.acted_at.expect("the slot is taken");
    assert_eq!(event.status, Status::Executing);
    assert_eq!(event.at, acted, "one statement: the same now()");
    let stored = timeline(db, second.id).await.unwrap();
    assert_eq!(stored.last().map(|e| e.id), Some(event.id));

    // The cooldown and the cap block and leave the incident as it was.
    let third = open_incident("web-3").await;
    let verdict = incidents::guarded_transition(db, &third, enforce(100, true), &to_executing)
        .await
        .unwrap();
    // What is left of the cooldown is what the time since the second's action leaves, however
    // long this machine took to get here.
    let elapsed = (chrono::Utc::now() - acted).num_seconds();
    assert!(
        matches!(verdict, Guarded::Blocked(Blocked::Cooldown { seconds_left }) if (299 - elapsed..=300).contains(&seconds_left)),
        "{verdict:?} after {elapsed} s"
    );
    let no_cooldown = Guard::Enforce {
        cooldown_seconds: 0,
        max_per_hour: 1,
        take: true,
    };
    let verdict = incidents::guarded_transition(db, &third, no_cooldown, &to_executing)
        .await
        .unwrap();
    assert!(
        matches!(verdict, Guarded::Blocked(Blocked::Capped { actions: 1 })),
        "{verdict:?}"
    );
    let unchanged = incidents::get(db, third.id).await.unwrap().unwrap();
    assert_eq!((unchanged.status, unchanged.acted_at), (Status::Open, None));
    // An admin's approval is not capped.
    let verdict = incidents::guarded_transition(db, &third, Guard::Force, &to_executing)
        .await
        .unwrap();
    assert!(matches!(verdict, Guarded::Moved(_)), "{verdict:?}");
    let forced = incidents::get(db, third.id).await.unwrap().unwrap();
    assert_eq!(forced.status, Status::Executing);
    assert!(forced.acted_at.is_some());
}

/// The guardrails serialise on the namespace's advisory lock, taken in the transaction's
/// `BEGIN`: a holder of the same key (as an earlier backend version takes it, with the
/// namespace bound as a parameter) keeps a guarded move waiting until it lets go.
#[tokio::test]
async fn remediation_guardrails_wait_for_the_namespace_lock() {
    use aegis_backend::db::incidents::{self, Guard, Guarded, IncidentPatch, Transition};

    let app = spawn().await;
    let db = app.state.db.clone();
    let id = accepted(&app, &signal(Some("web-1"))).await["incidentId"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let incident = incidents::get(&db, id).await.unwrap().unwrap();

    let mut holder = db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aegis-remediation:' || $1, 0))")
        .bind(&incident.namespace)
        .execute(&mut *holder)
        .await
        .unwrap();

    let mover = tokio::spawn(async move {
        let details = json!({"by": "test"});
        let patch = IncidentPatch::default();
        let t = Transition {
            to: Move::Act,
            step: Step::Execute,
            details: &details,
            patch: &patch,
        };
        let guard = Guard::Enforce {
            cooldown_seconds: 0,
            max_per_hour: 10,
            take: true,
        };
        incidents::guarded_transition(&db, &incident, guard, &t)
            .await
            .map(|g| matches!(g, Guarded::Moved(_)))
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!mover.is_finished(), "the guarded move waits for the lock");
    let still_open = incidents::get(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(still_open.status, Status::Open);

    holder.rollback().await.unwrap();
    let moved = tokio::time::timeout(std::time::Duration::from_secs(10), mover)
        .await
        .expect("the move goes ahead once the lock is free")
        .unwrap()
        .unwrap();
    assert!(moved);
    let now = incidents::get(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(now.status, Status::Executing);
}

/// The words between single quotes in a constraint or index definition.
fn quoted(definition: &str) -> std::collections::BTreeSet<String> {
    definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Adding a status is a change to the domain crate plus one migration: this is what finds a
/// forgotten migration. The `incidents.status` check must allow exactly the domain's
/// statuses, `incident_is_open` must call open exactly the domain's open ones, and the partial
/// unique index must be the one over that function (the statements name its predicate).
#[tokio::test]
async fn the_database_knows_exactly_the_statuses_of_the_domain() {
    let app = spawn().await;
    let check: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'incidents'::regclass AND contype = 'c' \
           AND pg_get_constraintdef(oid) LIKE '%status%'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    let all: std::collections::BTreeSet<String> =
        Status::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(quoted(&check), all, "{check}");

    let names: Vec<String> = Status::ALL.iter().map(|s| s.to_string()).collect();
    let open_in_db: std::collections::BTreeSet<String> =
        sqlx::query_scalar("SELECT s FROM unnest($1::text[]) AS s WHERE incident_is_open(s)")
            .bind(&names)
            .fetch_all(&app.state.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let open: std::collections::BTreeSet<String> = Status::open().map(|s| s.to_string()).collect();
    assert_eq!(open_in_db, open);
    // A status the domain does not know is not open either.
    let unknown: Option<bool> = sqlx::query_scalar("SELECT incident_is_open('archived')")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(unknown, Some(false));

    let index: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'incidents_open_fingerprint_key'",
    )
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert!(
        index.contains("UNIQUE") && index.ends_with("(fingerprint) WHERE incident_is_open(status)"),
        "{index}"
    );
}
