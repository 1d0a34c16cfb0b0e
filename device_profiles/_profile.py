"""The device profile types: ``DeviceProfile``, its optional ``Calibration`` and ``DeviceError``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

__all__ = [
    "CLASS_PARENTS",
    "KINDS",
    "MAX_FRACTION",
    "PRECISIONS",
    "WORK_REF_S",
    "Calibration",
    "DeviceError",
    "DeviceProfile",
]

from ._base import KINDS, MAX_FRACTION, PRECISIONS, WORK_REF_S, DeviceError
from ._base import positive as _positive


def _fraction(value: Any, what: str, *, where: str) -> float:
    value = _positive(value, what, where=where)
    if value > MAX_FRACTION:
        raise DeviceError(
            f"{where}: {what} is a share of the roof and must be in (0, {MAX_FRACTION:g}], "
            f"got {value!r}"
        )
    return value


# Per-class tables of a Calibration; the last three hold non-negative sizes/times.
_SIZE_MAPS = ("kind_overhead_us", "kind_half_channels", "kind_half_reduction")
_KIND_MAPS = ("kind_compute_fraction", "kind_bandwidth_fraction", *_SIZE_MAPS)


def _frozen_map(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


# A refined class inherits its parent's per-class values when a calibration has none of its own
# (calibrations fitted before the class existed price it as before).
CLASS_PARENTS = {"conv3x3": "conv"}


def _with_parents(m: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(m)
    for child, parent in CLASS_PARENTS.items():
        if child not in out and parent in out:
            out[child] = out[parent]
    return out


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """What a device really achieves: shares of its roofs and a fixed cost per operator.

    ``compute_fraction`` and ``bandwidth_fraction`` scale the peak and the bandwidth
    (0 < f <= ``MAX_FRACTION``: above 1 where a runtime beats a roof, see there);
    ``overhead_us`` is added once per operator. The per-kind maps refine these
    for an operator class (``OpRecord.kind``: conv, linear, rnn, elementwise, ...).
    ``fuse_elementwise`` says that the runtime fuses activations/norms into the preceding
    operator, so their memory traffic is not paid separately. ``call_overhead_us`` is paid once
    per inference (the runtime's own cost of a call).

    ``work_exponent`` (g) makes a dense operator's efficiency grow with its work: its compute
    time is multiplied by ``(t / WORK_REF_S) ** -g``, ``t`` its time at the peak (big layers
    fill threads and tiles better than small ones; a power law fits published tables with one
    number). ``additive`` adds an operator's compute and memory times instead of taking the
    larger (a CPU runtime that transforms its data, then computes, overlaps little).

    ``kind_half_channels`` and ``kind_half_reduction`` describe how a dense operator's
    efficiency falls with its size, after Hockney's half-performance length: an operator with
    ``n`` output channels (per group) and ``k`` multiply-adds per output element reaches
    ``fraction * n / (n + n_half) * k / (k + k_half)`` of the peak, because a kernel's register
    tiles are only partly filled by few channels or short reductions.
    """

    compute_fraction: float
    bandwidth_fraction: float
    overhead_us: float
    kind_compute_fraction: Mapping[str, float] = field(default_factory=dict)
    kind_bandwidth_fraction: Mapping[str, float] = field(default_factory=dict)
    kind_overhead_us: Mapping[str, float] = field(default_factory=dict)
    kind_half_channels: Mapping[str, float] = field(default_factory=dict)
    kind_half_reduction: Mapping[str, float] = field(default_factory=dict)
    fuse_elementwise: bool = False
    call_overhead_us: float = 0.0
    work_exponent: float = 0.0
    additive: bool = False
    threads: int | None = None
    source: str = ""

    def rounded(self) -> Calibration:
        """This calibration with every fitted number at 4 significant digits (for files)."""

        def r(v: float) -> float:
            return float(f"{v:.4g}")

        return replace(
            self,
            compute_fraction=r(self.compute_fraction),
            bandwidth_fraction=r(self.bandwidth_fraction),
            overhead_us=r(self.overhead_us),
            call_overhead_us=r(self.call_overhead_us),
            work_exponent=r(self.work_exponent),
            **{name: {k: r(v) for k, v in getattr(self, name).items()} for name in _KIND_MAPS},
        )

    def __post_init__(self) -> None:
        where = f"calibration ({self.source or 'no source'})"
        _fraction(self.compute_fraction, "compute_fraction", where=where)
        _fraction(self.bandwidth_fraction, "bandwidth_fraction", where=where)
        _positive(self.overhead_us, "overhead_us", where=where, allow_zero=True)
        _positive(self.call_overhead_us, "call_overhead_us", where=where, allow_zero=True)
        g = self.work_exponent
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not -1 < g < 1:
            raise DeviceError(f"{where}: work_exponent must be a number in (-1, 1), got {g!r}")
        if not isinstance(self.additive, bool):
            raise DeviceError(f"{where}: additive must be true or false")
        for name, m, check in (
            ("kind_compute_fraction", self.kind_compute_fraction, _fraction),
            ("kind_bandwidth_fraction", self.kind_bandwidth_fraction, _fraction),
        ):
            for k, v in m.items():
                check(v, f"{name}.{k}", where=where)
        for name in _SIZE_MAPS:
            for k, v in getattr(self, name).items():
                _positive(v, f"{name}.{k}", where=where, allow_zero=True)
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise DeviceError(f"{where}: threads must be a positive integer, got {self.threads!r}")
        for name in _KIND_MAPS:
            object.__setattr__(self, name, _frozen_map(_with_parents(getattr(self, name))))

    def compute_fraction_for(self, kind: str) -> float:
        """Achievable share of peak compute for operators of ``kind``."""
        return self.kind_compute_fraction.get(kind, self.compute_fraction)

    def bandwidth_fraction_for(self, kind: str) -> float:
        """Achievable share of bandwidth for operators of ``kind``."""
        return self.kind_bandwidth_fraction.get(kind, self.bandwidth_fraction)

    def overhead_us_for(self, kind: str) -> float:
        """Fixed cost of one operator of ``kind`` in microseconds."""
        return self.kind_overhead_us.get(kind, self.overhead_us)

    def size_efficiency(self, kind: str, *, channels: float, reduction: float) -> float:
        """Share of the class's fraction reached with ``channels`` outputs and ``reduction``."""
        n_half = self.kind_half_channels.get(kind, 0.0)
        k_half = self.kind_half_reduction.get(kind, 0.0)
        return channels / (channels + n_half) * reduction / (reduction + k_half)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (the same keys as the TOML ``[calibration]`` table)."""
        d: dict[str, Any] = {
            "compute_fraction": self.compute_fraction,
            "bandwidth_fraction": self.bandwidth_fraction,
            "overhead_us": self.overhead_us,
            "fuse_elementwise": self.fuse_elementwise,
            "call_overhead_us": self.call_overhead_us,
        }
        if self.work_exponent:
            d["work_exponent"] = self.work_exponent
        if self.additive:
            d["additive"] = True
        for name in _KIND_MAPS:
            if getattr(self, name):
                d[name] = dict(getattr(self, name))
        if self.threads is not None:
            d["threads"] = self.threads
        if self.source:
            d["source"] = self.source
        return d


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """A target device: its roofs (peak GFLOP/s per precision, memory bandwidth) and sources.

    The default figures are the ones a paper used where one did (so the tool reproduces the
    paper's tables); ``alternatives`` records other published values, e.g. the datasheet's.
    ``origin`` is the file the profile was read from (for error messages).
    """

    key: str
    name: str
    kind: str
    peak_gflops: Mapping[str, float]
    bandwidth_gb_s: float
    memory_gb: float | None = None
    # The processor's generation (e.g. "ampere"): a board without measurements of its own
    # borrows its efficiencies only from measured boards of the same architecture.
    architecture: str = ""
    aliases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    notes: str = ""
    alternatives: Mapping[str, Mapping[str, float | str]] = field(default_factory=dict)
    calibration: Calibration | None = None
    targets: Mapping[str, Any] = field(default_factory=dict)  # name -> Target (explicit ones)
    default_target: str = ""
    selected_target: str = ""  # "" means the default target
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = self.origin or f"device {self.key!r}"
        if self.kind not in KINDS:
            raise DeviceError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if "fp32" not in self.peak_gflops:
            raise DeviceError(f"{where}: peak_gflops needs an fp32 entry (GFLOP/s)")
        for precision, value in self.peak_gflops.items():
            if precision not in PRECISIONS:
                raise DeviceError(
                    f"{where}: unknown precision {precision!r} in peak_gflops; "
                    f"use {', '.join(PRECISIONS)}"
                )
            _positive(value, f"peak_gflops.{precision}", where=where)
        _positive(self.bandwidth_gb_s, "bandwidth_gb_s", where=where)
        if self.memory_gb is not None:
            _positive(self.memory_gb, "memory_gb", where=where)
        object.__setattr__(self, "peak_gflops", _frozen_map(self.peak_gflops))
        object.__setattr__(
            self,
            "alternatives",
            MappingProxyType({k: _frozen_map(v) for k, v in self.alternatives.items()}),
        )
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))
        names = list(self.all_targets)
        if self.default_target and self.default_target not in names:
            raise DeviceError(
                f"{where}: default_target {self.default_target!r} is not one of the targets "
                f"({', '.join(names)}); name one of them"
            )
        if self.selected_target == (self.default_target or names[0]):
            object.__setattr__(self, "selected_target", "")  # KEY:DEFAULT is KEY
        if self.selected_target and self.selected_target not in names:
            raise self.unknown_target(self.selected_target)

    @property
    def all_targets(self) -> Mapping[str, Any]:
        """Every execution target by name; a profile without ``[targets]`` has one, built
        from its top-level figures (FP32 peak, bandwidth, calibration): ``default``. A
        top-level ``[calibration]`` (the board's own, from ``explorer calibrate``) replaces the
        default target's shipped prior."""
        if self.targets:
            out = {k: replace(t, device=self.key) for k, t in self.targets.items()}
            if self.calibration is not None:  # the board's own, replaces the default's prior
                name = self.default_target or next(iter(out))
                out[name] = replace(out[name], calibration=self.calibration, cross_validation=None)
            return out
        from ._target import Target

        cal = self.calibration
        return {
            "default": Target(
                name="default",
                processor=self.kind,
                runtime="unspecified",
                precision="fp32",
                threads=cal.threads if cal is not None else None,
                peak_gflops=self.peak_gflops_fp32,
                bandwidth_gb_s=self.bandwidth_gb_s,
                calibration=cal,
                sources=self.sources,
                device=self.key,
            )
        }

    @property
    def target(self) -> Any:
        """The selected execution target (``KEY:TARGET``), else the board's default one."""
        targets = self.all_targets
        return targets[self.selected_target or self.default_target or next(iter(targets))]

    @property
    def default_target_name(self) -> str:
        """Name of the target plain ``KEY`` means."""
        return self.default_target or next(iter(self.all_targets))

    @property
    def address(self) -> str:
        """``KEY`` for the default target, ``KEY:TARGET`` for another one."""
        return f"{self.key}:{self.selected_target}" if self.selected_target else self.key

    def with_target(self, name: str) -> DeviceProfile:
        """This board with ``name`` selected (the default target's name gives plain ``KEY``).

        Raises:
            DeviceError: the board has no target of that name (the message lists its targets).
        """
        name = name.strip().lower()
        if name not in self.all_targets:
            raise self.unknown_target(name)
        return replace(self, selected_target=name)

    def unknown_target(self, name: str) -> DeviceError:
        """The one-line error for a target this board does not have."""
        names = ", ".join(self.all_targets)
        return DeviceError(
            f"device {self.key!r} has no target {name!r}; its targets: {names} "
            f"(see `explorer devices show {self.key}`)"
        )

    @property
    def peak_gflops_fp32(self) -> float:
        """Peak FP32 throughput in GFLOP/s."""
        return self.peak_gflops["fp32"]

    @property
    def ridge_flops_per_byte(self) -> float:
        """Ridge point of the roofline: peak FP32 / bandwidth (FLOPs per byte)."""
        return self.peak_gflops_fp32 / self.bandwidth_gb_s

    @property
    def names(self) -> tuple[str, ...]:
        """The key followed by every alias."""
        return (self.key, *self.aliases)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the figures, the derived ridge point and the sources."""
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "peak_gflops_fp32": self.peak_gflops_fp32,
            "bandwidth_gb_s": self.bandwidth_gb_s,
            "ridge_flops_per_byte": self.ridge_flops_per_byte,
            "peak_gflops": dict(self.peak_gflops),
            "memory_gb": self.memory_gb,
            "architecture": self.architecture,
            "aliases": list(self.aliases),
            "sources": list(self.sources),
            "notes": self.notes,
            "alternatives": {k: dict(v) for k, v in self.alternatives.items()},
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "address": self.address,
            "default_target": self.default_target_name,
            "target": self.target.name,
            "targets": {k: t.to_dict() for k, t in self.all_targets.items()},
            "origin": self.origin,
        }
