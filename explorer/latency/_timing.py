"""The timing loop shared by the CPU backends."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator

__all__ = [
    "CLOCKS",
    "WARMUP_BUDGET_S",
    "auto_runs",
    "paused_gc",
    "runs_to_fill",
    "time_runs",
    "torch_threads",
    "warm_up",
]

# Warm-up pays first-call costs (allocator, runtime arenas, caches); one run of a model that
# takes seconds already does, so ten of them would only multiply a big model's bench time.
WARMUP_BUDGET_S = 2.0


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``threads`` inside the block, restored after it
    (also on errors): a measurement must not leave the process at another count."""
    import torch  # here, not at import: the ONNX Runtime backend uses this module without it

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def warm_up(fn: Callable[[], object], *, runs: int, budget_s: float = WARMUP_BUDGET_S) -> int:
    """Call ``fn`` up to ``runs`` times untimed, stopping early (after at least one call) once
    the calls have taken ``budget_s`` seconds; returns how many were made."""
    start = time.perf_counter()
    done = 0
    while done < runs:
        fn()
        done += 1
        if time.perf_counter() - start >= budget_s:
            break
    return done


def auto_runs(
    fn: Callable[[], object], *, target_s: float = 1.0, lo: int = 15, hi: int = 300
) -> int:
    """How many runs fill about ``target_s`` seconds, from one probe run (clamped to [lo, hi])."""
    start = time.perf_counter()
    fn()
    return runs_to_fill(time.perf_counter() - start, target_s=target_s, lo=lo, hi=hi)


def runs_to_fill(once_s: float, *, target_s: float, lo: int, hi: int) -> int:
    """How many runs of ``once_s`` seconds each fill about ``target_s`` (clamped to [lo, hi])."""
    return max(lo, min(hi, int(target_s / max(once_s, 1e-6))))


CLOCKS = ("wall", "cpu")


def time_runs(
    fn: Callable[[], object], *, runs: int, warmup: int, clock: str = "wall"
) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; per-run times in ms.

    ``clock="wall"`` is elapsed time. ``clock="cpu"`` is the CPU time of the calling thread:
    with one runtime thread the work runs on this thread, so this is the model's own time even
    when other processes share the cores (elapsed time then also counts the time the scheduler
    gave to them). The garbage collector is paused while timing so that a collection does not
    land inside a run (it would show up as an outlier, not as the model's cost).
    """
    now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    for _ in range(warmup):
        fn()
    out = []
    with paused_gc():
        for _ in range(runs):
            start = now()
            fn()
            out.append((now() - start) / 1e6)
    return out


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The garbage collector off inside the block (a collection landing inside a timed run
    shows up as an outlier, not as the model's cost), back as it was after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
