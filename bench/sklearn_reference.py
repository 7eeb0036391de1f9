#!/usr/bin/env python3
"""scikit-learn reference figures for the Aegis detector benchmarks.

Creates bench/.venv with pinned scikit-learn and numpy on first use, re-runs itself inside it and
measures, on the same data as crates/ai-engine/benches/detector.rs and tests/detector_quality.rs:

- IsolationForest(n_estimators=100, random_state=42): fit on 100k x 8 gaussian, score 1 row,
  score 100k rows, ROC AUC on shuttle (all rows, f1..f9 against `anomaly`);
- RandomForestClassifier(n_estimators=100, random_state=42): fit on the training part of a
  stratified 80/20 shuttle split, accuracy on the rest.

Usage:
    python3 bench/sklearn_reference.py                 # print the figures (JSON on the last line)
    python3 bench/sklearn_reference.py ours.json       # also print ours / scikit-learn ratios

`ours.json` maps the same keys as the output (seconds, or the metric) to our figures, e.g.
{"iforest_fit_100k_s": 0.03, "iforest_score_1_row_s": 2e-5, ...}.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
PINS = ["scikit-learn==1.9.1", "numpy==2.4.6"]


def ensure_venv(script: str = __file__) -> None:
    """Runs `script` again inside bench/.venv (made with PINS on first use), unless it already
    runs there."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        subprocess.check_call([str(python), "-m", "pip", "install", "--quiet", *PINS])
    os.execv(str(python), [str(python), script, *sys.argv[1:]])


def best_of(fn, repeat: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run)."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu)
    return best


def main() -> None:
    import numpy as np
    import sklearn
    from sklearn.ensemble import IsolationForest, RandomForestClassifier
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    out: dict[str, float] = {}
    rng = np.random.default_rng(7)
    x = rng.standard_normal((100_000, 8))

    forest = IsolationForest(n_estimators=100, random_state=42)
    out["iforest_fit_100k_s"], out["iforest_fit_100k_cpu_s"] = best_of(lambda: forest.fit(x), 3)
    out["iforest_score_1_row_s"], _ = best_of(lambda: forest.score_samples(x[:1]), 20)
    out["iforest_score_10_rows_s"], _ = best_of(lambda: forest.score_samples(x[:10]), 20)
    out["iforest_score_100k_s"], out["iforest_score_100k_cpu_s"] = best_of(
        lambda: forest.score_samples(x), 3
    )

    data = np.loadtxt(HERE / "data" / "shuttle.csv.gz", delimiter=",", skiprows=1)
    xs, ys = data[:, :9], data[:, 9].astype(int)
    shuttle_forest = IsolationForest(n_estimators=100, random_state=42).fit(xs)
    out["iforest_shuttle_auc"] = float(roc_auc_score(ys, -shuttle_forest.score_samples(xs)))

    x_tr, x_te, y_tr, y_te = train_test_split(xs, ys, test_size=0.2, stratify=ys, random_state=42)
    rf = RandomForestClassifier(n_estimators=100, random_state=42)
    out["rf_fit_shuttle_s"], out["rf_fit_shuttle_cpu_s"] = best_of(lambda: rf.fit(x_tr, y_tr), 1)
    out["rf_shuttle_accuracy"] = float(accuracy_score(y_te, rf.predict(x_te)))
    out["rf_predict_1_row_s"], _ = best_of(lambda: rf.predict_proba(x_te[:1]), 20)

    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    for key, value in out.items():
        print(f"  {key:<28} {value:.6g}")
    if len(sys.argv) > 1:
        ours = json.loads(Path(sys.argv[1]).read_text())
        print("ours / scikit-learn:")
        for key, value in ours.items():
            if key in out and out[key]:
                print(f"  {key:<28} {value:.6g} / {out[key]:.6g} = {value / out[key]:.4g}")
    print(json.dumps(out))


if __name__ == "__main__":
    ensure_venv()
    main()
