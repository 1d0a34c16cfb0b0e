"""Two `explorer worker` processes on one SQLite storage share a study: distinct trials and one
consistent Pareto front."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import optuna

from explorer.search._results import pareto_numbers
from explorer.search._study import open_study
from tests._search_helpers import EXPLORER, subprocess_env, tiny_config

State = optuna.trial.TrialState


def run_two_workers(
    storage: str, out: Path, env: dict[str, str], *, trials: int, study_name: str = "tiny"
) -> None:
    """Create the study here, let two worker processes fill it, and check what they wrote."""
    config = tiny_config(out, storage=storage, trials=trials, study=study_name)
    open_study(config)  # stores the settings the workers read
    cmd = [str(EXPLORER), "worker", "--storage", storage, "--study", study_name, "--format", "json"]
    procs = [
        subprocess.Popen(
            [*cmd, "--seed", str(seed)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials_ = study.get_trials(deepcopy=False)
    counted = [
        t
        for t in trials_
        if t.state == State.COMPLETE and not t.user_attrs.get("reason", "").startswith("invalid")
    ]
    # the target is met, overshooting by at most one trial per extra worker
    assert trials <= len(counted) <= trials + 1
    assert len({t.number for t in trials_}) == len(trials_)
    assert not [t for t in trials_ if t.state in (State.RUNNING, State.FAIL)]
    configs = [json.dumps(t.user_attrs["config"], sort_keys=True) for t in counted]
    assert len(set(configs)) == len(configs), "the two workers drew the same candidates"
    # Both workers ran trials (each tells its own trials; the reports name them).
    summaries = [json.loads(o) for o, _ in outputs]
    front = pareto_numbers(trials_)
    # The last writer's results.csv holds every trial and the same front as the storage.
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {int(r["number"]) for r in rows} == {t.number for t in trials_}
    assert [int(r["number"]) for r in rows if r["pareto"] == "True"] == sorted(front)
    assert any(s["pareto"] for s in summaries)
    for s in summaries:  # each worker's final view is a front of the same study
        assert {r["number"] for r in s["pareto"]} <= {t.number for t in trials_}


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    out = tmp_path / "run"
    storage = f"sqlite:///{out / 'study.db'}"
    out.mkdir()
    run_two_workers(storage, out, subprocess_env(tmp_path / "features"), trials=4)
