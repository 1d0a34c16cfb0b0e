"""Calibration: fit a device's achievable roofs and overheads from measurements.

``calibrate_host`` measures this machine with ONNX Runtime at a given thread count:
- large copies (numpy, one pass) for the bandwidth roof;
- large matrix products for the compute roof (the best rate seen becomes the ``host`` peak);
- a suite of small networks, one operator class each (convolutions and matrix products of
  several shapes, depthwise convolutions, GRU/LSTM, attention, norms, activations, pooling,
  elementwise and memory operators, chains of tiny operators for the per-operator overhead).

Each suite network is exported to ONNX, timed, and profiled with ``explorer.profile_model``;
then the calibration (per-class compute and bandwidth fractions, per-class overheads and a
per-call overhead) is fitted so that ``predict_latency`` reproduces the measured times (least
squares on log time). ``calibrate_from_measurements`` fits the same parameters from
``explorer bench --format json`` results of real models taken on another device.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from device_profiles import Calibration, DeviceProfile
from explorer.environment import cpu_model
from explorer.errors import UsageError
from explorer.prediction import calibration_class, predict_latency
from explorer.profiling import ModelProfile, profile_model

from ._backends import BenchSettings, OrtBackend, ort_feed, ort_session

__all__ = ["CalibrationRun", "calibrate_from_measurements", "calibrate_host", "fit_calibration"]

_MIN_FRACTION = 1e-3


@dataclass(frozen=True, kw_only=True)
class CalibrationRun:
    """The result of ``calibrate_host``: the fitted profile and what was measured."""

    profile: DeviceProfile
    samples: tuple[tuple[str, float, float], ...]  # (name, measured ms, fitted prediction ms)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.to_dict(),
            "samples": [
                {"name": n, "measured_ms": m, "predicted_ms": p} for n, m, p in self.samples
            ],
            "seconds": self.seconds,
        }


# --- the micro-benchmark suite ---------------------------------------------------------------


class _Chain(nn.Module):
    def __init__(self, n: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.n, self.fn = n, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.n):
            x = self.fn(x)
        return x


class _Rnn(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class _Binary(nn.Module):
    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "add":
            return x + x.flip(0)
        if self.op == "cat":
            return torch.cat([x, x * 2], dim=1)
        return x.transpose(-1, -2).contiguous() * 1.5


def _suite() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, module, input shape) for every micro-benchmark."""
    s: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    # dense 2-D convolutions: (cin, cout, k, stride, size)
    for cin, cout, k, st, hw in [
        (1, 16, 3, 1, 64),
        (3, 16, 3, 2, 224),
        (16, 32, 3, 1, 56),
        (32, 64, 3, 1, 28),
        (64, 128, 3, 1, 14),
        (128, 128, 3, 1, 7),
        (16, 64, 1, 1, 56),
        (96, 24, 1, 1, 28),
        (256, 512, 1, 1, 7),
        (64, 64, 3, 1, 28),
        (3, 64, 7, 2, 112),
        (2, 1, 7, 1, 14),
        (2, 1, 7, 1, 56),
        (2, 1, 7, 1, 112),
        (8, 2, 3, 1, 56),
        (1, 8, 5, 1, 64),
    ]:
        s.append(
            (
                f"conv{k}x{k}_{cin}-{cout}_s{st}_{hw}",
                nn.Conv2d(cin, cout, k, st, padding=k // 2, bias=False),
                (1, cin, hw, hw),
            )
        )
        # The same conv followed by two more: inside a network convs chain without the layout
        # changes (NCHWc reorders) a lone conv pays at its input and output.
        if cout > 4 and st == 1:
            s.append(
                (
                    f"chain3_conv{k}x{k}_{cin}-{cout}_{hw}",
                    nn.Sequential(
                        nn.Conv2d(cin, cout, k, 1, padding=k // 2, bias=False),
                        *(nn.Conv2d(cout, cout, k, 1, padding=k // 2, bias=False) for _ in "ab"),
                    ),
                    (1, cin, hw, hw),
                )
            )
    # depthwise convolutions: (channels, k, stride, size)
    for ch, k, st, hw in [(16, 3, 1, 112), (72, 3, 2, 56), (240, 5, 1, 14), (576, 3, 1, 7)]:
        s.append(
            (
                f"dwconv{k}x{k}_{ch}_s{st}_{hw}",
                nn.Conv2d(ch, ch, k, st, padding=k // 2, groups=ch, bias=False),
                (1, ch, hw, hw),
            )
        )
        s.append(
            (
                f"chain3_dwconv{k}x{k}_{ch}_{hw}",
                nn.Sequential(
                    *(nn.Conv2d(ch, ch, k, 1, padding=k // 2, groups=ch, bias=False) for _ in "abc")
                ),
                (1, ch, hw, hw),
            )
        )
    # 1-D convolutions: (cin, cout, k, length)
    for cin, cout, k, length in [
        (1, 128, 5, 40),
        (128, 128, 7, 40),
        (64, 64, 3, 300),
        (40, 64, 3, 256),
    ]:
        s.append((f"conv1d_{cin}-{cout}_k{k}_{length}", nn.Conv1d(cin, cout, k), (1, cin, length)))
    # linear layers / matrix products: (tokens, in, out)
    for tokens, fin, fout in [
        (1, 2528, 16),
        (1, 512, 512),
        (1, 2048, 1000),
        (15, 576, 128),
        (60, 256, 256),
        (64, 512, 512),
        (90, 512, 256),
        (8, 64, 64),
    ]:
        s.append((f"linear_{tokens}x{fin}-{fout}", nn.Linear(fin, fout), (tokens, fin)))
    # recurrent layers: (kind, seq, in, hidden, bidirectional)
    for kind, seq, fin, hid, bi in [
        ("gru", 15, 576, 128, False),
        ("gru", 60, 64, 64, False),
        ("gru", 30, 256, 128, True),
        ("lstm", 30, 128, 128, False),
        ("gru", 8, 32, 32, False),
    ]:
        cls = nn.GRU if kind == "gru" else nn.LSTM
        s.append(
            (
                f"{kind}_{seq}x{fin}-{hid}{'_bi' if bi else ''}",
                _Rnn(cls(fin, hid, batch_first=True, bidirectional=bi)),
                (1, seq, fin),
            )
        )
    # attention: (tokens, dim, heads)
    for tokens, dim, heads in [(15, 128, 4), (60, 256, 4), (8, 64, 2)]:
        s.append((f"mha_{tokens}x{dim}_h{heads}", _Attention(dim, heads), (1, tokens, dim)))
    # norms, activations, pooling, elementwise, memory: (size) of a (1, C, H, W) tensor
    for c, hw in [(16, 112), (64, 28), (256, 7)]:
        shape = (1, c, hw, hw)
        s.append((f"bn_{c}x{hw}", nn.BatchNorm2d(c).eval(), shape))
        s.append((f"relu6_{c}x{hw}", nn.ReLU6(), shape))
        s.append((f"sigmoid_{c}x{hw}", nn.Sigmoid(), shape))
        s.append((f"maxpool_{c}x{hw}", nn.MaxPool2d(2), shape))
        s.append((f"add_{c}x{hw}", _Binary("add"), shape))
        s.append((f"cat_{c}x{hw}", _Binary("cat"), shape))
        s.append((f"transpose_{c}x{hw}", _Binary("transpose"), shape))
    for c, hw in [(16, 112), (64, 28)]:
        for act in (nn.Mish(), nn.SiLU(), nn.Hardswish(), nn.LeakyReLU(0.1), nn.Tanh()):
            label = type(act).__name__.lower()
            s.append((f"{label}_{c}x{hw}", act, (1, c, hw, hw)))
            # The same activation after a conv: fused (ReLU-like) or not (exp-based).
            s.append(
                (
                    f"conv_{label}_{c}x{hw}",
                    nn.Sequential(nn.Conv2d(c, c, 1, bias=False), act),
                    (1, c, hw, hw),
                )
            )
    s.append(("avgpool_576x7", nn.AdaptiveAvgPool2d(1), (1, 576, 7, 7)))
    s.append(("layernorm_60x256", nn.LayerNorm(256), (1, 60, 256)))
    s.append(("gelu_60x1024", nn.GELU(), (1, 60, 1024)))
    s.append(("softmax_4x60x60", nn.Softmax(-1), (4, 60, 60)))
    # chains of tiny operators: slope = per-operator overhead, intercept = per-call overhead
    for n in (1, 8, 32):
        s.append((f"tiny_sigmoid_x{n}", _Chain(n, torch.sigmoid), (1, 16)))
        s.append((f"tiny_add_x{n}", _Chain(n, lambda x: x + 1.0), (1, 16)))
    return s


@dataclass(frozen=True, kw_only=True)
class _Sample:
    name: str
    profile: ModelProfile
    measured_ms: float


def _measure_suite(
    threads: int, *, runs_target_s: float, log: Callable[[str], None], clock: str = "wall"
) -> list[_Sample]:
    from explorer.export import export_onnx

    backend = OrtBackend()
    settings = BenchSettings(threads=threads, warmup=5, clock=clock)
    samples = []
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="explorer-cal-") as tmp:
        for name, module, shape in _suite():
            module.eval()
            x = torch.randn(shape)
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(module, (x,), path, check=False)
            session = ort_session(path, threads=threads)
            feed = ort_feed(session, (x,))
            runs = _runs_for(session, feed, runs_target_s)
            result = backend.measure_session(
                session, feed, name=name, batch_size=shape[0], settings=replace(settings, runs=runs)
            )
            profile = profile_model(module, (x,), name=name, meta=False)
            samples.append(_Sample(name=name, profile=profile, measured_ms=result.median_ms))
            log(f"  {name:28s} {result.median_ms:9.4f} ms")
    return samples


def _runs_for(session: Any, feed: dict[str, Any], target_s: float) -> int:
    start = time.perf_counter()
    session.run(None, feed)
    session.run(None, feed)
    once = max((time.perf_counter() - start) / 2, 1e-6)
    return max(11, min(400, int(target_s / once)))


def measure_bandwidth_gb_s(*, mbytes: int = 128, repeats: int = 7) -> float:
    """Copy bandwidth (read + write bytes per second) of one ``mbytes`` numpy copy, best of N."""
    n = max(1, int(mbytes * 1024 * 1024) // 4)
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def measure_bandwidths(log: Callable[[str], None]) -> dict[float, float]:
    """Copy bandwidth at working sets from 0.5 MB (cache) to 128 MB (DRAM): {MB: GB/s}."""
    out = {}
    for mb in (0.5, 4, 16, 128):
        repeats = 200 if mb < 1 else 40 if mb < 10 else 7
        out[mb] = measure_bandwidth_gb_s(mbytes=mb, repeats=repeats)  # type: ignore[arg-type]
        log(f"  copy {mb:g} MB: {out[mb]:.1f} GB/s")
    return out


def measure_peak_gflops(
    threads: int, *, log: Callable[[str], None] = lambda _: None, clock: str = "wall"
) -> float:
    """Best FP32 rate of large matrix products in ONNX Runtime at ``threads`` threads."""
    from explorer.export import export_onnx

    best = 0.0
    with tempfile.TemporaryDirectory(prefix="explorer-peak-") as tmp:
        for m, k, n in [(64, 256, 256), (128, 512, 512), (256, 512, 512)]:
            x = torch.randn(m, k)
            path = Path(tmp) / "gemm.onnx"
            export_onnx(nn.Linear(k, n, bias=False).eval(), (x,), path, check=False)
            session = ort_session(path, threads=threads)
            feed = ort_feed(session, (x,))
            now = time.thread_time if clock == "cpu" else time.perf_counter
            times = []
            for _ in range(max(5, int(2e8 / (m * k * n)))):
                start = now()
                session.run(None, feed)
                times.append(max(now() - start, 1e-9))
            rate = 2 * m * k * n / min(times) / 1e9
            log(f"  gemm {m}x{k}x{n}: {rate:.1f} GFLOP/s")
            best = max(best, rate)
    return best


# --- fitting ----------------------------------------------------------------------------------


def fit_calibration(
    device: DeviceProfile,
    samples: Sequence[tuple[ModelProfile, float]],
    *,
    threads: int | None,
    source: str,
    fuse_elementwise: bool = True,
    per_kind: bool = True,
    per_kind_overhead: bool = False,
) -> Calibration:
    """Fit fractions and overheads so that ``predict_latency`` matches measured times.

    Args:
        device: the device (its peak and bandwidth set the scale of the fractions).
        samples: (profile, measured median ms) pairs.
        per_kind: fit one compute fraction and bandwidth fraction per operator class seen in
            the samples (else one of each for all classes).
        per_kind_overhead: also one overhead per class (else one for all operators: with
            noisy measurements per-class overheads soak up what the fractions should explain).
    """
    from scipy.optimize import least_squares

    if not samples:
        raise UsageError("calibration needs at least one measurement")
    profiles = [p for p, _ in samples]
    measured = np.array([ms for _, ms in samples], dtype=float)
    if np.any(measured <= 0):
        raise UsageError("measured latencies must be positive")
    seen = sorted({calibration_class(o) for p in profiles for o in p.ops})
    kinds = seen if per_kind else []
    # Parameter vector (log space): global cf, bf, overhead, call overhead, then per kind.
    n_global = 4

    def unpack(theta: np.ndarray) -> Calibration:
        cf, bf = (min(1.0, math.exp(v)) for v in theta[:2])
        ov, call = (math.exp(v) for v in theta[2:4])
        kcf, kbf, kov = {}, {}, {}
        for i, kind in enumerate(kinds):
            a, b, c = theta[n_global + 3 * i : n_global + 3 * i + 3]
            kcf[kind] = min(1.0, math.exp(a))
            kbf[kind] = min(1.0, math.exp(b))
            if per_kind_overhead:
                kov[kind] = math.exp(c)
        return Calibration(
            compute_fraction=max(cf, _MIN_FRACTION),
            bandwidth_fraction=max(bf, _MIN_FRACTION),
            overhead_us=ov,
            call_overhead_us=call,
            kind_compute_fraction=kcf,
            kind_bandwidth_fraction=kbf,
            kind_overhead_us=kov,
            fuse_elementwise=fuse_elementwise,
            threads=threads,
            source=source,
        )

    def residuals(theta: np.ndarray) -> np.ndarray:
        dev = replace(device, calibration=unpack(theta))
        pred = np.array([predict_latency(p, dev).ms for p in profiles])
        return np.log(pred) - np.log(measured)

    theta0 = [math.log(0.5), math.log(0.5), math.log(2.0), math.log(5.0)]
    lo = [math.log(_MIN_FRACTION)] * 2 + [math.log(1e-3)] * 2
    hi = [0.0, 0.0, math.log(1e4), math.log(1e4)]
    for _ in kinds:
        theta0 += [math.log(0.5), math.log(0.5), math.log(2.0)]
        lo += [math.log(_MIN_FRACTION), math.log(_MIN_FRACTION), math.log(1e-3)]
        hi += [0.0, 0.0, math.log(1e4)]
    fit = least_squares(
        residuals, np.array(theta0), bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=400
    )
    return _rounded(unpack(fit.x))


def _rounded(cal: Calibration) -> Calibration:
    def r(v: float) -> float:
        return float(f"{v:.4g}")

    return replace(
        cal,
        compute_fraction=r(cal.compute_fraction),
        bandwidth_fraction=r(cal.bandwidth_fraction),
        overhead_us=r(cal.overhead_us),
        call_overhead_us=r(cal.call_overhead_us),
        kind_compute_fraction={k: r(v) for k, v in cal.kind_compute_fraction.items()},
        kind_bandwidth_fraction={k: r(v) for k, v in cal.kind_bandwidth_fraction.items()},
        kind_overhead_us={k: r(v) for k, v in cal.kind_overhead_us.items()},
    )


def calibrate_host(
    *,
    threads: int = 1,
    name: str = "host",
    runs_target_s: float = 0.25,
    clock: str = "auto",
    log: Callable[[str], None] = lambda _: None,
) -> CalibrationRun:
    """Measure this machine and return a calibrated ``DeviceProfile`` called ``name``.

    Takes about a minute on an idle machine. The profile's peak and bandwidth are the
    measured roofs at ``threads`` ONNX Runtime threads (not datasheet figures). ``clock``
    ``"auto"`` times one thread by its CPU time (robust when other processes share the cores:
    it predicts the latency the model has on an idle machine) and several threads by wall time.
    """
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    if clock == "auto":
        clock = "cpu" if threads == 1 else "wall"
    start = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        log("bandwidth (copies)")
        copies = measure_bandwidths(log)
        log(f"peak (matrix products, {threads} thread(s))")
        peak = measure_peak_gflops(threads, log=log, clock=clock)
        log(f"operator suite (ONNX Runtime, {clock} clock)")
        samples = _measure_suite(threads, runs_target_s=runs_target_s, log=log, clock=clock)
    finally:
        torch.set_num_threads(old_threads)
    # The roofs are the best rates seen anywhere (copies, GEMMs, the suite itself), so every
    # fitted fraction is a share of something this machine really reached. The working sets of
    # these networks mostly fit in cache, so the bandwidth roof is the cache-resident copy
    # rate; the DRAM rate (largest copy) is kept under alternatives.
    peak = max(peak, *(s.profile.total_flops / (s.measured_ms * 1e6) for s in samples))
    bandwidth = max(
        *copies.values(), *(s.profile.traffic_bytes / (s.measured_ms * 1e6) for s in samples)
    )
    dram = copies[max(copies)]
    device = DeviceProfile(
        key=name,
        name=f"{cpu_model()} ({threads} thread{'s' if threads > 1 else ''}, ONNX Runtime)",
        kind="cpu",
        peak_gflops={"fp32": round(peak, 2)},
        bandwidth_gb_s=round(bandwidth, 2),
        sources=(
            f"explorer calibrate on {time.strftime('%Y-%m-%d %H:%M')}: peak = best ONNX Runtime "
            f"GEMM rate, bandwidth = best copy rate, {threads} thread(s)",
        ),
        notes="Measured roofs of this machine, not datasheet figures; the bandwidth roof is the "
        "cache-resident rate, the DRAM copy rate is under alternatives.dram.",
        alternatives={
            "dram": {
                "bandwidth_gb_s": round(dram, 2),
                "source": f"numpy copy of {max(copies):g} MB",
            }
        },
    )
    cal = fit_calibration(
        device,
        [(s.profile, s.measured_ms) for s in samples],
        threads=threads,
        source=f"explorer calibrate: {len(samples)} ONNX Runtime micro-benchmarks, {clock} clock",
    )
    device = replace(device, calibration=cal)
    fitted = tuple((s.name, s.measured_ms, predict_latency(s.profile, device).ms) for s in samples)
    return CalibrationRun(profile=device, samples=fitted, seconds=time.perf_counter() - start)


def _load_measurements(path: Path) -> list[Mapping[str, Any]]:
    if not path.is_file():
        raise UsageError(
            f"measurements file {str(path)!r} does not exist: give the JSON written "
            "by `explorer bench --format json > FILE`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path} is not JSON ({exc}); write it with `explorer bench MODEL --format json > FILE`"
        ) from None
    rows = data if isinstance(data, list) else data.get("results", [data])
    if not rows or not all(
        isinstance(r, Mapping) and "model" in r and "median_ms" in r for r in rows
    ):
        raise UsageError(
            f"{path}: expected bench results with 'model' and 'median_ms' (one object or a list)"
        )
    return rows


def calibrate_from_measurements(path: str | Path, device: DeviceProfile) -> DeviceProfile:
    """Fit ``device``'s calibration from ``explorer bench --format json`` results.

    Each result names its model (a preset, ``family:overrides`` or checkpoint resolvable here)
    and its batch size; the model is rebuilt and profiled here, and the fit makes the
    predictions match the measured medians.
    """
    from explorer.models import resolve_model

    rows = _load_measurements(Path(path))
    samples = []
    threads = None
    for row in rows:
        resolved = resolve_model(str(row["model"]), batch_size=int(row.get("batch_size", 1)))
        profile = profile_model(resolved.model, resolved.example_inputs, name=resolved.name)
        samples.append((profile, float(row["median_ms"])))
        threads = row.get("threads", threads)
    # With few measurements a per-class fit is under-determined: fit one set of fractions.
    cal = fit_calibration(
        replace(device, calibration=None),
        samples,
        threads=threads,
        source=f"explorer calibrate --from-measurements {Path(path).name} ({len(samples)} models)",
        per_kind=len(samples) >= 12,
    )
    return replace(device, calibration=cal)
