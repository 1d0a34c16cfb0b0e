"""Measured ONNX Runtime latency of a model before and after ``explorer prune``, interleaved.

    taskset -c 1 python benchmarks/prune_latency.py BEFORE.pt AFTER.pt --rounds 10 --runs 100

``explorer prune`` times the two models one after the other, once each; on a shared machine
the clock drifts between the two (other processes, frequency), so its change can be off by
10 points. Here both checkpoints are exported once, both sessions (one intra-op thread) stay
open, and ``--rounds`` alternate ``--runs`` timed calls of each; the report gives each model's
median over all runs, p10/p90, and the median of the per-round after/before ratios (paired,
so slow phases of the machine cancel). Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import search_spaces as ss
from explorer.checkpoints import load_checkpoint
from explorer.export import export_onnx
from explorer.latency._backends import ort_feed, ort_session


def _timings(session, feed, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per model per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    sessions = {}
    with tempfile.TemporaryDirectory(prefix="prune-latency-") as tmp:
        for key, path in (("before", args.before), ("after", args.after)):
            model = load_checkpoint(path).build_model()
            inputs = ss.example_inputs(model.input_spec, 1)
            onnx = export_onnx(model, inputs, Path(tmp) / f"{key}.onnx")
            session = ort_session(onnx.path, threads=1)
            feed = ort_feed(session, inputs)
            _timings(session, feed, args.warmup)
            sessions[key] = (session, feed)
        times: dict[str, list[float]] = {"before": [], "after": []}
        ratios = []
        for _ in range(args.rounds):
            medians = {}
            for key, (session, feed) in sessions.items():
                t = _timings(session, feed, args.runs)
                times[key] += t
                medians[key] = statistics.median(t)
            ratios.append(medians["after"] / medians["before"])

    def summary(values: list[float]) -> dict[str, float]:
        a = np.asarray(values)
        return {
            "median_ms": float(np.median(a)),
            "p10_ms": float(np.percentile(a, 10)),
            "p90_ms": float(np.percentile(a, 90)),
        }

    report = {
        "before": {"checkpoint": str(args.before), **summary(times["before"])},
        "after": {"checkpoint": str(args.after), **summary(times["after"])},
        "paired_ratio_median": float(np.median(ratios)),
        "paired_ratio_min": float(min(ratios)),
        "paired_ratio_max": float(max(ratios)),
        "rounds": args.rounds,
        "runs_per_round": args.runs,
        "threads": 1,
        "machine": platform.processor() or platform.machine(),
    }
    print(f"{'':8} {'median ms':>10} {'p10':>8} {'p90':>8}")
    for key in ("before", "after"):
        r = report[key]
        print(f"{key:8} {r['median_ms']:10.3f} {r['p10_ms']:8.3f} {r['p90_ms']:8.3f}")
    print(
        f"after/before (paired, median of {args.rounds} rounds): "
        f"{report['paired_ratio_median']:.3f} "
        f"[{report['paired_ratio_min']:.3f} .. {report['paired_ratio_max']:.3f}]"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
