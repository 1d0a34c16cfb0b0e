"""Latency: measured on real runtimes, predicted per device, calibrated by measurement.

    >>> from explorer.latency import bench, BenchSettings
    >>> result = bench(model, inputs, backend="ort", settings=BenchSettings(threads=1))
    >>> result.median_ms

Backends (``ort``, ``torch``, ``tensorrt``) share one protocol and return a frozen
``LatencyResult`` with the raw timings and the environment. ``calibrate_host`` measures this
machine and returns a ``host`` device profile; ``calibrate_from_measurements`` fits a device's
calibration from ``explorer bench --format json`` results taken on that device;
``calibrate_torch`` calibrates PyTorch eager (CPU or CUDA) on this machine. ``torch_device``
checks a ``--torch-device`` name against this machine; ``family_of`` tells a calibration sample
that is a family network (named ``family#seed``) from the others.

Learned kernels: ``calibrate_host_learned`` (what ``explorer calibrate`` runs) samples and
profiles networks node by node and fits a ``KernelModel``, saved as ``KEY.kernels.json`` beside
the profile (``kernel_file_for``); ``kernel_model_for(device)`` finds it again. Prediction
imports these from the public module ``explorer.latency.learned``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._backends import BACKENDS, Backend, BenchSettings, get_backend, torch_device
from ._result import LatencyResult, latency_frame

__all__ = [
    "BACKENDS",
    "NOISY_SCATTER",
    "Backend",
    "BenchSettings",
    "KernelModel",
    "LatencyResult",
    "LearnedRun",
    "bench",
    "calibrate_from_measurements",
    "calibrate_host",
    "calibrate_host_learned",
    "calibrate_torch",
    "family_of",
    "get_backend",
    "kernel_file_for",
    "kernel_model_for",
    "latency_frame",
    "load_kernel_model",
    "torch_device",
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


def __getattr__(name: str):  # calibration pulls in profiling and the fits: load when asked
    if name in ("calibrate_host", "calibrate_from_measurements", "family_of"):
        from . import _calibrate

        return getattr(_calibrate, name)
    if name == "calibrate_torch":
        from . import _eager

        return _eager.calibrate_torch
    if name in ("calibrate_host_learned", "LearnedRun", "NOISY_SCATTER"):
        from . import _host_learned

        return getattr(_host_learned, name)
    if name in ("KernelModel", "kernel_file_for", "kernel_model_for", "load_kernel_model"):
        from . import learned

        return getattr(learned, name)
    raise AttributeError(name)
