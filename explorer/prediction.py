"""Predicted latency of a profiled model on a device: a per-operator roofline.

Uncalibrated (``roofline_ms``): each operator takes ``max(FLOPs / peak, bytes / bandwidth)``
and the model takes the sum; this is a lower bound.

Calibrated (``ms``, when the device profile carries a ``Calibration``): the roofs are scaled by
the achievable fractions for the operator's class (``kind``: conv, linear, rnn, ...), each
operator adds a fixed overhead for its class, and the model adds a fixed per-inference cost.
With ``fuse_elementwise`` an activation or norm that directly follows a conv/linear/matmul is
treated as fused into it (ONNX Runtime and TensorRT fuse these), so only its arithmetic counts:
no memory traffic and no overhead of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from explorer.profiling._types import ModelProfile, OpRecord

__all__ = ["OpTime", "Prediction", "calibration_class", "predict_latency"]

# Classes a runtime fuses into a preceding dense operator (ONNX Runtime's FusedConv/FusedGemm
# take ReLU, clip, leaky ReLU; batch norm is folded at export), and the kinds they fuse into.
_FUSABLE = frozenset({"activation", "norm"})
# Activations that need exp/log/tanh per element (and are not fused by ONNX Runtime): mish is
# softplus + tanh + mul, several times the cost of a ReLU.
_MATH_ACTIVATIONS = (
    "mish",
    "softplus",
    "gelu",
    "silu",
    "elu",
    "tanh",
    "sigmoid",
    "hardswish",
    "hardsigmoid",
    "log_sigmoid",
    "exp",
)
_DENSE = frozenset({"conv", "linear", "matmul"})


@dataclass(frozen=True, kw_only=True)
class OpTime:
    """Predicted time of one operator."""

    module: str
    op: str
    kind: str
    ms: float  # calibrated (equals roofline_ms when the device is not calibrated)
    roofline_ms: float  # uncalibrated max(compute, memory)
    bound: str  # "compute" or "memory", by the uncalibrated roofs
    fused: bool = False  # folded into the preceding dense operator


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Predicted latency of a model on one device."""

    device: str
    ms: float
    roofline_ms: float
    bound: str  # the roof that bounds most of the uncalibrated time
    calibrated: bool
    ops: tuple[OpTime, ...] = ()

    def by_kind(self) -> dict[str, float]:
        """Predicted milliseconds per operator class."""
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.kind] = out.get(o.kind, 0.0) + o.ms
        return out

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


def calibration_class(op: OpRecord) -> str:
    """The operator class calibration uses: ``op.kind``, with convolutions split in three.

    Runtimes vectorise a convolution over its output channels and its reduction (``Cin/groups
    x kernel area`` MACs per output element), so the share of peak they reach depends on both:
    ``dwconv`` (reduction <= 49: depthwise, or one input channel), ``conv_thin`` (at most 4
    output channels, e.g. attention-gate convs) and ``conv`` (the rest). Activations split into
    ``activation`` (ReLU-like, fusable) and ``activation_math`` (exp/tanh based, not fused).
    """
    if op.kind == "activation":
        name = op.op.removeprefix("aten.").split(".")[0]
        return "activation_math" if name.startswith(_MATH_ACTIVATIONS) else "activation"
    if op.kind == "conv" and len(op.output_shape) >= 2:
        out = math.prod(op.output_shape)
        if out and op.macs / out <= 49:
            return "dwconv"
        if op.output_shape[1] <= 4:
            return "conv_thin"
    return op.kind


def _op_time(op: OpRecord, device: Any, *, fused: bool) -> OpTime:
    peak = device.peak_gflops_fp32 * 1e9  # FLOP/s
    bandwidth = device.bandwidth_gb_s * 1e9  # B/s
    compute_s = op.total_flops / peak
    memory_s = op.traffic_bytes / bandwidth
    roofline_s = max(compute_s, memory_s)
    cal = getattr(device, "calibration", None)
    if cal is None:
        ms = roofline_s * 1e3
    elif fused:
        ms = compute_s / cal.compute_fraction_for(calibration_class(op)) * 1e3
    else:
        cls = calibration_class(op)
        compute_fraction = cal.compute_fraction_for(cls)
        bandwidth_fraction = _bandwidth_fraction(cal, cls)
        ms = (
            max(compute_s / compute_fraction, memory_s / bandwidth_fraction) * 1e3
            + _overhead_us(cal, cls) * 1e-3
        )
    return OpTime(
        module=op.module,
        op=op.op,
        kind=op.kind,
        ms=ms,
        roofline_ms=roofline_s * 1e3,
        bound="compute" if compute_s >= memory_s else "memory",
        fused=fused,
    )


def _bandwidth_fraction(cal: Any, kind: str) -> float:
    fn = getattr(cal, "bandwidth_fraction_for", None)
    return fn(kind) if fn else cal.bandwidth_fraction


def _overhead_us(cal: Any, kind: str) -> float:
    fn = getattr(cal, "overhead_us_for", None)
    return fn(kind) if fn else cal.overhead_us


def _fused_flags(ops: tuple[OpRecord, ...], cal: Any) -> list[bool]:
    if cal is None or not getattr(cal, "fuse_elementwise", False):
        return [False] * len(ops)
    flags = []
    previous_kind = ""
    chain_open = False  # the last non-fused op was dense and this op may join it
    for op in ops:
        cls = calibration_class(op)
        fuse = cls in _FUSABLE and chain_open and previous_kind in (_DENSE | _FUSABLE)
        flags.append(fuse)
        if not fuse:
            chain_open = op.kind in _DENSE
        previous_kind = cls
    return flags


def predict_latency(profile: ModelProfile, device: Any) -> Prediction:
    """Predict ``profile``'s latency on ``device`` (a ``device_profiles.DeviceProfile``).

    Returns the calibrated prediction (``ms``), the uncalibrated roofline bound
    (``roofline_ms``), the roof that dominates, and one ``OpTime`` per operator.
    """
    cal = getattr(device, "calibration", None)
    flags = _fused_flags(profile.ops, cal)
    ops = tuple(_op_time(op, device, fused=f) for op, f in zip(profile.ops, flags, strict=True))
    compute_ms = sum(o.roofline_ms for o in ops if o.bound == "compute")
    memory_ms = sum(o.roofline_ms for o in ops if o.bound == "memory")
    call_ms = getattr(cal, "call_overhead_us", 0.0) * 1e-3 if cal is not None else 0.0
    return Prediction(
        device=device.key,
        ms=sum(o.ms for o in ops) + call_ms,
        roofline_ms=compute_ms + memory_ms,
        bound="compute" if compute_ms >= memory_ms else "memory",
        calibrated=cal is not None,
        ops=ops,
    )
