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

import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from ._results import REFERENCES_ATTR, pareto_numbers
from ._stats import confirm_key, evaluations, means_of

__all__ = ["confirm"]

_ROUNDS = 3  # a confirmed member that falls lets at most this many new members be confirmed
_SEED_STRIDE = 100_003  # extra seed k of trial n trains with seed + n + k * stride


def confirm(study: optuna.Study, objective: Any, *, deadline: float | None) -> str:
    """Run the confirmation stage on ``study`` (see the module docstring); returns '' when
    every planned evaluation is stored, else a note saying what was left out and why."""
    cfg = objective.config
    seeds = range(1, cfg.confirm_seeds + 1)
    if not seeds:
        return ""
    done: set[tuple[str, str]] = set()
    for _ in range(_ROUNDS):
        trials = study.get_trials(deepcopy=False)
        attrs = study.user_attrs
        references = attrs.get(REFERENCES_ATTR, [])
        evals = evaluations(attrs, trials, references)
        front = pareto_numbers(trials, means_of(evals))
        by_number = {t.number: t for t in trials}
        todo: list[tuple[str, str, int, Mapping[str, Any], int]] = []
        for n in front:
            t = by_number[n]
            for k in seeds:
                if confirm_key("trial", n, k) not in attrs:
                    seed = cfg.seed + n + k * _SEED_STRIDE
                    todo.append(("trial", str(n), k, t.user_attrs["config"], seed))
        for ref in references:
            if ref.get("trained") and ref.get("config"):
                for k in seeds:
                    if confirm_key("preset", ref["name"], k) not in attrs:
                        seed = cfg.seed + k * _SEED_STRIDE
                        todo.append(("preset", ref["name"], k, ref["config"], seed))
        todo = [item for item in todo if (item[0], item[1], item[2]) not in done]
        if not todo:
            return ""
        for kind, ident, k, config, seed in todo:
            if deadline is not None and time.monotonic() >= deadline:
                return _left_out(study, todo)
            start = time.perf_counter()
            metrics = objective.retrain(config, seed=seed, deadline=deadline)
            if metrics is None:
                return _left_out(study, todo)
            study.set_user_attr(
                confirm_key(kind, ident, k),
                {
                    "macro_f1": float(metrics.macro_f1),
                    "accuracy": float(metrics.accuracy),
                    "seed": seed,
                    "seconds": time.perf_counter() - start,
                },
            )
            done.add((kind, ident, k))
    return ""


def _left_out(study: optuna.Study, todo: Sequence[tuple[str, str, int, Any, int]]) -> str:
    attrs = study.user_attrs
    missing = [t for t in todo if confirm_key(t[0], t[1], t[2]) not in attrs]
    return (
        f"confirmation stopped by the timeout: {len(missing)} of {len(todo)} planned extra "
        "evaluations left out (re-run the command to finish them)"
    )
