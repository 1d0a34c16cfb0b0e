"""Statistics of repeated evaluations: mean, 95 % interval, significance of a dominance.

Every evaluation of the confirmation stage (``_confirm``) is a study user attribute named
``StudyKey.CONFIRM_PREFIX + "<kind>:<id>:<k>"``; ``evaluations`` gathers them with the search's own
runs. The mean has the half-width of its 95 % Student-t interval (``t(0.975, n-1) * s /
sqrt(n)``; none for a single evaluation). A dominance is *significant* when the dominating
candidate's macro-F1 is higher by more than the 95 % interval of the difference of two means
(Welch); costs are computed, not measured, so they carry no noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from reports.pareto import dominates

from ._keys import StudyKey, TrialKey

__all__ = [
    "Estimate",
    "confirm_key",
    "dominated_by",
    "estimate",
    "evaluations",
    "means_of",
    "significant",
]


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """The macro-F1 of one candidate over its evaluations."""

    mean: float
    ci95: float | None  # half-width of the 95 % interval; None with one evaluation
    n: int
    sd: float | None


def estimate(values: Sequence[float]) -> Estimate:
    """Mean, 95 % Student-t half-width and sd of ``values`` (at least one)."""
    n = len(values)
    mean = float(statistics.fmean(values))
    if n < 2:
        return Estimate(mean=mean, ci95=None, n=n, sd=None)
    sd = float(statistics.stdev(values))
    return Estimate(mean=mean, ci95=_t975(n - 1) * sd / math.sqrt(n), n=n, sd=sd)


def _t975(dof: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def significant(better: Estimate, worse: Estimate) -> bool:
    """Whether ``better``'s higher mean is more than noise (Welch's 95 % interval of the
    difference); False when either has one evaluation."""
    if better.sd is None or worse.sd is None:
        return False
    va, vb = better.sd**2 / better.n, worse.sd**2 / worse.n
    if va + vb == 0:
        return better.mean > worse.mean
    dof = (va + vb) ** 2 / (va**2 / (better.n - 1) + vb**2 / (worse.n - 1))
    return better.mean - worse.mean > _t975(dof) * math.sqrt(va + vb)


def confirm_key(kind: str, ident: Any, k: int) -> str:
    return f"{StudyKey.CONFIRM_PREFIX}{kind}:{ident}:{k}"


def evaluations(
    study_attrs: Mapping[str, Any],
    trials: Sequence[optuna.trial.FrozenTrial],
    references: Sequence[Mapping[str, Any]] = (),
) -> dict[tuple[str, str], list[float]]:
    """``(kind, id) -> macro-F1 of every evaluation``: the search's own run first, then the
    confirmation runs by seed index. kind is ``trial`` (id: the number) or ``preset``."""
    out: dict[tuple[str, str], list[float]] = {}
    for t in trials:
        f1 = t.user_attrs.get(TrialKey.MACRO_F1)
        if (
            t.state == optuna.trial.TrialState.COMPLETE
            and f1 is not None
            and t.user_attrs.get(TrialKey.FEASIBLE)
        ):
            out[("trial", str(t.number))] = [float(f1)]
    for ref in references:
        if ref.get("trained") and ref.get("macro_f1") is not None:
            out[("preset", str(ref["name"]))] = [float(ref["macro_f1"])]
    extra: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for key, value in study_attrs.items():
        if key.startswith(StudyKey.CONFIRM_PREFIX):
            kind, ident, k = key[len(StudyKey.CONFIRM_PREFIX) :].rsplit(":", 2)
            extra.setdefault((kind, ident), []).append((int(k), float(value["macro_f1"])))
    for key, values in extra.items():
        if key in out:
            out[key] += [v for _, v in sorted(values)]
    return out


def means_of(evals: Mapping[tuple[str, str], Sequence[float]]) -> dict[int, float]:
    """Trial number -> mean macro-F1 (what the front is decided on)."""
    return {int(i): statistics.fmean(v) for (kind, i), v in evals.items() if kind == "trial"}


def dominated_by(
    estimate: Estimate, cost: float, front: Sequence[tuple[int, float, Estimate]]
) -> tuple[int | None, str]:
    """The front member (number, cost, ``Estimate``) that dominates a candidate of mean
    macro-F1 ``estimate`` and ``cost`` (lower is better: pass a maximised cost negated) with
    the largest margin, and ``significant`` or ``not significant``; ``(None, "")`` when no
    member dominates it. Dominance is the fronts' rule (``reports.pareto.dominates``) on the
    means."""
    best: tuple[int, Estimate] | None = None
    for number, q_cost, q in front:
        beaten = dominates((q.mean, q_cost), (estimate.mean, cost), ("maximize", "minimize"))
        if beaten and (best is None or q.mean > best[1].mean):
            best = (number, q)
    if best is None:
        return None, ""
    return best[0], "significant" if significant(best[1], estimate) else "not significant"
