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


def test_worker_command_lines_hold_no_password(tmp_path: Path) -> None:
    """`ps` shows every user the command lines; the URL goes through the environment."""
    workers = LocalWorkers(
        count=2, storage_url=URL, study="s", out_dir=tmp_path, seed=0, deadline=None
    )
    try:
        for pid in workers.pids:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            assert b"worker" in cmdline and b"--study" in cmdline
            assert b"s3cret" not in cmdline and b"postgresql" not in cmdline
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"{STORAGE_ENV}={URL}".encode() in environ  # readable by this user only
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
