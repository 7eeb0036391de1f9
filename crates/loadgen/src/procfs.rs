//! CPU time and memory of the service processes, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status`, around one load run.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};

/// utime + stime of a process in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm*` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when that fails).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What the services used during one run.
#[derive(Debug, Clone, Default)]
pub struct ProcReport {
    /// CPU seconds (user + system) per service.
    pub cpu_seconds: BTreeMap<String, f64>,
    /// Highest sampled VmRSS (every 50 ms) per service, MiB.
    pub peak_rss_mib: BTreeMap<String, f64>,
    /// VmHWM (peak since start) per service after the run, MiB.
    pub hwm_mib: BTreeMap<String, f64>,
}

impl ProcReport {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "cpu_seconds": self.cpu_seconds,
            "peak_rss_mib": self.peak_rss_mib,
            "vmhwm_mib": self.hwm_mib,
        })
    }
}

/// Runs `fut` while sampling the processes in `pids`.
pub async fn measured<F: Future>(pids: &BTreeMap<String, u32>, fut: F) -> (F::Output, ProcReport) {
    let before: BTreeMap<String, u64> = pids
        .iter()
        .filter_map(|(n, p)| cpu_ticks(*p).map(|t| (n.clone(), t)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            let mut peak: BTreeMap<String, u64> = BTreeMap::new();
            while !stop.load(Ordering::Relaxed) {
                for (name, pid) in &pids {
                    if let Some(kib) = status_kib(*pid, "VmRSS") {
                        let e = peak.entry(name.clone()).or_default();
                        *e = (*e).max(kib);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let out = fut.await;
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap_or_default();
    let hz = clock_ticks();
    let mut report = ProcReport::default();
    for (name, pid) in pids {
        if let (Some(b), Some(a)) = (before.get(name), cpu_ticks(*pid)) {
            report
                .cpu_seconds
                .insert(name.clone(), a.saturating_sub(*b) as f64 / hz);
        }
        if let Some(kib) = peak.get(name) {
            report
                .peak_rss_mib
                .insert(name.clone(), *kib as f64 / 1024.0);
        }
        if let Some(kib) = status_kib(*pid, "VmHWM") {
            report.hwm_mib.insert(name.clone(), kib as f64 / 1024.0);
        }
    }
    (out, report)
}
