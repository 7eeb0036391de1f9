//! The simulated scheduler and kubelet: what happens to a pod once it exists.
//!
//! A pod is scheduled onto the one node unless its `nodeSelector` asks for a label the node does
//! not have; then it stays `Pending` with `PodScheduled=False` (`Unschedulable`). Each container
//! then behaves as its image says ([`Behaviour`]): by default it runs and is Ready at once, but
//! an image can be made to crash-loop, be OOM-killed, fail to pull or never pass readiness,
//! either by its tag (`:crash`, `:oom`, `:missing`, `:unready`) or for any image through the
//! admin API (`POST /_sim/images`).
//!
//! A single pod can also be made to crash-loop, whatever its image, until it is deleted
//! (`POST /_sim/crashloop`), as a pod whose node or local state went bad does.
//!
//! [`start`] runs synchronously when a pod is written, so a caller sees its first state at once.
//! [`tick`] is one kubelet period: a crash-looping container restarts once more (its restart
//! count rises, its log gains a crash, the last one becomes `previous`), a failed pull is tried
//! again, a failing probe fails again; each writes the Events the real components write.

use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::events::{self, Event, EventType};
use crate::node::{Behaviour, NODE_NAME, schedulable};
use crate::object::{self, now_timestamp};
use crate::resource::Resource;
use crate::store::Store;

/// A pod's containers as (name, image), in spec order.
pub(crate) fn containers(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    (text("name"), text("image"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Starts a pod that has no status yet: schedules it and runs its containers' first attempt.
pub fn start(store: &mut Store, mut pod: Value) {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if !schedulable(&spec) {
        let status = unschedulable_status();
        if let Some(map) = pod.as_object_mut() {
            map.insert("status".into(), status);
        }
        let pod = store.put(Resource::Pod, pod);
        failed_scheduling(store, &pod);
        return;
    }
    if let Some(map) = pod.pointer_mut("/spec").and_then(Value::as_object_mut) {
        map.entry("nodeName").or_insert_with(|| json!(NODE_NAME));
    }
    let mut status = running_status(&pod);
    let behaviours: Vec<(String, String, Behaviour)> = containers(&pod)
        .into_iter()
        .map(|(name, image)| {
            let b = store.behaviour_of(&image);
            (name, image, b)
        })
        .collect();
    advance(&mut status, &pod, &behaviours);
    if let Some(map) = pod.as_object_mut() {
        map.insert("status".into(), status);
    }
    let pod = store.put(Resource::Pod, pod);
    let (namespace, name) = (object::namespace(&pod), object::name(&pod));
    let assigned = format!("Successfully assigned {namespace}/{name} to {NODE_NAME}");
    events::record(
        store,
        &Event {
            involved: &pod,
            container: None,
            kind: EventType::Normal,
            reason: "Scheduled",
            message: &assigned,
            component: "default-scheduler",
        },
    );
    for (container, image, behaviour) in &behaviours {
        if *behaviour == Behaviour::Missing {
            pull_failed(store, &pod, container, image, true);
            continue;
        }
        for (reason, message) in [
            (
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            ),
            ("Created", format!("Created container {container}")),
            ("Started", format!("Started container {container}")),
        ] {
            kubelet_event(store, &pod, container, EventType::Normal, reason, &message);
        }
        run_once(store, &pod, container, image, *behaviour);
    }
}

/// One kubelet period over every started pod: crash loops restart once more, failed pulls are
/// tried again, failing probes fail again, unschedulable pods are tried again. Pods whose
/// containers all run are left as they are. Then expired events are removed.
pub fn tick(store: &mut Store) {
    let pods: Vec<Value> = store
        .list(Resource::Pod, None)
        .into_iter()
        .filter(|p| p.pointer("/status/phase").is_some())
        .cloned()
        .collect();
    for pod in pods {
        if pod.pointer("/spec/nodeName").is_none() {
            failed_scheduling(store, &pod);
            continue;
        }
        let (namespace, name) = (object::namespace(&pod), object::name(&pod));
        let behaviours: Vec<(String, String, Behaviour)> = containers(&pod)
            .into_iter()
            .map(|(container, image)| {
                let b = store.behaviour_in(namespace, name, &image);
                (container, image, b)
            })
            .collect();
        // A pod whose containers all run, and are running and ready, has nothing to do; one
        // whose image was made to run again heals in this period.
        let healthy = |container: &str| {
            pod.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["name"] == container))
                .is_some_and(|c| c["ready"] == true && c.pointer("/state/running").is_some())
        };
        if behaviours
            .iter()
            .all(|(c, _, b)| *b == Behaviour::Runs && healthy(c))
        {
            continue;
        }
        let mut next = pod.clone();
        if let Some(status) = next.get_mut("status") {
            advance(status, &pod, &behaviours);
        }
        store.put_if_changed(Resource::Pod, next);
        let Some(pod) = store
            .get(Resource::Pod, object::namespace(&pod), object::name(&pod))
            .cloned()
        else {
            continue;
        };
        for (container, image, behaviour) in &behaviours {
            match behaviour {
                Behaviour::Missing => {
                    let first_reason = pod
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()))
                        .and_then(|c| c.pointer("/state/waiting/reason"))
                        .and_then(Value::as_str)
                        == Some("ErrImagePull");
                    pull_failed(store, &pod, container, image, first_reason);
                }
                Behaviour::Runs => {}
                // A probe that fails again: no new run, no new log line.
                Behaviour::Unready => kubelet_event(
                    store,
                    &pod,
                    container,
                    EventType::Warning,
                    "Unhealthy",
                    UNHEALTHY,
                ),
                Behaviour::Crash | Behaviour::Oom => {
                    run_once(store, &pod, container, image, *behaviour);
                }
            }
        }
    }
    events::expire(store);
}

/// A pod's containers crashed once (the admin API's crash loop): each leaves its crash in
/// the log the next `previous=true` read returns, and the kubelet's back-off event.
pub fn record_crash(store: &mut Store, pod: &Value) {
    for (container, image) in containers(pod) {
        run_once(store, pod, &container, &image, Behaviour::Crash);
    }
}

/// What one run of a container leaves behind: its log, and for a failing one the event the
/// kubelet writes. A crash ends the run, so its lines become the previous instance's.
fn run_once(store: &mut Store, pod: &Value, container: &str, image: &str, behaviour: Behaviour) {
    let (namespace, name) = (object::namespace(pod), object::name(pod));
    let now = now_timestamp();
    let lines: Vec<String> = match behaviour {
        // A healthy container's log is what tests write through `POST /_sim/logs`.
        Behaviour::Runs | Behaviour::Missing => Vec::new(),
        Behaviour::Unready => vec![format!("{now} INFO {container} started ({image})")],
        Behaviour::Crash => vec![
            format!("{now} INFO {container} starting ({image})"),
            format!("{now} ERROR {container}: required setting DATABASE_URL is not set"),
            format!("{now} FATAL {container} exiting with status 1"),
        ],
        Behaviour::Oom => vec![
            format!("{now} INFO {container} starting ({image})"),
            format!("{now} INFO {container} loading the cache into memory"),
            format!("{now} WARN {container} memory use above 95% of the container's limit"),
        ],
    };
    store.logs_mut().append(namespace, name, container, &lines);
    if behaviour.crashes() {
        store.logs_mut().restart(namespace, name, container);
        let message = format!(
            "Back-off restarting failed container {container} in pod {name}_{namespace}({})",
            object::uid(pod)
        );
        kubelet_event(
            store,
            pod,
            container,
            EventType::Warning,
            "BackOff",
            &message,
        );
    }
    if behaviour == Behaviour::Unready {
        kubelet_event(
            store,
            pod,
            container,
            EventType::Warning,
            "Unhealthy",
            UNHEALTHY,
        );
    }
}

/// The kubelet's message for a readiness probe that fails.
const UNHEALTHY: &str = "Readiness probe failed: HTTP probe failed with statuscode: 503";

fn pull_failed(store: &mut Store, pod: &Value, container: &str, image: &str, first: bool) {
    let events: Vec<(EventType, &str, String)> = if first {
        vec![
            (
                EventType::Normal,
                "Pulling",
                format!("Pulling image \"{image}\""),
            ),
            (
                EventType::Warning,
                "Failed",
                format!(
                    "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                ),
            ),
            (
                EventType::Warning,
                "Failed",
                "Error: ErrImagePull".to_owned(),
            ),
        ]
    } else {
        vec![
            (
                EventType::Normal,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
            (
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff".to_owned(),
            ),
        ]
    };
    for (kind, reason, message) in events {
        kubelet_event(store, pod, container, kind, reason, &message);
    }
}

fn failed_scheduling(store: &mut Store, pod: &Value) {
    let message = UNSCHEDULABLE.to_owned();
    events::record(
        store,
        &Event {
            involved: pod,
            container: None,
            kind: EventType::Warning,
            reason: "FailedScheduling",
            message: &message,
            component: "default-scheduler",
        },
    );
}

fn kubelet_event(
    store: &mut Store,
    pod: &Value,
    container: &str,
    kind: EventType,
    reason: &str,
    message: &str,
) {
    events::record(
        store,
        &Event {
            involved: pod,
            container: Some(container),
            kind,
            reason,
            message,
            component: "kubelet",
        },
    );
}

/// The scheduler's message for a pod no node fits.
const UNSCHEDULABLE: &str = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
     preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

fn unschedulable_status() -> Value {
    json!({
        "phase": "Pending",
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": null,
            "lastTransitionTime": now_timestamp(),
            "reason": "Unschedulable",
            "message": UNSCHEDULABLE,
        }],
        "qosClass": "BestEffort",
    })
}

/// The container back-off the kubelet applies after `restarts` restarts: 10 s doubling, at most
/// five minutes, written as Go prints a duration.
fn back_off(restarts: i64) -> String {
    let seconds = (10_i64 << restarts.clamp(1, 6).saturating_sub(1)).min(300);
    if seconds >= 60 {
        format!("{}m{}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

/// Moves each failing container of `status` one attempt on, then the pod's phase and
/// readiness with them.
fn advance(status: &mut Value, pod: &Value, behaviours: &[(String, String, Behaviour)]) {
    let now = now_timestamp();
    let (namespace, name) = (object::namespace(pod), object::name(pod));
    let Some(statuses) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in statuses.iter_mut() {
        let Some((container, image, behaviour)) = behaviours
            .iter()
            .find(|(n, _, _)| c.get("name").and_then(Value::as_str) == Some(n))
        else {
            continue;
        };
        match behaviour {
            Behaviour::Runs => {
                if c["ready"] != true || c.pointer("/state/running").is_none() {
                    c["ready"] = json!(true);
                    c["started"] = json!(true);
                    c["state"] = json!({"running": {"startedAt": now}});
                    if c.get("imageID").and_then(Value::as_str) == Some("") {
                        c["imageID"] = json!(format!("{image}@sha256:{}", hex_id(image)));
                    }
                }
            }
            Behaviour::Unready => {
                c["ready"] = json!(false);
            }
            Behaviour::Crash | Behaviour::Oom => {
                let restarts = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0) + 1;
                let started = c
                    .pointer("/state/running/startedAt")
                    .or_else(|| c.pointer("/lastState/terminated/finishedAt"))
                    .cloned()
                    .unwrap_or_else(|| json!(now));
                let (exit_code, reason) = if *behaviour == Behaviour::Oom {
                    (137, "OOMKilled")
                } else {
                    (1, "Error")
                };
                c["ready"] = json!(false);
                c["started"] = json!(false);
                c["restartCount"] = json!(restarts);
                c["state"] = json!({"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": format!(
                        "back-off {} restarting failed container={container} pod={name}_{namespace}({})",
                        back_off(restarts),
                        object::uid(pod)
                    ),
                }});
                c["lastState"] = json!({"terminated": {
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started,
                    "finishedAt": now,
                    "containerID": c.get("containerID").cloned().unwrap_or(Value::Null),
                }});
            }
            Behaviour::Missing => {
                let was = c.pointer("/state/waiting/reason").and_then(Value::as_str);
                let (reason, message) = if was == Some("ErrImagePull") {
                    (
                        "ImagePullBackOff",
                        format!("Back-off pulling image \"{image}\""),
                    )
                } else {
                    (
                        "ErrImagePull",
                        format!("failed to pull and unpack image \"{image}\": not found"),
                    )
                };
                c["ready"] = json!(false);
                c["started"] = json!(false);
                c["imageID"] = json!("");
                if let Some(map) = c.as_object_mut() {
                    map.remove("containerID");
                }
                c["state"] = json!({"waiting": {"reason": reason, "message": message}});
                c["lastState"] = json!({});
            }
        }
    }
    let all_ready = statuses
        .iter()
        .all(|c| c.get("ready").and_then(Value::as_bool) == Some(true));
    let pulling = behaviours.iter().any(|(_, _, b)| *b == Behaviour::Missing);
    status["phase"] = json!(if pulling { "Pending" } else { "Running" });
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for condition in conditions.iter_mut() {
            if !matches!(
                condition.get("type").and_then(Value::as_str),
                Some("Ready" | "ContainersReady")
            ) {
                continue;
            }
            let wanted = if all_ready { "True" } else { "False" };
            if condition.get("status").and_then(Value::as_str) != Some(wanted) {
                condition["status"] = json!(wanted);
                condition["lastTransitionTime"] = json!(now);
            }
            if let Some(map) = condition.as_object_mut() {
                if all_ready {
                    map.remove("reason");
                } else {
                    map.insert("reason".into(), json!("ContainersNotReady"));
                }
            }
        }
    }
}

/// A Running, Ready pod status for the pod's containers.
pub fn running_status(pod: &Value) -> Value {
    let now = now_timestamp();
    let mut rng = rand::rng();
    let ip = format!(
        "10.244.{}.{}",
        rng.random_range(0..=255u8),
        rng.random_range(2..=254u8)
    );
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                    json!({
                        "name": c.get("name").cloned().unwrap_or(Value::Null),
                        "image": image,
                        "imageID": format!("{image}@sha256:{}", hex_id(image)),
                        "containerID": format!("containerd://{}", hex_id(&object::new_uid())),
                        "ready": true,
                        "started": true,
                        "restartCount": 0,
                        "state": { "running": { "startedAt": now } },
                        "lastState": {},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ],
        "hostIP": "10.0.0.10",
        "hostIPs": [{"ip": "10.0.0.10"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

/// Turns a Running pod's status into a crash-looping one: not Ready, every container waiting
/// in `CrashLoopBackOff` with `restarts` restarts. The controller then counts it as not ready,
/// so the deployment's `readyReplicas` drops until the pod is replaced.
pub fn crashloop_status(pod: &Value, restarts: u32) -> Value {
    let now = now_timestamp();
    let mut status = pod
        .get("status")
        .cloned()
        .unwrap_or_else(|| running_status(pod));
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions.iter_mut() {
            if matches!(
                c.get("type").and_then(Value::as_str),
                Some("Ready" | "ContainersReady")
            ) {
                c["status"] = json!("False");
                c["reason"] = json!("ContainersNotReady");
                c["lastTransitionTime"] = json!(now);
            }
        }
    }
    if let Some(containers) = status
        .get_mut("containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for c in containers.iter_mut() {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["restartCount"] = json!(restarts);
            c["state"] = json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": format!("back-off 5m0s restarting failed container={}", c.get("name").and_then(Value::as_str).unwrap_or("app")),
            }});
            c["lastState"] =
                json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}});
        }
    }
    status
}

fn hex_id(seed: &str) -> String {
    Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_doubles_from_ten_seconds_to_five_minutes() {
        assert_eq!(back_off(1), "10s");
        assert_eq!(back_off(2), "20s");
        assert_eq!(back_off(4), "1m20s");
        assert_eq!(back_off(30), "5m0s");
    }
}
