"""Predicted latency of a profiled model on a device: a per-operator roofline.

Uncalibrated: each operator takes ``max(FLOPs / peak, bytes / bandwidth)``; the model takes
the sum (``roofline_ms``). Calibrated (when the device profile carries a calibration): the roofs
are scaled by the achievable fractions and each operator adds a fixed overhead (``ms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from explorer.profiling._types import ModelProfile, OpRecord

__all__ = ["OpTime", "Prediction", "predict_latency"]


@dataclass(frozen=True, kw_only=True)
class OpTime:
    """Predicted time of one operator."""

    module: str
    op: str
    kind: str
    ms: float  # calibrated (equals roofline_ms when the device is not calibrated)
    roofline_ms: float  # uncalibrated max(compute, memory)
    bound: str  # "compute" or "memory", by the uncalibrated roofs


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Predicted latency of a model on one device."""

    device: str
    ms: float
    roofline_ms: float
    bound: str  # the roof that bounds most of the uncalibrated time
    calibrated: bool
    ops: tuple[OpTime, ...] = ()

    def to_dict(self, *, ops: bool = False) -> dict[str, Any]:
        d = {
            "device": self.device,
            "predicted_ms": self.ms,
            "roofline_ms": self.roofline_ms,
            "bound": self.bound,
            "calibrated": self.calibrated,
        }
        if ops:
            d["ops"] = [o.__dict__ for o in self.ops]
        return d


def _op_time(op: OpRecord, device: Any) -> OpTime:
    peak = device.peak_gflops_fp32 * 1e9  # FLOP/s
    bandwidth = device.bandwidth_gb_s * 1e9  # B/s
    compute_s = op.total_flops / peak
    memory_s = op.traffic_bytes / bandwidth
    roofline_s = max(compute_s, memory_s)
    cal = getattr(device, "calibration", None)
    if cal is None:
        ms = roofline_s * 1e3
    else:
        compute_fraction = cal.compute_fraction_for(op.kind)
        ms = (
            max(compute_s / compute_fraction, memory_s / cal.bandwidth_fraction) * 1e3
            + cal.overhead_us * 1e-3
        )
    return OpTime(
        module=op.module,
        op=op.op,
        kind=op.kind,
        ms=ms,
        roofline_ms=roofline_s * 1e3,
        bound="compute" if compute_s >= memory_s else "memory",
    )


def predict_latency(profile: ModelProfile, device: Any) -> Prediction:
    """Predict ``profile``'s latency on ``device`` (a ``device_profiles.DeviceProfile``)."""
    ops = tuple(_op_time(op, device) for op in profile.ops)
    compute_ms = sum(o.roofline_ms for o in ops if o.bound == "compute")
    memory_ms = sum(o.roofline_ms for o in ops if o.bound == "memory")
    return Prediction(
        device=device.key,
        ms=sum(o.ms for o in ops),
        roofline_ms=compute_ms + memory_ms,
        bound="compute" if compute_ms >= memory_ms else "memory",
        calibrated=getattr(device, "calibration", None) is not None,
        ops=ops,
    )
