"""Latency: measured on real runtimes, predicted per device, calibrated by measurement.

    >>> from explorer.latency import bench, BenchSettings
    >>> result = bench(model, inputs, backend="ort", settings=BenchSettings(threads=1))
    >>> result.median_ms

Backends (``ort``, ``torch``, ``tensorrt``) share one protocol and return a frozen
``LatencyResult`` with the raw timings and the environment. ``calibrate_host`` measures this
machine and returns a ``host`` device profile; ``calibrate_from_measurements`` fits a device's
calibration from ``explorer bench --format json`` results taken on that device.
"""

from __future__ import annotations

import torch
from torch import nn

from ._backends import BACKENDS, Backend, BenchSettings, get_backend
from ._result import LatencyResult, latency_frame

__all__ = [
    "BACKENDS",
    "Backend",
    "BenchSettings",
    "LatencyResult",
    "bench",
    "calibrate_from_measurements",
    "calibrate_host",
    "get_backend",
    "latency_frame",
]


def bench(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    backend: str = "ort",
    settings: BenchSettings | None = None,
    name: str = "model",
) -> LatencyResult:
    """Measure ``model`` on ``inputs`` with one backend; see ``BenchSettings`` for the knobs."""
    return get_backend(backend).measure(
        model, tuple(inputs), settings=settings or BenchSettings(), name=name
    )


def __getattr__(name: str):  # calibration pulls in profiling; load it only when asked
    if name in ("calibrate_host", "calibrate_from_measurements"):
        from . import _calibrate

        return getattr(_calibrate, name)
    raise AttributeError(name)
