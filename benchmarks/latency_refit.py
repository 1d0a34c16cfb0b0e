"""Refit the learned latency model on recorded measurements and score it, without measuring.

    python benchmarks/latency_prediction.py --record run.json.gz   # measure once, keep it all
    python benchmarks/latency_refit.py run.json.gz [more.json.gz]  # refit and score, seconds

On a shared VM a benchmark run's score moves by several points from run to run with the same
code (the machine's speed between calibrating and measuring), more than most changes to the
fit are worth. A recorded run (``--record``) keeps what the fit and the score need: every
calibration network's optimised graph, profiled node times and whole time, and every held-out
network's graph and speed-normalised time. This script refits the current code's kernel model
on those samples (``fit_samples``, as ``explorer calibrate`` does) and scores it against the
same held-out times, so two versions of the fit are compared on the same measurements. It also
prints how far the refit is from the model the run itself fitted (0 when the fit is unchanged:
the fit is deterministic).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explorer.latency._host_learned import fit_samples
from explorer.latency._kernels import KernelGraph, KernelNode
from explorer.latency._learned import _MIN_NETWORK_NODES, KernelModel
from explorer.latency._sampling import KernelSample

FORMAT = "explorer-latency-data"
VERSION = 1


def write_data(
    path: str | Path,
    *,
    samples: Sequence[KernelSample],
    meta: dict[str, Any],
    held_out: Sequence[dict[str, Any]],
    environment: dict[str, Any],
) -> Path:
    """Write a run's calibration samples and held-out networks (``held_out``: dicts with
    ``name``, ``family``, ``graph`` (a ``KernelGraph``), ``paced_ms``, ``learned_ms``) as
    gzip-compressed JSON."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta,
        "environment": environment,
        "samples": [
            {
                "name": s.name,
                "graph": s.graph.to_dict(),
                "nodes": [n.to_dict() for n, _ in s.nodes],
                "node_us": [us for _, us in s.nodes],
                "measured_ms": s.measured_ms,
                "slowdown": s.slowdown,
                "reference_ms": s.reference_ms,
            }
            for s in samples
        ],
        "held_out": [h | {"graph": h["graph"].to_dict()} for h in held_out],
    }
    path = Path(path)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"), default=str)
    return path


def read_data(path: str | Path) -> tuple[list[KernelSample], dict[str, Any], list[dict]]:
    """(calibration samples, the run's kernel-model meta data, held-out networks with their
    ``KernelGraph``) from a file ``write_data`` wrote."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        sys.exit(f"{path}: not an {FORMAT} file of version {VERSION}")
    samples = [
        KernelSample(
            name=s["name"],
            graph=KernelGraph.from_dict(s["graph"]),
            nodes=tuple(
                (KernelNode.from_dict(n), us)
                for n, us in zip(s["nodes"], s["node_us"], strict=True)
            ),
            measured_ms=s["measured_ms"],
            slowdown=s["slowdown"],
            reference_ms=s["reference_ms"],
        )
        for s in data["samples"]
    ]
    held_out = [h | {"graph": KernelGraph.from_dict(h["graph"])} for h in data["held_out"]]
    return samples, data["meta"], held_out


def own_nodes_ratio(model: KernelModel, sample: KernelSample) -> float:
    """``sample``'s whole time as the fitted per-inference terms make it from its own profiled
    node times (no regressor involved), over the whole time it measured."""
    own_us = model.whole_us(sum(us for _, us in sample.nodes), len(sample.nodes))
    return own_us / (sample.measured_ms * 1e3)


def score(path: str | Path) -> dict[str, Any]:
    """Refit on the samples recorded at ``path`` and score the held-out networks."""
    from latency_prediction import metrics

    samples, meta, held_out = read_data(path)
    model = fit_samples(samples, threads=int(meta.get("threads", 1)), source="refit", meta={})
    predicted = np.array([model.predict_ms(h["graph"]) for h in held_out])
    measured = np.array([h["paced_ms"] for h in held_out])
    recorded = np.array([h["learned_ms"] for h in held_out])
    ratio = predicted / measured
    ranges = [model.stated_range(ms) for ms in predicted]
    inside = [lo <= m <= hi for (lo, hi), m in zip(ranges, measured, strict=True)]
    # what the samples themselves allow: each calibration network's whole time from its own
    # profiled node times through the fitted per-inference terms (no regressor involved); its
    # two timings are 0.1 s each, moments apart, on a machine whose runs scatter by 10-20 %
    own = np.array(
        [own_nodes_ratio(model, s) for s in samples if len(s.nodes) >= _MIN_NETWORK_NODES]
    )
    families = sorted({h["family"] for h in held_out})
    groups = {"all": np.ones(len(held_out), dtype=bool)} | {
        f: np.array([h["family"] == f for h in held_out]) for f in families
    }
    return {
        "file": str(path),
        "networks": len(samples),
        "speed_scatter": meta.get("speed_scatter"),
        "groups": {
            g: metrics(measured[m], predicted[m]) | {"n": int(m.sum())} for g, m in groups.items()
        },
        "bias": float(np.median(ratio) - 1),
        # the range every prediction states (``KernelModel.stated_range``, as ``explorer
        # profile`` gives it): how often the measured time lies inside
        "range_pct": float(model.meta["range_pct"]),
        "in_range": float(np.mean(inside)),
        "own_nodes": {
            "networks": len(own),
            "within_10pct": float(np.mean(np.abs(own - 1) <= 0.10)),
            "mdape_pct": float(np.median(np.abs(own - 1)) * 100),
        },
        "refit_vs_recorded": float(np.max(np.abs(predicted / recorded - 1))),
        "misses": sorted(
            (round(float(r - 1), 3), h["name"])
            for r, h in zip(ratio, held_out, strict=True)
            if abs(r - 1) > 0.10
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="+", help="files written by latency_prediction.py --record")
    ap.add_argument("--out", default=None, help="also write the scores as JSON here")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    results = []
    for path in args.data:
        r = score(path)
        results.append(r)
        print(
            f"{r['file']}: {r['networks']} calibration networks, speed scatter "
            f"±{(r['speed_scatter'] or 0):.1%}; refit differs from the recorded model by up "
            f"to {r['refit_vs_recorded']:.1%}; bias {r['bias']:+.1%}"
        )
        for group, m in r["groups"].items():
            print(
                f"  {group:10s} {m['n']:3d} | ±10% {m['within_10pct']:4.0%}  ±20% "
                f"{m['within_20pct']:4.0%}  MdAPE {m['mdape_pct']:4.1f}%  rho {m['spearman']:.3f}"
            )
        print(f"  the stated range ±{r['range_pct']:.1f} % holds for {r['in_range']:.0%}")
        print("  outside ±10 %: " + ", ".join(f"{n} {e:+.0%}" for e, n in r["misses"]))
        own = r["own_nodes"]
        print(
            f"  the calibration's {own['networks']} networks of {_MIN_NETWORK_NODES}+ nodes, "
            f"whole time from their own profiled nodes: ±10% {own['within_10pct']:.0%}  "
            f"MdAPE {own['mdape_pct']:.1f}% (what the samples' own timings leave)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
