"""Ctrl-C (SIGINT) lets the running trial finish, then writes every output and exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests._search_helpers import cli_args, subprocess_env


def test_sigint_finishes_the_running_trial_and_keeps_everything(tmp_path: Path) -> None:
    out = tmp_path / "run"
    storage = f"sqlite:///{out / 'study.db'}"
    proc = subprocess.Popen(
        cli_args(out, trials=50),
        env=subprocess_env(tmp_path / "features"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running: list[int] = []
    deadline = time.monotonic() + 240
    while not running and time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
        except Exception:  # not created yet
            trials = []
        if any(t.state.name == "COMPLETE" and t.user_attrs.get("feasible") for t in trials):
            running = [t.number for t in trials if t.state.name == "RUNNING"]
        if proc.poll() is not None:
            pytest.fail(f"search ended early: {proc.stderr.read()!r}")
        time.sleep(0.05)
    assert running, "no trial was running in time"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["stopped"] == "interrupted"
    trials = {t.number: t for t in optuna.load_study(study_name="tiny", storage=storage).trials}
    for number in running:  # the trial running at Ctrl-C finished normally
        assert trials[number].state.name == "COMPLETE"
    assert max(trials) <= max(running) + 1  # and no new one was started after it
    assert (out / "results.csv").is_file() and (out / "search.json").is_file()
