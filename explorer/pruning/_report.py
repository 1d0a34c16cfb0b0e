"""What ``prune_checkpoint`` returns: the before/after table, the pruning, the files written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ._core import PruneResult

if TYPE_CHECKING:
    from explorer.export import ExportResult
    from explorer.metrics import Metrics
    from explorer.quantize import DeploymentCheck

__all__ = ["DeploymentReport", "FinetuneStep", "PruneCosts", "PruneReport"]


@dataclass(frozen=True, kw_only=True)
class PruneCosts:
    """One column of the before/after table: counted costs, predicted and measured latency,
    validation scores (None where not measured or without data)."""

    params: int
    macs: int
    flops: int
    weight_bytes: int
    predicted_ms: float | None  # on the device (``model_costs``' latency_ms)
    ort_ms: float | None  # ONNX Runtime on this machine, one thread, median
    accuracy: float | None
    macro_f1: float | None

    @classmethod
    def of(
        cls, costs: Mapping[str, float], *, ort_ms: float | None, metrics: Metrics | None
    ) -> PruneCosts:
        """From ``model_costs``' totals, a measured time and validation metrics."""
        return cls(
            params=int(costs["params"]),
            macs=int(costs["macs"]),
            flops=int(costs["flops"]),
            weight_bytes=int(costs["weight_bytes"]),
            predicted_ms=costs.get("latency_ms"),
            ort_ms=ort_ms,
            accuracy=None if metrics is None else metrics.accuracy,
            macro_f1=None if metrics is None else metrics.macro_f1,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class FinetuneStep:
    """The fine-tuning after one pruning step, on the validation split."""

    step: int
    epochs: int
    val_macro_f1: float
    val_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class DeploymentReport:
    """The pruned model at a lower precision: validation macro-F1 against FP32 (ONNX
    Runtime), and its predicted time on the board's target for that precision."""

    check: DeploymentCheck
    target: str | None  # "board:target" (None: the board has no peak for the precision)
    predicted_ms: float | None
    prediction_note: str | None  # why there is no prediction

    def to_dict(self) -> dict[str, Any]:
        return self.check.to_dict() | {
            "target": self.target,
            "predicted_ms": self.predicted_ms,
            "prediction_note": self.prediction_note,
        }


@dataclass(frozen=True, kw_only=True)
class PruneReport:
    """What ``prune_checkpoint`` did; ``to_dict()`` is ``explorer prune --format json``."""

    source: str
    device: str
    pruning: PruneResult  # the budget, the steps, what was kept intact
    importance: str
    round_to: int
    finetune_epochs: int
    finetune: tuple[FinetuneStep, ...]
    dataset: str | None  # None: no data (no fine-tuning, no scores)
    before: PruneCosts
    after: PruneCosts
    checkpoint: str | None = None
    reload_max_abs_diff: float | None = None  # the reloaded checkpoint's outputs vs in memory
    onnx: ExportResult | None = None
    deployment: DeploymentReport | None = None

    @property
    def kept_intact(self) -> Mapping[str, str]:
        """Module name -> why pruning left it intact."""
        return self.pruning.kept_intact

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "device": self.device,
            "budget": self.pruning.to_dict(),
            "importance": self.importance,
            "round_to": self.round_to,
            "finetune_epochs": self.finetune_epochs,
            "finetune": [s.to_dict() for s in self.finetune],
            "dataset": self.dataset,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "kept_intact": dict(self.kept_intact),
            "checkpoint": self.checkpoint,
            "reload_max_abs_diff": self.reload_max_abs_diff,
            "onnx": None if self.onnx is None else self.onnx.to_dict(),
            "deployment": None if self.deployment is None else self.deployment.to_dict(),
        }
