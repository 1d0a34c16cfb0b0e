"""Which regressor predicts ONNX Runtime's per-node times best? (the choice behind calibrate)

    python benchmarks/kernel_regressors.py [--time 90s] [--out FILE.json]

Samples kernels as ``explorer calibrate`` does for ``--time``, then scores, per kernel kind
and by 3-fold cross-validation on the same folds, the median absolute percentage error of:
a ridge regression on log features ("linear"), the roofline-shaped base ``c0 + c1 FLOPs +
c2 bytes`` ("roofline"), LightGBM trees on log features ("lightgbm"), the base times
LightGBM on its residual ("roofline+lightgbm", what calibrate uses where it wins), and
scikit-learn's HistGradientBoostingRegressor and GradientBoostingRegressor on log features
(when scikit-learn is installed). Also the error on whole held-out calibration networks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from explorer.cli.calibrate import parse_duration
from explorer.latency._learned import _fit_method, features
from explorer.latency._sampling import collect


def _sklearn(name: str):
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    if name == "sklearn-hgb":
        return HistGradientBoostingRegressor(max_iter=200, min_samples_leaf=3, random_state=0)
    return GradientBoostingRegressor(n_estimators=200, max_depth=3, random_state=0)


def score(x: np.ndarray, y: np.ndarray, method: str) -> float:
    folds = np.random.default_rng(0).permutation(len(y)) % 3
    errors = []
    for k in range(3):
        train, test = folds != k, folds == k
        if method.startswith("sklearn"):
            pred = _sklearn(method).fit(x[train], y[train]).predict(x[test])
        else:
            own = method.replace("lightgbm", "trees")
            pred = _fit_method("k", own, x[train], y[train], 0).predict_log(x[test])
        errors.append(np.abs(np.expm1(pred - y[test])))
    return float(np.median(np.concatenate(errors)) * 100)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time", default="90s")
    ap.add_argument("--out", default="benchmarks/results/kernel_regressors.json")
    args = ap.parse_args()
    start = time.perf_counter()
    samples, _readings = collect(budget_s=parse_duration(args.time))
    nodes = [nt for s in samples for nt in s.nodes]
    x = features([n for n, _ in nodes])
    y = np.log([max(t, 0.05) for _, t in nodes])
    kinds = np.array([n.kind for n, _ in nodes])
    methods = ["linear", "roofline", "lightgbm", "roofline+lightgbm"]
    try:
        import sklearn  # noqa: F401

        methods += ["sklearn-hgb", "sklearn-gbr"]
    except ImportError:
        print("scikit-learn not installed: its regressors are skipped", file=sys.stderr)
    table = {}
    print(f"{len(samples)} networks, {len(nodes)} nodes; CV MdAPE % per kind (lower is better)")
    print(f"{'kind':14s} {'n':>5s} " + " ".join(f"{m:>18s}" for m in methods))
    for kind in sorted(set(kinds.tolist())):
        rows = kinds == kind
        if rows.sum() < 30:
            continue
        table[kind] = {m: score(x[rows], y[rows], m) for m in methods}
        cells = " ".join(f"{table[kind][m]:18.1f}" for m in methods)
        print(f"{kind:14s} {int(rows.sum()):5d} {cells}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "networks": len(samples),
        "nodes": len(nodes),
        "mdape_pct": table,
        "seconds": time.perf_counter() - start,
    }
    out.write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
