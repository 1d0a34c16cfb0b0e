"""``explorer calibrate`` with learned kernels: measure this machine within a time budget.

The budget is split: a few seconds for the roofs (copies and matrix products, kept for the
roofline model), most of it for sampling networks (``_sampling.collect``), and the last part
for the fits: sampling stops where the fits of the nodes sampled so far would need the rest
(``fit_reserve``). The roofline calibration is fitted on the operator suite and single
convolutions among the samples, so the written profile still works without the kernel file.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from explorer.errors import UsageError

from ._calibrate import (
    CalibrationRun,
    _Sample,
    family_of,
    host_calibration,
    measure_bandwidths,
    measure_peak_gflops,
)
from ._kernels import nchwc_block
from ._learned import KernelModel, fit_kernel_model
from ._sampling import _PACE_EVERY_MS, KernelSample, collect, speed_scatter
from ._timing import torch_threads

__all__ = ["NOISY_SCATTER", "LearnedRun", "calibrate_host_learned", "fit_reserve", "fit_samples"]

# The time kept back for the fits, estimated as sampling goes from the nodes sampled so far:
# the lesser of two lines, (fixed s, s per node), as measured on a 2-core VM whose reference
# network read _FIT_AT_MS ms (benchmarks/calibration_fit_time.py: 5.2 s at 2,600 nodes, 8.8 s
# at 4,800, 16.1 s at 10,000, 19-20 s at 22-23k). Up to ~10k nodes every new kind of kernel
# adds its cross-validated boosters; past that they are all there and only grow. Scaled by this
# machine's reading of the reference, with a margin, plus a tail for the roofline fit and the
# files. A fixed fifth of the budget (until 2026-12) kept 60 s of 5 minutes for fits of 20-30 s,
# yet ran 1.5 s over a 1-minute budget.
_FIT_LINES = ((1.0, 1.6e-3), (13.0, 0.3e-3))
_FIT_AT_MS = 0.39
_FIT_MARGIN = 1.75  # 1.5 ended a 5-minute calibration at 289 s on a noisy day
_FIT_TAIL_S = 2.0
_MIN_BUDGET_S = 20.0
NOISY_SCATTER = 0.05  # a ``speed_scatter`` above this is warned about: ±10 % cannot be checked


@dataclass(frozen=True, kw_only=True)
class LearnedRun:
    """What ``calibrate_host_learned`` made: the profile (roofline) and the kernel model."""

    roofline: CalibrationRun
    kernels: KernelModel
    samples: tuple[KernelSample, ...]
    seconds: float


def calibrate_host_learned(
    *,
    time_s: float = 300.0,
    threads: int = 1,
    name: str = "host",
    exclude_families: Sequence[str] = (),
    seed: int = 0,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[float, str], None] = lambda _f, _m: None,
) -> LearnedRun:
    """Measure this machine for about ``time_s`` seconds; fit the roofline and kernel models.

    Args:
        time_s: the whole budget (at least 20 s); more time samples more networks.
        exclude_families: search-space families left out of the samples (to check how the
            model generalises to a family it never saw).
        progress: called with the share of the budget spent and the last network measured.

    Raises:
        UsageError: a budget under 20 s or fewer than one thread.
    """
    if time_s < _MIN_BUDGET_S:
        raise UsageError(f"--time must be at least {_MIN_BUDGET_S:g} s, got {time_s:g} s")
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    start = time.perf_counter()
    with torch_threads(threads):
        log("roofs: copies and matrix products")
        copies = measure_bandwidths(log)
        peak = measure_peak_gflops(threads, log=log, clock="cpu")
        budget = time_s - (time.perf_counter() - start)
        log(
            f"sampling kernels for up to {budget - fit_reserve(0, _FIT_AT_MS):.0f} s, less the "
            f"time the fits will take (ONNX Runtime, {threads} thread(s))"
        )
        samples, readings = collect(
            budget_s=budget,
            reserve=fit_reserve,
            threads=threads,
            exclude_families=exclude_families,
            seed=seed,
            progress=progress,
            keep_small_modules=True,
        )
    if not samples:
        raise UsageError(_too_slow(time_s, statistics.median(ms for _, ms in readings)))
    slowdowns = [s.slowdown for s in samples]
    scatter = speed_scatter(readings)
    log(
        f"the machine ran at {1 / max(slowdowns):.2f}-{1 / min(slowdowns):.2f} of its median "
        f"speed while sampling (a reference network read before every {_PACE_EVERY_MS:g} ms of "
        "runs; each run divided by the reading before it)"
    )
    log(f"and its speed jumped by ±{scatter:.1%} (90th percentile) between readings seconds apart")
    log(
        f"fitting on {len(samples)} networks, {sum(len(s.nodes) for s in samples)} nodes "
        f"({time.perf_counter() - start:.0f} s of the {time_s:.0f} s spent)"
    )
    roofline = host_calibration(
        _roofline_samples(samples),
        copies=copies,
        peak=peak,
        threads=threads,
        name=name,
        clock="cpu",
        start=start,
    )
    families = sorted({f for s in samples if (f := family_of(s.name))})
    kernels = fit_samples(
        samples,
        threads=threads,
        source=f"explorer calibrate: {len(samples)} networks profiled per node with ONNX "
        f"Runtime on {time.strftime('%Y-%m-%d %H:%M')}",
        meta={
            "networks": len(samples),
            "nodes": sum(len(s.nodes) for s in samples),
            "families": families,
            "excluded_families": list(exclude_families),
            "budget_s": time_s,
            "slowdown_range": [round(min(slowdowns), 3), round(max(slowdowns), 3)],
            "reference_ms": round(statistics.median(ms for _, ms in readings), 5),
            # the median of the warm one-run readings every sample's runs were divided by
            # (``_paced``): a time measured the same way after calibrating is its ratio to
            # such a reading times this
            "paced_reference_ms": round(samples[0].reference_ms / samples[0].slowdown, 5)
            if samples
            else None,
            "speed_scatter": round(scatter, 4),  # ``speed_scatter``: second to second
        },
    )
    return LearnedRun(
        roofline=roofline,
        kernels=kernels,
        samples=tuple(samples),
        seconds=time.perf_counter() - start,
    )


def fit_samples(
    samples: Sequence[KernelSample], *, threads: int, source: str, meta: dict
) -> KernelModel:
    """The kernel model fitted on sampled networks: every node's time, each network's whole
    time for its per-inference term, nodes grouped by network for the cross-validation."""
    return fit_kernel_model(
        [nt for s in samples for nt in s.nodes],
        [(s.graph, s.measured_ms) for s in samples],
        level="all",
        block=nchwc_block(),
        groups=[i for i, s in enumerate(samples) for _ in s.nodes],
        threads=threads,
        source=source,
        meta=meta,
    )


def _too_slow(time_s: float, reference_ms: float) -> str:
    """Why a calibration of ``time_s`` sampled nothing on a machine that reads the reference
    network in ``reference_ms``, and the time that would sample as much as 5 minutes here."""
    slower = reference_ms / _FIT_AT_MS
    minutes = math.ceil(time_s * max(slower, 1.0) / 60)
    return (
        f"--time {time_s:g} s sampled no network: this machine runs the reference network in "
        f"{reference_ms:.2f} ms, {slower:.0f}x the {_FIT_AT_MS} ms the default time is sized "
        f"for, and the fits alone would take about {fit_reserve(0, reference_ms):.0f} s of "
        f"it; run again with --time {minutes}m"
    )


def fit_reserve(nodes: int, reference_ms: float) -> float:
    """Seconds to keep for the fits (and what follows them) after sampling ``nodes`` nodes on
    a machine whose reference network reads ``reference_ms`` (``_sampling.reference_network``):
    slower machines fit slower, faster ones are credited at most twice the speed."""
    speed = max(reference_ms / _FIT_AT_MS, 0.5)
    fit = min(fixed + per_node * nodes for fixed, per_node in _FIT_LINES)
    return _FIT_TAIL_S + _FIT_MARGIN * speed * fit


def _roofline_samples(samples: Sequence[KernelSample]) -> list[_Sample]:
    """The single-operator samples, profiled for the roofline fit (cheap: small modules)."""
    from explorer.profiling import profile_model

    out = []
    for s in samples:
        if s.module is None:
            continue
        profile = profile_model(s.module, s.inputs, name=s.name, meta=False)
        out.append(_Sample(name=s.name, profile=profile, measured_ms=s.measured_ms))
    return out
