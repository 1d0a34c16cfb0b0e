"""Shared test settings."""

from __future__ import annotations

import os

import pytest
import torch

# One intra-op thread: CI machines have 2 cores, and torch's default of one thread per core
# oversubscribes them as soon as anything else runs (ten-fold slower small forwards).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _memory_limit_stays_in_its_test():
    """``--max-memory`` sets the environment (worker processes inherit it), and tests call
    the CLI in this process: restore the variable so one test's limit never reaches another."""
    before = os.environ.get("EXPLORER_MAX_MEMORY")
    yield
    if before is None:
        os.environ.pop("EXPLORER_MAX_MEMORY", None)
    else:
        os.environ["EXPLORER_MAX_MEMORY"] = before
