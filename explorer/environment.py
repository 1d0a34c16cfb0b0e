"""A record of the software and hardware a measurement or a run was made on."""

from __future__ import annotations

import os
import platform
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["cpu_model", "environment"]

_PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "optuna",
    "plotly",
    "numpy",
    "torch-pruning",
    "fvcore",
    "thop",
    "librosa",
    "opencv-python-headless",
    "psycopg",
    "tensorrt",
    "nni",
)


@cache
def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions of Python and the runtimes, CPU model and cores, and GPUs if any."""
    from explorer import __version__

    packages = {name: _package_version(name) for name in _PACKAGES}
    gpus: list[str] = []
    cuda = None
    try:
        import torch

        if torch.cuda.is_available():
            cuda = torch.version.cuda
            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        threads = None
    try:
        import onnxruntime

        ort_providers = onnxruntime.get_available_providers()
    except ImportError:  # pragma: no cover
        ort_providers = []
    return {
        "explorer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "cuda": cuda,
        "gpus": gpus,
        "onnxruntime_providers": ort_providers,
        "packages": packages,
    }
