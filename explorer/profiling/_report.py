"""``profile_report``: a profile, its roofline per device and the counters' cross-checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ._counters import CounterResult, cross_check
from ._profile import profile_model
from ._types import ModelProfile

__all__ = ["ProfileReport", "profile_report"]


@dataclass(frozen=True, kw_only=True)
class ProfileReport:
    """What ``explorer profile`` prints: counts, predictions per device, cross-checks."""

    profile: ModelProfile
    predictions: tuple[Any, ...] = ()  # explorer.prediction.Prediction, one per device
    counters: tuple[CounterResult, ...] = ()

    def to_dict(self, *, layers: bool = True) -> dict[str, Any]:
        """The JSON document ``explorer profile --format json`` prints: totals, ``layers``,
        ``devices``, ``counters``."""
        d = self.profile.to_dict(layers=layers)
        d["devices"] = {p.device: p.to_dict() for p in self.predictions}
        if self.counters:
            d["counters"] = {c.name: c.to_dict() for c in self.counters}
        return d


def profile_report(
    model: nn.Module,
    example_inputs: Any,
    *,
    name: str = "model",
    devices: Sequence[Any] = (),
    counters: Sequence[str] = (),
    meta: bool | None = None,
) -> ProfileReport:
    """Profile ``model``, predict its uncalibrated/calibrated roofline latency on each device
    (``device_profiles.DeviceProfile`` objects) and run the named external counters."""
    from explorer.prediction import predict_latency  # imports our types: import late

    profile = profile_model(model, example_inputs, name=name, meta=meta)
    predictions = tuple(
        predict_latency(profile, device, model=model, inputs=example_inputs) for device in devices
    )
    checks = cross_check(model, example_inputs, profile, counters=counters) if counters else ()
    return ProfileReport(profile=profile, predictions=predictions, counters=checks)
