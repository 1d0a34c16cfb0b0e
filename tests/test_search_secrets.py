"""A storage password never appears where other users can read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from explorer.budget import parse_budget
from explorer.search import SearchConfig
from explorer.search._workers import STORAGE_ENV, LocalWorkers

URL = "postgresql://alice:s3cret-pw@127.0.0.1:9/optuna"


def test_worker_command_lines_hold_no_password(tmp_path: Path, monkeypatch) -> None:
    """`ps` shows every user the command lines; the URL goes through the environment.

    What each worker is started with is recorded at the Popen call: reading /proc races with
    a worker that cannot reach the storage and exits at once (a zombie's cmdline is empty).
    """
    import explorer.search._workers as workers_module

    started: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording_popen(args, *rest, **kwargs):
        started.append((list(args), dict(kwargs["env"])))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(workers_module.subprocess, "Popen", recording_popen)
    workers = LocalWorkers(
        count=2, storage_url=URL, study="s", out_dir=tmp_path, seed=0, deadline=None
    )
    try:
        assert len(started) == len(workers.pids) == 2
        for args, env in started:
            cmdline = " ".join(args)
            assert "worker" in cmdline and "--study" in cmdline
            assert "s3cret" not in cmdline and "postgresql" not in cmdline
            assert env[STORAGE_ENV] == URL  # /proc/PID/environ: readable by this user only
    finally:
        workers.kill()


def test_stored_settings_redact_the_password(tmp_path: Path) -> None:
    config = SearchConfig(
        device="rpi4", budgets=(parse_budget("1e8flops"),), storage=URL, out_dir=tmp_path
    )
    stored = json.dumps(config.to_dict())
    assert "s3cret" not in stored and "alice:***@127.0.0.1" in stored
    assert config.storage_url == URL  # the process itself still connects with it


def test_worker_reads_the_storage_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    env = {**os.environ, STORAGE_ENV: f"sqlite:///{db}"}
    out = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "worker", "--study", "missing"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert "study 'missing' does not exist" in out.stderr  # it opened that storage
    assert "Missing option" not in out.stderr
