"""Shared test settings."""

from __future__ import annotations

import os

import torch

# One intra-op thread: CI machines have 2 cores, and torch's default of one thread per core
# oversubscribes them as soon as anything else runs (ten-fold slower small forwards).
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
