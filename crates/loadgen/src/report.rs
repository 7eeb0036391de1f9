//! `report`: the summary table of one results directory, each scenario also as a fraction of
//! the `ceiling-ping` run at the same concurrency.

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::Context as _;
use serde_json::Value;

use crate::args::Args;

fn f(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Runs the `report` command: prints a Markdown table and writes `summary.md` next to the
/// results.
pub fn run(argv: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(argv)?;
    let dir = args.path("dir")?;
    let mut results = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.ends_with(".json") || name.ends_with(".wrk.json") || name == "stack.json" {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        if let Ok(v) = serde_json::from_str::<Value>(&text)
            && v.get("scenario").is_some()
        {
            results.push(v);
        }
    }
    let ceiling: BTreeMap<u64, f64> = results
        .iter()
        .filter(|r| r["scenario"] == "ceiling-ping")
        .map(|r| (r["concurrency"].as_u64().unwrap_or(0), f(r, "/rps")))
        .collect();
    let order = [
        "ceiling-ping",
        "evaluate-hit",
        "evaluate-miss",
        "login",
        "detect-anomaly",
        "detect-failure",
        "execute-dry-run",
        "loop",
        "loop-paced",
    ];
    results.sort_by_key(|r| {
        let s = r["scenario"].as_str().unwrap_or_default();
        (
            order.iter().position(|o| *o == s).unwrap_or(order.len()),
            s.to_owned(),
            r["concurrency"].as_u64().unwrap_or(0),
        )
    });
    let mut out = String::new();
    out.push_str("| scenario | c | req/s | p50 ms | p99 ms | 2xx | 409 | 429 | other | CPU ms/req (service / all) | peak RSS MiB (service) | of ceiling |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        let c = r["concurrency"].as_u64().unwrap_or(0);
        let service = r["service"].as_str().unwrap_or_default();
        let rps = f(r, "/rps");
        let frac = ceiling
            .get(&c)
            .filter(|x| **x > 0.0)
            .map_or_else(|| "-".to_owned(), |x| format!("{:.1} %", rps / x * 100.0));
        let other = f(r, "/responses/other_non_2xx") + f(r, "/socket_errors");
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {:.3} / {:.3} | {:.1} ({}) | {} |",
            r["scenario"].as_str().unwrap_or_default(),
            c,
            rps,
            f(r, "/latency_ms/p50"),
            f(r, "/latency_ms/p99"),
            f(r, "/responses/2xx"),
            f(r, "/responses/409"),
            f(r, "/responses/429"),
            other,
            f(r, "/cpu_ms_per_request/service"),
            f(r, "/cpu_ms_per_request/all_services"),
            r.pointer(&format!("/proc/peak_rss_mib/{service}"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            service,
            frac,
        );
    }
    let loops: Vec<&Value> = results
        .iter()
        .filter(|r| r["extra"].get("loops_completed").is_some())
        .collect();
    if !loops.is_empty() {
        out.push_str("\n| loop run | c | paced rate/s | signals | loops | loop p50 ms | loop p99 ms | within 20 ms | drain s |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for r in loops {
            let ms = |p: &str| {
                r.pointer(p)
                    .and_then(Value::as_f64)
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} % | {:.1} |",
                r["scenario"].as_str().unwrap_or_default(),
                r["concurrency"].as_u64().unwrap_or(0),
                f(r, "/extra/paced_rate_per_s"),
                f(r, "/requests"),
                f(r, "/extra/loops_completed"),
                ms("/extra/loop_ms/p50"),
                ms("/extra/loop_ms/p99"),
                f(r, "/extra/loop_share_within_20ms") * 100.0,
                f(r, "/extra/drain_after_last_signal_s"),
            );
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("stack.json"))
        && let Ok(state) = serde_json::from_str::<Value>(&text)
        && let Some(idle) = state["idle_rss_mib"].as_object()
    {
        out.push_str("\nIdle RSS after start-up (MiB):");
        for (name, mib) in idle {
            let _ = write!(out, " {name} {:.1};", mib.as_f64().unwrap_or(0.0));
        }
        out.push('\n');
    }
    print!("{out}");
    std::fs::write(dir.join("summary.md"), &out)?;
    Ok(())
}
