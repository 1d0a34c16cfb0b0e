"""``--sampler screen``: random candidates, priced before training, the most promising trained.

A candidate's cost (its latency predicted on the target, its FLOPs, ...) is known before it
trains: building and profiling one takes 0.2-0.3 s on this 2-core machine (median 0.22 s, mean
0.31 s), training it 5-60 s.
So after ``startup`` trials of plain random draws, each trial draws candidates at random and
prices each (``Objective.price``: build, profile, predict, check the budgets; nothing trains)
until ``screen`` of them fit the budget (at most ``MAX_DRAWS`` times as many draws; those their
family rejects or the budget does not admit are dropped), and trains the one
with the largest expected improvement of the front's hypervolume (macro-F1 up, cost down, the
cost on a log axis as the Pareto chart draws it). The improvement a candidate can bring is
exact in its cost and uncertain in its macro-F1, which ``f1_estimate`` guesses from the
trained candidates of its family of nearby size (dense FLOPs): a kernel average along log
FLOPs, shrunk to the mean of every trained candidate, with a spread that never falls below the
seed-to-seed noise of one training (``F1_NOISE``). FLOPs, not the cost, because within a family
macro-F1 follows the network's size more than its latency (Kendall tau 0.12 against -0.01 on
108 trained random candidates; benchmarks/zero_cost_proxies.py, which also found no zero-cost
proxy that ranks them better). So the screen fills the front where it is thin or low, and it
spends no trial on a candidate the budget refuses (unless none of its draws fit).

Measured (benchmarks/search_efficiency.py, benchmarks/screen_replay.py, README): under
1e9flops, where 97 % of random draws fit, its log-axis hypervolume at 20 trials passes random's
at 40 (0.550 against 0.536 replayed on 108 trained candidates; 0.567 +- 0.039 against 0.560 +-
0.018 in 3 real seeds), though not on a linear axis, which the best single score decides; under
a tight budget (0.2 ms on the Orin Nano, 16 % of random draws fit) it reaches
2.2x random's hypervolume at 20 trials, training where random mostly draws candidates that
cannot be trained. So it is the search's default sampler.

Reproducible: the draws come from the sampler's own ``numpy`` generator, seeded, and the
choice depends only on the stored trials, so ``--workers 1 --seed S`` repeats a run.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna

from ._keys import TrialKey
from ._settings import SEARCH_SCREEN

__all__ = [
    "F1_NOISE",
    "STARTUP",
    "Candidate",
    "Observation",
    "ScreenSampler",
    "expected_improvement",
    "f1_estimate",
    "hypervolume_improvement",
    "screen_gains",
]

# Seed-to-seed spread (sd) of one candidate's validation macro-F1 in the search's training
# (96 clips of 4 held-out actors; the confirmation stage's retrainings move it by about 0.1).
F1_NOISE = 0.08
# Draws per trial: up to MAX_DRAWS x ``screen`` until ``screen`` of them fit the budget.
MAX_DRAWS = 4
# Kernel width along the natural log of FLOPs: candidates within a factor ~2 inform each other.
BANDWIDTH = 0.7
# Random trials before the screen starts (fewer if the population is smaller; a search starts
# it after its first round of one trial per family, 6 with every family): replayed on 108
# trained candidates (benchmarks/screen_replay.py), starting after that round rather than after
# 8 trials raised the hypervolume at 20 trials by 0.006 (and the FLOPs axis by 0.012).
STARTUP = 4
# Standard-normal quantiles (midpoints of 16 equal-probability bins) the expectation is taken over.
_QUANTILES = np.array(
    [statistics.NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)], dtype=float
)


class Observation(NamedTuple):
    """A trained candidate, as the screen sees it."""

    family: str
    cost: float  # lower is better, > 0
    f1: float  # validation macro-F1
    full: bool  # trained at full fidelity (only those make the front, as in the search's own)
    flops: float  # its size: where it lies along its family's axis


class Candidate(NamedTuple):
    """A priced candidate: what ``price`` returns for one that the budget admits."""

    family: str
    cost: float  # lower is better, > 0
    flops: float


class _Draw:
    """A stand-in for ``optuna.Trial`` that draws every ``suggest_*`` at random from ``rng``
    and records it: one random candidate's parameters, drawn as ``RandomSampler`` would."""

    def __init__(self, rng: np.random.RandomState) -> None:
        self.rng, self.params = rng, {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = choices[int(self.rng.randint(len(choices)))]
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        if log:  # as Optuna draws a log int: uniform in log over [low - 0.5, high + 0.5]
            raw = math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            value = min(max(round(raw), low), high)
        else:
            value = low + step * int(self.rng.randint((high - low) // step + 1))
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        if log:
            value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            value = float(self.rng.uniform(low, high))
        value = min(max(value, low), high)
        self.params[name] = value
        return value


def _axis(cost: float) -> float:
    """Where ``cost`` (lower is better, > 0) lies on the screen's cost axis."""
    return math.log(cost)


def hypervolume_improvement(
    front: Sequence[tuple[float, float]], cost: float, f1: float, *, cost_ref: float
) -> float:
    """Area (macro-F1 x log cost) that the point ``(cost, f1)`` adds to the region the points
    ``front`` ``(cost, f1)`` dominate above macro-F1 0 and below ``cost_ref``."""
    if f1 <= 0.0 or cost >= cost_ref:
        return 0.0
    # the best macro-F1 reached at each cost from ``cost`` to ``cost_ref`` (a staircase)
    best = max((f for c, f in front if c <= cost), default=0.0)
    steps = sorted((c, f) for c, f in front if cost < c < cost_ref)
    gain, left = 0.0, _axis(cost)
    for c, f in steps:
        gain += max(0.0, f1 - best) * (_axis(c) - left)
        best, left = max(best, f), _axis(c)
    return gain + max(0.0, f1 - best) * (_axis(cost_ref) - left)


def f1_estimate(family: str, flops: float, observed: Sequence[Observation]) -> tuple[float, float]:
    """Mean and spread (sd) of the macro-F1 a ``family`` candidate of ``flops`` FLOPs may
    reach, from the trained candidates ``observed``: a Gaussian-kernel average of its family's
    scores along log FLOPs (width ``BANDWIDTH``), with the mean of all trained candidates as one
    more observation (a family yet untried gets that mean, with the spread of all scores)."""
    scores = [o.f1 for o in observed]
    prior = statistics.fmean(scores) if scores else 0.3
    spread = max(statistics.pstdev(scores) if len(scores) > 1 else 0.2, F1_NOISE)
    weights = [
        (math.exp(-0.5 * ((math.log(o.flops) - math.log(flops)) / BANDWIDTH) ** 2), o.f1)
        for o in observed
        if o.family == family
    ]
    mass = 1.0 + sum(w for w, _ in weights)
    mean = (prior + sum(w * f for w, f in weights)) / mass
    return mean, math.sqrt(F1_NOISE**2 + spread**2 / mass)


def expected_improvement(
    front: Sequence[tuple[float, float]],
    cost: float,
    mean: float,
    sd: float,
    *,
    cost_ref: float,
) -> float:
    """Expected ``hypervolume_improvement`` of a candidate of cost ``cost`` whose macro-F1 is
    normal with ``mean`` and ``sd`` (clipped to [0, 1]), over 16 equal-probability points."""
    f1s = np.clip(mean + sd * _QUANTILES, 0.0, 1.0)
    return float(
        np.mean([hypervolume_improvement(front, cost, float(f), cost_ref=cost_ref) for f in f1s])
    )


def screen_gains(candidates: Sequence[Candidate], observed: Sequence[Observation]) -> list[float]:
    """The expected hypervolume improvement of each candidate over the fully trained
    candidates among ``observed`` (the screen trains the largest)."""
    # a dominated trained candidate adds no area, so no front is needed
    front = [(o.cost, o.f1) for o in observed if o.full]
    # The reference: half again the dearest candidate trained so far. A candidate dearer
    # than that adds nothing; a reference taken from the candidates themselves (twice
    # the dearest) let the dearest of them claim the whole strip to its right, and the
    # screen trained an 11-ms lu where the front ended at 2 ms.
    cost_ref = 1.5 * max(x.cost for x in (observed or candidates))
    gains = []
    for c in candidates:
        mean, sd = f1_estimate(c.family, c.flops, observed)
        gains.append(expected_improvement(front, c.cost, mean, sd, cost_ref=cost_ref))
    return gains


def _observations(study: optuna.Study, lower: Callable[[float], float]) -> list[Observation]:
    out = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        a = t.user_attrs
        f1 = a.get(TrialKey.MACRO_F1)
        if f1 is None or not a.get(TrialKey.FEASIBLE) or not t.values:
            continue
        cost = lower(t.values[1])
        if cost > 0:
            full = not a.get(TrialKey.STOPPED_EARLY)
            flops = max(float(a.get("flops") or 0.0), 1.0)  # the trial's profile total
            out.append(Observation(a.get(TrialKey.FAMILY, ""), cost, float(f1), full, flops))
    return out


class ScreenSampler(optuna.samplers.BaseSampler):
    """Draws random candidates per trial until ``screen`` are admitted by ``price`` and returns
    the parameters of the one with the largest expected hypervolume improvement (module
    docstring).

    ``draw(trial_like)`` draws one candidate's parameters on a ``_Draw`` (the search's
    ``suggest_config``); ``price(params)`` returns a ``Candidate`` (family, cost lower-is-
    better and > 0, FLOPs), or None for a candidate its family rejects or the budget refuses;
    ``lower`` turns a stored cost value into lower-is-better. The first ``startup`` trials,
    and every trial when ``price`` is None, are plain random draws.
    """

    def __init__(
        self,
        *,
        draw: Callable[[Any], Any],
        price: Callable[[Mapping[str, Any]], Candidate | None] | None,
        lower: Callable[[float], float] = lambda v: v,
        screen: int = SEARCH_SCREEN,
        startup: int = STARTUP,
        seed: int | None = None,
    ) -> None:
        self._draw, self._price, self._lower = draw, price, lower
        self.screen, self.startup = screen, startup
        self._rng = np.random.RandomState(seed)
        self._chosen: dict[int, dict[str, Any]] = {}
        self.last_screen: list[dict[str, Any]] = []  # the last trial's candidates (for tests)

    def reseed_rng(self) -> None:
        self._rng = np.random.RandomState()

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return {}

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        params = self._chosen.get(trial.number)
        if params is None:
            params = self._choose(study, trial.number)
            self._chosen = {trial.number: params}  # one trial at a time per process
        if param_name in params and param_distribution._contains(
            param_distribution.to_internal_repr(params[param_name])
        ):
            return params[param_name]
        # a parameter the draw did not make (a search space changed under a resumed study)
        return optuna.samplers.RandomSampler(seed=int(self._rng.randint(2**31))).sample_independent(
            study, trial, param_name, param_distribution
        )

    def _random(self) -> dict[str, Any]:
        draw = _Draw(self._rng)
        with contextlib.suppress(Exception):  # a rejected combination: its trial says so
            self._draw(draw)
        return draw.params

    def _choose(self, study: optuna.Study, number: int) -> dict[str, Any]:
        if number < self.startup or self._price is None:
            self.last_screen = []
            return self._random()
        observed = _observations(study, self._lower)
        # ``screen`` admitted candidates, from at most 4x as many draws: under a tight budget
        # (a 0.2-ms Orin Nano budget admits 16 % of random draws) eight draws often held none
        candidates = []
        for _ in range(MAX_DRAWS * self.screen):
            params = self._random()
            priced = self._price(params)
            if priced is not None:
                candidates.append((params, priced))
                if len(candidates) == self.screen:
                    break
        if not candidates:  # nothing admitted: a random draw, which the trial will reject
            self.last_screen = []
            return self._random()
        gains = screen_gains([c for _, c in candidates], observed)
        scored = [
            {"params": params, "family": c.family, "cost": c.cost, "gain": gain}
            for (params, c), gain in zip(candidates, gains, strict=True)
        ]
        self.last_screen = scored
        return max(scored, key=lambda s: s["gain"])["params"]
