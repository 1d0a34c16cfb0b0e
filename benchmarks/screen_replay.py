"""Replay the screen sampler's choices on a pool of trained candidates, a thousand times.

``benchmarks/search_efficiency.py`` trains every candidate it measures, so three seeds are all
it can afford, and one training's macro-F1 moves by about 0.1 between seeds: its hypervolumes
have a spread of 0.02-0.12 and cannot tell samplers 0.02 apart. Here the candidates are
trained once, as a pool (the rows of ``benchmarks/zero_cost_proxies.py``: ~110 fully trained
random candidates of the main command's space, budget and data), and each replay draws from it
without replacement. As in a search, the first trials take one candidate of each family
(``_EachFamilyFirst``); then random takes the rest of the pool in a random order, and the
screen, once ``startup`` trials are done, draws ``screen`` candidates from the rest each trial
and takes the one with the largest ``screen_gains`` (the search's own code) given the pool's
scores of those taken so far.
Hypervolume as in search_efficiency.py (log latency axis between the pool's cheapest and
dearest, and linear), after 10, 20 and 40 trials, mean ± standard error over the replays.

What a pool does not have: noise between two trainings of one candidate, successive halving
(every pooled candidate trained in full), and candidates beyond the pool's (a screen in the
real space sees fresh draws each time; here the good ones run out).

    .venv/bin/python benchmarks/screen_replay.py benchmarks/results/zero_cost_proxies.json

Writes JSON (``--out``, default benchmarks/results/screen_replay.json).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from explorer.search._screen import STARTUP, Candidate, Observation, screen_gains

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results  # scripts beside this one
from search_efficiency import hypervolume_2d

ATS = (10, 20, 40)


def _each_family_first(pool: list[dict[str, Any]], rng: np.random.Generator) -> list[int]:
    """One random candidate of each family, the families in random order, then the rest of
    the pool in random order."""
    order = [int(i) for i in rng.permutation(len(pool))]
    first: dict[str, int] = {}
    for i in order:
        first.setdefault(pool[i]["family"], i)
    return list(first.values()) + [i for i in order if i not in set(first.values())]


def replay_random(pool: list[dict[str, Any]], n: int, rng: np.random.Generator, **_: Any):  # type: ignore[no-untyped-def]
    return _each_family_first(pool, rng)[:n]


def replay_screen(
    pool: list[dict[str, Any]],
    n: int,
    rng: np.random.Generator,
    *,
    startup: int = STARTUP,
    screen: int = 8,
    axis: str = "flops",
) -> list[int]:
    """The pool indices the screen takes, in order; ``axis`` is the pool column the F1
    estimate's kernel runs along (``flops``, the search's; ``latency_ms``, the earlier one)."""
    order = _each_family_first(pool, rng)
    families = len({r["family"] for r in pool})
    start = max(startup, families)  # the search's first trials are one per family
    taken, left = order[:start], order[start:]

    def candidate(i: int) -> Candidate:
        return Candidate(pool[i]["family"], pool[i]["latency_ms"], pool[i][axis])

    while len(taken) < n and left:
        drawn = [int(i) for i in rng.choice(left, size=min(screen, len(left)), replace=False)]
        observed = [
            Observation(
                pool[i]["family"], pool[i]["latency_ms"], pool[i]["macro_f1"], True, pool[i][axis]
            )
            for i in taken
        ]
        gains = screen_gains([candidate(i) for i in drawn], observed)
        pick = drawn[int(np.argmax(gains))]
        taken.append(pick)
        left.remove(pick)
    return taken


VARIANTS: dict[str, tuple[Any, dict[str, Any]]] = {
    "random": (replay_random, {}),
    "screen (FLOPs axis, after the family round)": (replay_screen, {}),
    "screen (latency axis, after 8 trials: before)": (
        replay_screen,
        {"axis": "latency_ms", "startup": 8},
    ),
    "screen (FLOPs axis, after 8 trials)": (replay_screen, {"startup": 8}),
    "screen (latency axis, after the family round)": (replay_screen, {"axis": "latency_ms"}),
    "screen (FLOPs axis, after the family round, 16 priced)": (replay_screen, {"screen": 16}),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pool", type=Path, help="zero_cost_proxies.py's JSON (its rows)")
    p.add_argument("--replays", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/screen_replay.json"))
    args = p.parse_args(argv)
    pool = json.loads(args.pool.read_text())["rows"]
    costs = [r["latency_ms"] for r in pool]
    cost_min, cost_ref = min(costs), max(costs)
    everything = hypervolume_2d(
        [(r["macro_f1"], r["latency_ms"]) for r in pool], cost_ref=cost_ref, cost_min=cost_min
    )
    print(f"{len(pool)} pooled candidates; the whole pool's hypervolume {everything:.3f}")
    heads = [f"HV@{k}" for k in ATS] + [f"linear HV@{k}" for k in ATS]
    print(f"{'sampler':>55} " + " ".join(f"{h:>15}" for h in heads))
    # the log axis (the Pareto chart's), and the linear one, where the best macro-F1 decides
    # nearly all of the area (the cheapest candidates all lie near its zero)
    axes = {"hv": cost_min, "linear_hv": None}
    results = {}
    for name, (replay, kw) in VARIANTS.items():
        at: dict[str, list[float]] = {f"{a}_at_{k}": [] for a in axes for k in ATS}
        for r in range(args.replays):
            taken = replay(pool, max(ATS), np.random.default_rng(r), **kw)
            for k in ATS:
                pts = [(pool[i]["macro_f1"], pool[i]["latency_ms"]) for i in taken[:k]]
                for a, low in axes.items():
                    at[f"{a}_at_{k}"].append(hypervolume_2d(pts, cost_ref=cost_ref, cost_min=low))
        results[name] = {
            key: {
                "mean": statistics.fmean(v),
                "sd": statistics.stdev(v),
                "se": statistics.stdev(v) / math.sqrt(len(v)),
            }
            for key, v in at.items()
        }
        cells = [f"{c['mean']:.3f} ± {c['se']:.3f}" for c in results[name].values()]
        print(f"{name:>55} " + " ".join(f"{c:>15}" for c in cells), flush=True)
    write_results(
        args.out,
        {
            "benchmark": "screen_replay",
            "pool": str(args.pool),
            "candidates": len(pool),
            "replays": args.replays,
            "cost_min": cost_min,
            "cost_ref": cost_ref,
            "pool_hypervolume": everything,
            "results": results,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
