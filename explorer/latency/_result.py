"""``LatencyResult``: one latency measurement with its raw timings and environment."""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = ["LatencyResult", "latency_frame", "summarise"]


@dataclass(frozen=True, kw_only=True)
class LatencyResult:
    """Latency of one model on one backend: robust statistics of many timed runs.

    ``median_ms`` is the figure to quote; ``p10_ms``/``p90_ms`` show the spread. ``timings_ms``
    holds every timed run (warm-up runs excluded). ``environment`` records the CPU, core
    count, runtime versions and the machine load when the measurement was taken.
    """

    model: str
    backend: str  # "ort", "torch", "tensorrt"
    device: str  # "cpu", "cuda:0"
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    warmup: int
    batch_size: int
    threads: int | None
    precision: str = "fp32"
    clock: str = "wall"  # "wall", "cpu" (thread CPU time) or "cuda-events"
    timings_ms: tuple[float, ...] = ()
    environment: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timings_ms", tuple(float(t) for t in self.timings_ms))
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: a unitless noise figure."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms else 0.0

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """JSON-safe dict; ``timings`` keeps the raw per-run times (``timings_ms``)."""
        d: dict[str, Any] = {
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            "median_ms": self.median_ms,
            "p10_ms": self.p10_ms,
            "p90_ms": self.p90_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "runs": self.runs,
            "warmup": self.warmup,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "precision": self.precision,
            "clock": self.clock,
            "environment": dict(self.environment),
        }
        if timings:
            d["timings_ms"] = list(self.timings_ms)
        return d

    def to_frame(self, *, timings: bool = False) -> Any:
        """This result as a pandas ``DataFrame`` (see ``latency_frame``)."""
        return latency_frame([self], timings=timings)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyResult:
        """Rebuild a result from ``to_dict()`` output (e.g. written by ``explorer bench``)."""
        names = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["timings_ms"] = tuple(data.get("timings_ms", ()))
        return cls(**kwargs)


def latency_frame(results: Sequence[LatencyResult], *, timings: bool = False) -> Any:
    """Latency results as a pandas ``DataFrame``.

    Args:
        results: the measurements (e.g. one per model or backend).
        timings: ``False``: one row per result with its summary columns (``median_ms``,
            ``p10_ms``, ``p90_ms``, ... as in ``to_dict``), the environment flattened into
            ``env_<key>`` columns; ``True``: one row per timed run, with the result's
            identifying columns, ``run`` (0-based) and ``ms``.

    Returns:
        The frame; empty (with the columns) when ``results`` is empty.
    """
    import pandas as pd  # here, not at the top: the CLI's start-up does not pay for it

    if timings:
        keys = ("model", "backend", "device", "batch_size", "threads", "precision", "clock")
        rows = [
            {**{k: getattr(r, k) for k in keys}, "run": i, "ms": ms}
            for r in results
            for i, ms in enumerate(r.timings_ms)
        ]
        return pd.DataFrame(rows, columns=[*keys, "run", "ms"])
    rows = []
    for r in results:
        row = r.to_dict(timings=False)
        env = row.pop("environment")
        row.update({f"env_{k}": v for k, v in env.items() if not isinstance(v, Mapping)})
        rows.append(row)
    summary = [f.name for f in fields(LatencyResult) if f.name not in ("timings_ms", "environment")]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=summary)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    # Linear interpolation between closest ranks (numpy's default).
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(
    timings_ms: Sequence[float], *, environment: Mapping[str, Any] | None = None, **fields: Any
) -> LatencyResult:
    """Build a ``LatencyResult`` from raw per-run timings (milliseconds)."""
    values = sorted(timings_ms)
    env = dict(environment or {})
    with contextlib.suppress(OSError):  # getloadavg is missing on some platforms
        env.setdefault("loadavg_1min", os.getloadavg()[0])
    return LatencyResult(
        median_ms=statistics.median(values),
        p10_ms=_quantile(values, 0.1),
        p90_ms=_quantile(values, 0.9),
        mean_ms=statistics.fmean(values),
        min_ms=values[0],
        runs=len(values),
        timings_ms=tuple(timings_ms),
        environment=env,
        **fields,
    )
