"""Fitting an execution target to measured latencies, and its leave-one-model-out error.

Published tables give a handful of networks per target (5 to 10), so the model fitted here is
small: six numbers, fitted on log time with a weak prior that keeps them physical when the
points are few.

- ``compute_fraction``: the share of the target's peak a dense operator reaches;
- ``kind_compute_fraction.conv3x3``: the same for 3x3 stride-1 convolutions, which ncnn and
  TensorRT compute with Winograd's algorithm (it may exceed 1: fewer multiplications);
- ``kind_compute_fraction.dwconv``: the same for depthwise convolutions (their own kernels);
- ``bandwidth_fraction``: the share of the bandwidth a memory-bound operator reaches (it may
  exceed 1 where activations stay in caches);
- ``overhead_us``: the fixed cost of each kernel (a GPU launch, a CPU runtime's dispatch);
- ``call_overhead_us``: the fixed cost of an inference.

- ``work_exponent``: how an operator's efficiency grows with its size (a power law);

and, on CPUs, compute and memory times add (``additive``). Activations and norms that follow a
dense operator are fused into it (ncnn, TensorRT and ONNX Runtime all do). The pricing is
``explorer.prediction.predict_latency``'s, vectorised (``tests/test_board_fit.py`` checks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from device_profiles import WORK_REF_S, Calibration, CrossValidation, Target
from explorer.errors import UsageError

__all__ = [
    "FitResult",
    "LomoRow",
    "calibrate_from_table",
    "cross_validate",
    "fit_target",
    "fit_transfer",
    "roofline_errors",
    "summarise",
]

# Where the prior sits (log space) and how wide it is: one decade either way.
_PRIOR = {
    "cpu": {"cf": 0.3, "c3": 0.5, "dw": 0.1, "bf": 0.5, "ov": 10.0, "call": 100.0},
    "gpu": {"cf": 0.2, "c3": 0.3, "dw": 0.05, "bf": 0.5, "ov": 20.0, "call": 200.0},
}
# Bounds (linear): shares up to a few times the roof, costs from 1 ns to 100 ms.
_LOW = {"cf": 1e-4, "c3": 1e-4, "dw": 1e-4, "bf": 1e-4, "ov": 1e-3, "call": 1e-3}
_HIGH = {"cf": 4.0, "c3": 8.0, "dw": 4.0, "bf": 8.0, "ov": 1e5, "call": 1e5}
# The three widths below were chosen by the mean leave-one-model-out share within ±25 % over
# the shipped targets with >= 5 points, from a grid of 18 (benchmarks/board_priors.py --sweep).
_PRIOR_SIGMA = math.log(10.0)
_DATA_SIGMA = 0.05  # a measured time's log error (5 %): the data outweighs the prior
_NAMES = ("cf", "c3", "dw", "bf", "ov", "call")
# The work exponent (Calibration.work_exponent) starts at 0 (no size effect), prior width 0.2.
_EXPONENT_SIGMA = 0.2
_EXPONENT_RANGE = (-0.05, 0.5)


@dataclass(frozen=True, kw_only=True)
class LomoRow:
    """One network predicted by a fit made without it."""

    model: str
    measured_ms: float
    predicted_ms: float
    roofline_ms: float

    @property
    def error(self) -> float:
        """Relative error of the prediction: predicted / measured - 1."""
        return self.predicted_ms / self.measured_ms - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measured_ms": self.measured_ms,
            "predicted_ms": self.predicted_ms,
            "roofline_ms": self.roofline_ms,
            "error": self.error,
        }


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """A fitted target and, when asked for, its leave-one-model-out rows."""

    target: Target
    fitted: tuple[LomoRow, ...]  # in-sample predictions of the final fit
    rows: tuple[LomoRow, ...] = ()  # leave-one-model-out predictions

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "target": self.target.to_dict(),
            "fitted": [r.to_dict() for r in self.fitted],
        }
        if self.rows:
            d["rows"] = [r.to_dict() for r in self.rows]
            d["summary"] = summarise(self.rows)
            d["roofline_summary"] = roofline_errors(self.rows)
        return d


@dataclass(frozen=True)
class _Design:
    """Every operator of every sample as parallel arrays, priced without Python loops."""

    sample: np.ndarray
    cls: np.ndarray  # 0: other (global fraction), 1: conv3x3, 2: dwconv
    compute_s: np.ndarray  # FLOPs / peak
    memory_s: np.ndarray  # traffic / bandwidth
    copy_s: np.ndarray  # strided input copy / bandwidth
    fused: np.ndarray
    calls: np.ndarray
    n_samples: int


_CLASSES = ("", "conv3x3", "dwconv")


def _design(target: Target, profiles: Sequence[Any]) -> _Design:
    from explorer.prediction import calibration_class, fused_flags, op_calls

    peak, bandwidth = target.peak_gflops * 1e9, target.bandwidth_gb_s * 1e9
    rows = []
    for s, profile in enumerate(profiles):
        flags = fused_flags(profile.ops, fuse_elementwise=True)
        for op, fused in zip(profile.ops, flags, strict=True):
            cls = calibration_class(op)
            rows.append((
                s, _CLASSES.index(cls) if cls in _CLASSES else 0, op.total_flops / peak,
                op.traffic_bytes / bandwidth, 2 * op.strided_bytes / bandwidth, fused,
                op_calls(op, processor=target.processor),
            ))  # fmt: skip
    a = np.array(rows, dtype=float).reshape(-1, 7)
    return _Design(
        sample=a[:, 0].astype(int), cls=a[:, 1].astype(int), compute_s=a[:, 2],
        memory_s=a[:, 3], copy_s=a[:, 4], fused=a[:, 5].astype(bool), calls=a[:, 6],
        n_samples=len(profiles),
    )  # fmt: skip


def _price(d: _Design, cal: Calibration) -> np.ndarray:
    """Milliseconds of every sample under ``cal``, as ``predict_latency`` prices them."""
    fractions = np.array([cal.compute_fraction_for(c or "conv") for c in _CLASSES])[d.cls]
    fractions = np.where(d.cls == 0, cal.compute_fraction, fractions)
    g = cal.work_exponent
    safe = np.where(d.compute_s > 0, d.compute_s, WORK_REF_S)
    work = np.where(d.compute_s > 0, (safe / WORK_REF_S) ** -g, 1.0) if g else 1.0
    compute_t = d.compute_s / fractions * work
    memory_t = d.memory_s / cal.bandwidth_fraction
    core = compute_t + memory_t if cal.additive else np.maximum(compute_t, memory_t)
    copy = np.where(d.copy_s > 0, d.copy_s / cal.bandwidth_fraction + cal.overhead_us * 1e-6, 0.0)
    t = np.where(d.fused, d.compute_s / fractions, core + cal.overhead_us * d.calls * 1e-6 + copy)
    per_sample = np.bincount(d.sample, weights=t, minlength=d.n_samples)
    return per_sample * 1e3 + cal.call_overhead_us * 1e-3


def _calibration(theta: np.ndarray, *, target: Target, source: str) -> Calibration:
    cf, c3, dw, bf, ov, call = (math.exp(v) for v in theta[:6])
    return Calibration(
        compute_fraction=cf,
        bandwidth_fraction=bf,
        overhead_us=ov,
        call_overhead_us=call,
        kind_compute_fraction={"conv3x3": c3, "dwconv": dw},
        work_exponent=float(theta[6]),
        additive=target.processor == "cpu",
        fuse_elementwise=True,
        threads=target.threads,
        source=source,
    )


def _merge(designs: Sequence[_Design]) -> _Design:
    """One design of the samples of several (each priced on its own target's roofs)."""
    offsets = np.cumsum([0] + [d.n_samples for d in designs[:-1]])
    return _Design(
        sample=np.concatenate([d.sample + o for d, o in zip(designs, offsets, strict=True)]),
        cls=np.concatenate([d.cls for d in designs]),
        compute_s=np.concatenate([d.compute_s for d in designs]),
        memory_s=np.concatenate([d.memory_s for d in designs]),
        copy_s=np.concatenate([d.copy_s for d in designs]),
        fused=np.concatenate([d.fused for d in designs]),
        calls=np.concatenate([d.calls for d in designs]),
        n_samples=sum(d.n_samples for d in designs),
    )


# The fixed costs' 80 % interval: +-1.2816 standard deviations of their log (normal quantiles).
_Z80 = 1.2816
_OV, _CALL = _NAMES.index("ov"), _NAMES.index("call")


def _fit_design(
    target: Target, design: _Design | None, measured: np.ndarray, source: str
) -> tuple[Calibration, float]:
    """The calibration of ``target`` fitted to ``design``'s samples, and its fixed costs' ratio.

    The ratio is ``exp(1.28 sd)`` of the less certain of the two fixed costs' logs, from the
    fit's Gauss-Newton covariance (its prior included, scaled up by the residuals' scatter
    where that exceeds the assumed 5 %): the 80 % interval of each fixed cost is
    ``[cost / ratio, cost * ratio]``.
    """
    from scipy.optimize import least_squares

    prior = _PRIOR[target.processor]
    theta0 = np.array([math.log(prior[k]) for k in _NAMES] + [0.0])
    sigma = np.array([_PRIOR_SIGMA] * len(_NAMES) + [_EXPONENT_SIGMA])
    lo = np.array([math.log(_LOW[k]) for k in _NAMES] + [_EXPONENT_RANGE[0]])
    hi = np.array([math.log(_HIGH[k]) for k in _NAMES] + [_EXPONENT_RANGE[1]])
    if design is None or not len(measured):
        return _calibration(theta0, target=target, source=source), math.exp(_Z80 * _PRIOR_SIGMA)
    log_measured = np.log(measured)

    def residuals(theta: np.ndarray) -> np.ndarray:
        cal = _calibration(theta, target=target, source=source)
        data = (np.log(_price(design, cal)) - log_measured) / _DATA_SIGMA
        return np.concatenate([data, (theta - theta0) / sigma])

    fit = least_squares(residuals, theta0, bounds=(lo, hi), loss="soft_l1", f_scale=2.0)
    scatter = max(1.0, float(np.mean(fit.fun[: len(measured)] ** 2)))
    cov = np.linalg.pinv(fit.jac.T @ fit.jac) * scatter
    sd = np.sqrt(np.clip(np.diag(cov)[[_OV, _CALL]], 0.0, _PRIOR_SIGMA**2))
    ratio = float(f"{math.exp(_Z80 * float(sd.max())):.4g}")
    return _calibration(fit.x, target=target, source=source).rounded(), max(1.0, ratio)


def _fit(target: Target, profiles: Sequence[Any], measured: np.ndarray, source: str) -> Calibration:
    design = _design(target, profiles) if len(profiles) else None
    return _fit_design(target, design, measured, source)[0]


def _predict(target: Target, cal: Calibration, profile: Any) -> tuple[float, float]:
    from explorer.prediction import predict_latency

    pred = predict_latency(profile, replace(target, calibration=cal, cross_validation=None))
    return pred.ms, pred.roofline_ms


def cross_validate(
    target: Target, samples: Sequence[tuple[str, Any, float]], *, source: str = ""
) -> tuple[LomoRow, ...]:
    """Leave-one-model-out: each network predicted by a fit on all the others.

    Args:
        target: the execution target (its roofs and processor).
        samples: (model name, ``ModelProfile``, measured ms); rows of one model leave together.
    """
    rows = []
    models = list(dict.fromkeys(name for name, _, _ in samples))
    for left_out in models:
        train = [(p, ms) for name, p, ms in samples if name != left_out]
        cal = _fit(target, [p for p, _ in train], np.array([ms for _, ms in train], float), source)
        for name, profile, ms in samples:
            if name == left_out:
                predicted, roofline = _predict(target, cal, profile)
                rows.append(
                    LomoRow(
                        model=name, measured_ms=ms, predicted_ms=predicted, roofline_ms=roofline
                    )
                )
    return tuple(rows)


def _shares(errors: np.ndarray) -> dict[str, float]:
    a = np.abs(errors)
    return {f"within_{p}": float(np.mean(a <= p / 100 + 1e-12)) for p in (10, 25, 50)}


def summarise(rows: Sequence[LomoRow]) -> dict[str, Any]:
    """Points, models and the shares of predictions within ±10/±25/±50 % of the measurement."""
    errors = np.array([r.error for r in rows], float)
    return {
        "points": len(rows),
        "models": len({r.model for r in rows}),
        **(
            _shares(errors) if len(rows) else {"within_10": 0.0, "within_25": 0.0, "within_50": 0.0}
        ),
    }


def roofline_errors(rows: Sequence[LomoRow]) -> dict[str, Any]:
    """The same shares for the uncalibrated roofline (a lower bound, so usually far below)."""
    errors = np.array([r.roofline_ms / r.measured_ms - 1 for r in rows], float)
    return {"points": len(rows), **(_shares(errors) if len(rows) else {})}


def _cross_validation(
    rows: Sequence[LomoRow], source: str, *, fixed_ratio: float = 1.0
) -> CrossValidation:
    ratios = np.array([r.measured_ms / r.predicted_ms for r in rows], float)
    s = summarise(rows)
    low, high = np.quantile(ratios, [0.1, 0.9]) if len(ratios) else (1.0, 1.0)
    return CrossValidation(
        points=s["points"],
        models=s["models"],
        within_10=round(s["within_10"], 4),
        within_25=round(s["within_25"], 4),
        within_50=round(s["within_50"], 4),
        low_ratio=float(f"{min(1.0, low):.4g}"),
        high_ratio=float(f"{max(1.0, high):.4g}"),
        source=source,
        fixed_ratio=fixed_ratio,
    )


def fit_target(
    target: Target,
    samples: Sequence[tuple[str, Any, float]],
    *,
    source: str,
    cross_validate_fit: bool = True,
) -> FitResult:
    """Fit ``target``'s efficiencies and fixed costs to measured latencies.

    Args:
        target: the execution target (roofs and processor kind are kept).
        samples: (model name, ``ModelProfile``, measured ms) per measured row.
        source: where the measurements came from (stored with the calibration).
        cross_validate_fit: also run leave-one-model-out and store its error in the target
            (``Target.cross_validation``), from which predictions get their range.

    Returns:
        The target with its new calibration (and cross-validated error), the in-sample
        predictions and the leave-one-model-out rows.

    Raises:
        UsageError: no samples, or a non-positive measured latency.
    """
    if not samples:
        raise UsageError(
            f"no measurements for target {target.device}:{target.name}: nothing to fit"
        )
    measured = np.array([ms for _, _, ms in samples], float)
    if np.any(~np.isfinite(measured)) or np.any(measured <= 0):
        raise UsageError("measured latencies must be positive numbers of milliseconds")
    design = _design(target, [p for _, p, _ in samples])
    cal, fixed_ratio = _fit_design(target, design, measured, source)
    fitted = []
    for name, profile, ms in samples:
        predicted, roofline = _predict(target, cal, profile)
        fitted.append(
            LomoRow(model=name, measured_ms=ms, predicted_ms=predicted, roofline_ms=roofline)
        )
    rows = cross_validate(target, samples, source=source) if cross_validate_fit else ()
    cv = _cross_validation(rows, source, fixed_ratio=fixed_ratio) if rows else None
    return FitResult(
        target=replace(target, calibration=cal, cross_validation=cv),
        fitted=tuple(fitted),
        rows=rows,
    )


def fit_transfer(
    target: Target,
    pool: Sequence[tuple[Target, Sequence[tuple[str, Any, float]]]],
    *,
    same_architecture: bool = False,
) -> FitResult:
    """A prior for a target without measurements of its own, from other boards' targets.

    A calibration is fitted to the pooled measurements, each priced on its own target's roofs;
    its fixed costs (per kernel, per inference) become ``target``'s, whose work is priced at
    its own roofs (efficiencies 1: the roofline plus the runtime's fixed costs). Its error is
    what such a transfer costs: leave-one-board-out, every board's networks predicted by a fit
    on the other boards only (a board new to the fit, as ``target``'s is). That error gives the
    prior's range; with one board in the pool there is none. The fixed costs' ratio
    (``CrossValidation.fixed_ratio``) is the spread of the measured targets' own fixed costs
    (their own calibrations, where the pool's targets carry them).

    Args:
        target: the execution target to give a prior (its roofs, processor and threads).
        pool: (measured target, its samples as for ``fit_target``) per measured target.
        same_architecture: the pool's boards share ``target``'s processor generation (e.g.
            all Ampere Jetsons): the pooled efficiencies move too, not only the fixed costs.

    Returns:
        The target with its prior (and leave-one-board-out error, with two or more boards),
        the in-sample predictions of the pooled fit and the leave-one-board-out rows.

    Raises:
        UsageError: an empty pool.
    """
    pool = [(t, list(s)) for t, s in pool if s]
    if not pool:
        raise UsageError(f"no measurements to transfer to {target.device}:{target.name}")
    points = sum(len(s) for _, s in pool)
    names = ", ".join(f"{t.device}:{t.name}" for t, _ in pool)
    moved = "efficiencies and fixed costs" if same_architecture else "fixed costs"
    source = f"transferred from {names} ({points} points; {moved}); no measurements of this target"

    def fit_on(groups: list) -> tuple[Calibration, float]:
        design = _merge([_design(t, [p for _, p, _ in s]) for t, s in groups])
        measured = np.array([ms for _, s in groups for _, _, ms in s], float)
        cal, ratio = _fit_design(target, design, measured, source)
        if same_architecture:
            # one generation's kernels (tensor cores, TensorRT's tactics) run at similar
            # fractions of their roofs: on the Ampere Jetsons' TensorRT rows, leave-one-board-
            # out put 78 % of networks within ±25 % this way against 34 % at the roofs
            return cal, ratio
        # Otherwise only the fixed costs move to the new board; its work runs at its own roofs. The
        # boards' efficiencies differ by generation (tensor cores, Winograd kernels) and did not
        # carry over: on the shipped TensorRT tables, leave-one-board-out put 9 % of networks
        # within ±25 % with the pooled efficiencies and 49 % with the roofs and pooled costs.
        at_roofs = replace(cal, compute_fraction=1.0, bandwidth_fraction=1.0,
                           kind_compute_fraction={}, work_exponent=0.0)  # fmt: skip
        return at_roofs, ratio

    cal, fixed_ratio = fit_on(pool)
    own = [t.calibration for t, _ in pool if t.calibration is not None]
    if len(own) > 1:
        # a new board's fixed costs are one more draw from the measured boards' own: their
        # spread, not the pooled fit's (which the boards' disagreement blows up to the prior)
        spread = max(
            float(np.std(np.log([c.overhead_us for c in own]), ddof=1)),
            float(np.std(np.log([c.call_overhead_us for c in own]), ddof=1)),
        )
        fixed_ratio = max(1.0, float(f"{math.exp(_Z80 * spread):.4g}"))
    fitted = tuple(
        LomoRow(model=f"{t.device}:{t.name}/{name}", measured_ms=ms,
                predicted_ms=(pr := _predict(t, cal, p))[0], roofline_ms=pr[1])
        for t, s in pool for name, p, ms in s
    )  # fmt: skip
    boards = list(dict.fromkeys(t.device for t, _ in pool))
    rows: list[LomoRow] = []
    for board in boards if len(boards) > 1 else ():
        left_cal, _ = fit_on([g for g in pool if g[0].device != board])
        rows += [
            LomoRow(model=f"{t.device}:{t.name}/{name}", measured_ms=ms,
                    predicted_ms=(pr := _predict(t, left_cal, p))[0], roofline_ms=pr[1])
            for t, s in pool if t.device == board for name, p, ms in s
        ]  # fmt: skip
    cv_source = f"leave-one-board-out over {len(boards)} boards ({names}; {points} points)"
    cv = _cross_validation(rows, cv_source, fixed_ratio=fixed_ratio) if rows else None
    return FitResult(
        target=replace(target, calibration=cal, cross_validation=cv),
        fitted=fitted,
        rows=tuple(rows),
    )


def calibrate_from_table(
    path: str | Path, device: str, *, cross_validate_fit: bool = True
) -> tuple[Any, FitResult]:
    """Fit the target ``device`` (``KEY`` or ``KEY:TARGET``) to the rows of a measurement file.

    Args:
        path: a measurement CSV (rows for other targets are ignored) or the JSON of
            ``explorer bench --format json`` taken on the board.
        device: the board and target the fit is for.
        cross_validate_fit: run leave-one-model-out (gives predictions their range).

    Returns:
        (the board's profile with the fitted target in it, the ``FitResult``).

    Raises:
        UsageError: a bad file or row (see ``read_measurements``), no rows for this target, an
            unknown model.
    """
    import device_profiles
    from explorer.measurements import profile_measurements, read_measurements

    path = Path(path)
    profile = device_profiles.get(device)
    target = profile.target
    rows = read_measurements(path, device=device)
    mine = [m for m in rows if m.board == profile.key and m.target == target.name]
    if not mine:
        found = sorted({m.address for m in rows})
        raise UsageError(
            f"{path.name} has no rows for {profile.key}:{target.name} (it has: "
            f"{', '.join(found)}); pass --device with one of those"
        )
    profiles = profile_measurements(mine)
    samples = [(m.model, profiles[(m.model, m.input_shape, m.batch)], m.latency_ms) for m in mine]
    source = f"explorer calibrate --from-measurements {path.name} ({len(mine)} rows)"
    result = fit_target(target, samples, source=source, cross_validate_fit=cross_validate_fit)
    targets = dict(profile.all_targets)
    targets[target.name] = result.target
    default = profile.default_target_name
    fitted = replace(
        profile,
        targets=targets,
        default_target=default,
        calibration=profile.calibration if target.name != default else None,
        selected_target="",
    )
    return fitted.with_target(target.name), result
