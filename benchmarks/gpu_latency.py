"""How well does a fitted GPU target predict PyTorch eager latency on a CUDA machine?

    python benchmarks/gpu_latency.py measure --out DIR          # on the CUDA machine (minutes)
    python benchmarks/gpu_latency.py fit DIR [DIR...] [--out F]  # anywhere, afterwards

``measure`` times every network the way ``explorer bench MODEL --backend torch --torch-device
cuda`` does (CUDA events around each eager call, medians), for the five papers' presets, the
two hybrid presets, five standard CNNs at 112 and 224 px and seeded networks of every family
(seeds 0 and up, families in turn), and writes them as a measurement table
(``DIR/measurements.csv``, the columns of ``device_profiles/measurements/*.csv``). For each
network it also records what the GPU really ran (``DIR/kernels.json``): the CUDA kernels one
inference launches and the time they keep the GPU busy (PyTorch's profiler), and the same
inference replayed as a CUDA graph (the GPU's own time, without the host's launches);
``--bench-only`` skips both. ``DIR/device.json`` holds the machine, its measured roofs and the
eager cost of one small operator of each kind (what the host pays to launch it).

``fit`` takes one or more such folders (passes) and each network's median over them. It fits
the eager target and the CUDA-graph target as ``explorer calibrate --from-measurements FILE
--device KEY:TARGET --cross-validate`` does (the H200's device file is below: a user adds
their GPU the same way) and prints their leave-one-model-out error beside the uncalibrated
roofline's; with several passes, the noise floor (each pass against the others' median); and
per pass, the error of summing that pass's own per-operator eager costs (no fit).
``score PROFILE DIR...`` prices every network of the passes with a profile written on the
same machine by ``explorer calibrate --backend torch --torch-device cuda`` (no fit to these
networks) and prints how far it is from their eager times, overall and by group.
``benchmarks/results/gpu_h200/`` holds three passes on an H200 and their ``fit.json``."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.measurements import MEASUREMENT_COLUMNS  # noqa: E402

PRESETS = ("ding2025", "lu2025", "yang2025", "ishtiaq2025", "kumar2025")
HYBRIDS = ("hybrid_ding_lu", "hybrid_ghost_tucker")
STANDARD = ("mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0", "resnet18", "squeezenet1_1")


def config_spec(config: Any) -> str:
    """``family:key=value,...`` naming ``config`` exactly (a MODEL the CLI resolves)."""
    import search_spaces as ss

    data = ss.config_to_dict(config)
    family = data.pop("family")
    parts = [
        f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}"
        for k, v in data.items()
    ]
    spec = f"{family}:{','.join(parts)}"
    if ss.config_from_string(spec) != config:
        raise ValueError(f"{spec} does not name its config")
    return spec


def networks(per_family: int) -> list[tuple[str, str]]:
    """(MODEL, input shape or '') of every network measured."""
    import search_spaces as ss

    out = [(p, "") for p in (*PRESETS, *HYBRIDS)]
    for px in (224, 112):
        out += [(f"explorer.zoo:{n}", f"1x3x{px}x{px}") for n in STANDARD]
    for seed in range(per_family):  # round-robin: a run cut short still has every family
        out += [(config_spec(ss.sample(f, seed=seed)), "") for f in ss.list_families()]
    return out


def _median_events(run, n: int) -> float:
    """Median milliseconds of ``n`` calls of ``run`` timed with CUDA events, as ``explorer bench``
    times them (after one untimed call)."""
    from explorer.latency import BenchSettings
    from explorer.latency._backends import _time_cuda

    return statistics.median(_time_cuda(run, BenchSettings(runs=n, warmup=1, device="cuda")))


def kernels_launched(model, inputs, n: int = 10) -> dict[str, Any]:
    """CUDA kernels (and copies) one inference runs, and the GPU time they take."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            model(*inputs)
        torch.cuda.synchronize()
    gpu = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    names: dict[str, list[float]] = {}
    for e in gpu:
        entry = names.setdefault(e.name[:80], [0, 0.0])
        entry[0] += 1 / n
        entry[1] += e.time_range.elapsed_us() / n
    return {
        "kernels": len(gpu) / n,
        "gpu_busy_ms": sum(e.time_range.elapsed_us() for e in gpu) / n / 1e3,
        "by_name": {k: [round(c, 2), round(us, 2)] for k, (c, us) in names.items()},
    }


def graph_ms(model, inputs, n: int = 100) -> float:
    """The inference replayed as a CUDA graph: the GPU's time without the host's launches."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model(*inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(*inputs)
    for _ in range(5):
        graph.replay()
    return _median_events(graph.replay, n)


def device_facts() -> dict[str, Any]:
    """The GPU, its measured roofs, and what one eager operator of each kind costs."""
    import torch
    from torch import nn

    props = torch.cuda.get_device_properties(0)
    facts: dict[str, Any] = {
        "gpu": props.name,
        "multiprocessors": props.multi_processor_count,
        "memory_gib": props.total_memory / 2**30,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }
    try:
        facts["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,clocks.max.sm,clocks.max.mem,driver_version",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=30,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        facts["nvidia_smi"] = str(exc)
    with torch.inference_mode():
        square = torch.randn(8192, 8192, device="cuda")
        ms = _median_events(lambda: square @ square, 10)
        facts["fp32_matmul_tflops"] = 2 * 8192**3 / ms / 1e9
        big = torch.empty(2**28, device="cuda")  # 1 GiB
        ms = _median_events(big.clone, 10)
        facts["copy_gb_s"] = 2 * big.numel() * 4 / ms / 1e6
        tiny = torch.zeros(1, device="cuda")
        x = torch.randn(1, 16, 8, 8, device="cuda")
        seq = torch.randn(1, 16, 32, device="cuda")
        tokens = torch.randn(1, 32, 64, device="cuda")
        ops = {  # one small operator of each kind, eager (nothing the GPU takes long over)
            "add_": (lambda t: t.add_(1), tiny),
            "add": (torch.add, x, x),
            "mul": (torch.mul, x, x),
            "relu": (nn.ReLU(), x),
            "gelu": (nn.GELU(), x),
            "sigmoid": (torch.sigmoid, x),
            "flatten (a view: no kernel)": (nn.Flatten(), x),
            "cat": (lambda a: torch.cat([a, a], 1), x),
            "conv3x3": (nn.Conv2d(16, 16, 3, padding=1), x),
            "conv1x1": (nn.Conv2d(16, 16, 1), x),
            "dwconv3x3": (nn.Conv2d(16, 16, 3, padding=1, groups=16), x),
            "conv1d": (nn.Conv1d(16, 16, 3, padding=1), seq),
            "batchnorm2d": (nn.BatchNorm2d(16), x),
            "maxpool": (nn.MaxPool2d(2), x),
            "adaptive_avgpool": (nn.AdaptiveAvgPool2d(1), x),
            "linear": (nn.Linear(64, 64), tokens),
            "layernorm": (nn.LayerNorm(64), tokens),
            "softmax": (lambda a: a.softmax(-1), tokens),
            "matmul": (lambda a: a @ a.transpose(1, 2), tokens),
            "gru (1 layer, 32 steps)": (nn.GRU(64, 64, batch_first=True), tokens),
            "multihead attention": (nn.MultiheadAttention(64, 4, batch_first=True),)
            + (tokens,) * 3,
        }
        launch = {}
        for name, (op, *args) in ops.items():
            if isinstance(op, nn.Module):
                op = op.cuda().eval()
            for _ in range(50):
                op(*args)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(2000):
                op(*args)
            host = (time.perf_counter() - start) / 2000
            torch.cuda.synchronize()
            wall = (time.perf_counter() - start) / 2000
            launch[name] = {"host_us": host * 1e6, "with_gpu_us": wall * 1e6}
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            tiny.add_(1)
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(graph):
            for _ in range(100):
                tiny.add_(1)
        launch["add_ in a CUDA graph (per kernel)"] = {
            "gpu_us": _median_events(graph.replay, 50) * 1e3 / 100
        }
        facts["eager_op_cost"] = launch
    return facts


def measure(
    out: Path, per_family: int, runs: int, *, device: str, reverse: bool, bench_only: bool
) -> None:
    import torch

    from explorer.latency import BenchSettings, bench
    from explorer.models import resolve_model

    out.mkdir(parents=True, exist_ok=True)
    facts = device_facts()
    (out / "device.json").write_text(json.dumps(facts, indent=1))
    print(json.dumps({k: v for k, v in facts.items() if k != "eager_op_cost"}), flush=True)
    print(json.dumps(facts["eager_op_cost"]), flush=True)
    rows, details = [], []
    settings = BenchSettings(runs=runs, warmup=20, device="cuda")
    board, _, target = device.partition(":")
    todo = list(enumerate(networks(per_family)))
    for i, (name, shape) in reversed(todo) if reverse else todo:
        t0 = time.perf_counter()
        try:
            shape_t = tuple(int(s) for s in shape.split("x")) if shape else None
            resolved = resolve_model(name, input_shape=shape_t, activations=True)
            result = bench(resolved.model, resolved.example_inputs, backend="torch",
                           settings=settings, name=name)  # fmt: skip
            model = resolved.model  # moved to the GPU by bench
            inputs = tuple(t.cuda() for t in resolved.example_inputs)
            entry: dict[str, Any] = {
                "model": name, "input_shape": shape, "eager_ms": result.median_ms,
                "eager_p10_ms": result.p10_ms, "eager_p90_ms": result.p90_ms,
            }  # fmt: skip
            with torch.inference_mode():
                if not bench_only:
                    entry |= kernels_launched(model, inputs)
                    try:
                        entry["graph_ms"] = graph_ms(model, inputs)
                    except Exception as exc:  # some networks do not capture (host syncs)
                        entry["graph_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            rows.append({
                "board": board, "target": target, "model": name, "input_shape": shape,
                "batch": 1, "runtime": "pytorch", "precision": "fp32", "threads": "",
                "latency_ms": f"{result.median_ms:.5g}",
                "statistic": f"median of {result.runs} CUDA-event timings (eager)",
                "source": f"benchmarks/gpu_latency.py on {facts['gpu']} (torch {torch.__version__})",  # noqa: E501
            })  # fmt: skip
            details.append(entry)
            print(f"{i:3d} {result.median_ms:7.3f} ms eager, {entry.get('graph_ms', 0):7.3f} ms "
                  f"graph, {entry.get('kernels', 0):6.1f} kernels, "
                  f"{entry.get('gpu_busy_ms', 0):7.3f} ms busy "
                  f"({time.perf_counter() - t0:.1f} s) {name[:60]}", flush=True)  # fmt: skip
        except Exception:
            print(f"{i:3d} FAILED {name[:60]}\n{traceback.format_exc()[-800:]}", flush=True)
        finally:
            torch.cuda.empty_cache()
        with (out / "measurements.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=MEASUREMENT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        (out / "kernels.json").write_text(json.dumps(details, indent=1))


H200 = """# NVIDIA H200 (SXM): 132 SMs x 128 FP32 lanes x 2 (FMA) x 1.98 GHz; HBM3e at 4.8 TB/s.
key = "h200"
name = "NVIDIA H200"
kind = "gpu"
architecture = "hopper"
memory_gb = 141
bandwidth_gb_s = 4800.0
sources = ["NVIDIA H200 Tensor Core GPU datasheet: 67 TFLOPS FP32, 4.8 TB/s"]
default_target = "gpu-fp32-torch"
[peak_gflops]
fp32 = 67000.0
[targets.gpu-fp32-torch]
processor = "gpu"
runtime = "pytorch"
precision = "fp32"
sources = ["roof: peak_gflops.fp32 above (cuDNN runs convolutions in TF32 by default)"]
notes = "PyTorch eager, CUDA events around each call (explorer bench --backend torch)."
[targets.gpu-fp32-torch-graph]
processor = "gpu"
runtime = "pytorch-cuda-graph"
precision = "fp32"
sources = ["roof: peak_gflops.fp32 above"]
notes = "The same inference replayed as a CUDA graph: the GPU's own time, no host launches."
"""


def fit(directories: list[Path], out: Path | None) -> None:
    """Fit the H200's eager and CUDA-graph targets to the passes in ``directories`` (each
    network's median over them) and print how well each predictor does, left out."""
    import os
    import tempfile

    passes = [
        {_key(e): e for e in json.loads((d / "kernels.json").read_text())} for d in directories
    ]
    keys = [k for k in passes[0] if all(k in p for p in passes)]
    eager = {k: statistics.median(p[k]["eager_ms"] for p in passes) for k in keys}
    graph = {k: statistics.median(p[k]["graph_ms"] for p in passes if "graph_ms" in p[k])
             for k in keys if any("graph_ms" in p[k] for p in passes)}  # fmt: skip
    report: dict[str, Any] = {"passes": [str(d) for d in directories], "networks": len(keys)}
    if len(passes) > 1:  # each pass against the median of the others
        report["noise_floor"] = []
        for p in passes:
            others = [
                statistics.median(q[k]["eager_ms"] for q in passes if q is not p) for k in keys
            ]
            report["noise_floor"].append(_shares([p[k]["eager_ms"] for k in keys], others))
        print(f"noise floor (each pass against the others' median): {report['noise_floor']}")
    with tempfile.TemporaryDirectory() as tmp:
        devices = Path(tmp)
        (devices / "h200.toml").write_text(H200)  # the machine measured: a user's own device file
        os.environ["EXPLORER_DEVICES"] = str(devices)
        for name, target, values in (("eager", "gpu-fp32-torch", eager),
                                     ("cuda_graph", "gpu-fp32-torch-graph", graph)):  # fmt: skip
            if values:
                table = devices / f"{name}.csv"
                _write_table(table, target, values, directories[0])
                report[name] = _fit_table(table, f"h200:{target}", name)
    profiles = _profiles(keys)
    report["eager_op_sums"] = {}
    for d, p in zip(directories, passes, strict=True):  # no fit: the same run's per-op costs
        costs = json.loads((d / "device.json").read_text())["eager_op_cost"]
        if not set(_OP_COST.values()) <= set(costs):
            print(f"{d.name}: its micro-benchmarks miss operator kinds (an earlier run); skipped")
            continue
        summed = [_op_cost_sum(profiles[k], costs) for k in keys]
        shares = _shares(summed, [p[k]["eager_ms"] for k in keys])
        report["eager_op_sums"][d.name] = shares
        print(f"{d.name}: per-operator eager costs summed, no fit: {shares}")
    if out:
        out.write_text(json.dumps(report, indent=1))


def _key(entry: dict[str, Any]) -> str:
    return f"{entry['model']}|{entry['input_shape']}"


def _shares(predicted: list[float], measured: list[float]) -> dict[str, float]:
    """The board fit's shares within ±10/25/50 % (``explorer.board_fit``) and Spearman's rho."""
    import numpy as np
    from scipy.stats import spearmanr

    from explorer.board_fit import _shares as within

    shares = within(np.array(predicted) / np.array(measured) - 1)
    shares["spearman"] = float(spearmanr(predicted, measured).statistic)
    return {k: round(v, 3) for k, v in shares.items()}


def _write_table(path: Path, target: str, values: dict[str, float], source: Path) -> None:
    """``values`` (ms by network) as a measurement table for ``h200:TARGET``."""
    with (source / "measurements.csv").open(newline="") as f:
        first = next(csv.DictReader(f))  # the pass's source wording
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MEASUREMENT_COLUMNS)
        writer.writeheader()
        for key, ms in values.items():
            model, shape = key.split("|")
            writer.writerow(first | {"board": "h200", "target": target, "model": model,
                                       "input_shape": shape, "latency_ms": f"{ms:.5g}",
                                       "statistic": "median over the passes"})  # fmt: skip


def _fit_table(table: Path, device: str, name: str) -> dict[str, Any]:
    from explorer.board_fit import calibrate_from_table, roofline_errors, summarise

    _, result = calibrate_from_table(table, device)
    cal = result.target.calibration.to_dict()
    cal.pop("source", None)
    lomo, roof = summarise(result.rows), roofline_errors(result.rows)
    print(f"{name} ({device}): leave-one-model-out {lomo}; uncalibrated roofline {roof}")
    print(f"  fitted: {cal}")
    worst = sorted(result.rows, key=lambda r: -abs(r.error))[:5]
    print("  worst: " + ", ".join(f"{r.model[:24]} {r.error:+.0%}" for r in worst))
    return {"leave_one_model_out": lomo, "roofline": roof, "calibration": cal,
            "rows": [r.to_dict() for r in result.rows]}  # fmt: skip


def _profiles(keys: list[str]) -> dict[str, Any]:
    from explorer import profile_model
    from explorer.models import resolve_model

    out = {}
    for key in keys:
        model, shape = key.split("|")
        shape_t = tuple(int(s) for s in shape.split("x")) if shape else None
        resolved = resolve_model(model, input_shape=shape_t)
        out[key] = profile_model(resolved.model, resolved.example_inputs)
    return out


# The micro-benchmark (device.json's eager_op_cost) that stands for each operator class.
_OP_COST = {
    "conv": "conv1x1", "conv3x3": "conv3x3", "dwconv": "dwconv3x3", "gconv": "conv1x1",
    "norm": "batchnorm2d", "activation": "relu", "activation_math": "sigmoid",
    "activation_gelu": "gelu", "activation_slow": "sigmoid", "elementwise": "add",
    "memory": "cat", "reduction": "adaptive_avgpool", "pool": "maxpool", "linear": "linear",
    "matmul": "matmul", "rnn": "gru (1 layer, 32 steps)", "attention": "multihead attention",
}  # fmt: skip


def _op_cost_sum(profile: Any, costs: dict[str, dict[str, float]]) -> float:
    """Milliseconds of a network priced as the sum of its operators' eager host costs."""
    from explorer.prediction import calibration_class

    us = sum(costs[_OP_COST.get(calibration_class(op), "add")]["host_us"] for op in profile.ops)
    return us / 1e3


def score(profile_path: Path, directories: list[Path], out: Path | None) -> None:
    """How well a profile from ``explorer calibrate --backend torch --torch-device cuda``
    predicts the eager times measured in ``directories`` (each network's median over them)."""
    import device_profiles
    from explorer.prediction import predict_latency

    device = device_profiles.load_file(profile_path)
    passes = [
        {_key(e): e for e in json.loads((d / "kernels.json").read_text())} for d in directories
    ]
    keys = [k for k in passes[0] if all(k in p for p in passes)]
    measured = [statistics.median(p[k]["eager_ms"] for p in passes) for k in keys]
    profiles = _profiles(keys)
    predicted = [predict_latency(profiles[k], device).ms for k in keys]
    report: dict[str, Any] = {
        "profile": str(profile_path), "passes": [str(d) for d in directories],
        "networks": len(keys), "all": _shares(predicted, measured), "by_group": {},
        "rows": [{"model": k, "measured_ms": m, "predicted_ms": p}
                 for k, m, p in zip(keys, measured, predicted, strict=True)],
    }  # fmt: skip
    print(f"{profile_path.name} on {len(keys)} networks: {report['all']}")
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        model = key.split("|")[0]
        group = model.split(":")[0] if ":" in model and "zoo" not in model else "presets"
        groups.setdefault("standard CNNs" if "zoo" in model else group, []).append(i)
    for group, idx in groups.items():
        shares = _shares([predicted[i] for i in idx], [measured[i] for i in idx])
        report["by_group"][group] = shares | {"n": len(idx)}
        print(f"  {group:14s} n={len(idx):3d} {shares}")
    worst = sorted(report["rows"], key=lambda r: -abs(r["predicted_ms"] / r["measured_ms"] - 1))
    print("  worst: " + ", ".join(
        f"{r['model'][:28]} {r['predicted_ms'] / r['measured_ms'] - 1:+.0%}" for r in worst[:6]
    ))  # fmt: skip
    if out:
        out.write_text(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time the networks on this CUDA machine")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--per-family", type=int, default=10, help="seeded networks per family")
    m.add_argument("--runs", type=int, default=100, help="timed runs per network")
    m.add_argument("--device", default="h200:gpu-fp32-torch", help="KEY:TARGET the rows are for")
    m.add_argument("--reverse", action="store_true", help="last network first (order effects)")
    m.add_argument("--bench-only", action="store_true", help="no profiler, no CUDA graph")
    f = sub.add_parser("fit", help="fit the targets to measure runs and report their errors")
    f.add_argument("dirs", type=Path, nargs="+", help="one or more measure --out folders")
    f.add_argument("--out", type=Path, help="also write the report as JSON")
    c = sub.add_parser("score", help="score a calibrated eager-CUDA profile on measure runs")
    c.add_argument("profile", type=Path, help="explorer calibrate --backend torch's .toml")
    c.add_argument("dirs", type=Path, nargs="+", help="one or more measure --out folders")
    c.add_argument("--out", type=Path, help="also write the report as JSON")
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.out, args.per_family, args.runs, device=args.device,
                reverse=args.reverse, bench_only=args.bench_only)  # fmt: skip
    elif args.command == "score":
        score(args.profile, args.dirs, args.out)
    else:
        fit(args.dirs, args.out)


if __name__ == "__main__":
    main()
