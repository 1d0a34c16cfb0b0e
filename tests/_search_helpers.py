"""Shared set-up of the search tests: a tiny real search (ding only, 32 short synthetic clips,
one epoch) so the whole real path (profiling, features, training, checkpoints) runs quickly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from explorer.budget import parse_budget
from explorer.search import SearchConfig

TINY_DATA = "synthetic:actors=4,clips_per_class=1,clip_seconds=0.5"
REPO = Path(__file__).resolve().parents[1]
EXPLORER = Path(sys.executable).parent / "explorer"  # the console script of this venv


def tiny_config(out_dir: Path, **overrides: Any) -> SearchConfig:
    settings: dict[str, Any] = {
        "device": "orin-nano",
        "budgets": (parse_budget("1e8flops"),),
        "families": ("ding",),
        "trials": 3,
        "dataset": TINY_DATA,
        "epochs": 1,
        "batch_size": 8,
        "max_frames": 1,
        "max_image_px": 32,
        "population": 2,
        "out_dir": out_dir,
        "study": "tiny",
        "reference_presets": False,
        "heartbeat_s": 1,
        "confirm_seeds": 0,  # the confirmation stage has its own tests
    }
    settings.update(overrides)
    return SearchConfig(**settings)


def cli_args(out_dir: Path, *, trials: int, extra: tuple[str, ...] = ()) -> list[str]:
    """`explorer search` arguments equivalent to ``tiny_config``."""
    return [
        str(EXPLORER),
        "search",
        "--device",
        "orin-nano",
        "--budget",
        "1e8flops",
        "--families",
        "ding",
        "--trials",
        str(trials),
        "--dataset",
        TINY_DATA,
        "--epochs",
        "1",
        "--max-frames",
        "1",
        "--max-image-size",
        "32",
        "--population",
        "2",
        "--study",
        "tiny",
        "--out",
        str(out_dir),
        "--no-references",
        "--heartbeat",
        "1",
        "--confirm-seeds",
        "0",
        "--format",
        "json",
        "--workers",
        "1",  # one process unless a test passes --workers N in extra (the last one counts)
        *extra,
    ]


def subprocess_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["EXPLORER_CACHE"] = str(cache_dir)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"  # two processes on two cores: no oversubscription
    return env


def study_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of the study ``tiny`` in ``storage`` ([] until the search has created it)."""
    try:
        return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)
    except Exception:  # the study or its tables do not exist yet
        return []


def start_two_worker_search(
    out: Path, cache_dir: Path, **popen: Any
) -> tuple[subprocess.Popen, list[int]]:
    """Start a search with ``--workers 2`` and wait until two of its trials run at once;
    the process and the numbers of the running trials (fails the test if that never happens)."""
    storage = f"sqlite:///{out / 'study.db'}"
    proc = subprocess.Popen(
        cli_args(out, trials=60, extra=("--workers", "2")),
        env=subprocess_env(cache_dir),
        stderr=subprocess.PIPE,
        **popen,
    )
    deadline = time.monotonic() + 240
    while True:
        running = [t.number for t in study_trials(storage) if t.state.name == "RUNNING"]
        if len(running) >= 2:
            return proc, running
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no two trials ran at once: {proc.stderr.read()!r}")
        time.sleep(0.02)
