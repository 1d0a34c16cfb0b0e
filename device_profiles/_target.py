"""Execution targets: one way of running a network on a board (processor, runtime, precision).

A board is not one number: the same Raspberry Pi 4 runs FP32 MobileNetV2 in 46 ms with XNNPACK
and in 62 ms with ncnn, and a Jetson's GPU and CPU differ by several times. A ``Target`` holds
the roofs of one such way of running (the peak for its precision and thread count, the memory
bandwidth), its fixed costs and their fit (a ``Calibration``: shares of the roofs, a cost per
kernel launch or dispatch, a cost per inference), and how well that fit predicted networks it
had not seen (``CrossValidation``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._base import KINDS, PRECISIONS, DeviceError
from ._base import positive as _positive

if TYPE_CHECKING:
    from ._profile import Calibration

__all__ = ["MIN_RANGE_POINTS", "TARGET_NAME_RE", "CrossValidation", "Target"]

TARGET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# Fewer leave-one-model-out points than this give no range (two ratios are not a spread).
MIN_RANGE_POINTS = 3


@dataclass(frozen=True, kw_only=True)
class CrossValidation:
    """Leave-one-model-out error of a target's calibration.

    Each measured network was predicted by a fit made without it; ``within_10`` etc. are the
    shares of those predictions within ±10/±25/±50 % of the measurement, and ``low_ratio`` /
    ``high_ratio`` the 10th and 90th percentiles of measured / predicted (the range a new
    prediction is given: ``[ms * low_ratio, ms * high_ratio]``).

    ``fixed_ratio`` bounds the fitted fixed costs (per kernel, per inference) themselves: their
    80 % interval is ``[cost / fixed_ratio, cost * fixed_ratio]``, from the fit's own
    uncertainty. Networks of 1-25 ms pin the work terms far better than the fixed costs, so a
    network whose time is mostly fixed costs (under a millisecond) takes this wider factor on
    that part of its time (``Target.range_ms``). 1.0 when unknown (files written before it).
    """

    points: int
    models: int
    within_10: float
    within_25: float
    within_50: float
    low_ratio: float
    high_ratio: float
    source: str = ""
    fixed_ratio: float = 1.0

    def __post_init__(self) -> None:
        where = f"cross_validation ({self.source or 'no source'})"
        for name in ("points", "models"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DeviceError(f"{where}: {name} must be a positive integer, got {v!r}")
        for name in ("within_10", "within_25", "within_50"):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            if not ok:
                raise DeviceError(f"{where}: {name} must be a share in [0, 1], got {v!r}")
        _positive(self.low_ratio, "low_ratio", where=where)
        _positive(self.high_ratio, "high_ratio", where=where)
        _positive(self.fixed_ratio, "fixed_ratio", where=where)
        if self.fixed_ratio < 1:
            raise DeviceError(f"{where}: fixed_ratio must be >= 1, got {self.fixed_ratio!r}")
        if self.low_ratio > 1 or self.high_ratio < 1:
            raise DeviceError(
                f"{where}: low_ratio must be <= 1 <= high_ratio, got "
                f"{self.low_ratio!r} and {self.high_ratio!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-safe dict (the keys of a ``[targets.NAME.cross_validation]`` table)."""
        d: dict[str, Any] = {
            "points": self.points,
            "models": self.models,
            "within_10": self.within_10,
            "within_25": self.within_25,
            "within_50": self.within_50,
            "low_ratio": self.low_ratio,
            "high_ratio": self.high_ratio,
            "fixed_ratio": self.fixed_ratio,
        }
        if self.source:
            d["source"] = self.source
        return d


@dataclass(frozen=True, kw_only=True)
class Target:
    """One named way of running networks on a board, with its roofs and fitted costs.

    ``peak_gflops`` is the peak for ``precision`` and ``threads`` (GFLOP/s); ``bandwidth_gb_s``
    the memory bandwidth. Fixed costs live in ``calibration``: ``overhead_us`` per kernel
    launch or dispatch, ``call_overhead_us`` per inference. ``device`` is the board's key.
    """

    name: str
    processor: str
    runtime: str
    precision: str
    peak_gflops: float
    bandwidth_gb_s: float
    threads: int | None = None
    calibration: Calibration | None = None
    cross_validation: CrossValidation | None = None
    sources: tuple[str, ...] = ()
    notes: str = ""
    device: str = ""

    def __post_init__(self) -> None:
        where = f"target {self.device}:{self.name}" if self.device else f"target {self.name!r}"
        if not isinstance(self.name, str) or not TARGET_NAME_RE.match(self.name):
            raise DeviceError(
                f"{where}: a target name must be lower-case letters, digits, '.', '_' or '-'"
            )
        if self.processor not in KINDS:
            raise DeviceError(
                f"{where}: processor must be one of {', '.join(KINDS)}, got {self.processor!r}"
            )
        if not isinstance(self.runtime, str) or not self.runtime.strip():
            raise DeviceError(f"{where}: runtime must be a non-empty string, e.g. onnxruntime")
        if self.precision not in PRECISIONS:
            raise DeviceError(
                f"{where}: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        _positive(self.peak_gflops, "peak_gflops", where=where)
        _positive(self.bandwidth_gb_s, "bandwidth_gb_s", where=where)
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise DeviceError(f"{where}: threads must be a positive integer, got {self.threads!r}")
        object.__setattr__(self, "sources", tuple(self.sources))

    @property
    def peak_gflops_fp32(self) -> float:
        """The peak this target computes at (for its own precision, despite the name).

        Named so that a ``Target`` can stand wherever a ``DeviceProfile``'s roofs are read.
        """
        return self.peak_gflops

    @property
    def calibrated(self) -> bool:
        """Whether the target has fitted efficiencies and fixed costs."""
        return self.calibration is not None

    @property
    def kernel_us(self) -> float:
        """Fixed cost of one kernel launch or dispatch (µs); 0 when uncalibrated."""
        return self.calibration.overhead_us if self.calibration else 0.0

    @property
    def inference_us(self) -> float:
        """Fixed cost of one inference (µs); 0 when uncalibrated."""
        return self.calibration.call_overhead_us if self.calibration else 0.0

    def range_ms(
        self, ms: float, *, roofline_ms: float, fixed_ms: float = 0.0
    ) -> tuple[float, float | None]:
        """The range a prediction of ``ms`` is given on this target.

        Calibrated with a cross-validated error of at least ``MIN_RANGE_POINTS`` points:
        ``ms`` scaled by that error's 10th and 90th percentile ratios, except that the part of
        ``ms`` that is fixed costs (``fixed_ms``: per-kernel and per-inference) is scaled by the
        wider of those ratios and the fixed costs' own uncertainty
        (``CrossValidation.fixed_ratio``): the cross-validated error comes from networks whose
        time is mostly work, and would understate the error of a tiny one. Otherwise there is
        no upper bound (``None``) and the lower end is the roofline (a lower bound where no
        runtime beats the roofs), or the prediction when that is lower.
        """
        cv = self.cross_validation
        if self.calibration is None:
            return roofline_ms, None
        if cv is None or cv.points < MIN_RANGE_POINTS:  # calibrated, error unknown
            return min(roofline_ms, ms), None
        fixed = min(max(fixed_ms, 0.0), ms)
        work = ms - fixed
        low = work * cv.low_ratio + fixed * min(cv.low_ratio, 1 / cv.fixed_ratio)
        high = work * cv.high_ratio + fixed * max(cv.high_ratio, cv.fixed_ratio)
        return low, high

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the target's figures, fixed costs, fit and sources."""
        return {
            "name": self.name,
            "processor": self.processor,
            "runtime": self.runtime,
            "precision": self.precision,
            "threads": self.threads,
            "peak_gflops": self.peak_gflops,
            "bandwidth_gb_s": self.bandwidth_gb_s,
            "ridge_flops_per_byte": self.peak_gflops / self.bandwidth_gb_s,
            "kernel_us": self.kernel_us,
            "inference_us": self.inference_us,
            "calibrated": self.calibrated,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "cross_validation": (
                self.cross_validation.to_dict() if self.cross_validation else None
            ),
            "sources": list(self.sources),
            "notes": self.notes,
        }
