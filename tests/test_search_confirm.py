"""The confirmation stage: means with 95 % intervals, significance, and an interrupted stage
that resumes from a real Optuna storage without repeating an evaluation."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest

from explorer.search import run_search
from explorer.search._keys import StudyKey
from explorer.search._stats import dominated_by, estimate, significant
from explorer.training import train as real_train
from tests._search_helpers import tiny_config

STRIDE = 100_003  # confirmation seeds are at least this (see _confirm)


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


def test_estimate_and_welch_significance() -> None:
    one = estimate([0.5])
    assert one.mean == 0.5 and one.ci95 is None and one.n == 1
    e = estimate([0.4, 0.5, 0.6])
    # t(0.975, 2) = 4.303, sd 0.1, n 3
    assert e.mean == pytest.approx(0.5) and e.ci95 == pytest.approx(4.303 * 0.1 / 3**0.5, rel=1e-3)
    tight_hi, tight_lo = estimate([0.70, 0.71, 0.72]), estimate([0.50, 0.51, 0.52])
    assert significant(tight_hi, tight_lo) and not significant(tight_lo, tight_hi)
    assert not significant(estimate([0.6, 0.3, 0.9]), estimate([0.5, 0.4, 0.6]))
    assert not significant(estimate([0.9]), estimate([0.1]))  # one evaluation: cannot tell
    front = [(3, 1.0, tight_hi), (7, 0.5, estimate([0.52, 0.56, 0.48]))]
    assert dominated_by(tight_lo, 2.0, front) == (3, "significant")
    assert dominated_by(estimate([0.5, 0.55, 0.45]), 0.6, front) == (7, "not significant")
    assert dominated_by(estimate([0.9, 0.9, 0.9]), 2.0, front) == (None, "")


def test_interrupted_confirmation_resumes_without_repeating_evaluations(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", trials=3, epochs=2, confirm_seeds=2)
    first: list[int] = []

    def interrupting(model, features, split, *, settings, on_epoch=None):
        if settings.seed >= STRIDE:
            first.append(settings.seed)
            if len(first) == 2:
                raise KeyboardInterrupt  # Ctrl-C during the second confirmation run
        return real_train(model, features, split, settings=settings, on_epoch=on_epoch)

    result = run_search(config, train_fn=interrupting, write_report=False)
    assert result.stopped == "interrupted"
    storage = config.storage_url
    attrs = optuna.load_study(study_name="tiny", storage=storage).user_attrs
    stored = {k: v for k, v in attrs.items() if k.startswith(StudyKey.CONFIRM_PREFIX)}
    assert len(stored) == 1 and next(iter(stored.values()))["seed"] == first[0]

    second: list[int] = []

    def counting(model, features, split, *, settings, on_epoch=None):
        if settings.seed >= STRIDE:
            second.append(settings.seed)
        return real_train(model, features, split, settings=settings, on_epoch=on_epoch)

    result = run_search(config, train_fn=counting, write_report=False)
    assert result.stopped == "trials"
    attrs = optuna.load_study(study_name="tiny", storage=storage).user_attrs
    after = {k: v for k, v in attrs.items() if k.startswith(StudyKey.CONFIRM_PREFIX)}
    assert first[0] not in second  # the finished evaluation was not redone ...
    assert all(after[k] == v for k, v in stored.items())  # ... nor overwritten
    assert len(after) == len(stored) + len(second)
    with result.results_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    front = [r for r in rows if r["pareto"] == "True"]
    assert front and all(r["evaluations"] == "3" for r in front)
    for r in front:
        # the target's predicted latency comes with its range (low <= predicted)
        assert float(r["predicted_low_ms_orin-nano"]) <= float(r["predicted_ms_orin-nano"])
        assert float(r["macro_f1_ci95"]) >= 0.0
        assert 0.0 <= float(r["macro_f1_mean"]) <= 1.0


def test_confirmation_goes_breadth_first_and_skips_what_cannot_finish(tmp_path: Path) -> None:
    """Every candidate gets its first extra seed before any gets its second, and an evaluation
    whose first training took longer than the time left is not started (it would be cut)."""
    import time
    from types import SimpleNamespace

    from explorer.search._confirm import confirm
    from explorer.search._objective import Objective

    config = tiny_config(tmp_path / "run", confirm_seeds=2)
    study = optuna.create_study(
        directions=["maximize", "minimize"], storage=f"sqlite:///{tmp_path / 'study.db'}"
    )
    # a front of two: a quick cheap one and a slow better one (trained in 1000 s)
    for f1, cost, seconds in ((0.4, 1.0, 0.5), (0.6, 2.0, 1000.0)):
        attrs = {"family": "ding", "feasible": True, "macro_f1": f1, "f1_curve": [f1],
                 "config": {"family": "ding"}, "train_seconds": seconds}  # fmt: skip
        study.add_trial(optuna.trial.create_trial(values=[f1, cost], user_attrs=attrs))
    objective = Objective(config, device=None, devices={})
    trained: list[int] = []

    def retrain(config, *, seed, deadline):
        trained.append(seed)
        return SimpleNamespace(macro_f1=0.5, accuracy=0.5)

    objective.retrain = retrain  # the scheduling is under test, not the training
    note = confirm(study, objective, deadline=time.monotonic() + 60.0)
    # trial 0's seeds 1 and 2 ran, in that order; trial 1's two would not finish in 60 s
    assert trained == [0 + STRIDE, 0 + 2 * STRIDE]
    assert note.startswith("confirmation cut by the timeout: 2 of 4 planned")
    keys = sorted(k for k in study.user_attrs if k.startswith(StudyKey.CONFIRM_PREFIX))
    assert keys == [StudyKey.CONFIRM_PREFIX + f"trial:0:{k}" for k in (1, 2)]
    # with time enough, both get their first extra seed before either gets its second
    trained.clear()
    fresh = optuna.create_study(directions=["maximize", "minimize"])
    fresh.add_trials(study.trials)
    assert confirm(fresh, objective, deadline=None) == ""
    assert trained == [STRIDE, 1 + STRIDE, 2 * STRIDE, 1 + 2 * STRIDE]
