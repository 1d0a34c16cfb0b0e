"""Processes that open one new SQLite study at the same moment (a search and a worker, a
dashboard or a script watching it) all get the study, none an error."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import optuna

from explorer.search._study import _storage

ROUNDS = 20  # before the retry, one open in two failed here (20 of 40)


def _open_each(urls: list[str], barrier: Any, queue: Any) -> None:
    """For each URL in turn, meet the other process, then open the storage there and create
    (or load) the study; put None or the error for each."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for url in urls:
        barrier.wait(timeout=120)
        try:
            optuna.create_study(
                storage=_storage(url, heartbeat_s=10), study_name="race", load_if_exists=True
            )
            queue.put(None)
        except Exception as exc:  # reported to the test, which names it
            queue.put(f"{type(exc).__name__}: {exc}"[:300])


def test_processes_opening_a_new_sqlite_study_at_once_all_get_it(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    urls = [f"sqlite:///{tmp_path / str(i) / 'study.db'}" for i in range(ROUNDS)]
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_open_each, args=(urls, barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in range(2 * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if r]
    assert not errors, f"{len(errors)} of {2 * ROUNDS} opens failed: {errors[:2]}"
    for url in urls:  # one study each, made by whichever process came first
        assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["race"]
