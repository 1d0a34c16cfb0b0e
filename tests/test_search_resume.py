"""A search killed with SIGKILL in the middle of a trial resumes with every finished trial."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests._search_helpers import cli_args, subprocess_env

State = optuna.trial.TrialState


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)
    except (KeyError, Exception):  # the study or its tables do not exist yet
        return []


def test_sigkill_mid_trial_then_resume_keeps_finished_trials(tmp_path: Path) -> None:
    out = tmp_path / "run"
    storage = f"sqlite:///{out / 'study.db'}"
    env = subprocess_env(tmp_path / "features")
    proc = subprocess.Popen(
        cli_args(out, trials=50), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    finished: dict[int, tuple] = {}
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            trials = _trials(storage)
            done = [t for t in trials if t.state == State.COMPLETE and t.user_attrs.get("feasible")]
            running = [t for t in trials if t.state == State.RUNNING]
            # kill while a trial is running, after at least two trained ones finished
            if len(done) >= 2 and running:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                pytest.fail(f"search ended before it could be killed: {proc.stderr.read()!r}")
            time.sleep(0.05)
        else:
            pytest.fail("no trial finished in time")
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    for t in _trials(storage):
        if t.state == State.COMPLETE:
            finished[t.number] = (t.params, t.values, t.user_attrs)
    killed = [t.number for t in _trials(storage) if t.state == State.RUNNING]
    assert killed, "the kill landed between trials"
    target = sum(
        1 for _, _, a in finished.values() if not a.get("reason", "").startswith("invalid")
    )
    target += 1
    # Resume: the same command with a target one above what was finished.
    run = subprocess.run(
        cli_args(out, trials=target), env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["counts"]["complete"] == target
    after = {t.number: t for t in _trials(storage)}
    for number, (params, values, attrs) in finished.items():
        assert after[number].state == State.COMPLETE
        assert (after[number].params, after[number].values) == (params, values)
        assert after[number].user_attrs == attrs
    for number in killed:  # left running by the killed process: failed on resume, not counted
        assert after[number].state == State.FAIL
    assert not [t for t in after.values() if t.state == State.RUNNING]
