"""Extra local worker processes for ``explorer search --workers N``.

A trial trains a small network on one thread, so one process keeps one core busy. With
``--workers N`` the search process starts ``N - 1`` ``explorer worker`` processes on the same
study storage (the SQLite file or the server); each draws and trains its own trials, exactly
like workers started by hand on other machines, and the search process writes the outputs
once they have all stopped.

Stopping. The workers run in their own session, so a Ctrl-C in the terminal reaches only the
search process, which passes one interrupt on to each worker: every process finishes its
running trial and stops, as with one process. A second Ctrl-C kills the workers; their
running trials are marked failed (heartbeat) and redrawn on resume. A worker also stops before
its next trial when the search process that started it is gone (killed), so no orphan goes on
training after the user killed the search.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PARENT_ENV", "STORAGE_ENV", "LocalWorkers", "default_workers", "orphaned"]

# Environment variable a started worker gets: the pid of the search process that started it.
PARENT_ENV = "EXPLORER_SEARCH_PARENT"
# The storage URL reaches the workers through the environment, which only their user can read
# (/proc/PID/environ), not on their command line, which every user sees in `ps`: a PostgreSQL
# URL holds a password. `explorer worker --storage` falls back to this variable.
STORAGE_ENV = "EXPLORER_STORAGE"
_MAX_AUTO_WORKERS = 4  # each worker holds its own copy of torch and the features (~1-2 GB)


def default_workers() -> int:
    """Worker processes for ``--workers auto``: one per usable core, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_AUTO_WORKERS))


def orphaned() -> bool:
    """Whether this process is a started worker whose search process has gone."""
    parent = os.environ.get(PARENT_ENV)
    return bool(parent) and os.getppid() != int(parent)


class LocalWorkers:
    """``count`` ``explorer worker`` processes on one study; logs in ``out_dir/worker-K.log``."""

    def __init__(
        self,
        *,
        count: int,
        storage_url: str,
        study: str,
        out_dir: Path,
        seed: int,
        deadline: float | None,
    ) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, PARENT_ENV: str(os.getpid()), STORAGE_ENV: storage_url}
        for k in range(1, count + 1):
            args = [sys.executable, "-m", "explorer.cli", "worker"]
            args += ["--study", study, "--out", str(out_dir), "--format", "json"]
            # distinct, reproducible sampler seeds (the search process uses ``seed`` itself)
            args += ["--seed", str(seed * 1000 + k)]
            if deadline is not None:
                args += ["--timeout", f"{max(deadline - time.monotonic(), 1.0):.0f}s"]
            with open(out_dir / f"worker-{k}.log", "wb") as log:
                self._procs.append(
                    subprocess.Popen(
                        args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                )

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the started workers."""
        return tuple(proc.pid for proc in self._procs)

    def interrupt(self) -> None:
        """Ask every worker to finish its running trial and stop (one SIGINT each)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """Stop every worker now; their running trials are failed by the heartbeat."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        self.wait()

    def wait(self) -> None:
        """Wait for every worker to end."""
        for proc in self._procs:
            proc.wait()
