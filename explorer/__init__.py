"""explorer: profile, measure, predict and search lightweight audio-visual emotion networks.

The public API is small; see ``__all__``. The command line is ``explorer`` (``explorer.cli``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("explorer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explorer.prediction import Prediction, predict_latency
    from explorer.profiling import ModelProfile, OpRecord, profile_model

# Imported on first use: they import torch (seconds), which `explorer --help`, `explorer
# devices` and `explorer spaces` do not need.
_LAZY = {
    "Prediction": "explorer.prediction",
    "predict_latency": "explorer.prediction",
    "ModelProfile": "explorer.profiling",
    "OpRecord": "explorer.profiling",
    "profile_model": "explorer.profiling",
}

__all__ = [
    "ModelProfile",
    "OpRecord",
    "Prediction",
    "__version__",
    "predict_latency",
    "profile_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
