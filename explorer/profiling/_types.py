"""The results of profiling: one ``OpRecord`` per aten operator and a ``ModelProfile``.

Conventions:
- ``macs`` are multiply-accumulates of the dense arithmetic (conv, linear, matmul, RNN gates,
  attention products, bilinear); ``flops = 2 * macs``; this is what the papers' "FLOPs" mean
  when they are not MACs.
- ``elementwise_flops`` counts everything else (activations, norms, softmax, adds, pooling,
  RNN gate nonlinearities) at about 1 FLOP per element touched, reported separately.
- Bytes assume every operand crosses DRAM once (the unfused lower bound), at its dtype size.
  ``bytes_read`` includes ``weight_bytes`` (parameters and buffers read by the operator).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["OP_KINDS", "ModelProfile", "OpRecord"]

# Operator classes used for attribution, calibration and colouring in charts.
OP_KINDS = (
    "conv",
    "linear",
    "matmul",
    "attention",
    "rnn",
    "norm",
    "activation",
    "pool",
    "elementwise",
    "reduction",
    "memory",  # copies, cat, pad, indexing: bytes but no arithmetic
    "other",
)


@dataclass(frozen=True, kw_only=True)
class OpRecord:
    """One aten operator call, attributed to the innermost module that ran it."""

    module: str  # dotted module path; "" for the model itself
    module_type: str  # class name of that module, e.g. "Conv2d"
    op: str  # aten operator, e.g. "aten.convolution.default"
    kind: str  # one of OP_KINDS
    macs: int
    flops: int  # 2 * macs
    elementwise_flops: int
    bytes_read: int  # inputs + weights
    bytes_written: int
    weight_bytes: int
    output_shape: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = ()  # of the first tensor argument (a conv's input)
    groups: int = 1  # a convolution's groups (channels == groups: depthwise); 1 otherwise
    # Bytes of inputs that are strided views (permuted, sliced): an exported graph
    # materialises each as a Transpose/Slice copy before the operator.
    strided_bytes: int = 0

    @property
    def total_flops(self) -> int:
        """Dense plus elementwise FLOPs: what the compute roof has to process."""
        return self.flops + self.elementwise_flops

    @property
    def traffic_bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        """FLOPs (dense + elementwise) per byte of traffic."""
        return self.total_flops / self.traffic_bytes if self.traffic_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["input_shape"] = list(self.input_shape)
        d["intensity"] = self.intensity
        return d


@dataclass(frozen=True, kw_only=True)
class ModelProfile:
    """Totals and per-operator rows of one forward pass at a given batch size."""

    model: str
    params: int  # from model.parameters(), de-duplicated
    macs: int
    flops: int  # 2 * macs
    elementwise_flops: int
    weight_bytes: int  # parameter + buffer bytes of the model
    traffic_bytes: int  # sum of per-operator bytes read + written
    peak_activation_bytes: int  # max bytes of live activations over the forward (lifetimes)
    batch_size: int = 1
    ops: tuple[OpRecord, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()
    uncounted_ops: tuple[str, ...] = ()  # aten ops seen that have no cost rule (0 FLOPs)
    meta: bool = False  # True when counted on fake tensors (no arithmetic ran)

    @property
    def total_flops(self) -> int:
        return self.flops + self.elementwise_flops

    @property
    def ai_weights(self) -> float:
        """FLOPs per weight byte: the papers' "arithmetic intensity" (Lu, Lu and Lin 2025,
        Table IX)."""
        return self.flops / self.weight_bytes if self.weight_bytes else 0.0

    @property
    def ai_traffic(self) -> float:
        """FLOPs (dense + elementwise) per byte of DRAM traffic: the roofline's intensity."""
        return self.total_flops / self.traffic_bytes if self.traffic_bytes else 0.0

    def to_dict(self, *, layers: bool = True) -> dict[str, Any]:
        """JSON-safe dict with the keys ``explorer profile --format json`` promises (``layers``
        = per-operator rows)."""
        d = {
            "model": self.model,
            "batch_size": self.batch_size,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "elementwise_flops": self.elementwise_flops,
            "weight_bytes": self.weight_bytes,
            "traffic_bytes": self.traffic_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "ai_weights": self.ai_weights,
            "ai_traffic": self.ai_traffic,
            "input_shapes": [list(s) for s in self.input_shapes],
            "uncounted_ops": list(self.uncounted_ops),
            "meta": self.meta,
        }
        d["layers"] = [op.to_dict() for op in self.ops] if layers else []
        return d

    def to_frame(self, *, by: str = "op") -> Any:
        """The per-operator rows as a pandas ``DataFrame``.

        Args:
            by: ``"op"``: one row per aten operator call, with every ``OpRecord`` field plus
                ``total_flops``, ``traffic_bytes`` and ``intensity``; ``"module"``: one row
                per module (the layer view), summing the counts of its operators and adding
                ``calls`` (operator calls) and ``ops`` (distinct operators, comma-separated).

        Returns:
            A ``DataFrame`` whose ``macs``, ``flops``, ``elementwise_flops`` and byte columns
            sum to this profile's totals (``macs`` to ``self.macs``).

        Raises:
            UsageError: ``by`` is neither ``"op"`` nor ``"module"``.
        """
        return _frame(self, by=by)


_SUMMED = (
    "macs",
    "flops",
    "elementwise_flops",
    "bytes_read",
    "bytes_written",
    "weight_bytes",
    "strided_bytes",
)


def _frame(profile: ModelProfile, *, by: str) -> Any:
    # pandas is imported here, not at the top: the CLI's start-up does not pay for it.
    from explorer.errors import UsageError

    if by not in ("op", "module"):
        raise UsageError(f"to_frame(by={by!r}) is unknown: use by='op' or by='module'")
    import pandas as pd

    columns = [f.name for f in dataclasses.fields(OpRecord)]
    rows = [
        {
            **{name: getattr(op, name) for name in columns},
            "total_flops": op.total_flops,
            "traffic_bytes": op.traffic_bytes,
            "intensity": op.intensity,
        }
        for op in profile.ops
    ]
    ops = pd.DataFrame(rows, columns=[*columns, "total_flops", "traffic_bytes", "intensity"])
    if by == "op":
        return ops
    grouped = ops.groupby("module", sort=False)
    layers = grouped[[*_SUMMED, "total_flops", "traffic_bytes"]].sum()
    layers.insert(0, "module_type", grouped["module_type"].first())
    layers.insert(1, "calls", grouped.size())
    layers.insert(2, "ops", grouped["op"].agg(lambda s: ",".join(dict.fromkeys(s))))
    layers["intensity"] = (layers["total_flops"] / layers["traffic_bytes"]).where(
        layers["traffic_bytes"] > 0, 0.0
    )
    return layers.reset_index()
