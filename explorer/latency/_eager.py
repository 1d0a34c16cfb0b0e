"""Calibrating PyTorch eager: what ``explorer bench --backend torch`` measures, on a CPU or a
CUDA GPU.

PyTorch eager runs every operator as its own call: nothing is fused, batch norm is not folded,
and on a GPU each call costs the host a launch (7-35 µs for a small operator on an H200, over
100 µs for a GRU or multi-head attention) that at batch 1 usually outweighs the GPU's own
work. ``calibrate_torch`` times the same operator suite and family networks as the ONNX
Runtime calibration, eagerly and the way ``explorer bench --backend torch`` times a model
(CUDA events around each call on a GPU), measures the device's roofs with PyTorch, and fits
the roofline calibration with an overhead of its own for every operator class and no fusion.
The profile it returns prices a model on that device with ``--device FILE``.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from device_profiles import DeviceProfile
from explorer.environment import cpu_model
from explorer.prediction import predict_latency
from explorer.profiling import profile_model

from ._backends import BenchSettings, _time_cuda
from ._backends import torch_device as resolve_torch_device
from ._calibrate import (
    CalibrationRun,
    _family_networks,
    _Sample,
    _suite,
    best_roofs,
    family_of,
    measure_bandwidths,
)
from ._fit import fit_calibration
from ._timing import runs_to_fill, time_runs, torch_threads

__all__ = ["calibrate_torch"]


def _median_ms(run: Callable[[], object], device: torch.device, *, runs: int) -> float:
    """Median milliseconds of ``runs`` calls of ``run``, timed as ``explorer bench --backend
    torch`` times them: CUDA events around each call on a GPU, the wall clock on a CPU."""
    if device.type == "cuda":
        return statistics.median(_time_cuda(run, BenchSettings(runs=runs, warmup=3, device="cuda")))
    return statistics.median(time_runs(run, runs=runs, warmup=3, clock="wall"))


def _once_s(run: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``run`` takes (after one untimed call), synchronised on a GPU."""
    run()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    run()
    sync()
    return time.perf_counter() - start


def _roofs(device: torch.device, log: Callable[[str], None]) -> tuple[float, float, float]:
    """(peak GFLOP/s, best copy GB/s, copy GB/s of the largest copy) measured with PyTorch."""
    peak = 0.0
    sizes = (1024, 2048, 4096) if device.type == "cuda" else (128, 256, 512)
    for n in sizes:  # FP32 products: PyTorch's default precision (no TF32 for matmul)
        a = torch.randn(n, n, device=device)
        ms = _median_ms(lambda a=a: a @ a, device, runs=10)
        peak = max(peak, 2 * n**3 / ms / 1e6)
        log(f"  matmul {n}x{n}x{n}: {2 * n**3 / ms / 1e6:.1f} GFLOP/s")
    if device.type != "cuda":
        copies = measure_bandwidths(log)
        return peak, max(copies.values()), copies[max(copies)]
    rates = {}
    for mb in (16, 256):  # in the L2 cache (tens of MB on large GPUs), then well beyond it
        big = torch.empty(mb * 2**20 // 4, device=device)
        ms = _median_ms(big.clone, device, runs=20)
        rates[mb] = 2 * big.numel() * 4 / ms / 1e6  # bytes read and written
        log(f"  copy {mb} MB: {rates[mb]:.0f} GB/s")
        del big
    return peak, max(rates.values()), rates[max(rates)]


def _large_items() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Compute-bound operators for a GPU: the suite's are small enough that launching them
    is most of their time, so alone they leave a GPU's rate on large layers unmeasured (cuDNN
    runs FP32 convolutions in TF32, several times the FP32 matrix-product rate)."""
    return [
        ("large_conv3x3_256-256_b16_56", nn.Conv2d(256, 256, 3, padding=1), (16, 256, 56, 56)),
        ("large_conv3x3_64-64_b32_112", nn.Conv2d(64, 64, 3, padding=1), (32, 64, 112, 112)),
        ("large_conv1x1_512-512_b16_28", nn.Conv2d(512, 512, 1), (16, 512, 28, 28)),
        ("large_conv7x7_3-64_s2_b32_224", nn.Conv2d(3, 64, 7, 2, 3), (32, 3, 224, 224)),
        ("large_dwconv3x3_256_b16_56", nn.Conv2d(256, 256, 3, padding=1, groups=256),
         (16, 256, 56, 56)),
        ("large_linear_4096x2048-2048", nn.Linear(2048, 2048), (4096, 2048)),
    ]  # fmt: skip


def _time_suite(
    device: torch.device,
    *,
    networks: int,
    runs_target_s: float,
    passes: int,
    log: Callable[[str], None],
) -> list[_Sample]:
    """Every micro-benchmark and ``networks`` family samples each, timed eagerly on ``device``
    in ``passes`` interleaved passes (each keeps its fastest median, as the ONNX Runtime
    calibration does: a later pass measures again what a burst of interference slowed)."""
    torch.manual_seed(0)
    items = _suite() + (_large_items() if device.type == "cuda" else [])
    suite = [(name, module, (torch.randn(shape),)) for name, module, shape in items]
    if networks:
        suite += _family_networks(networks)
    prepared = []
    for name, module, inputs in suite:
        module.eval()
        profile = profile_model(module, inputs, name=name)  # counted on the CPU, before moving
        module = module.to(device)
        on_device = tuple(t.to(device) for t in inputs)
        run = functools.partial(module, *on_device)
        with torch.inference_mode():
            once = _once_s(run, device)
        runs = runs_to_fill(once, target_s=runs_target_s / passes, lo=11, hi=400)
        prepared.append((name, run, runs, profile))
    best = [math.inf] * len(prepared)
    for p in range(passes):
        with torch.inference_mode():  # as explorer bench times the torch backend
            for i, (_, run, runs, _) in enumerate(prepared):
                best[i] = min(best[i], _median_ms(run, device, runs=runs))
        log(f"  pass {p + 1}/{passes}: {len(prepared)} items timed")
    samples = [
        _Sample(name=name, profile=profile, measured_ms=ms)
        for (name, *_, profile), ms in zip(prepared, best, strict=True)
    ]
    for s in samples:
        log(f"  {s.name:28s} {s.measured_ms:9.4f} ms")
    return samples


def calibrate_torch(
    *,
    torch_device: str = "cuda",
    threads: int = 1,
    name: str | None = None,
    networks: int = 3,
    runs_target_s: float = 0.25,
    passes: int = 3,
    log: Callable[[str], None] = lambda _: None,
) -> CalibrationRun:
    """Measure PyTorch eager on ``torch_device`` and return a calibrated ``DeviceProfile``.

    Args:
        torch_device: ``cuda`` (``cuda:i``) or ``cpu``: where the models will run.
        threads: PyTorch's intra-op threads on a CPU (ignored on a GPU).
        name: the profile's key (default ``host-cuda`` or ``host-torch``).
        networks: seeded small networks of each family timed beside the micro-benchmarks.
        runs_target_s: about how long each item is timed, over all passes.
        passes: interleaved passes over the items (each keeps its fastest median).
        log: where progress lines go.

    Raises:
        UsageError: CUDA asked for on a machine without it, or an unknown device
            (``explorer.latency._backends.torch_device``).
    """
    device = resolve_torch_device(torch_device)
    gpu = device.type == "cuda"
    name = name or ("host-cuda" if gpu else "host-torch")
    start = time.perf_counter()
    with torch_threads(threads):
        log(f"roofs (PyTorch on {device})")
        with torch.inference_mode():
            peak, bandwidth, dram = _roofs(device, log)
        log("operator suite (PyTorch eager)")
        samples = _time_suite(
            device, networks=networks, runs_target_s=runs_target_s, passes=passes, log=log
        )
    # As for the ONNX Runtime host (cuDNN runs FP32 convolutions in TF32 by default, faster
    # than any FP32 matrix product)
    peak, bandwidth = best_roofs(samples, peak=peak, bandwidth=bandwidth)
    if gpu:
        what = f"{torch.cuda.get_device_name(device)} (PyTorch {torch.__version__} eager, CUDA)"
    else:
        what = f"{cpu_model()} (PyTorch {torch.__version__} eager, {threads} thread(s))"
    profile = DeviceProfile(
        key=name,
        name=what,
        kind="gpu" if gpu else "cpu",
        peak_gflops={"fp32": round(peak, 2)},
        bandwidth_gb_s=round(bandwidth, 2),
        sources=(
            f"explorer calibrate --backend torch on {time.strftime('%Y-%m-%d %H:%M')}: peak = "
            "best FP32 rate (matrix products, the suite), bandwidth = best copy rate",
        ),
        notes="Measured roofs and eager per-operator costs of this device, not datasheet "
        "figures (the peak is the best rate seen: cuDNN runs FP32 convolutions in TF32); predicts "
        "`explorer bench --backend torch` on it, not ONNX Runtime or TensorRT.",
        alternatives={"dram": {"bandwidth_gb_s": round(dram, 2), "source": "largest copy"}},
    )
    # Family networks weigh as much as all the micro-benchmarks together:
    # in a network each operator costs more than alone (its module's Python call, the views
    # between operators), and with equal weights the fit priced unseen networks 19-26 % fast.
    is_network = [family_of(s.name) is not None for s in samples]
    networks_timed = sum(is_network)
    weight = (len(samples) - networks_timed) / max(networks_timed, 1)
    cal = fit_calibration(
        profile,
        [(s.profile, s.measured_ms) for s in samples],
        weights=[weight if n else 1.0 for n in is_network],
        threads=None if gpu else threads,
        source=f"explorer calibrate --backend torch: {len(samples) - networks_timed} PyTorch "
        f"eager micro-benchmarks and {networks_timed} networks on {device}, "
        + ("CUDA events" if gpu else "wall clock"),
        fuse_elementwise=False,  # eager: every operator is its own call
        per_kind_overhead=True,  # what each class costs to launch is most of the time
    )
    profile = replace(profile, calibration=cal)
    fitted = tuple((s.name, s.measured_ms, predict_latency(s.profile, profile).ms) for s in samples)
    return CalibrationRun(profile=profile, samples=fitted, seconds=time.perf_counter() - start)
