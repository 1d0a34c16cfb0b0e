"""Search efficiency: hypervolume of the front after 10, 20, 40 trials, per sampler and fidelity.

Each (sampler, fidelity, seed) runs its own study on the same data, budget and epochs; the
front after the first k evaluated candidates (within or over budget; configs a family rejects
are not counted) is built from the fully trained ones, as the search's own front is, and
scored by its 2-D hypervolume in (macro-F1 up, cost down), the cost normalised by a reference
common to every run (the largest cost of any fully trained trial in any run), so the figures
compare across samplers, fidelities and seeds. Samplers: screen (random candidates priced
before training, the one with the largest expected hypervolume gain trained), nsga2, tpe
(Optuna's multi-objective TPE), gp (Optuna's Gaussian-process sampler, several objectives and
constraints), random.
Fidelities: ``sh`` (successive halving, the search's default) and ``full`` (every candidate
trains every epoch). The confirmation stage is off (it does not change which trials were
drawn). Slow: it trains; every run shares one feature cache.

    .venv/bin/python benchmarks/search_efficiency.py --trials 40 --seeds 0,1,2 \
        --samplers screen,random,nsga2,tpe,gp --fidelities sh,full      # the full comparison
    nice .venv/bin/python benchmarks/search_efficiency.py --trials 20 --seeds 0,1,2 \
        --epochs 3 --min-epochs 1 --dataset synthetic:actors=6,clips_per_class=2,clip_seconds=1
                                                                 # a cheap one

Prints a table and writes JSON (``--out``, default benchmarks/results/search_efficiency.json).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from explorer.budget import parse_budget
from explorer.search import SearchConfig, TrialKey, run_search
from explorer.search._settings import SEARCH_DATASET

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results  # a script beside this one


def hypervolume_2d(
    points: list[tuple[float, float]], *, cost_ref: float, cost_min: float | None = None
) -> float:
    """Area dominated by ``points`` (macro-F1, cost) above F1 0 and below ``cost_ref``,
    with cost divided by ``cost_ref`` (so the result lies in [0, 1]); with ``cost_min``, on a
    log cost axis from ``cost_min`` (0) to ``cost_ref`` (1) instead, as the Pareto chart draws
    it: latencies span decades, and on a linear axis the cheapest good point decides nearly
    all of the area."""

    def scaled(c: float) -> float:
        if cost_min is None:
            return c / cost_ref
        return math.log(c / cost_min) / math.log(cost_ref / cost_min)

    pts = sorted((scaled(c), f) for f, c in points if c <= cost_ref and f > 0)
    area, best_f = 0.0, 0.0
    # sweep by increasing cost: each point adds the strip between the best F1 so far and its own
    for c, f in pts:
        if f > best_f:
            area += (1.0 - c) * (f - best_f)
            best_f = f
    return area


def evaluated(study: optuna.Study) -> list[dict[str, Any]]:
    """The evaluated candidates in the order they were created: macro-F1 and cost, whether
    fully trained (a front member may only be that), training seconds."""
    out = []
    for t in sorted(study.trials, key=lambda t: t.number):
        a = t.user_attrs
        invalid = a.get(TrialKey.REASON, "").startswith("invalid")
        if t.state != optuna.trial.TrialState.COMPLETE or invalid:
            continue
        out.append(
            {
                "family": a.get(TrialKey.FAMILY, ""),
                "f1": float(t.values[0]),
                "cost": float(t.values[1]),
                "full": a.get(TrialKey.MACRO_F1) is not None and not a.get(TrialKey.STOPPED_EARLY),
                "train_seconds": float(a.get(TrialKey.TRAIN_SECONDS) or 0.0),
            }
        )
    return out


def hypervolume_at(
    run: list[dict[str, Any]], k: int, *, cost_ref: float, cost_min: float | None = None
) -> float | None:
    """Hypervolume of the fully trained among the first ``k`` candidates (None: fewer ran)."""
    if len(run) < k:
        return None
    points = [(e["f1"], e["cost"]) for e in run[:k] if e["full"]]
    return hypervolume_2d(points, cost_ref=cost_ref, cost_min=cost_min)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="orin-nano")
    p.add_argument("--budget", action="append", default=None, help="default: 1e9flops")
    p.add_argument("--families", default="", help="comma-separated (default: all + hybrid)")
    p.add_argument("--trials", type=int, default=40, help="evaluated candidates per run")
    p.add_argument("--at", default="10,20,40", help="candidate counts the hypervolume is taken at")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--samplers", default="screen,random,nsga2,tpe,gp")
    p.add_argument("--fidelities", default="sh", help="sh (successive halving), full, or both")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--min-epochs", type=int, default=5, help="first rung of successive halving")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--dataset", default=SEARCH_DATASET)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/search_efficiency.json"))
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="summarise the runs stored in these JSON files (e.g. one per sampler, run in "
        "parallel) into --out, training nothing",
    )
    args = p.parse_args(argv)
    if args.merge:
        return _merge(args)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    fidelities = [s.strip() for s in args.fidelities.split(",") if s.strip()]
    ats = [int(a) for a in args.at.split(",") if a.strip() and int(a) <= args.trials]
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    budgets = tuple(parse_budget(b) for b in (args.budget or ["1e9flops"]))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="search-efficiency-") as tmp:
        for seed in seeds:
            for fidelity in fidelities:
                for sampler in samplers:
                    name = f"{sampler}-{fidelity}-{seed}"
                    config = SearchConfig(
                        device=args.device,
                        budgets=budgets,
                        families=families,
                        trials=args.trials,
                        sampler=sampler,
                        seed=seed,
                        epochs=args.epochs,
                        min_epochs=args.min_epochs if fidelity == "sh" else args.epochs,
                        population=args.population,
                        dataset=args.dataset,
                        study=name,
                        out_dir=Path(tmp) / name,
                        reference_presets=False,
                        confirm_seeds=0,
                    )
                    start = time.perf_counter()
                    result = run_search(config, write_report=False)
                    study = optuna.load_study(study_name=config.study, storage=config.storage_url)
                    runs.append(
                        {
                            "sampler": sampler,
                            "fidelity": fidelity,
                            "seed": seed,
                            "evaluated": evaluated(study),
                            "counts": result.counts,
                            "seconds": time.perf_counter() - start,
                        }
                    )
                    print(
                        f"{name}: {result.counts} in {runs[-1]['seconds']:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                    _report(runs, args, samplers, fidelities, ats, final=False)
                    if result.stopped == "interrupted":  # Ctrl-C / SIGTERM: keep what ran
                        return (
                            0 if _report(runs, args, samplers, fidelities, ats, final=True) else 1
                        )
    return 0 if _report(runs, args, samplers, fidelities, ats, final=True) else 1


def _merge(args: argparse.Namespace) -> int:
    """Summarise the ``runs`` of earlier outputs under one cost reference."""
    runs: list[dict[str, Any]] = []
    for path in args.merge:
        runs += json.loads(path.read_text())["runs"]
    samplers = list(dict.fromkeys(r["sampler"] for r in runs))
    fidelities = list(dict.fromkeys(r["fidelity"] for r in runs))
    ats = [int(a) for a in args.at.split(",") if a.strip()]
    args.merge = [str(path) for path in args.merge]
    return 0 if _report(runs, args, samplers, fidelities, ats, final=True) else 1


def _report(
    runs: list[dict[str, Any]],
    args: argparse.Namespace,
    samplers: list[str],
    fidelities: list[str],
    ats: list[int],
    *,
    final: bool,
) -> bool:
    """Summarise the runs so far, print the table when ``final``, write the JSON (after every
    run, so an interrupted benchmark keeps what it measured); False when nothing trained."""
    all_costs = [e["cost"] for r in runs for e in r["evaluated"] if e["full"]]
    if not all_costs:
        print("no trial was trained: loosen the budget", file=sys.stderr)
        return False
    cost_ref, cost_min = max(all_costs), min(all_costs)
    for r in runs:
        r["hypervolume_at"] = {k: hypervolume_at(r["evaluated"], k, cost_ref=cost_ref) for k in ats}
        r["log_hypervolume_at"] = {
            k: hypervolume_at(r["evaluated"], k, cost_ref=cost_ref, cost_min=cost_min) for k in ats
        }
        r["train_seconds"] = sum(e["train_seconds"] for e in r["evaluated"])
        r["best_macro_f1"] = max((e["f1"] for e in r["evaluated"] if e["full"]), default=0.0)
    summary: dict[str, Any] = {}
    out = print if final else (lambda *a, **k: None)
    titles = {
        "hypervolume_at": f"cost normalised by {cost_ref:.4g}",
        "log_hypervolume_at": f"log cost from {cost_min:.4g} to {cost_ref:.4g}",
    }
    for metric, title in titles.items():
        prefix = "" if metric == "hypervolume_at" else "log_"
        out(f"\nhypervolume after k candidates ({title}; higher is better)")
        head = " ".join(f"{'HV@' + str(k):>15}" for k in ats)
        out(f"{'sampler':>8} {'fidelity':>8} {'seeds':>5} {head} {'best F1':>8} {'train s':>8}")
        for fidelity in fidelities:
            for sampler in samplers:
                rs = [r for r in runs if r["sampler"] == sampler and r["fidelity"] == fidelity]
                if not rs:
                    continue
                row = summary.setdefault(f"{sampler}/{fidelity}", {"seeds": len(rs)})
                cells = []
                for k in ats:
                    hv = [r[metric][k] for r in rs if r[metric][k] is not None]
                    if hv:
                        mean, sd = _mean_sd(hv)
                        row[f"{prefix}hv_at_{k}"] = {"mean": mean, "sd": sd, "runs": len(hv)}
                        cells.append(f"{mean:.3f} ± {sd:.3f}".rjust(15))
                    else:
                        cells.append(f"{'-':>15}")
                row["best_macro_f1_mean"] = statistics.fmean(r["best_macro_f1"] for r in rs)
                row["train_seconds_mean"] = statistics.fmean(r["train_seconds"] for r in rs)
                row["seconds_mean"] = statistics.fmean(r["seconds"] for r in rs)
                out(
                    f"{sampler:>8} {fidelity:>8} {len(rs):>5} {' '.join(cells)} "
                    f"{row['best_macro_f1_mean']:>8.3f} {row['train_seconds_mean']:>8.0f}"
                )
    write_results(
        args.out,
        {
            "benchmark": "search_efficiency",
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "cost_reference": cost_ref,
            "cost_minimum": cost_min,
            "summary": summary,
            "runs": runs,
        },
    )
    if final:
        print(f"\nwrote {args.out}")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
