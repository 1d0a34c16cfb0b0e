"""Sampling kernels for the learned latency model: what ``explorer calibrate`` measures.

Within a time budget, networks are drawn in turns from six sources: the operator suite of
the roofline calibration (one operator class each), random single convolutions (dense,
depthwise, grouped, 1-D; sizes from 1 px to 112 px, square or not, strides and fused
activations drawn at random), random small CNNs of common blocks (inverted residuals with
squeeze-excitation, basic residual blocks, fire and channel-shuffle blocks), seeded samples of
every search-space family (seeds from 1000, disjoint from the benchmark's; four turns in
thirteen, the most of any source), and random single operators of the other kinds networks
run (elementwise math such as Softplus and Tanh, GRU/LSTM, linear layers, attention, layer
norms, reductions over any axis, broadcast gates, transposes, pools) at 1 K to 2 M elements,
so every regressor interpolates, and stacks of weight-heavy layers (up to 80 MB of weights,
as in the deep stages of standard CNNs) whose weights stream from memory (one turn in
thirteen). Each is exported, described as ONNX Runtime
optimises it, profiled node by node with the runtime's profiler, and timed whole without
the profiler. A fixed reference network is read every few milliseconds in between, and each
run of a sample is divided by the reading before it (``_paced``), so neither a slow spell of a
shared machine nor its jumps from one moment to the next become part of the model.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._kernels import (
    KernelGraph,
    KernelNode,
    _ort_options,
    describe_optimised,
    profiled_shapes,
)
from ._learned import _MIN_NETWORK_NODES
from ._timing import paused_gc, runs_to_fill

__all__ = [
    "KernelSample",
    "measure_kernels",
    "profile_nodes",
    "random_cnn",
    "random_heavy",
    "random_op",
    "sample_sources",
    "speed_scatter",
]

_ACTS: tuple[Callable[[], nn.Module] | None, ...] = (
    None,
    nn.ReLU,
    nn.ReLU6,
    nn.Sigmoid,
    nn.Hardswish,
    nn.SiLU,
    lambda: nn.LeakyReLU(0.1),
    nn.Tanh,
)


@dataclass(frozen=True, kw_only=True)
class KernelSample:
    """One measured network: its optimised graph, node times and whole-inference time."""

    name: str
    graph: KernelGraph
    nodes: tuple[tuple[KernelNode, float], ...]  # (node, typical profiled µs)
    measured_ms: float  # median of one inference without the profiler
    module: nn.Module | None = None
    inputs: tuple[torch.Tensor, ...] = ()
    slowdown: float = 1.0  # how slow the machine ran when measured (against ``collect``'s median)
    reference_ms: float = 0.0  # the reference network's median reading while measuring (paced)


def _feed(session: Any) -> dict[str, np.ndarray]:
    feed = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        if "int64" in i.type:
            feed[i.name] = np.zeros(shape, np.int64)
        else:
            feed[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return feed


def _reorder_node(event: dict[str, Any], network_bytes: float) -> KernelNode:
    args = event["args"]
    ins = tuple(tuple(next(iter(d.values()))) for d in args.get("input_type_shape", []))
    outs = tuple(tuple(next(iter(d.values()))) for d in args.get("output_type_shape", []))
    elems = sum(math.prod(s) for s in (*ins, *outs))
    return KernelNode(
        name=event["name"],
        op=f"nchwc:{args.get('op_name', 'Reorder')}",
        kind="reorder",
        inputs=ins,
        outputs=outs,
        channels_in=ins[0][1] if ins and len(ins[0]) > 1 else 0,
        channels_out=outs[0][1] if outs and len(outs[0]) > 1 else 0,
        flops=float(sum(math.prod(s) for s in outs)),
        bytes=4.0 * elems,
        network_bytes=network_bytes,
    )


def profile_nodes(
    path: Path,
    *,
    level: str,
    target_s: float,
    threads: int = 1,
    tmp: Path,
    pace: _Probe,
) -> tuple[KernelGraph, list[tuple[KernelNode, float]]]:
    """Let ONNX Runtime optimise the model at ``path`` and run it under its profiler for about
    ``target_s`` seconds (5 to 60 runs after two untimed ones), paced (``_paced``). Returns
    its optimised graph (``describe_optimised``: the first run's profile gives the shapes)
    and (node, typical time) pairs, each run's node times divided by the reference network's
    reading before that run: in reference runs, not µs.

    One session serves both: the description costs no session and no run of its own.
    Nodes join the profile by name; reorder nodes, which the runtime renames between its saved
    graph and its profile, are described from the profile's own shapes instead.
    """
    import onnxruntime as ort

    opts = _ort_options(level, threads)
    opts.optimized_model_filepath = str(tmp / "opt.onnx")
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / "nodes")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = _feed(session)
    session.run(None, feed)  # allocates: untimed, and its profile gives the shapes
    start = time.perf_counter()
    session.run(None, feed)
    runs = runs_to_fill(time.perf_counter() - start, target_s=target_s, lo=5, hi=60)
    refs = [ref for _ms, ref in _paced(lambda: session.run(None, feed), runs, pace)]
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    calls = runs + 2
    inputs = {name: value.shape for name, value in feed.items()}
    shapes = profiled_shapes(events, inputs, runs=calls)
    graph = describe_optimised(path, tmp / "opt.onnx", shapes, level=level)
    times: dict[str, list[float]] = {}
    first: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"].removesuffix("_kernel_time")
            times.setdefault(name, []).append(float(e["dur"]))
            first.setdefault(name, e)
    by_name = {n.name: n for n in graph.nodes if n.kind != "reorder"}
    network_bytes = graph.network_bytes
    out = []
    for name, durations in times.items():
        if len(durations) != calls:  # a name shared by several nodes: ambiguous
            continue
        # The mean of the middle half of the timed runs: the profiler reads whole µs, so a
        # minimum is biased low by a µs on small nodes (and lower, the more runs), and on a
        # shared machine a node descheduled mid-run reads many times its cost (the tails).
        timed = [d / ref for d, ref in zip(durations[2:], refs, strict=True) if ref > 0]
        middle = sorted(timed)
        quarter = len(middle) // 4
        middle = middle[quarter : len(middle) - quarter]
        typical = sum(middle) / len(middle)
        if first[name]["args"].get("op_name") in ("ReorderInput", "ReorderOutput"):
            out.append((_reorder_node(first[name], network_bytes), typical))
        elif name in by_name:
            out.append((by_name[name], typical))
    return graph, out


def time_whole(
    path: Path,
    *,
    level: str,
    target_s: float,
    threads: int = 1,
    pace: _Probe,
) -> float:
    """One inference without the profiler: the median of each run's thread-CPU time over the
    reference network's reading before it (``_paced``), in reference runs. Three untimed runs
    after the first warm a network under ``_REWARM_BELOW_MS``; a slower one is warm after its
    first (and re-warms within its first run after every reading)."""
    import onnxruntime as ort

    opts = _ort_options(level, threads)
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = _feed(session)

    def fn() -> object:
        return session.run(None, feed)

    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    runs = runs_to_fill(once, target_s=target_s, lo=5, hi=200)
    for _ in range(3 if once * 1e3 < _REWARM_BELOW_MS else 0):
        fn()
    return statistics.median(ms / ref for ms, ref in _paced(fn, runs, pace) if ref > 0)


def measure_kernels(
    name: str,
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    level: str = "all",
    threads: int = 1,
    target_s: float = 0.2,
    keep_module: bool = False,
    pace: _Probe,
) -> KernelSample:
    """Export ``module``, describe its optimised graph, profile its nodes and time it whole.

    Each run is divided by a reading of the reference network ``pace`` taken just before it,
    and the sample's times are given at the median speed of its own readings
    (``KernelSample.reference_ms``): a speed change between two runs is divided out.
    """
    from explorer.export import export_onnx

    first = len(pace.paced)
    with tempfile.TemporaryDirectory(prefix="explorer-kcal-") as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(module.eval(), tuple(inputs), path, check=False)
        graph, nodes = profile_nodes(
            path, level=level, target_s=target_s / 2, threads=threads, tmp=Path(tmp), pace=pace
        )
        # a network of a few nodes: its whole time only feeds the roofline fit (the learned
        # model's per-inference terms are fitted on larger ones), so it is timed for less
        whole_s = target_s / 2 if len(graph.nodes) >= _MIN_NETWORK_NODES else target_s / 8
        runs_whole = time_whole(path, level=level, target_s=whole_s, threads=threads, pace=pace)
    reference_ms = statistics.median(pace.paced[first:])  # from reference runs to ms
    return KernelSample(
        name=name,
        graph=graph,
        nodes=tuple((node, runs_node * reference_ms) for node, runs_node in nodes),
        measured_ms=runs_whole * reference_ms,
        module=module if keep_module else None,
        inputs=tuple(inputs) if keep_module else (),
        reference_ms=reference_ms,
    )


# --- sources -----------------------------------------------------------------------------


def _act(rng: np.random.Generator) -> list[nn.Module]:
    make = _ACTS[int(rng.integers(len(_ACTS)))]
    return [make()] if make else []


def _with_bn_act(conv: nn.Conv2d, rng: np.random.Generator) -> nn.Module:
    """``conv``, half the time a BatchNorm (ONNX Runtime folds it in), and a random activation."""
    layers: list[nn.Module] = [conv]
    if rng.random() < 0.5:
        layers.append(nn.BatchNorm2d(conv.out_channels))
    layers += _act(rng)
    return nn.Sequential(*layers).eval()


def _padding(rng: np.random.Generator, k: int, h: int, w: int) -> int:
    """'Same' padding three times in four, else none (where the map is at least the kernel):
    the runtime computes padded border positions one by one (``border_share``)."""
    return 0 if min(h, w) >= k and rng.random() < 0.25 else k // 2


def _random_conv(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    style = rng.choice(["dense", "dense", "depthwise", "grouped", "conv1d"])
    # 1-4 px: the last stages of deep networks (a 3x3 on 1x1 runs only its centre tap);
    # non-square maps: spectrograms and the permuted "images" of attention gates
    hw = int(rng.choice([1, 2, 4, 7, 14, 16, 28, 32, 56, 64, 112]))
    aspect = float(rng.choice([1, 1, 1, 4, 16, 64]))
    k = int(rng.choice([1, 3, 3, 5, 7]))
    stride = int(rng.choice([1, 1, 2]))
    channels = [1, 2, 3, 4, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128, 160, 256, 512]
    batch = int(rng.choice([1, 1, 1, 2, 4, 8, 15, 18]))
    cin = int(rng.choice(channels))
    if style == "conv1d":
        cout = int(rng.choice(channels))
        length = int(rng.choice([4, 13, 40, 64, 128, 256, 300]))
        conv: nn.Module = nn.Conv1d(cin, cout, k, stride, padding=k // 2)
        return f"conv1d_{cin}-{cout}_k{k}_{length}", conv, (batch, cin, length)
    if style == "depthwise":
        cout, groups = cin, cin
    elif style == "grouped":
        cin = max(2, cin)
        groups = cin
        cout = cin * int(rng.choice([2, 3]))
    else:
        cout, groups = int(rng.choice(channels)), 1
    h, w = max(1, int(hw * aspect**0.5)), max(1, int(hw / aspect**0.5))
    # keep each sample small: at most ~150 M multiply-adds
    while h * w > 1 and batch * cout * (h * w / stride**2) * (cin // groups) * k * k > 1.5e8:
        h, w = max(1, h // 2), max(1, w // 2)
    pad = _padding(rng, k, h, w)
    conv = nn.Conv2d(cin, cout, k, stride, padding=pad, groups=groups)
    return (
        f"{style}{k}x{k}_{cin}-{cout}_g{groups}_p{pad}_s{stride}_{batch}x{h}x{w}",
        _with_bn_act(conv, rng),
        (batch, cin, h, w),
    )


def random_stem(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    """A first convolution or a spatial-attention gate as the families run them: 1-4 input
    channels (an image, a spectrogram, pooled maps), 3-7 px kernels, frames as the batch, on
    square images or on long, narrow maps. ONNX Runtime runs these on NCHW input with a
    kernel of its own, whose speed the random convolutions sample too rarely to learn."""
    cin = int(rng.choice([1, 1, 2, 3, 3, 4]))
    cout = int(rng.choice([1, 8, 16, 16, 24, 32]))
    k = int(rng.choice([3, 3, 5, 7]))
    stride = int(rng.choice([1, 2]))
    batch = int(rng.choice([1, 2, 4, 6, 8, 12, 15, 18, 25]))
    if rng.random() < 0.6:
        h = w = int(rng.choice([32, 48, 64, 96, 112, 128, 160, 192, 224]))
    else:
        h = int(rng.choice([20, 40, 64, 128, 164, 224, 300, 452, 600, 1080]))
        w = int(rng.choice([4, 8, 16, 32, 64, 128, 301]))
    while batch > 1 and batch * cout * cin * k * k * h * w / stride**2 > 2e8:
        batch //= 2  # ~200 M multiply-adds at most
    pad = _padding(rng, k, h, w)
    return (
        f"stem{k}x{k}_{cin}-{cout}_p{pad}_s{stride}_{batch}x{h}x{w}",
        _with_bn_act(nn.Conv2d(cin, cout, k, stride, padding=pad), rng),
        (batch, cin, h, w),
    )


class _Permute(nn.Module):
    def __init__(self, perm: tuple[int, ...]) -> None:
        super().__init__()
        self.perm = perm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.perm).contiguous() * 1.5


class _Reduce(nn.Module):
    def __init__(self, dims: tuple[int, ...], how: str) -> None:
        super().__init__()
        self.dims, self.how = dims, how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "max":
            return x.amax(self.dims, keepdim=True)
        return x.mean(self.dims, keepdim=True)


class _Gate(nn.Module):
    """``x`` times a broadcast gate of another shape (squeeze-excitation, spatial attention)."""

    def __init__(self, dims: tuple[int, ...], op: str) -> None:
        super().__init__()
        self.dims, self.op = dims, op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.mean(self.dims, keepdim=True) if self.dims else x.flip(0)
        return x * g if self.op == "mul" else x + g


_MATH = (nn.Mish, nn.Softplus, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.Hardsigmoid,
         nn.Hardswish, nn.ELU, nn.ReLU, nn.LeakyReLU)  # fmt: skip


def _shape4(rng: np.random.Generator, elems: float) -> tuple[int, int, int, int]:
    """A (n, c, h, w) shape of about ``elems`` elements, in the proportions networks use."""
    n = int(rng.choice([1, 1, 2, 4, 8, 15]))
    c = int(rng.choice([1, 2, 3, 8, 16, 24, 32, 64, 96, 128, 256]))
    hw = max(1, elems / (n * c))
    h = max(1, round(math.sqrt(hw) * float(rng.choice([0.25, 1, 1, 4]))))
    w = max(1, round(hw / h))
    return n, c, h, w


# The input widths of the random GRUs and LSTMs: up to the 1,280 features a MobileNetV2 trunk
# hands the hybrid family's GRUs (they stopped at 576 until 2026-12, and such a GRU, 2 MB of
# weights, was priced 55-64 us against 44 us measured; 48-52 us since)
_RNN_INPUTS = (4, 8, 16, 32, 64, 128, 256, 512, 576, 1024, 1280)


def random_op(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    """One operator at random sizes (elementwise math, recurrent, dense, attention, norms,
    reductions, broadcasts, transposes, pools): the kernels networks run beside their
    convolutions, over the range of sizes the families reach (1 K to 2 M elements).

    Returns:
        (name starting with ``op_``, module, input shape).
    """
    name, module, shape = _random_op(rng)
    return f"op_{name}", module, shape


def _random_op(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    from ._calibrate import _Attention, _Rnn

    kind = str(rng.choice(["math", "math", "rnn", "dense", "attention", "norm", "reduce",
                           "gate", "permute", "pool"]))  # fmt: skip
    elems = float(2 ** rng.uniform(10, 21))
    if kind == "rnn":
        cls = nn.GRU if rng.random() < 0.7 else nn.LSTM
        seq, fin = int(rng.integers(2, 100)), int(rng.choice(_RNN_INPUTS))
        hid, bi = int(rng.choice([8, 16, 32, 64, 128, 192, 256])), bool(rng.random() < 0.3)
        name = f"{cls.__name__.lower()}_{seq}x{fin}-{hid}{'_bi' if bi else ''}"
        return name, _Rnn(cls(fin, hid, bidirectional=bi)), (seq, 1, fin)
    if kind == "dense":
        tokens = int(2 ** rng.uniform(0, 8))
        fin, fout = (int(2 ** rng.uniform(3, 10.5)) for _ in range(2))
        layers = [nn.Linear(fin, fout)] + ([nn.GELU()] if rng.random() < 0.3 else [])
        return f"linear_{tokens}x{fin}-{fout}", nn.Sequential(*layers), (1, tokens, fin)
    if kind == "attention":
        heads = int(rng.choice([1, 2, 4, 8]))
        dim = heads * int(rng.choice([8, 16, 32, 64]))
        tokens = int(2 ** rng.uniform(1, 7.5))
        return f"mha_{tokens}x{dim}_h{heads}", _Attention(dim, heads), (1, tokens, dim)
    if kind == "norm":
        d = int(rng.choice([32, 64, 128, 192, 256, 512]))
        t = max(1, int(elems / d))
        return f"layernorm_{t}x{d}", nn.LayerNorm(d), (1, t, d)
    shape = _shape4(rng, elems)
    label = "x".join(map(str, shape))
    if kind == "math":
        act = _MATH[int(rng.integers(len(_MATH)))]()
        return f"{type(act).__name__.lower()}_{label}", act, shape
    if kind == "reduce":
        dims = [(1,), (2,), (3,), (2, 3), (1,)][int(rng.integers(5))]
        how = "max" if rng.random() < 0.4 else "mean"
        return f"reduce{how}{''.join(map(str, dims))}_{label}", _Reduce(dims, how), shape
    if kind == "gate":
        dims = [(), (1,), (2, 3), (2,), (3,)][int(rng.integers(5))]
        op = "mul" if rng.random() < 0.7 else "add"
        return f"gate{op}{''.join(map(str, dims))}_{label}", _Gate(dims, op), shape
    if kind == "permute":
        perm = [(0, 2, 1, 3), (0, 1, 3, 2), (0, 2, 3, 1), (0, 3, 1, 2), (0, 3, 2, 1), (1, 0, 2, 3)]
        p = perm[int(rng.integers(len(perm)))]
        return f"permute{''.join(map(str, p))}_{label}", _Permute(p), shape
    k = int(rng.choice([2, 3]))
    pool = nn.MaxPool2d(k, 2) if rng.random() < 0.6 else nn.AvgPool2d(k, 2)
    n, c, h, w = shape
    return f"{type(pool).__name__.lower()}{k}_{label}", pool, (n, c, max(h, k), max(w, k))


class _SE(nn.Module):
    def __init__(self, c: int, hard: bool) -> None:
        super().__init__()
        mid = max(8, c // 4)
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(c, mid, 1),
            nn.ReLU(),
            nn.Conv2d(mid, c, 1),
            nn.Hardsigmoid() if hard else nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class _Block(nn.Module):
    def __init__(self, kind: str, cin: int, cout: int, stride: int, rng: np.random.Generator):
        super().__init__()
        act = nn.Hardswish if rng.random() < 0.3 else (nn.ReLU6 if rng.random() < 0.5 else nn.ReLU)
        k = int(rng.choice([3, 3, 5]))
        self.residual = stride == 1 and cin == cout and kind != "fire"
        self.shuffle = 0
        if kind == "mbconv":
            mid = cin * int(rng.choice([1, 3, 4, 6]))
            layers = (
                []
                if mid == cin
                else [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act()]
            )
            layers += [
                nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                nn.BatchNorm2d(mid),
                act(),
            ]
            if rng.random() < 0.4:
                layers.append(_SE(mid, hard=rng.random() < 0.5))
            layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        elif kind == "basic":
            layers = [
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
            ]  # fmt: skip
            self.residual = False
        elif kind == "shuffle":
            half = max(2, cout // 2)
            layers = [
                nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
                nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
                nn.Conv2d(half, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            ]  # fmt: skip
            self.shuffle = 2 if cout % 2 == 0 else 0
        else:  # fire
            sq = max(4, cin // 4)
            self.squeeze = nn.Sequential(nn.Conv2d(cin, sq, 1), nn.ReLU())
            self.e1 = nn.Sequential(nn.Conv2d(sq, cout // 2, 1), nn.ReLU())
            self.e3 = nn.Sequential(nn.Conv2d(sq, cout - cout // 2, 3, padding=1), nn.ReLU())
            self.pool = nn.MaxPool2d(2) if stride == 2 else nn.Identity()
            layers = []
        self.body = nn.Sequential(*layers)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "fire":
            s = self.squeeze(self.pool(x))
            return torch.cat([self.e1(s), self.e3(s)], 1)
        y = self.body(x)
        if self.shuffle:
            n, c, h, w = y.shape
            y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return y + x if self.residual else y


def random_cnn(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    """A small random CNN of common mobile blocks, at 64-160 px."""
    kind = str(rng.choice(["mbconv", "mbconv", "basic", "shuffle", "fire"]))
    size = int(rng.choice([64, 96, 112, 128, 160]))
    width = float(rng.choice([0.25, 0.35, 0.5, 0.75]))
    c = max(8, int(32 * width) // 8 * 8)
    layers: list[nn.Module] = [nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for stage in range(int(rng.integers(2, 5))):
        cout = max(8, int(c * float(rng.choice([1.0, 1.5, 2.0]))) // 8 * 8)
        for b in range(int(rng.integers(1, 3))):
            layers.append(_Block(kind, c, cout, 2 if b == 0 and stage > 0 else 1, rng))
            c = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 7)]
    return f"cnn_{kind}_w{width}_{size}", nn.Sequential(*layers).eval(), (1, 3, size, size)


def random_heavy(rng: np.random.Generator) -> tuple[str, nn.Module, tuple[int, ...]]:
    """A stack of weight-heavy layers, drawn for 4 to 80 MB of weights in all (2 to 16
    layers: a 1x1 stack of 128 channels stops at 16 layers, 1 MB): the deep stages and
    classifier heads of standard CNNs. Past the last-level cache the weights stream from
    memory on every inference, and each layer runs slower than it does alone."""
    style = str(rng.choice(["conv3", "conv3", "conv1", "linear"]))
    target = 2 ** rng.uniform(math.log2(4e6), math.log2(8e7))  # bytes of weights
    batch = int(rng.choice([1, 1, 2, 4]))
    if style == "linear":
        f = int(rng.choice([512, 1024, 1536, 2048]))
        depth = int(np.clip(round(target / (4 * f * f)), 2, 12))
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(f, f), nn.ReLU()]
        return f"heavy_linear{depth}x{f}_{batch}", nn.Sequential(*layers).eval(), (batch, f)
    c = int(rng.choice([128, 192, 256, 384, 512, 640]))
    k = 3 if style == "conv3" else 1
    hw = int(rng.choice([1, 2, 4, 7, 7, 14]))
    depth = int(np.clip(round(target / (4 * c * c * k * k)), 2, 16))
    while batch * hw * hw * c * c * k * k * depth > 3e8 and (hw > 1 or batch > 1):
        hw, batch = (max(1, hw // 2), batch) if hw > 1 else (hw, batch // 2)
    layers = []
    for _ in range(depth):
        layers += [nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    name = f"heavy_{style}x{depth}_{c}_{batch}x{hw}x{hw}"
    return name, nn.Sequential(*layers).eval(), (batch, c, hw, hw)


# The order the sources take turns in. Weight-heavy stacks are slow to time: one in thirteen.
# Fitted offline on one calibration, ResNet-18 at 112 px read 30 % under without them and
# 10 % under or better with 28-84 of them added (more did not help); 13 % under in the
# quiet run of benchmarks/latency_prediction.py with this order. Stems (one in eleven then,
# ~70 in a 5-minute calibration) added offline to four saved calibrations: 0.823 -> 0.842 of the
# benchmark's 65 networks within ±10 % (200 of them: 0.846).
# Family networks take four turns in thirteen (two in eleven until 2026-12): they teach the
# fits most. Refitted without them, two saved calibrations priced 0.63-0.65 of the benchmark's
# 65 networks within ±10 % (0.86-0.88 with them); without any one other source, on five,
# 0.81-0.85 on average (0.85 with all). Five-minute calibrations drawn from a 15-minute one
# at each source's measured cost on this 2-core VM (a family network 0.67 s, a random CNN
# 0.29 s, an operator 0.07 s), three draws at two budgets: 0.841 -> 0.862 within ±10 %,
# 0.861 -> 0.880 with each fit's median bias taken out.
_TURNS = (
    "suite", "conv", "cnn", "family", "op", "family", "suite",
    "heavy", "cnn", "family", "op", "stem", "family",
)  # fmt: skip
# The seeds family networks are drawn from: disjoint from the benchmark's (0-199), and room
# for long calibrations (a 15-minute one draws ~140 networks of each family, some seeds
# skipped as too large; seeds 1000-1199 until 2026-12)
_FAMILY_SEEDS = (1000, 2000)


def sample_sources(
    *, seed: int = 0, exclude_families: Sequence[str] = (), max_macs: float = 4e8
) -> Iterator[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """Calibration networks in turns from the sources (``_TURNS``), without end; once the
    operator suite is done, its turns go to random convolutions."""
    import search_spaces as ss

    from ._calibrate import _suite, network_name

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    suite = _suite()
    order = iter(rng.permutation(len(suite)).tolist())
    families = [f for f in ss.list_families() if f not in set(exclude_families)]
    family_seed = {f: _FAMILY_SEEDS[0] for f in families}
    family_turns = 0
    for i in itertools.count():
        turn = _TURNS[i % len(_TURNS)]
        if turn == "suite":
            index = next(order, None)
            if index is not None:
                name, module, shape = suite[index]
                yield name, module.eval(), (torch.randn(shape),)
                continue
            turn = "conv"
        if turn == "conv":
            name, module, shape = _random_conv(rng)
        elif turn == "cnn":
            name, module, shape = random_cnn(rng)
        elif turn == "op":
            name, module, shape = random_op(rng)
        elif turn == "heavy":
            name, module, shape = random_heavy(rng)
        elif turn == "stem":
            name, module, shape = random_stem(rng)
        else:
            if not families:
                continue
            family = families[family_turns % len(families)]
            family_turns += 1
            while family_seed[family] < _FAMILY_SEEDS[1]:
                s = family_seed[family]
                family_seed[family] += 1
                model = ss.build(ss.sample(family, seed=s)).eval()
                inputs = ss.example_inputs(model)
                if _rough_macs(model, inputs) <= max_macs:
                    yield network_name(family, s), model, inputs
                    break
            continue
        yield name, module.eval(), (torch.randn(shape),)


def _rough_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """Multiply-adds of the convolutions and linear layers, from one forward pass with hooks
    (much cheaper than a full profile)."""
    total = 0.0

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            if isinstance(mod, nn.Conv1d | nn.Conv2d | nn.Conv3d):
                per = mod.weight[0].numel()
                total += out.numel() * per
            elif isinstance(mod, nn.Linear):
                total += out.numel() * mod.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear)
    ]
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


# --- the machine's speed ----------------------------------------------------------------

# A shared machine's speed wanders: over minutes (on a 2-core Intel VM the first half of one
# 5-minute calibration ran 7-11 % slower than the same networks ten minutes later) and from
# one moment to the next (on a 2-core AMD EPYC VM consecutive runs of one network switched
# between two speeds ~30 % apart every 10-20 ms). Every run of a sample is therefore paced
# (``_paced``): divided by a reading of a fixed reference network taken a few ms before it,
# and the sample given at the median speed of the whole calibration. Both sides of a reading
# are re-warmed, measured on a 2-core Intel VM: the reference read after one untimed run
# following a 5-24 ms network was 25-30 % slow, after two within 2-5 % of its steady time for
# most networks but still 21 % slow after ishtiaq#10 (14 % after three, 6 % after four);
# a 0.3-ms network's first run after the reference read +24 %, its second +3 %, its third 0.
_PACE_EVERY_MS = 10.0  # ms of a sample's runs between two readings of the reference network
_REWARM_RUNS = 2  # untimed runs of a network under 5 ms after each reading of the reference
_REFERENCE_REWARM_RUNS = 4  # untimed runs of the reference before it is read
_REWARM_BELOW_MS = 5.0  # a network this slow re-warms in its first run: its runs all timed
_PROBE_EVERY_S = 4.0  # seconds between two longer readings (``speed_scatter``, the meta data)
_PROBE_RUNS = 15


def reference_network() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The fixed small CNN (strided, depthwise and pointwise convolutions, a pool, a linear
    layer; 13 M multiply-adds, 1.2 MB of activations: ~0.3 ms on one core) timed between
    samples to follow the machine's speed."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 24, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(24, 24, 3, padding=1, groups=24),
        nn.ReLU(),
        nn.Conv2d(24, 48, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, 8),
    )
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    return model.eval(), (torch.randn(1, 3, 160, 160, generator=gen),)


class _Probe:
    """The reference network in one ONNX Runtime session. ``take()`` records (when, median
    thread-CPU ms of a few runs) in ``readings``; ``once()`` reads it warm, in one run, and
    records the ms in ``paced``."""

    def __init__(self, tmp: Path, *, level: str, threads: int) -> None:
        import onnxruntime as ort

        from explorer.export import export_onnx

        path = tmp / "reference.onnx"
        module, inputs = reference_network()
        export_onnx(module, inputs, path, check=False)
        self._session = ort.InferenceSession(
            str(path), _ort_options(level, threads), providers=["CPUExecutionProvider"]
        )
        self._feed = _feed(self._session)
        for _ in range(5):
            self._session.run(None, self._feed)
        self.readings: list[tuple[float, float]] = []
        self.paced: list[float] = []

    def take(self) -> None:
        from ._timing import time_runs

        ms = time_runs(
            lambda: self._session.run(None, self._feed), runs=_PROBE_RUNS, warmup=1, clock="cpu"
        )
        self.readings.append((time.perf_counter(), statistics.median(ms)))

    def once(self) -> float:
        """The reference's thread-CPU ms in one run after ``_REFERENCE_REWARM_RUNS`` untimed
        ones (right after a sample its first runs find its data out of cache: after two, the
        reading still depended on the sample before it, by up to 21 points; after four, 10)."""
        for _ in range(_REFERENCE_REWARM_RUNS):
            self._session.run(None, self._feed)
        start = time.thread_time_ns()
        self._session.run(None, self._feed)
        ms = (time.thread_time_ns() - start) / 1e6
        self.paced.append(ms)
        return ms


def _paced(run: Callable[[], object], calls: int, probe: _Probe) -> list[tuple[float, float]]:
    """Call ``run`` ``calls`` times, reading the reference network (``probe.once()``) before
    the first call and again whenever ``_PACE_EVERY_MS`` of calls have passed since the last
    reading. For every call: (its thread-CPU ms, the reading it is to be divided by); the
    reading is 0.0 for a call that only re-warmed the network's caches after a reading (the
    first ``_REWARM_RUNS`` after each, for a network under ``_REWARM_BELOW_MS``; the last
    call is always timed). The garbage collector is paused meanwhile."""
    out: list[tuple[float, float]] = []
    since, reading, rewarm = math.inf, 0.0, 0
    with paused_gc():
        while len(out) < calls:
            if since >= _PACE_EVERY_MS:
                reading, since, rewarm = probe.once(), 0.0, _REWARM_RUNS
            start = time.thread_time_ns()
            run()
            ms = (time.thread_time_ns() - start) / 1e6
            since += ms
            if rewarm and ms < _REWARM_BELOW_MS and len(out) + 1 < calls:
                out.append((ms, 0.0))
                rewarm -= 1
            else:
                out.append((ms, reading))
                rewarm = 0
    return out


def _running_median(ms: Sequence[float]) -> np.ndarray:
    """Each value replaced by the median of itself and its two neighbours (ends repeated)."""
    ms = np.asarray(ms, dtype=float)
    padded = np.concatenate([ms[:1], ms, ms[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def speed_scatter(readings: Sequence[tuple[float, float]]) -> float:
    """How far the machine's speed jumps between readings seconds apart: the 90th percentile
    of each reading's distance from the running median of it and its neighbours (0.05: 5 %).

    The calibration's own runs are paced (``_paced``); a later measurement is not, and is
    timed at a speed that scatters this much. On a shared
    2-core AMD EPYC VM whose host was busy it was 12 % while calibrating, and a prediction
    cannot be checked closer than that there. 0 with fewer than three readings.
    """
    if len(readings) < 3:
        return 0.0
    ms = np.array([r[1] for r in readings])
    return float(np.percentile(np.abs(ms / _running_median(ms) - 1), 90))


def _divide_out(sample: KernelSample, slowdown: float) -> KernelSample:
    return replace(
        sample,
        nodes=tuple((node, us / slowdown) for node, us in sample.nodes),
        measured_ms=sample.measured_ms / slowdown,
        slowdown=slowdown,
    )


def collect(
    *,
    budget_s: float,
    level: str = "all",
    threads: int = 1,
    exclude_families: Sequence[str] = (),
    seed: int = 0,
    progress: Callable[[float, str], None] = lambda _f, _m: None,
    keep_small_modules: bool = False,
    reserve: Callable[[int, float], float] = lambda _nodes, _ms: 0.0,
) -> tuple[list[KernelSample], list[tuple[float, float]]]:
    """Measure calibration networks until ``budget_s`` seconds have passed, every run paced by
    the reference network (``_paced``), every sample given at the median speed of all the
    readings (its own median reading over that is kept as ``KernelSample.slowdown``). Returns
    the samples and the reference network's longer readings every few seconds, (time, ms)
    pairs (``speed_scatter``).

    ``reserve(nodes, reference_ms)`` is the time to keep back for what follows (the fits) once
    ``nodes`` nodes are sampled on a machine that runs the reference network in
    ``reference_ms``: no network is started that could end inside it (the longest one so far
    taken as the next one's time).

    ``keep_small_modules`` keeps the modules of the suite's and the random convolutions'
    samples (not of family networks, random CNNs or random operators) in the returned
    samples, for the roofline fit.
    """
    from ._calibrate import family_of

    start = time.perf_counter()
    samples: list[KernelSample] = []
    with tempfile.TemporaryDirectory(prefix="explorer-probe-") as tmp:
        probe = _Probe(Path(tmp), level=level, threads=threads)
        probe.take()
        sources = sample_sources(seed=seed, exclude_families=exclude_families)
        nodes, longest, held = 0, 0.0, 0.0

        def spent() -> float:  # the share of the sampling time (budget less reserve) spent
            return min(1.0, (time.perf_counter() - start) / max(budget_s - held, 1e-9))

        for name, module, inputs in sources:
            began = time.perf_counter()
            elapsed = began - start
            held = reserve(nodes, statistics.median(ms for _, ms in probe.readings))
            if elapsed + longest + held >= budget_s:
                break
            if time.perf_counter() - probe.readings[-1][0] >= _PROBE_EVERY_S:
                probe.take()
            try:
                whole_network = family_of(name) is not None or name.startswith(
                    ("cnn_", "op_", "heavy_")
                )
                small = keep_small_modules and not whole_network
                samples.append(
                    measure_kernels(
                        name,
                        module,
                        inputs,
                        level=level,
                        threads=threads,
                        keep_module=small,
                        pace=probe,
                    )
                )
            except Exception as exc:  # an exporter or runtime failure skips one network
                progress(spent(), f"skipped {name}: {type(exc).__name__}")
                continue
            nodes += len(samples[-1].nodes)
            longest = max(longest, time.perf_counter() - began)
            progress(spent(), name)
        probe.take()
    typical = statistics.median(probe.paced) if probe.paced else 1.0
    normalised = [_divide_out(s, s.reference_ms / typical) for s in samples]
    return normalised, probe.readings
