"""A trial whose process was killed before its first heartbeat does not stall a resume."""

from __future__ import annotations

from pathlib import Path

import optuna

from explorer.search._study import _fail_heartless


def test_running_trials_without_a_heartbeat_are_failed(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=3
    )
    study = optuna.create_study(study_name="s", storage=storage)
    orphan = study.ask()  # created, then its process died before any heartbeat
    alive = study.ask()
    storage.record_heartbeat(alive._trial_id)  # a live process's trial
    _fail_heartless(study, grace_s=3600.0)  # too young to judge: kept
    assert study.trials[orphan.number].state == optuna.trial.TrialState.RUNNING
    # before the fix nothing failed it: Optuna's fail_stale_trials only sees heartbeats
    optuna.storages.fail_stale_trials(study)
    assert study.trials[orphan.number].state == optuna.trial.TrialState.RUNNING
    _fail_heartless(study, grace_s=0.0)
    assert study.trials[orphan.number].state == optuna.trial.TrialState.FAIL
    assert study.trials[alive.number].state == optuna.trial.TrialState.RUNNING
