#!/usr/bin/env python3
"""Detection quality on real metrics: the NAB series in bench/data/nab through the running
ai-engine's HTTP API, next to scikit-learn's IsolationForest on the same windows.

Each series is sent as a Prometheus feed would send it: sliding windows of 5 points, in time
order, one `POST /api/v1/detect-anomaly` each, labelled {"namespace": "nab", "deployment":
<series>} and typed by what the series measures (CPU and temperature as cpu_usage, latency as
response_time, request counts and network bytes as request_rate). The series go one after the
other into one ai-engine with a fresh database, so each is scored by whatever the engine has
learned so far, exactly as in production.

A window is positive when its last point lies inside a labelled NAB anomaly window. The first
15 % of each series' windows is probation (the engine and the reference learn from it) and is
left out of the ROC AUC. The score is the answer's `anomaly_score`.

The ceiling: the "causal oracle" scores 1 from each labelled anomaly to the end of its label
window and 0 elsewhere. Label windows are centred on the anomaly, so a detector that only sees
the past cannot rank the windows before it; the oracle's AUC is the best such a detector can
reach on this protocol.

The reference: scikit-learn's IsolationForest(n_estimators=100, random_state=42) on the
window's seven statistics (max, mean, median, min, rate of change, standard deviation, trend:
what the engine computes per metric type), fitted on the probation windows and scoring the rest.

Usage (bench/nab-quality.sh starts the ai-engine and calls this):
    python3 bench/nab_quality.py AI_ENGINE_URL [API_KEY] > results.json
Prints a table on stderr and the figures as JSON on stdout.
"""

import csv
import json
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

from sklearn_reference import ensure_venv

HERE = Path(__file__).resolve().parent
NAB = HERE / "data" / "nab"
WINDOW = 5
PROBATION = 0.15


def metric_type(name: str) -> str:
    if "latency" in name:
        return "response_time"
    if "request_count" in name or "network" in name:
        return "request_rate"
    return "cpu_usage"


def series() -> list[tuple[str, list[tuple[str, float]], list[tuple[str, str]], list[str]]]:
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    labels = json.loads((NAB / "labels" / "combined_labels.json").read_text())
    out = []
    for group in sorted((NAB / "data").iterdir()):
        for path in sorted(group.glob("*.csv")):
            key = f"{group.name}/{path.name}"
            with path.open() as f:
                rows = [(r["timestamp"], float(r["value"])) for r in csv.DictReader(f)]
            out.append((key, rows, [tuple(w) for w in windows.get(key, [])], labels.get(key, [])))
    return out


def parse(t: str) -> datetime:
    return datetime.fromisoformat(t.split(".")[0])


def oracle(t: str, windows: list[tuple[str, str]], points: list[str]) -> float:
    """The causal oracle: 1 from a labelled anomaly to the end of the label window holding it.
    No detector that sees only the past can do better on the windows' first halves."""
    at = parse(t)
    return float(
        any(
            parse(a) <= parse(p) <= at <= parse(b)
            for a, b in windows
            for p in points
            if parse(a) <= parse(p) <= parse(b)
        )
    )


def to_iso(t: str) -> str:
    return datetime.fromisoformat(t.split(".")[0]).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_windows(t: str, windows: list[tuple[str, str]]) -> bool:
    at = datetime.fromisoformat(t.split(".")[0])
    return any(
        datetime.fromisoformat(a.split(".")[0]) <= at <= datetime.fromisoformat(b.split(".")[0])
        for a, b in windows
    )


def stats(v: list[float]) -> list[float]:
    import numpy as np

    a = np.asarray(v)
    n = len(a)
    x = np.arange(n)
    slope = float(np.polyfit(x, a, 1)[0]) if n > 2 else 0.0
    return [a.max(), a.mean(), float(np.median(a)), a.min(), (a[-1] - a[0]) / n, a.std(), slope]


def detect(url: str, key: str | None, body: dict) -> float:
    req = urllib.request.Request(
        f"{url}/api/v1/detect-anomaly",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **({"X-API-Key": key} if key else {})},
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return float(json.load(res)["anomaly_score"])


def main() -> None:
    import numpy as np
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    url = sys.argv[1].rstrip("/")
    key = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
    results = []
    for name, rows, windows, points in series():
        ty = metric_type(name)
        label = name.split("/")[-1].removesuffix(".csv").replace("_", "-")[:63].strip("-")
        ours, truth, feats, best = [], [], [], []
        for end in range(WINDOW, len(rows) + 1):
            window = rows[end - WINDOW : end]
            body = {
                "metrics": [
                    {
                        "metric_type": ty,
                        "value": v,
                        "timestamp": to_iso(t),
                        "labels": {"namespace": "nab", "deployment": label},
                    }
                    for t, v in window
                ]
            }
            ours.append(detect(url, key, body))
            truth.append(in_windows(window[-1][0], windows))
            feats.append(stats([v for _, v in window]))
            best.append(oracle(window[-1][0], windows, points))
        start = int(len(ours) * PROBATION)
        y = np.asarray(truth[start:])
        reference = IsolationForest(n_estimators=100, random_state=42).fit(np.asarray(feats[:start]))
        theirs = -reference.score_samples(np.asarray(feats[start:]))
        row = {
            "series": name,
            "windows": len(ours),
            "positives": int(y.sum()),
            "aegis_auc": float(roc_auc_score(y, ours[start:])) if 0 < y.sum() < len(y) else None,
            "sklearn_auc": float(roc_auc_score(y, theirs)) if 0 < y.sum() < len(y) else None,
            "oracle_auc": float(roc_auc_score(y, best[start:])) if 0 < y.sum() < len(y) else None,
        }
        results.append(row)
        print(
            f"{name:<58} {row['windows']:>6} windows {row['positives']:>5} positive  "
            f"Aegis {row['aegis_auc']:.3f}  scikit-learn {row['sklearn_auc']:.3f}  "
            f"causal oracle {row['oracle_auc']:.3f}",
            file=sys.stderr,
        )
    scored = [r for r in results if r["aegis_auc"] is not None]
    summary = {
        "series": results,
        "aegis_mean_auc": sum(r["aegis_auc"] for r in scored) / len(scored),
        "aegis_min_auc": min(r["aegis_auc"] for r in scored),
        "sklearn_mean_auc": sum(r["sklearn_auc"] for r in scored) / len(scored),
        "oracle_mean_auc": sum(r["oracle_auc"] for r in scored) / len(scored),
    }
    print(
        f"mean ROC AUC over {len(scored)} series: Aegis {summary['aegis_mean_auc']:.3f} "
        f"(lowest {summary['aegis_min_auc']:.3f}), scikit-learn {summary['sklearn_mean_auc']:.3f}, "
        f"causal oracle {summary['oracle_mean_auc']:.3f}",
        file=sys.stderr,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    ensure_venv(__file__)
    main()
