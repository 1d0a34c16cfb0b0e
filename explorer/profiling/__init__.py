"""Count a model's cost operator by operator: MACs, FLOPs, bytes, weights, peak activations.

    >>> from explorer.profiling import profile_model
    >>> profile = profile_model(model, example_inputs)
    >>> profile.macs, profile.flops, profile.peak_activation_bytes
    >>> profile.to_frame(by="module")  # a pandas DataFrame, one row per layer

``cross_check`` runs the external counters (PyTorch's ``FlopCounterMode``, fvcore, thop, and
NNI's ``count_flops_params`` from the ``nni`` extra) on the same model and reports where they
disagree; ``profile_report`` bundles a profile, its
roofline predictions per device and the cross-checks (what ``explorer profile`` prints).
"""

from __future__ import annotations

from ._counters import COUNTERS, CounterResult, cross_check, parse_counters
from ._profile import profile_model
from ._report import ProfileReport, profile_report
from ._types import OP_KINDS, ModelProfile, OpRecord

__all__ = [
    "COUNTERS",
    "OP_KINDS",
    "CounterResult",
    "ModelProfile",
    "OpRecord",
    "ProfileReport",
    "cross_check",
    "parse_counters",
    "profile_model",
    "profile_report",
]
