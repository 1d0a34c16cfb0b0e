"""Ctrl-C (SIGINT) lets the running trial finish, then writes every output and exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests._search_helpers import (
    cli_args,
    start_two_worker_search,
    study_trials,
    subprocess_env,
)


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
        trials = study_trials(storage)
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


def test_local_workers_share_the_study_and_stop_with_the_search(tmp_path: Path) -> None:
    # --workers 2: the search starts one `explorer worker` process on its study; a SIGINT to
    # the search alone (as from `kill -INT`) is passed on, both finish their running trial.
    out = tmp_path / "run"
    storage = f"sqlite:///{out / 'study.db'}"
    proc, running = start_two_worker_search(
        out, tmp_path / "features", stdout=subprocess.PIPE, text=True
    )
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["stopped"] == "interrupted"
    trials = {t.number: t for t in optuna.load_study(study_name="tiny", storage=storage).trials}
    assert all(trials[n].state.name == "COMPLETE" for n in running)
    # nothing left running or failed: the worker finished its trial and stopped too
    assert {t.state.name for t in trials.values()} == {"COMPLETE"}
    assert max(trials) <= max(running) + 2
    log = (out / "worker-1.log").read_text()
    assert json.loads(log[log.index("{") :])["stopped"] == "interrupted", log
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == len(trials) + 1  # the search wrote the outputs after the worker ended
