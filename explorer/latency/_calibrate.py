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

import math
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from device_profiles import DeviceProfile
from explorer.environment import cpu_model
from explorer.errors import UsageError
from explorer.prediction import predict_latency
from explorer.profiling import ModelProfile, profile_model

from ._backends import BenchSettings, OrtBackend, ort_feed, ort_session
from ._fit import fit_calibration
from ._timing import runs_to_fill, torch_threads

__all__ = [
    "CalibrationRun",
    "calibrate_from_measurements",
    "calibrate_host",
    "fit_calibration",
    "host_calibration",
]

# Family networks in the calibration suite stay below this size, as in the benchmark.
_NETWORK_MAX_MACS = 4e8


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


class _ZPool(nn.Module):
    """Max and mean over channels (CBAM / triplet attention), optionally of a permuted view."""

    def __init__(self, permute: bool) -> None:
        super().__init__()
        self.permute = permute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.permute:
            x = x.permute(0, 2, 1, 3)
        return torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)


class _GateMul(nn.Module):
    """A broadcast gate: ``x * sigmoid(mean over channels)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x.mean(1, keepdim=True))


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
    # grouped convolutions with several outputs per group (ghost modules' cheap operation):
    # (batch, cin, multiplier, k, size)
    for batch, cin, mult, k, hw in [
        (1, 8, 2, 3, 32),
        (15, 5, 3, 3, 16),
        (15, 18, 3, 3, 4),
        (4, 16, 2, 3, 28),
        (1, 32, 2, 3, 14),
    ]:
        s.append(
            (
                f"gconv{k}x{k}_{batch}x{cin}-{cin * mult}_{hw}",
                nn.Conv2d(cin, cin * mult, k, padding=k // 2, groups=cin, bias=False),
                (batch, cin, hw, hw),
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
    # attention-module building blocks: channel pooling (plain and permuted) and gating
    for n, c, hw in [(2, 64, 32), (1, 32, 56), (15, 24, 16)]:
        shape = (n, c, hw, hw)
        s.append((f"zpool_{n}x{c}x{hw}", _ZPool(permute=False), shape))
        s.append((f"zpool_permuted_{n}x{c}x{hw}", _ZPool(permute=True), shape))
        s.append((f"gate_mul_{n}x{c}x{hw}", _GateMul(), shape))
        s.append((f"gelu_{n}x{c}x{hw}", nn.GELU(), shape))
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


def network_name(family: str, seed: int) -> str:
    """The name of a calibration sample that is a whole network of a family: ``family#seed``
    (the benchmarks name their held-out networks the same way)."""
    return f"{family}#{seed}"


def family_of(name: str) -> str | None:
    """The family of a sample named by ``network_name``; None for a micro-benchmark, a random
    network or a single operator."""
    family, sep, _ = name.partition("#")
    return family if sep else None


def _family_networks(per_family: int) -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """Seeded small samples of every search-space family, as whole networks.

    Per-operator micro-benchmarks miss what a runtime does between operators (layout reorders,
    transposes of permuted views, unfused gates); timing a few real networks lets the fit
    account for it. The seeds (1000 + i) are disjoint from those of
    ``benchmarks/latency_prediction.py`` (0-199), which checks the fit on unseen networks.
    """
    import search_spaces as ss

    out = []
    for family in ss.list_families():
        taken, seed = 0, 1000
        while taken < per_family and seed < 1100:
            model = ss.build(ss.sample(family, seed=seed)).eval()
            inputs = ss.example_inputs(model)
            macs = profile_model(model, inputs, meta=True).macs
            if macs <= _NETWORK_MAX_MACS:
                out.append((network_name(family, seed), model, inputs))
                taken += 1
            seed += 1
    return out


def _measure_suite(
    threads: int,
    *,
    runs_target_s: float,
    log: Callable[[str], None],
    clock: str = "wall",
    networks: int = 0,
    passes: int = 3,
) -> list[_Sample]:
    """Time every micro-benchmark (and ``networks`` family samples each) in ONNX Runtime.

    Every item is timed in ``passes`` interleaved passes and keeps its fastest median: on a
    shared (virtual) machine a burst of interference slows a stretch of consecutive items by
    up to 2x, and a later pass measures them again outside the burst.
    """
    from explorer.export import export_onnx

    backend = OrtBackend()
    settings = BenchSettings(threads=threads, warmup=3, clock=clock)
    torch.manual_seed(0)
    suite = [(name, module, (torch.randn(shape),)) for name, module, shape in _suite()]
    if networks:
        suite += _family_networks(networks)
    prepared = []
    with tempfile.TemporaryDirectory(prefix="explorer-cal-") as tmp:
        for i, (name, module, inputs) in enumerate(suite):
            module.eval()
            path = Path(tmp) / f"m{i}.onnx"
            export_onnx(module, inputs, path, check=False)
            session = ort_session(path, threads=threads)
            feed = ort_feed(session, inputs)
            runs = _runs_for(session, feed, runs_target_s / passes)
            profile = profile_model(module, inputs, name=name, meta=False)
            prepared.append((name, session, feed, runs, inputs[0].shape[0], profile))
    best = [math.inf] * len(prepared)
    for p in range(passes):
        for i, (name, session, feed, runs, batch, _) in enumerate(prepared):
            result = backend.measure_session(
                session, feed, name=name, batch_size=batch, settings=replace(settings, runs=runs)
            )
            best[i] = min(best[i], result.median_ms)
        log(f"  pass {p + 1}/{passes}: {len(prepared)} items timed")
    samples = []
    for (name, *_, profile), ms in zip(prepared, best, strict=True):
        samples.append(_Sample(name=name, profile=profile, measured_ms=ms))
        log(f"  {name:28s} {ms:9.4f} ms")
    return samples


def _runs_for(session: Any, feed: dict[str, Any], target_s: float) -> int:
    start = time.perf_counter()
    session.run(None, feed)
    session.run(None, feed)
    return runs_to_fill((time.perf_counter() - start) / 2, target_s=target_s, lo=11, hi=400)


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


def calibrate_host(
    *,
    threads: int = 1,
    name: str = "host",
    runs_target_s: float = 0.25,
    clock: str = "auto",
    networks: int = 3,
    log: Callable[[str], None] = lambda _: None,
) -> CalibrationRun:
    """Measure this machine and return a calibrated ``DeviceProfile`` called ``name``.

    Takes about a minute on an idle machine. ``networks`` small seeded samples of each
    search-space family are timed with the micro-benchmarks (0: micro-benchmarks only).
    The profile's peak and bandwidth are the measured roofs at ``threads`` ONNX Runtime
    threads (not datasheet figures). ``clock`` ``"auto"`` times one thread by its CPU time
    (robust when other processes share the cores: it predicts the latency the model has on an
    idle machine) and several threads by wall time.
    """
    if threads < 1:
        raise UsageError(f"--threads must be at least 1, got {threads}")
    if clock == "auto":
        clock = "cpu" if threads == 1 else "wall"
    start = time.perf_counter()
    with torch_threads(threads):
        log("bandwidth (copies)")
        copies = measure_bandwidths(log)
        log(f"peak (matrix products, {threads} thread(s))")
        peak = measure_peak_gflops(threads, log=log, clock=clock)
        log(f"operator suite (ONNX Runtime, {clock} clock)")
        samples = _measure_suite(
            threads, runs_target_s=runs_target_s, log=log, clock=clock, networks=networks
        )
    return host_calibration(
        samples, copies=copies, peak=peak, threads=threads, name=name, clock=clock, start=start
    )


def best_roofs(samples: list[_Sample], *, peak: float, bandwidth: float) -> tuple[float, float]:
    """(GFLOP/s, GB/s): the measured ``peak`` and ``bandwidth``, or the rate a sample reached
    where it is higher, so that every fitted fraction is a share of something the machine
    really reached."""
    peak = max([peak, *(s.profile.total_flops / (s.measured_ms * 1e6) for s in samples)])
    rates = (s.profile.traffic_bytes / (s.measured_ms * 1e6) for s in samples)
    return peak, max([bandwidth, *rates])


def host_calibration(
    samples: list[_Sample],
    *,
    copies: dict[float, float],
    peak: float,
    threads: int,
    name: str,
    clock: str,
    start: float,
) -> CalibrationRun:
    """The ``host`` profile with the roofline calibration fitted to measured ``samples``."""
    networks_timed = sum(family_of(s.name) is not None for s in samples)
    # The roofs are the best rates seen anywhere (copies, GEMMs, the suite itself), so every
    # fitted fraction is a share of something this machine really reached. The working sets of
    # these networks mostly fit in cache, so the bandwidth roof is the cache-resident copy
    # rate; the DRAM rate (largest copy) is kept under alternatives.
    peak, bandwidth = best_roofs(samples, peak=peak, bandwidth=max(copies.values()))
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
        source=f"explorer calibrate: {len(samples) - networks_timed} ONNX Runtime "
        f"micro-benchmarks and {networks_timed} networks, {clock} clock",
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
    from explorer.measurements import read_bench_results

    return read_bench_results(path)


def calibrate_from_measurements(path: str | Path, device: DeviceProfile) -> DeviceProfile:
    """Fit ``device``'s selected target from ``explorer bench --format json`` results.

    The one fit of measured latencies is ``explorer.board_fit.calibrate_from_table`` (what
    ``explorer calibrate --from-measurements`` runs); this is that fit under its older name,
    without the leave-one-model-out pass.

    Args:
        path: bench JSON taken on the board (or a measurement CSV with rows for its target).
        device: the board's profile (its selected target is fitted; ``KEY`` its default).

    Returns:
        The profile with the fitted calibration in that target.

    Raises:
        UsageError: a missing or malformed file, an unknown model, no rows for the target.
    """
    from explorer.board_fit import calibrate_from_table

    fitted, _ = calibrate_from_table(path, device.address, cross_validate_fit=False)
    return fitted
