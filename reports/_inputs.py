"""Plain inputs of the charts: devices, model costs and timings, independent of ``explorer``.

``reports`` must not import ``explorer`` (dependencies point one way), so the charts take these
small frozen records. Each has a ``from_*`` constructor that reads the matching object: a
``device_profiles.DeviceProfile``, and, described by the protocols below since
this package does not import ``explorer``, an ``explorer`` ``ModelProfile`` or ``Prediction``;
the CLI uses them, tests build the records by hand.

Units: FLOPs are counts per inference (batch as profiled), bytes are bytes, times are ms,
throughputs are GFLOP/s and GB/s (1e9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from device_profiles import DeviceProfile

__all__ = ["DeviceRoof", "ModelCost", "OpCost", "PredictionLike", "ProfileLike", "Timing"]


class _OpLike(Protocol):
    """One operator row of a profile (``explorer.profiling.OpRecord``)."""

    @property
    def module(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def total_flops(self) -> int: ...
    @property
    def traffic_bytes(self) -> int: ...


class ProfileLike(Protocol):
    """What ``ModelCost.from_profile`` reads: an ``explorer.profiling.ModelProfile``."""

    @property
    def model(self) -> str: ...
    @property
    def params(self) -> int: ...
    @property
    def flops(self) -> int: ...
    @property
    def total_flops(self) -> int: ...
    @property
    def weight_bytes(self) -> int: ...
    @property
    def traffic_bytes(self) -> int: ...
    @property
    def ops(self) -> Sequence[_OpLike]: ...


class _TimedOpLike(Protocol):
    @property
    def ms(self) -> float: ...


class PredictionLike(Protocol):
    """What ``Timing.from_prediction`` reads: an ``explorer.prediction.Prediction``."""

    @property
    def ms(self) -> float: ...
    @property
    def calibrated(self) -> bool: ...
    @property
    def bound(self) -> str: ...
    @property
    def low_ms(self) -> float | None: ...
    @property
    def high_ms(self) -> float | None: ...
    @property
    def ops(self) -> Sequence[_TimedOpLike]: ...


@dataclass(frozen=True, kw_only=True)
class DeviceRoof:
    """The two roofs of one device, and its achievable roofs when it is calibrated."""

    key: str
    name: str
    peak_gflop_s: float
    bandwidth_gb_s: float
    achievable_peak_gflop_s: float | None = None
    achievable_bandwidth_gb_s: float | None = None

    @property
    def ridge_flops_per_byte(self) -> float:
        """Intensity where the bandwidth roof meets the compute roof (FLOPs per byte)."""
        return self.peak_gflop_s / self.bandwidth_gb_s

    @property
    def calibrated(self) -> bool:
        return self.achievable_peak_gflop_s is not None

    @property
    def achievable_ridge_flops_per_byte(self) -> float | None:
        if self.achievable_peak_gflop_s is None or self.achievable_bandwidth_gb_s is None:
            return None
        return self.achievable_peak_gflop_s / self.achievable_bandwidth_gb_s

    def roof_gflop_s(self, intensity: float, *, achievable: bool = False) -> float:
        """Attainable GFLOP/s at ``intensity`` FLOPs/byte: min(peak, intensity x bandwidth)."""
        peak, bw = self.peak_gflop_s, self.bandwidth_gb_s
        if achievable and self.calibrated:
            peak, bw = self.achievable_peak_gflop_s, self.achievable_bandwidth_gb_s
        return min(peak, intensity * bw)  # type: ignore[operator]

    def roofline_ms(self, flops: float, traffic_bytes: float) -> float:
        """Uncalibrated time of one operator: max(FLOPs / peak, bytes / bandwidth), in ms."""
        return 1e3 * max(
            flops / (self.peak_gflop_s * 1e9), traffic_bytes / (self.bandwidth_gb_s * 1e9)
        )

    @classmethod
    def from_profile(cls, device: DeviceProfile) -> DeviceRoof:
        """From a ``device_profiles.DeviceProfile``: the roofs of its selected execution target
        (the default one for a plain key: for the paper's boards, the paper's FP32 figures),
        and the target's achievable roofs when it is calibrated."""
        target = getattr(device, "target", None) or device
        cal = getattr(target, "calibration", None)
        peak = float(target.peak_gflops_fp32)
        bw = float(target.bandwidth_gb_s)
        return cls(
            key=getattr(device, "address", device.key),
            name=getattr(device, "name", device.key),
            peak_gflop_s=peak,
            bandwidth_gb_s=bw,
            achievable_peak_gflop_s=peak * cal.compute_fraction if cal else None,
            achievable_bandwidth_gb_s=bw * cal.bandwidth_fraction if cal else None,
        )


@dataclass(frozen=True, kw_only=True)
class OpCost:
    """One operator of a model: what it computes and moves."""

    module: str
    op: str
    kind: str
    flops: int  # dense + elementwise: what the compute roof processes
    traffic_bytes: int

    @property
    def intensity(self) -> float:
        """FLOPs per byte of traffic (0 for pure data movement)."""
        return self.flops / self.traffic_bytes if self.traffic_bytes else 0.0


@dataclass(frozen=True, kw_only=True)
class ModelCost:
    """The counted cost of one model (one inference at the profiled batch size).

    ``flops`` are the dense FLOPs (2 x MACs, what the papers call FLOPs); ``total_flops`` adds
    the elementwise ones. ``traffic_bytes`` is None when only a paper's totals are known.
    """

    name: str
    params: int
    flops: int
    weight_bytes: int
    total_flops: int | None = None
    traffic_bytes: int | None = None
    family: str = ""
    ops: tuple[OpCost, ...] = ()

    @property
    def ai_weights(self) -> float:
        """The papers' intensity: dense FLOPs per byte of weights (Lu, Lu and Lin 2025,
        Table IX)."""
        return self.flops / self.weight_bytes if self.weight_bytes else 0.0

    @property
    def ai_traffic(self) -> float | None:
        """The roofline's intensity: all FLOPs per byte of DRAM traffic (None if unknown)."""
        if not self.traffic_bytes:
            return None
        return (self.total_flops or self.flops) / self.traffic_bytes

    @classmethod
    def from_profile(
        cls, profile: ProfileLike, *, name: str | None = None, family: str = ""
    ) -> ModelCost:
        """From an ``explorer`` ``ModelProfile`` (its totals and per-operator rows)."""
        ops = tuple(
            OpCost(
                module=o.module,
                op=o.op,
                kind=o.kind,
                flops=int(o.total_flops),
                traffic_bytes=int(o.traffic_bytes),
            )
            for o in profile.ops
        )
        return cls(
            name=name or profile.model,
            params=int(profile.params),
            flops=int(profile.flops),
            weight_bytes=int(profile.weight_bytes),
            total_flops=int(profile.total_flops),
            traffic_bytes=int(profile.traffic_bytes),
            family=family,
            ops=ops,
        )


@dataclass(frozen=True, kw_only=True)
class Timing:
    """How long a model takes on a device: predicted or measured, optionally per operator.

    ``op_ms`` is aligned with ``ModelCost.ops`` (empty when only the total is known).
    """

    ms: float
    source: str = "predicted"  # "predicted" | "measured" | "roofline"
    op_ms: tuple[float, ...] = ()
    bound: str = ""  # the roof that bounds most of the time, when the predictor says
    low_ms: float | None = None  # the prediction's range (None: not known)
    high_ms: float | None = None  # None: no upper bound (an uncalibrated roofline)

    @classmethod
    def from_prediction(cls, prediction: PredictionLike) -> Timing:
        """From an ``explorer`` ``Prediction`` (calibrated ms when calibrated), with its range."""
        low = getattr(prediction, "low_ms", None)
        high = getattr(prediction, "high_ms", None)
        return cls(
            ms=float(prediction.ms),
            source="predicted" if getattr(prediction, "calibrated", False) else "roofline",
            op_ms=tuple(float(o.ms) for o in prediction.ops),
            bound=getattr(prediction, "bound", ""),
            low_ms=None if low is None else float(low),
            high_ms=None if high is None else float(high),
        )

    def range_text(self) -> str:
        """``12.3-18.0 ms``, ``>= 4.1 ms (a lower bound)``, or "" when no range is known."""
        if self.high_ms is not None and self.low_ms is not None:
            return f"{self.low_ms:.3g}-{self.high_ms:.3g} ms"
        if self.low_ms is not None and self.source == "roofline":
            return f">= {self.low_ms:.3g} ms (uncalibrated: the roofline is a lower bound)"
        return ""
