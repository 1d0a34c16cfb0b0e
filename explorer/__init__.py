"""explorer: profile, measure, predict and search lightweight audio-visual emotion networks.

The public API is small; see ``__all__``. The command line is ``explorer`` (``explorer.cli``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("explorer")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from explorer.prediction import Prediction, predict_latency
from explorer.profiling import ModelProfile, OpRecord, profile_model

__all__ = [
    "ModelProfile",
    "OpRecord",
    "Prediction",
    "__version__",
    "predict_latency",
    "profile_model",
]
