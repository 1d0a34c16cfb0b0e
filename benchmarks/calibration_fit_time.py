"""How long do the calibration's fits take, against the nodes sampled? (``fit_reserve``'s law)

    taskset -c 1 python benchmarks/calibration_fit_time.py [--time 150s] [--out FILE.json]

Samples networks as ``explorer calibrate`` does for ``--time``, then fits the kernel model (as
calibrate fits it: every kind cross-validated, the out-of-fold per-inference terms) on the
first 5, 10, 20, ... networks and times each fit. Prints the seconds against the nodes and
what ``fit_reserve`` keeps back for each fit on this machine (less its tail for the files):
it must be above every measured time. The constants of ``fit_reserve`` (``_FIT_LINES``) are
read off this table on a machine whose reference network reads ``_FIT_AT_MS``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from explorer.cli.calibrate import parse_duration
from explorer.latency._host_learned import _FIT_AT_MS, _FIT_TAIL_S, fit_reserve, fit_samples
from explorer.latency._sampling import collect
from explorer.latency._timing import torch_threads

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results

PREFIXES = (5, 10, 20, 40, 80, 160, 320, 640, 1280)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", default="150s", help="sampling time (default 150s)")
    parser.add_argument("--out", default="benchmarks/results/calibration_fit_time.json")
    args = parser.parse_args()
    with torch_threads(1):
        samples, readings = collect(budget_s=parse_duration(args.time), threads=1)
    reference_ms = statistics.median(ms for _, ms in readings)
    print(f"{len(samples)} networks sampled; the reference network read {reference_ms:.4f} ms")
    rows = []
    for k in [p for p in PREFIXES if p < len(samples)] + [len(samples)]:
        part = samples[:k]
        nodes = sum(len(s.nodes) for s in part)
        start = time.perf_counter()
        fit_samples(part, threads=1, source="benchmark", meta={})
        seconds = time.perf_counter() - start
        kept = fit_reserve(nodes, reference_ms) - _FIT_TAIL_S
        rows.append({"networks": k, "nodes": nodes, "fit_s": seconds, "reserve_s": kept})
        print(f"  {k:5d} networks {nodes:6d} nodes: fit {seconds:6.2f} s, kept {kept:6.2f} s")
    least = min(r["reserve_s"] / r["fit_s"] for r in rows)
    print(f"the least time kept over the fit's time: {least:.2f} (must be above 1)")
    write_results(
        Path(args.out),
        {
            "reference_ms": reference_ms,
            "rows": rows,
            "least_kept_over_fit": least,
            "fit_at_ms": _FIT_AT_MS,
        },
    )


if __name__ == "__main__":
    main()
