"""The confirmation stage: retrain the front and the papers' presets with further seeds.

One training run's macro-F1 on a few dozen validation clips moves by about 0.1 between seeds,
so a front decided on single runs is partly decided by luck. After the search, each member of
the front (and each paper preset that fit the budget and was trained as a reference) is trained
again ``confirm_seeds`` times at full fidelity, from other initial weights and batch orders, on
the same data and split. The front is then decided on the mean macro-F1; when a member's mean
falls and another fully trained trial joins the front, that one is confirmed too (a few rounds
at most). Every evaluation is stored as a study user attribute as soon as it ends, so an
interrupted stage resumes without repeating one, and any process can rebuild the statistics.

The statistics (mean, 95 % interval, significance) are in ``_stats``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna

from ._keys import StudyKey, TrialKey
from ._objectives import get_objective
from ._results import pareto_numbers
from ._stats import confirm_key, evaluations, means_of

if TYPE_CHECKING:
    from ._objective import Objective

__all__ = ["confirm"]

_ROUNDS = 3  # a confirmed member that falls lets at most this many new members be confirmed
_SEED_STRIDE = 100_003  # extra seed k of trial n trains with seed + n + k * stride
_CLAIM_S = 600.0  # a claim older than this (its process was killed) no longer blocks


def _claimed(attrs: Mapping[str, Any], key: str) -> bool:
    claim = attrs.get(StudyKey.CLAIM_PREFIX + key)
    return claim is not None and time.time() - float(claim.get("at", 0.0)) < _CLAIM_S


def confirm(
    study: optuna.Study, objective: Objective, *, deadline: float | None, force: bool = False
) -> str:
    """Run the confirmation stage on ``study`` (see the module docstring); returns '' when
    every planned evaluation is stored (or claimed by another process), else a note saying
    what was left out and why.

    Several processes may run it at once (the main one and its workers): each claims an
    evaluation (a study user attribute) before training it and skips those another process
    claimed. A claim left by a killed process blocks for ``_CLAIM_S``; ``force`` (the main
    process once its workers have ended) ignores claims. Two processes that race for one
    claim train the same seed to the same result, so a race costs time, never correctness.
    """
    cfg = objective.config
    seeds = range(1, cfg.confirm_seeds + 1)
    if not seeds:
        return ""
    direction = get_objective(cfg.objective).direction
    done: set[str] = set()
    skipped: set[str] = set()
    planned: set[str] = set()
    for _ in range(_ROUNDS):
        trials = study.get_trials(deepcopy=False)
        attrs = study.user_attrs
        references = attrs.get(StudyKey.REFERENCES, [])
        evals = evaluations(attrs, trials, references)
        front = pareto_numbers(trials, means_of(evals), direction=direction)
        by_number = {t.number: t for t in trials}
        # key, config, seed, expected seconds (its first training's), breadth first: every
        # candidate gets its first extra seed before any gets its second, so a stage cut
        # short by the timeout still gives as many candidates as it can an interval
        todo: list[tuple[str, Mapping[str, Any], int, float]] = []
        for k in seeds:
            for n in front:
                a = by_number[n].user_attrs
                seed = cfg.seed + n + k * _SEED_STRIDE
                expected = float(a.get(TrialKey.TRAIN_SECONDS) or 0.0)
                todo.append((confirm_key("trial", n, k), a[TrialKey.CONFIG], seed, expected))
            for ref in references:
                if ref.get("trained") and ref.get("config"):
                    seed = cfg.seed + k * _SEED_STRIDE
                    expected = float(ref.get("train_seconds") or 0.0)
                    todo.append(
                        (confirm_key("preset", ref["name"], k), ref["config"], seed, expected)
                    )
        todo = [
            item
            for item in todo
            if item[0] not in attrs
            and item[0] not in done
            and item[0] not in skipped
            and (force or not _claimed(attrs, item[0]))
        ]
        planned.update(item[0] for item in todo)
        if not todo:
            break
        for key, config, seed, expected in todo:
            if deadline is not None and time.monotonic() + expected > deadline:
                # it would not finish in the time left: a cut training is thrown away, so
                # leave the time to shorter ones
                skipped.add(key)
                continue
            now = study.user_attrs
            if key in now or (not force and _claimed(now, key)):
                continue  # another process took it meanwhile
            study.set_user_attr(
                StudyKey.CLAIM_PREFIX + key, {"pid": os.getpid(), "at": time.time()}
            )
            start = time.perf_counter()
            metrics = objective.retrain(config, seed=seed, deadline=deadline)
            if metrics is None:  # the deadline passed during it
                skipped.update(item[0] for item in todo if item[0] not in done)
                break
            value = {
                "macro_f1": float(metrics.macro_f1),
                "accuracy": float(metrics.accuracy),
                "seed": seed,
                "seconds": time.perf_counter() - start,
            }
            if getattr(metrics, "error", ""):
                value["error"] = metrics.error
            study.set_user_attr(key, value)
            done.add(key)
    return _left_out(study, skipped, planned) if skipped else ""


def _left_out(study: optuna.Study, skipped: set[str], planned: set[str]) -> str:
    attrs = study.user_attrs
    missing = [k for k in skipped if k not in attrs]
    return (
        f"confirmation cut by the timeout: {len(missing)} of {len(planned)} planned extra "
        "evaluations left out (re-run the command to finish them)"
    )
