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
from typing import TYPE_CHECKING, Any

from device_profiles import WORK_REF_S

if TYPE_CHECKING:  # types only: explorer.profiling imports this module to predict
    from torch import nn

    from device_profiles import DeviceProfile, Target
    from explorer.profiling import ModelProfile, OpRecord

__all__ = [
    "PER_CALL_CLASSES",
    "SIZED_CLASSES",
    "OpTime",
    "Prediction",
    "calibration_class",
    "fused_flags",
    "op_calls",
    "op_sizes",
    "predict_latency",
]

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
_SLOW_ACTIVATIONS = ("mish", "softplus")
_DENSE = frozenset({"conv", "linear", "matmul"})
# Classes whose efficiency depends on their size (Calibration.size_efficiency).
SIZED_CLASSES = ("conv", "conv3x3", "linear", "matmul", "attention")
# Classes whose overhead is paid once per kernel call, not once per operator (op_calls).
PER_CALL_CLASSES = frozenset({"gconv"})


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
    """Predicted latency of a model on one device's execution target, with its range.

    ``device`` is the address predicted for (``KEY`` for the board's default target,
    ``KEY:TARGET`` for another). ``low_ms``/``high_ms`` is the range the target's
    leave-one-model-out error gives; an uncalibrated target (or one without a cross-validated
    error) has the roofline as ``low_ms`` (a lower bound) and no upper bound (``high_ms`` None).
    """

    device: str
    ms: float
    roofline_ms: float
    bound: str  # the roof that bounds most of the uncalibrated time
    calibrated: bool
    ops: tuple[OpTime, ...] = ()
    low_ms: float = 0.0
    high_ms: float | None = None
    target: str = ""  # the execution target's name

    @property
    def range_ms(self) -> tuple[float, float | None]:
        """(``low_ms``, ``high_ms``); ``high_ms`` is None when there is no upper bound."""
        return self.low_ms, self.high_ms

    @property
    def has_range(self) -> bool:
        """Whether the prediction has a two-sided range (a calibrated, cross-validated target)."""
        return self.high_ms is not None

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
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "target": self.target,
        }
        if ops:
            d["ops"] = [o.__dict__ for o in self.ops]
        return d


def calibration_class(op: OpRecord) -> str:
    """The operator class calibration uses: ``op.kind``, refined where runtimes differ.

    Depthwise convolutions (``groups`` equal to the input and output channels) run a
    different kernel from dense ones: ``dwconv``; dense 3x3 stride-1 convolutions are
    ``conv3x3`` (runtimes such as ncnn and TensorRT compute them with Winograd's algorithm,
    fewer multiplications than counted; a calibration without ``conv3x3`` values uses its
    ``conv`` ones); other grouped convolutions are ``gconv``
    (see ``op_calls``). Activations split into ``activation`` (ReLU-like, fused into
    the preceding operator), ``activation_math`` (exp/tanh based, vectorised, not fused) and
    ``activation_slow`` (mish and softplus: ONNX Runtime computes Softplus element by element,
    about 35 times the cost of a sigmoid on x86); ``activation_gelu`` (erf-based, about three
    times a sigmoid) has its own class too.
    """
    if op.kind == "activation":
        name = op.op.removeprefix("aten.").split(".")[0]
        if name.startswith(_SLOW_ACTIVATIONS):
            return "activation_slow"
        if name.startswith("gelu"):
            return "activation_gelu"
        return "activation_math" if name.startswith(_MATH_ACTIVATIONS) else "activation"
    if op.kind == "conv" and op.groups > 1 and len(op.input_shape) >= 2:
        if op.groups == op.input_shape[1] == op.output_shape[1]:
            return "dwconv"
        return "gconv"
    if op.kind == "conv" and _is_3x3_stride_1(op):
        return "conv3x3"
    return op.kind


def _is_3x3_stride_1(op: OpRecord) -> bool:
    """A dense 2-D convolution with a 3x3 kernel at stride 1 (Winograd's case)."""
    if op.groups != 1 or len(op.input_shape) != 4 or len(op.output_shape) != 4:
        return False
    if op.input_shape[2:] != op.output_shape[2:]:  # stride 1, "same" padding
        return False
    outputs = math.prod(op.output_shape)
    return outputs > 0 and op.macs == outputs * op.input_shape[1] * 9


def op_calls(op: OpRecord, *, processor: str = "cpu") -> int:
    """Kernel calls an operator costs: one, but ``batch x groups`` for a grouped convolution
    on a CPU.

    ONNX Runtime (MLAS) has vectorised kernels for dense and depthwise convolutions; any other
    grouped convolution (a ghost module's cheap operation: groups = input channels, several
    outputs per group) runs one im2col + small GEMM per image and group, and that per-call
    cost dominates such layers. A GPU runs every group in one launch: PyTorch's profiler on an
    H200 counted 257 CUDA kernels for a ghost network that the CPU count makes 7417 calls.
    """
    if processor == "gpu" or calibration_class(op) not in PER_CALL_CLASSES:
        return 1
    return max(1, op.output_shape[0] if op.output_shape else 1) * op.groups


def op_sizes(op: OpRecord) -> tuple[float, float]:
    """(output channels per group, multiply-adds per output element) of a dense operator."""
    out = math.prod(op.output_shape) if op.output_shape else 0
    if not out or len(op.output_shape) < 2:
        return 1.0, 1.0
    channels = op.output_shape[1] if op.kind == "conv" else op.output_shape[-1]
    return max(1.0, channels / max(op.groups, 1)), max(1.0, op.macs / out)


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
        if cls in SIZED_CLASSES and hasattr(cal, "size_efficiency"):
            channels, reduction = op_sizes(op)
            compute_fraction *= cal.size_efficiency(cls, channels=channels, reduction=reduction)
        bandwidth_fraction = _bandwidth_fraction(cal, cls)
        compute_t = compute_s / compute_fraction * _work_factor(cal, compute_s)
        memory_t = memory_s / bandwidth_fraction
        core = compute_t + memory_t if getattr(cal, "additive", False) else max(compute_t, memory_t)
        ms = core * 1e3 + _overhead_us(cal, cls) * op_calls(op, processor=_processor(device)) * 1e-3
        if op.strided_bytes:  # the exported graph copies a permuted/sliced input first
            copy_s = 2 * op.strided_bytes / (bandwidth * _bandwidth_fraction(cal, "memory"))
            ms += copy_s * 1e3 + _overhead_us(cal, "memory") * 1e-3
    return OpTime(
        module=op.module,
        op=op.op,
        kind=op.kind,
        ms=ms,
        roofline_ms=roofline_s * 1e3,
        bound="compute" if compute_s >= memory_s else "memory",
        fused=fused,
    )


def _kernel_costs_ms(
    ops: tuple[OpRecord, ...], fused: list[bool], cal: Any, *, processor: str
) -> float:
    """The per-kernel fixed costs in a prediction (ms): what ``_op_time`` adds per launch."""
    total_us = 0.0
    for op, f in zip(ops, fused, strict=True):
        if not f:
            calls = op_calls(op, processor=processor)
            total_us += _overhead_us(cal, calibration_class(op)) * calls
            if op.strided_bytes:
                total_us += _overhead_us(cal, "memory")
    return total_us * 1e-3


def _processor(device: Any) -> str:
    """``cpu`` or ``gpu``: a target's processor, else a bare profile's kind (CPU if neither)."""
    return getattr(device, "processor", None) or getattr(device, "kind", None) or "cpu"


def _work_factor(cal: Any, compute_s: float) -> float:
    """``Calibration.work_exponent``'s factor on a compute time of ``compute_s`` at the peak."""
    g = getattr(cal, "work_exponent", 0.0)
    if not g or compute_s <= 0:
        return 1.0
    return (compute_s / WORK_REF_S) ** -g


def _bandwidth_fraction(cal: Any, kind: str) -> float:
    fn = getattr(cal, "bandwidth_fraction_for", None)
    return fn(kind) if fn else cal.bandwidth_fraction


def _overhead_us(cal: Any, kind: str) -> float:
    fn = getattr(cal, "overhead_us_for", None)
    return fn(kind) if fn else cal.overhead_us


def fused_flags(ops: tuple[OpRecord, ...], *, fuse_elementwise: bool) -> list[bool]:
    """For each operator, whether a runtime that fuses elementwise ops folds it into the last
    dense operator (an activation or norm directly after a conv/linear/matmul chain)."""
    if not fuse_elementwise:
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


def _target_of(device: Any) -> Any:
    """The execution target to price on: a profile's selected one, or ``device`` itself."""
    target = getattr(device, "target", None)
    return device if target is None or isinstance(target, str) else target


def predict_latency(
    profile: ModelProfile,
    device: DeviceProfile | Target,
    *,
    model: nn.Module | None = None,
    inputs: Any = None,
) -> Prediction:
    """Predict ``profile``'s latency on ``device``.

    When the device has a learned kernel model (``explorer calibrate`` writes one beside its
    profile) and the ``model`` itself and its example ``inputs`` are given, ``ms``, its range
    and ``ops`` come from that model: the sum over the nodes ONNX Runtime runs
    (``explorer.latency.learned``); otherwise from the roofline below.

    Args:
        profile: the model's operators.
        device: a ``device_profiles.DeviceProfile`` (priced on its selected target: the default
            one for ``KEY``, another for ``KEY:TARGET``) or a ``device_profiles.Target``.
        model: the ``nn.Module`` profiled (optional).
        inputs: its example inputs (with ``model``).

    Returns:
        The calibrated prediction (``ms``, with the target's per-kernel and per-inference
        costs), its range (``low_ms``, ``high_ms``), the uncalibrated roofline bound
        (``roofline_ms``), the roof that dominates, and one ``OpTime`` per operator.
    """
    prediction = _roofline_prediction(profile, device)
    if model is not None and inputs is not None:
        from explorer.latency.learned import kernel_model_for

        kernels = kernel_model_for(device)
        if kernels is not None:
            return _learned_prediction(prediction, model, tuple(inputs), kernels)
    return prediction


def _learned_prediction(base: Prediction, model: Any, inputs: tuple[Any, ...], kernels: Any):
    """``base`` (the roofline prediction) with the learned time, its range and one ``OpTime``
    per node of the optimised graph (its share of the network's time without the profiler)."""
    from dataclasses import replace

    from explorer.latency.learned import predict_graph

    graph = predict_graph(model, inputs, kernels)
    node_us = kernels.predict_nodes_us(graph)
    total = float(node_us.sum())
    node_us = node_us * ((kernels.network_us(node_us) - kernels.call_us) / max(total, 1e-9))
    ops = tuple(
        OpTime(
            module=n.name,
            op=n.op,
            kind=n.kind,
            ms=float(t) / 1e3,
            roofline_ms=0.0,
            bound="",
            fused=bool(n.activation),
        )
        for n, t in zip(graph.nodes, node_us, strict=True)
    )
    ms = (kernels.call_us + float(node_us.sum())) / 1e3
    low, high = kernels.stated_range(ms)
    return replace(base, ms=ms, calibrated=True, ops=ops, low_ms=low, high_ms=high)


def _roofline_prediction(profile: ModelProfile, device: DeviceProfile | Target) -> Prediction:
    address = getattr(device, "address", None) or getattr(device, "key", None)
    target = _target_of(device)
    if address is None:  # a bare Target
        address = f"{target.device}:{target.name}" if target.device else target.name
    device = target
    cal = getattr(device, "calibration", None)
    flags = fused_flags(profile.ops, fuse_elementwise=bool(getattr(cal, "fuse_elementwise", 0)))
    ops = tuple(_op_time(op, device, fused=f) for op, f in zip(profile.ops, flags, strict=True))
    compute_ms = sum(o.roofline_ms for o in ops if o.bound == "compute")
    memory_ms = sum(o.roofline_ms for o in ops if o.bound == "memory")
    call_ms = getattr(cal, "call_overhead_us", 0.0) * 1e-3 if cal is not None else 0.0
    ms = sum(o.ms for o in ops) + call_ms
    roofline_ms = compute_ms + memory_ms
    range_fn = getattr(device, "range_ms", None)
    if range_fn is None:
        low, high = roofline_ms, None
    else:
        fixed_ms = (
            call_ms + _kernel_costs_ms(profile.ops, flags, cal, processor=_processor(device))
            if cal is not None
            else 0.0
        )
        low, high = range_fn(ms, roofline_ms=roofline_ms, fixed_ms=fixed_ms)
    return Prediction(
        device=address,
        ms=ms,
        roofline_ms=roofline_ms,
        bound="compute" if compute_ms >= memory_ms else "memory",
        calibrated=cal is not None,
        ops=ops,
        low_ms=low,
        high_ms=high,
        target=getattr(device, "name", ""),
    )
