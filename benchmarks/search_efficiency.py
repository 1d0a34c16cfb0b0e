"""Search efficiency: hypervolume of the front after N trained trials, NSGA-II vs random.

Each (sampler, seed) runs its own study on the same data, budget and fidelity; the front after
the first k trained (feasible) trials is scored by its 2-D hypervolume in (macro-F1 up, cost
down), with the cost normalised by a reference common to every run (the largest cost of any
trained trial in any run), so the figures compare across samplers and seeds. Slow: it trains.

    .venv/bin/python benchmarks/search_efficiency.py                      # the full comparison
    .venv/bin/python benchmarks/search_efficiency.py --trials 12 --seeds 0,1 --families ding \\
        --epochs 2 --dataset synthetic:actors=6,clips_per_class=2         # a reduced one

Prints a table and writes JSON (``--out``, default benchmarks/results/search_efficiency.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from explorer.budget import parse_budget
from explorer.environment import environment
from explorer.search import SearchConfig, run_search


def hypervolume_2d(points: list[tuple[float, float]], *, cost_ref: float) -> float:
    """Area dominated by ``points`` (macro-F1, cost) above F1 0 and below ``cost_ref``,
    with cost divided by ``cost_ref`` (so the result lies in [0, 1])."""
    pts = sorted((c / cost_ref, f) for f, c in points if c <= cost_ref and f > 0)
    area, best_f = 0.0, 0.0
    # sweep by increasing cost: each point adds the strip between the best F1 so far and its own
    for c, f in pts:
        if f > best_f:
            area += (1.0 - c) * (f - best_f)
            best_f = f
    return area


def trained_points(study: optuna.Study) -> list[tuple[float, float]]:
    """(macro-F1, cost) of the trained trials, in the order they were created."""
    return [
        (float(t.values[0]), float(t.values[1]))
        for t in sorted(study.trials, key=lambda t: t.number)
        if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("macro_f1") is not None
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="orin-nano")
    p.add_argument("--budget", action="append", default=None, help="default: 1e9flops")
    p.add_argument("--families", default="", help="comma-separated (default: all + hybrid)")
    p.add_argument("--trials", type=int, default=24, help="evaluated candidates per run")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--samplers", default="nsga2,random")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/search_efficiency.json"))
    args = p.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    budgets = tuple(parse_budget(b) for b in (args.budget or ["1e9flops"]))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="search-efficiency-") as tmp:
        for seed in seeds:
            for sampler in samplers:
                config = SearchConfig(
                    device=args.device,
                    budgets=budgets,
                    families=families,
                    trials=args.trials,
                    sampler=sampler,
                    seed=seed,
                    epochs=args.epochs,
                    population=args.population,
                    dataset=args.dataset,
                    study=f"{sampler}-{seed}",
                    out_dir=Path(tmp) / f"{sampler}-{seed}",
                    reference_presets=False,
                )
                start = time.perf_counter()
                result = run_search(config, write_report=False)
                study = optuna.load_study(study_name=config.study, storage=config.storage_url)
                runs.append(
                    {
                        "sampler": sampler,
                        "seed": seed,
                        "points": trained_points(study),
                        "counts": result.counts,
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(
                    f"{sampler:>7} seed {seed}: {result.counts} in {runs[-1]['seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    all_costs = [c for r in runs for _, c in r["points"]]
    if not all_costs:
        print("no trial was trained: loosen the budget", file=sys.stderr)
        return 1
    cost_ref = max(all_costs)
    n_common = min(len(r["points"]) for r in runs)
    for r in runs:
        r["hypervolume_at_n"] = hypervolume_2d(r["points"][:n_common], cost_ref=cost_ref)
        r["hypervolume_all"] = hypervolume_2d(r["points"], cost_ref=cost_ref)
        r["best_macro_f1"] = max((f for f, _ in r["points"]), default=0.0)
    summary = {}
    print(
        f"\nhypervolume after N = {n_common} trained trials (cost normalised by "
        f"{cost_ref:.4g}; higher is better)"
    )
    print(
        f"{'sampler':>8} {'seeds':>5} {'HV@N mean':>10} {'HV@N sd':>8} {'HV all':>8} "
        f"{'trained':>8} {'infeasible':>10} {'best F1':>8} {'s/run':>6}"
    )
    for sampler in samplers:
        rs = [r for r in runs if r["sampler"] == sampler]
        hv = [r["hypervolume_at_n"] for r in rs]
        summary[sampler] = {
            "hypervolume_at_n_mean": statistics.fmean(hv),
            "hypervolume_at_n_sd": statistics.stdev(hv) if len(hv) > 1 else 0.0,
            "hypervolume_all_mean": statistics.fmean(r["hypervolume_all"] for r in rs),
            "trained_mean": statistics.fmean(len(r["points"]) for r in rs),
            "infeasible_mean": statistics.fmean(r["counts"]["infeasible"] for r in rs),
            "best_macro_f1_mean": statistics.fmean(r["best_macro_f1"] for r in rs),
            "seconds_mean": statistics.fmean(r["seconds"] for r in rs),
        }
        s = summary[sampler]
        print(
            f"{sampler:>8} {len(rs):>5} {s['hypervolume_at_n_mean']:>10.4f} "
            f"{s['hypervolume_at_n_sd']:>8.4f} {s['hypervolume_all_mean']:>8.4f} "
            f"{s['trained_mean']:>8.1f} {s['infeasible_mean']:>10.1f} "
            f"{s['best_macro_f1_mean']:>8.3f} {s['seconds_mean']:>6.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "search_efficiency",
                "settings": {
                    k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                },
                "n_trained_common": n_common,
                "cost_reference": cost_ref,
                "summary": summary,
                "runs": runs,
                "environment": environment(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
