"""Fitting a device's ``Calibration`` to measured latencies (least squares on log time).

The model priced here is ``explorer.prediction.predict_latency``; to make a fit over a hundred
networks take seconds instead of minutes, every operator of every sample is turned into rows
of numpy arrays once (``_Design``) and a trial calibration is priced with array arithmetic.
``tests/test_prediction.py`` checks that this pricing equals ``predict_latency``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from device_profiles import Calibration, DeviceProfile
from explorer.errors import UsageError
from explorer.prediction import (
    PER_CALL_CLASSES,
    SIZED_CLASSES,
    _processor,
    calibration_class,
    fused_flags,
    op_calls,
    op_sizes,
)
from explorer.profiling import ModelProfile

__all__ = ["fit_calibration"]

_MIN_FRACTION = 1e-3
_GLOBAL = 4  # global compute fraction, bandwidth fraction, overhead, call overhead


@dataclass(frozen=True)
class _Design:
    """The operators of all samples as parallel arrays (one entry per operator)."""

    classes: tuple[str, ...]  # every calibration class in the samples
    sample: np.ndarray  # which sample the operator belongs to
    cls: np.ndarray  # index into classes
    compute_s: np.ndarray  # FLOPs / peak
    memory_s: np.ndarray  # traffic bytes / bandwidth
    copy_s: np.ndarray  # 2 x strided input bytes / bandwidth
    fused: np.ndarray
    channels: np.ndarray
    reduction: np.ndarray
    calls: np.ndarray
    n_samples: int


def _design(
    device: DeviceProfile, profiles: Sequence[ModelProfile], *, fuse_elementwise: bool
) -> _Design:
    peak = device.peak_gflops_fp32 * 1e9
    bandwidth = device.bandwidth_gb_s * 1e9
    processor = _processor(device)  # a grouped convolution is one launch on a GPU
    classes = sorted({calibration_class(o) for p in profiles for o in p.ops})
    index = {k: i for i, k in enumerate(classes)}
    rows: list[tuple[float, ...]] = []
    for s, profile in enumerate(profiles):
        flags = fused_flags(profile.ops, fuse_elementwise=fuse_elementwise)
        for op, fused in zip(profile.ops, flags, strict=True):
            cls = calibration_class(op)
            channels, reduction = op_sizes(op) if cls in SIZED_CLASSES else (1.0, 1.0)
            rows.append(
                (
                    s,
                    index[cls],
                    op.total_flops / peak,
                    op.traffic_bytes / bandwidth,
                    2 * op.strided_bytes / bandwidth,
                    fused,
                    channels,
                    reduction,
                    op_calls(op, processor=processor),
                )
            )
    a = np.array(rows, dtype=float).reshape(-1, 9)
    return _Design(
        classes=tuple(classes),
        sample=a[:, 0].astype(int),
        cls=a[:, 1].astype(int),
        compute_s=a[:, 2],
        memory_s=a[:, 3],
        copy_s=a[:, 4],
        fused=a[:, 5].astype(bool),
        channels=a[:, 6],
        reduction=a[:, 7],
        calls=a[:, 8],
        n_samples=len(profiles),
    )


def _price_ms(d: _Design, cal: Calibration) -> np.ndarray:
    """Predicted milliseconds of every sample under ``cal`` (as ``predict_latency``)."""

    def per_class(lookup) -> np.ndarray:
        return np.array([lookup(c) for c in d.classes])[d.cls]

    cf = per_class(cal.compute_fraction_for)
    bf = per_class(cal.bandwidth_fraction_for)
    ov = per_class(cal.overhead_us_for)
    hn = per_class(lambda c: cal.kind_half_channels.get(c, 0.0))
    hk = per_class(lambda c: cal.kind_half_reduction.get(c, 0.0))
    eff = d.channels / (d.channels + hn) * d.reduction / (d.reduction + hk)
    copy = d.copy_s / cal.bandwidth_fraction_for("memory") + cal.overhead_us_for("memory") * 1e-6
    t = np.where(
        d.fused,
        d.compute_s / cf,
        np.maximum(d.compute_s / (cf * eff), d.memory_s / bf)
        + ov * d.calls * 1e-6
        + np.where(d.copy_s > 0, copy, 0.0),
    )
    per_sample_s = np.bincount(d.sample, weights=t, minlength=d.n_samples)
    return per_sample_s * 1e3 + cal.call_overhead_us * 1e-3


def fit_calibration(
    device: DeviceProfile,
    samples: Sequence[tuple[ModelProfile, float]],
    *,
    threads: int | None,
    source: str,
    fuse_elementwise: bool = True,
    per_kind: bool = True,
    per_kind_overhead: bool = False,
    size_efficiency: bool = True,
    weights: Sequence[float] | None = None,
) -> Calibration:
    """Fit fractions and overheads so that ``predict_latency`` matches measured times.

    Args:
        device: the device (its peak and bandwidth set the scale of the fractions).
        samples: (profile, measured median ms) pairs.
        per_kind: fit one compute fraction and bandwidth fraction per operator class seen in
            the samples (else one of each for all classes).
        per_kind_overhead: also one overhead per class (else one for all operators: with
            noisy measurements per-class overheads soak up what the fractions should explain).
        size_efficiency: fit the half-performance channels and reduction of the dense
            classes (``Calibration.size_efficiency``); needs ``per_kind``.
        weights: how much each sample counts (default: all alike).
    """
    from scipy.optimize import least_squares

    if not samples:
        raise UsageError("calibration needs at least one measurement")
    profiles = [p for p, _ in samples]
    measured = np.array([ms for _, ms in samples], dtype=float)
    if np.any(measured <= 0):
        raise UsageError("measured latencies must be positive")
    design = _design(device, profiles, fuse_elementwise=fuse_elementwise)
    kinds = list(design.classes) if per_kind else []
    sized = [k for k in kinds if k in SIZED_CLASSES] if size_efficiency else []
    # Parameter vector (log space): the global four, then three per kind (compute fraction,
    # bandwidth fraction, overhead), then two per sized kind (half channels, half reduction).
    n_kinds = _GLOBAL + 3 * len(kinds)

    def unpack(theta: np.ndarray) -> Calibration:
        cf, bf = (min(1.0, math.exp(v)) for v in theta[:2])
        ov, call = (math.exp(v) for v in theta[2:4])
        kcf, kbf, kov, khn, khk = {}, {}, {}, {}, {}
        for i, kind in enumerate(kinds):
            a, b, c = theta[_GLOBAL + 3 * i : _GLOBAL + 3 * i + 3]
            kcf[kind] = min(1.0, math.exp(a))
            kbf[kind] = min(1.0, math.exp(b))
            # a per-call overhead is a property of the runtime's loop: always its own
            if per_kind_overhead or kind in PER_CALL_CLASSES:
                kov[kind] = math.exp(c)
        for i, kind in enumerate(sized):
            n_half, k_half = theta[n_kinds + 2 * i : n_kinds + 2 * i + 2]
            khn[kind], khk[kind] = math.exp(n_half), math.exp(k_half)
        return Calibration(
            compute_fraction=max(cf, _MIN_FRACTION),
            bandwidth_fraction=max(bf, _MIN_FRACTION),
            overhead_us=ov,
            call_overhead_us=call,
            kind_compute_fraction=kcf,
            kind_bandwidth_fraction=kbf,
            kind_overhead_us=kov,
            kind_half_channels=khn,
            kind_half_reduction=khk,
            fuse_elementwise=fuse_elementwise,
            threads=threads,
            source=source,
        )

    scale = np.sqrt(np.asarray(weights, dtype=float)) if weights is not None else 1.0

    def residuals(theta: np.ndarray) -> np.ndarray:
        return (np.log(_price_ms(design, unpack(theta))) - np.log(measured)) * scale

    theta0 = [math.log(0.5), math.log(0.5), math.log(2.0), math.log(5.0)]
    lo = [math.log(_MIN_FRACTION)] * 2 + [math.log(1e-3)] * 2
    hi = [0.0, 0.0, math.log(1e4), math.log(1e4)]
    for _ in kinds:
        theta0 += [math.log(0.5), math.log(0.5), math.log(2.0)]
        lo += [math.log(_MIN_FRACTION), math.log(_MIN_FRACTION), math.log(1e-3)]
        hi += [0.0, 0.0, math.log(1e4)]
    for _ in sized:  # half-performance channels and reduction, from ~0 to 10^4
        theta0 += [math.log(4.0), math.log(16.0)]
        lo += [math.log(1e-2)] * 2
        hi += [math.log(1e4)] * 2
    fit = least_squares(
        residuals, np.array(theta0), bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=2000
    )
    return unpack(fit.x).rounded()
