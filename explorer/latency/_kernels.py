"""The kernels ONNX Runtime really runs: nodes of its optimised graph, described by size.

A model is exported to ONNX and handed to ONNX Runtime (CPU, one thread) with all graph
optimisations; the optimised graph it saves shows what runs: convolutions with their
activation fused (``FusedConv``, or ``Conv`` of the ``com.microsoft.nchwc`` domain with an
``activation`` attribute), channel-blocked (NCHWc) layouts padded to the SIMD block, the
``ReorderInput``/``ReorderOutput`` nodes those layouts insert, fused GEMMs and so on. Each node
becomes a ``KernelNode``: its kind (what decides which kernel runs), shapes, channels, groups,
kernel size, stride, bytes and FLOPs, and the bytes its whole network moves. Shapes come from
the runtime's own profile of one run, else ONNX shape inference with rules for the runtime's
own operators (which ONNX does not know).

    >>> graph = describe(model, inputs)
    >>> [n.kind for n in graph.nodes]
    ['nchwc_conv', 'nchwc_dwconv', 'reorder', 'pool', 'matmul']
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KernelGraph", "KernelNode", "describe", "describe_onnx", "nchwc_block", "optimise"]

_NCHWC = "com.microsoft.nchwc"
_MS = "com.microsoft"
_CONV_OPS = frozenset({"Conv", "FusedConv"})
_DENSE_OPS = frozenset({"Gemm", "FusedGemm", "MatMul", "FusedMatMul"})
_POOL_OPS = frozenset(
    {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"}
)
_REDUCE_OPS = frozenset(
    {"ReduceMean", "ReduceMax", "ReduceSum", "ReduceMin", "ReduceL2", "ReduceProd"}
)
_MOVE_OPS = frozenset(
    {"Transpose", "Concat", "Slice", "Split", "Gather", "Pad", "Expand", "Tile", "Resize"}
)
# Views: ONNX Runtime runs these without touching the data (or with a memcpy at most).
_VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape"})
_RNN_OPS = frozenset({"GRU", "LSTM", "RNN"})
# Elementwise operators whose cost per element is several times a ReLU's (exp, erf, tanh).
_MATH_OPS = frozenset(
    {"Sigmoid", "Tanh", "Exp", "Log", "Erf", "Softplus", "Gelu", "FastGelu", "BiasGelu",
     "QuickGelu", "HardSwish", "HardSigmoid", "Elu", "Selu", "Mish", "Softsign", "Sqrt",
     "Pow", "Reciprocal"}
)  # fmt: skip
# What a fused activation adds to its convolution or matrix product (MLAS, ONNX Runtime's
# kernels): Relu is applied in the kernel's own output loop, any other in a second pass over
# the output, cheap when it is piecewise linear, dear when it evaluates a polynomial per
# element (sigmoid, tanh). 3x3 convolutions of 3 channels into 16 ran at 70-77 GFLOP/s with a
# fused Clip or LeakyRelu and at 93-103 with a Relu or none (2-core x86 VM): two flags (any
# activation, a transcendental one) could not tell a Relu from a Clip.
_PIECEWISE_LINEAR = frozenset({"LeakyRelu", "Clip", "HardSigmoid", "HardSwish"})


def activation_cost(activation: str) -> float:
    """0: none, 1: Relu (in the kernel), 2: a piecewise-linear pass, 3: a transcendental pass."""
    if not activation:
        return 0.0
    if activation == "Relu":
        return 1.0
    return 2.0 if activation in _PIECEWISE_LINEAR else 3.0


# Kinds whose nodes are also told apart by operator (``math:Softplus``); a regressor of the
# operator is used where the calibration saw it often enough, else the kind's.
_BY_OP = frozenset({"math", "elementwise", "reduce", "move", "norm", "softmax", "view"})


def broadcast_spans(inputs: Sequence[tuple[int, ...]], out: tuple[int, ...]) -> int:
    """The number of contiguous runs an elementwise operator walks its output in: the output's
    innermost axes over which every input either moves with the output or stays put, merged
    into one run (1 when nothing broadcasts, or only a one-element input).

    ONNX Runtime's broadcaster loops over these runs: ``(2, 32, 32, 32) x (2, 1, 32, 32)``
    is 64 runs of 1024, ``(2, 32, 32, 32) x (2, 32, 32, 1)`` 2048 runs of 32 and, with the
    same FLOPs and bytes, two to four times slower on one x86 core. Inputs that do not
    broadcast to ``out`` (a convolution's weights, a concatenation's parts) make it 1.
    """
    rank = len(out)
    shapes = [tuple(s) for s in inputs if math.prod(s) > 1]
    if len(shapes) < 2 or rank == 0 or any(len(s) > rank for s in shapes):
        return 1
    padded = [(1,) * (rank - len(s)) + s for s in shapes]
    if any(s[d] not in (1, out[d]) for s in padded for d in range(rank)):
        return 1
    axes = [d for d in range(rank) if out[d] > 1]
    flags = [tuple(s[d] == 1 for s in padded) for d in axes]
    span = 1
    for d, f in zip(reversed(axes), reversed(flags), strict=True):
        if f != flags[-1]:
            break
        span *= out[d]
    return max(1, math.prod(out) // span)


def border_share(
    size_in: Sequence[int], size_out: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
) -> float:
    """The share of a convolution's or pool's output positions whose window reaches into
    the padding, from its spatial sizes (the padding inferred from them, split evenly; a
    dilated window is taken as undilated: no family uses one).

    ONNX Runtime's NCHWc kernels compute such positions one by one: a 3x3 convolution of 4 to
    16 channels on 55x55 maps took 1.9 ns an output pixel padded ('same') and 1.5 ns
    unpadded, with the same FLOPs give or take the 7 % of border pixels (one x86 core).
    """
    if not kernel or len(size_in) != len(kernel) or len(size_out) != len(kernel):
        return 0.0  # no window, or not a spatial map (a 2-D input's ``[2:]`` is empty)
    inner = 1.0
    for n, o, k, s in zip(size_in, size_out, kernel, stride or (1,) * len(kernel), strict=True):
        pad = max(0, (o - 1) * s + k - n)
        begin = pad // 2
        first = -(-begin // s)  # output positions starting in the leading padding
        last = max(0, o - 1 - (n - k + begin) // s)  # ending in the trailing padding
        inner *= max(0, o - first - last) / max(o, 1)
    return 1.0 - inner


def transpose_runs(shape: tuple[int, ...], perm: Sequence[int]) -> int:
    """The number of contiguous runs a transpose of ``shape`` by ``perm`` copies: 1 when,
    its one-long axes dropped and its axes that stay neighbours merged, it moves nothing (a
    reshape); the input's elements over the innermost merged axis when that axis stays
    innermost; else every element alone (a strided gather: per element, several times a
    copy's cost).
    """
    kept = [i for i in range(len(shape)) if shape[i] > 1]
    order = [p for p in perm if p < len(shape) and shape[p] > 1]
    if len(order) != len(kept):
        return 1
    runs: list[list[int]] = []  # output axes merged where they are neighbours in the input
    for axis in order:
        if runs and kept.index(axis) == kept.index(runs[-1][-1]) + 1:
            runs[-1].append(axis)
        else:
            runs.append([axis])
    if len(runs) <= 1:
        return 1
    elems = math.prod(shape)
    last = runs[-1]
    return elems // math.prod(shape[a] for a in last) if last[-1] == kept[-1] else elems


def _single_axis_move(perm: Sequence[int]) -> tuple[int, int] | None:
    """(from, to) when ``perm`` moves one axis and keeps the others in order, else None;
    checked as the runtime does: at the first axis out of place, that axis moved outwards
    first, then the axis whose place it took moved inwards."""
    for i, axis in enumerate(perm):
        if axis == i:
            continue
        for moved in (axis, i):
            rest = [a for a in perm if a != moved]
            if rest == sorted(rest):
                return moved, list(perm).index(moved)
        return None
    return None


def transpose_path(shape: tuple[int, ...], perm: Sequence[int], element_bytes: int = 4) -> int:
    """Which of ONNX Runtime's CPU transpose routines copies ``shape`` by ``perm``, from the
    cheapest per element to the dearest (it decides by the full shape, one-long axes kept):

    0. a reshape: the axes longer than one stay in order, one copy;
    1. one axis moved, 4-byte blocks: MLAS's vectorised 2-D transpose;
    2. one axis moved, 8-byte blocks: a plain loop of 8-byte moves;
    3. one axis moved, larger blocks: a strided copy or a memcpy per block;
    4. any other permutation whose innermost axes stay put: a memcpy per block of them;
    5. any other: element by element, a multi-index stepped per element.

    One x86 core, fp32: a (2, 1080, 4, 2) -> (0, 3, 2, 1) transpose took ~10 ns an element
    (path 5), a (1, 16, 112, 112) -> (0, 1, 3, 2) one ~0.6 ns (path 1), a (15, 648, 2, 4) ->
    (0, 2, 1, 3) one ~6 ns (path 3, 16-byte blocks), a (23, 576, 2, 2) one ~1 ns (path 2).
    """
    rank = len(shape)
    if rank == 0 or sorted(perm) != list(range(rank)):
        return 0
    moved = [p for p in perm if shape[p] > 1]
    if moved == sorted(moved):
        return 0
    single = _single_axis_move(perm)
    if single is not None:
        src, dst = single
        block = math.prod(shape[src + 1 :]) if src > dst else math.prod(shape[dst + 1 :])
        size = block * element_bytes
        return 1 if size == 4 else 2 if size == 8 else 3
    suffix = 1
    for i in reversed(range(rank)):
        if perm[i] != i:
            break
        suffix *= shape[i]
    return 4 if suffix > 1 else 5


@dataclass(frozen=True, kw_only=True)
class KernelNode:
    """One node of ONNX Runtime's optimised graph, by what decides its time.

    ``kind`` names the regressor that predicts it (``conv``, ``dwconv``, ``gconv``,
    ``nchwc_conv``, ``nchwc_dwconv``, ``nchwc_pool``, ``reorder``, ``matmul``, ``pool``,
    ``reduce``, ``norm``, ``rnn``, ``attention``, ``softmax``, ``move``, ``view``,
    ``elementwise``, ``math``; the last seven followed by ``:OP``, e.g. ``math:Softplus``);
    ``op`` is the runtime's operator (``domain:type`` for contributed ones) and
    ``activation`` what is fused into it.
    """

    name: str
    op: str
    kind: str
    activation: str = ""
    inputs: tuple[tuple[int, ...], ...] = ()
    outputs: tuple[tuple[int, ...], ...] = ()
    channels_in: int = 0
    channels_out: int = 0
    groups: int = 1
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    flops: float = 0.0
    bytes: float = 0.0  # activations read + written + weights read (fp32)
    weight_bytes: float = 0.0
    # the axis an operator works along (reduce, softmax, concat) or that a transpose makes
    # innermost: its length and the stride of its elements in the input (1: contiguous)
    axis_size: int = 1
    axis_inner: int = 1
    perm: tuple[int, ...] = ()  # a transpose's permutation
    # the bytes every node of its network reads and writes in one inference: how much of the
    # cache the others leave it (a node of a small network runs faster than the same node of
    # a large one)
    network_bytes: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict, compare=False)

    def features(self) -> dict[str, float]:
        """Numeric features of this node (raw sizes; the regressors take their logs)."""
        out_elems = float(sum(math.prod(s) for s in self.outputs)) if self.outputs else 0.0
        in_elems = float(sum(math.prod(s) for s in self.inputs)) if self.inputs else 0.0
        first = self.inputs[0] if self.inputs else ()
        out0 = self.outputs[0] if self.outputs else ()
        spatial_out = float(math.prod(out0[2:])) if len(out0) > 2 else 1.0
        return {
            "flops": self.flops,
            "bytes": self.bytes,
            "weight_bytes": self.weight_bytes,
            "in_elems": in_elems,
            "out_elems": out_elems,
            "batch": float(first[0]) if first else 1.0,
            "channels_in": float(self.channels_in or 1),
            "channels_out": float(self.channels_out or 1),
            "channels_per_group": float(max(1, (self.channels_in or 1) // max(self.groups, 1))),
            "groups": float(self.groups),
            "spatial_out": spatial_out,
            "kernel_area": float(math.prod(self.kernel)) if self.kernel else 1.0,
            "stride": float(max(self.stride)) if self.stride else 1.0,
            "n_inputs": float(len(self.inputs)),
            "rank": float(len(first)),
            "last_dim": float(first[-1]) if first else 1.0,
            "activation": activation_cost(self.activation),
            "broadcast": float(len({math.prod(s) for s in self.inputs}) > 1),
            "axis_size": float(self.axis_size),
            "axis_inner": float(self.axis_inner),
            "spans": float(
                transpose_runs(first, self.perm)
                if self.perm
                else broadcast_spans(self.inputs, out0)
            ),
            "border": border_share(first[2:], out0[2:], self.kernel, self.stride),
            "network_bytes": self.network_bytes,
            "transpose_path": float(transpose_path(first, self.perm)) if self.perm else 0.0,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (``from_dict`` rebuilds an equal node)."""
        return {
            "name": self.name,
            "op": self.op,
            "kind": self.kind,
            "activation": self.activation,
            "inputs": [list(s) for s in self.inputs],
            "outputs": [list(s) for s in self.outputs],
            "channels_in": self.channels_in,
            "channels_out": self.channels_out,
            "groups": self.groups,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "flops": self.flops,
            "bytes": self.bytes,
            "weight_bytes": self.weight_bytes,
            "axis_size": self.axis_size,
            "axis_inner": self.axis_inner,
            "perm": list(self.perm),
            "network_bytes": self.network_bytes,
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelNode:
        shapes = {
            k: tuple(tuple(int(v) for v in s) for s in d.get(k, ())) for k in ("inputs", "outputs")
        }
        ints = {k: tuple(int(v) for v in d.get(k, ())) for k in ("kernel", "stride", "perm")}
        rest = {k: v for k, v in d.items() if k not in (*shapes, *ints)}
        return cls(**rest, **shapes, **ints)


@dataclass(frozen=True, kw_only=True)
class KernelGraph:
    """The optimised graph of one model: its nodes in execution order."""

    nodes: tuple[KernelNode, ...]
    level: str  # "all" or "extended": the optimisation level the graph was made at
    block: int  # NCHWc channel block of this machine's runtime (0: no NCHWc layout)

    @property
    def network_bytes(self) -> float:
        """The bytes all its nodes read and write in one inference."""
        return sum(n.bytes for n in self.nodes)

    def kinds(self) -> dict[str, int]:
        """How many nodes of each kind."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.kind] = out.get(n.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``from_dict`` rebuilds an equal graph)."""
        return {
            "level": self.level,
            "block": self.block,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelGraph:
        nodes = tuple(KernelNode.from_dict(n) for n in d["nodes"])
        return cls(nodes=nodes, level=d["level"], block=int(d["block"]))


def _ort_options(level: str, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    opts.log_severity_level = 3
    return opts


def optimise(path: str | Path, out: str | Path, *, level: str = "all") -> None:
    """Let ONNX Runtime (CPU, one thread) optimise the model at ``path``; save it at ``out``."""
    import onnxruntime as ort

    opts = _ort_options(level)
    opts.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@functools.cache
def nchwc_block() -> int:
    """The channel block of this machine's NCHWc kernels (8 on AVX2, 16 on AVX-512; 0: none).

    Found by letting the runtime optimise a 1x1 convolution with 20 output channels and reading
    how far it padded the weights.
    """
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [20, 16, 1, 1], np.zeros(320, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 20, 8, 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory(prefix="explorer-nchwc-") as tmp:
        src, dst = Path(tmp) / "p.onnx", Path(tmp) / "p.opt.onnx"
        onnx.save(model, src)
        optimise(src, dst)
        opt = onnx.load(dst)
    for node in opt.graph.node:
        if node.domain == _NCHWC and node.op_type == "Conv":
            dims = {i.name: list(i.dims) for i in opt.graph.initializer}[node.input[1]]
            return int(dims[0]) - 16 if dims[0] > 20 else 4  # 20 -> 24 (8) or 32 (16)
    return 0


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _dims(vi: Any) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in t.shape.dim]
    return tuple(dims) if all(d > 0 for d in dims) or not dims else None


_FLOAT_TYPES = (1, 10, 11, 16)  # float, float16, double, bfloat16 (onnx.TensorProto)
_SHAPE_ONLY_ABOVE = 250_000  # weights (elements) past which shape inference runs without them


def _shape_only(model: Any) -> Any:
    """``model``, or where its weights are large (``_SHAPE_ONLY_ABOVE``) a copy whose
    floating-point initializers of more than 16 elements are graph inputs of the same type and
    shape: shape inference needs their shapes, not their values (integer and small constants,
    which can be reshape targets or resize scales, stay). ONNX serialises the model it infers,
    and serialising a ResNet's 44 MB of weights twice was a quarter of predicting it."""
    import onnx
    from onnx import helper

    graph = model.graph
    heavy = [i for i in graph.initializer if i.data_type in _FLOAT_TYPES and math.prod(i.dims) > 16]
    if sum(math.prod(i.dims) for i in heavy) < _SHAPE_ONLY_ABOVE:
        return model  # copying the graph would cost more than serialising its weights
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    light.graph.name = graph.name
    light.graph.node.extend(graph.node)
    light.graph.input.extend(graph.input)
    light.graph.output.extend(graph.output)
    light.graph.value_info.extend(graph.value_info)
    declared = {i.name for i in graph.input}
    light.graph.input.extend(
        helper.make_tensor_value_info(i.name, i.data_type, list(i.dims))
        for i in heavy
        if i.name not in declared
    )
    weights = {i.name for i in heavy}
    light.graph.initializer.extend(i for i in graph.initializer if i.name not in weights)
    return light


def _known_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of every value ONNX shape inference can give in ``model``."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(_shape_only(model), strict_mode=False)
    except Exception:  # contributed operators can trip the checker: keep what is declared
        inferred = model
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        d = _dims(vi)
        if d is not None:
            shapes[vi.name] = d
    for init in model.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


def _conv_out(x: tuple[int, ...], w: tuple[int, ...], a: dict[str, Any]) -> tuple[int, ...]:
    spatial = len(x) - 2
    k = a.get("kernel_shape") or list(w[2:])
    s = a.get("strides") or [1] * spatial
    d = a.get("dilations") or [1] * spatial
    p = a.get("pads") or [0] * (2 * spatial)
    out = [x[0], w[0]]
    for i in range(spatial):
        if a.get("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-x[2 + i] // s[i]))
        else:
            eff = d[i] * (k[i] - 1) + 1
            out.append((x[2 + i] + p[i] + p[i + spatial] - eff) // s[i] + 1)
    return tuple(out)


def _pool_out(x: tuple[int, ...], op: str, a: dict[str, Any]) -> tuple[int, ...]:
    if op.startswith("Global"):
        return (*x[:2], *([1] * (len(x) - 2)))
    spatial = len(x) - 2
    k = a["kernel_shape"]
    s = a.get("strides") or [1] * spatial
    p = a.get("pads") or [0] * (2 * spatial)
    ceil = a.get("ceil_mode", 0)
    out = list(x[:2])
    for i in range(spatial):
        span = x[2 + i] + p[i] + p[i + spatial] - k[i]
        out.append((-(-span // s[i]) if ceil else span // s[i]) + 1)
    return tuple(out)


def _rule(node: Any, shapes: dict[str, tuple[int, ...]], block: int) -> list[tuple[int, ...]]:
    """Output shapes of a runtime-specific node, from its inputs (NCHWc tensors are 4-D with
    their channels padded to the block)."""
    a = _attrs(node)
    ins = [shapes.get(i) for i in node.input]
    x = ins[0]
    if x is None:
        return []
    op = node.op_type
    if op in _CONV_OPS and len(ins) > 1 and ins[1] is not None:
        return [_conv_out(x, ins[1], a)]
    if op in _POOL_OPS:
        return [_pool_out(x, op, a)]
    if op == "ReorderInput":
        b = max(block, 1)
        c = x[-1] if a.get("channels_last") else x[1]
        hw = x[1:-1] if a.get("channels_last") else x[2:]
        return [(x[0], -(-c // b) * b, *hw)]
    if op == "ReorderOutput":
        c = a.get("channels", x[1])
        return [(x[0], *x[2:], c)] if a.get("channels_last") else [(x[0], c, *x[2:])]
    if op == "Upsample":
        scales = a.get("scales") or [1, 1, 2, 2]
        return [tuple(int(d * s) for d, s in zip(x, scales, strict=False))]
    if op in ("FusedGemm",) and len(ins) > 1 and ins[1] is not None:
        m = x[1] if a.get("transA") else x[0]
        n = ins[1][0] if a.get("transB") else ins[1][1]
        return [(m, n)]
    if op == "FusedMatMul" and len(ins) > 1 and ins[1] is not None:
        w = ins[1]
        m = x[-1] if a.get("transA") else x[-2]
        n = w[-2] if a.get("transB") else w[-1]
        batch = x[:-2] if len(x) >= len(w) else w[:-2]
        return [(*batch, m, n)]
    return [x] * len(node.output)  # elementwise-like contributed ops keep the input's shape


def _shapes(model: Any, original: dict[str, tuple[int, ...]], block: int) -> dict[str, Any]:
    """Shapes of every value of the optimised ``model``: the original graph's where names
    survived, the runtime's rules for its own operators, ONNX inference for the rest."""
    from onnx import helper

    shapes = dict(original)
    for name, shape in _known_shapes(model).items():
        shapes.setdefault(name, shape)
    for _ in range(8):
        progress = False
        for node in model.graph.node:
            if all(o in shapes for o in node.output if o):
                continue
            if node.domain in ("", "ai.onnx") and node.op_type not in _CONV_OPS | _POOL_OPS:
                continue
            for name, shape in zip(node.output, _rule(node, shapes, block), strict=False):
                if name and name not in shapes:
                    shapes[name] = shape
                    progress = True
        missing = [
            o for n in model.graph.node for o in n.output if o and o not in shapes
        ]  # standard operators downstream of runtime ones: let ONNX infer them now
        if not missing:
            break
        del model.graph.value_info[:]
        for name, shape in shapes.items():
            model.graph.value_info.append(helper.make_tensor_value_info(name, 1, list(shape)))
        before = len(shapes)
        for name, shape in _known_shapes(model).items():
            shapes.setdefault(name, shape)
        if not progress and len(shapes) == before:
            break
    for node in model.graph.node:  # what is still unknown: elementwise, by broadcasting
        if all(o in shapes for o in node.output if o):
            continue
        known = [shapes[i] for i in node.input if i in shapes]
        if known:
            try:
                out = tuple(int(d) for d in np.broadcast_shapes(*known))
            except ValueError:
                out = known[0]
            for name in node.output:
                shapes.setdefault(name, out)
    return shapes


def _kind(op_type: str, domain: str, groups: int, weight: tuple[int, ...]) -> str:
    prefix = "nchwc_" if domain == _NCHWC else ""
    if op_type in _CONV_OPS:
        # by the weights (the input's shape may be a padded NCHWc one): one input and one
        # output channel per group is depthwise
        if groups > 1 and len(weight) > 1 and weight[1] == 1 and weight[0] == groups:
            return prefix + "dwconv"
        if groups > 1:
            return prefix + "gconv"
        return prefix + "conv"
    if op_type in ("ReorderInput", "ReorderOutput"):
        return "reorder"
    if op_type in _POOL_OPS:
        return prefix + "pool"
    if op_type in _DENSE_OPS:
        return "matmul"
    if op_type in _RNN_OPS:
        return "rnn"
    if op_type in _REDUCE_OPS or op_type == "ArgMax":
        return "reduce"
    if "Norm" in op_type:
        return "norm"
    if op_type in ("Attention", "MultiHeadAttention"):
        return "attention"
    if op_type in ("Softmax", "LogSoftmax"):
        return "softmax"
    if op_type in _MOVE_OPS:
        return "move"
    if op_type in _VIEW_OPS:
        return "view"
    if op_type in _MATH_OPS:
        return "math"
    return "elementwise"


def _perm(a: dict[str, Any], rank: int) -> tuple[int, ...]:
    """A transpose's permutation: its ``perm`` attribute, else (ONNX's default) reversed axes."""
    return tuple(int(p) for p in a.get("perm") or range(rank - 1, -1, -1))


def _axis(op_type: str, x: tuple[int, ...], a: dict[str, Any], axes_input: Any) -> tuple[int, int]:
    """(length, input stride) of the axis the operator works along; (1, 1) if none."""
    rank = len(x)
    if not rank:
        return 1, 1
    if op_type == "Transpose":
        inner = _perm(a, rank)[-1]
        return x[inner], math.prod(x[inner + 1 :])
    if op_type in _REDUCE_OPS:
        axes = a.get("axes")
        if axes is None and axes_input is not None:
            axes = [int(v) for v in np.asarray(axes_input).ravel()]
        axes = [v % rank for v in (axes if axes else range(rank))]
        return math.prod(x[v] for v in axes), math.prod(x[max(axes) + 1 :])
    if op_type in ("Softmax", "LogSoftmax", "Concat", "Split", "Gather", "ArgMax"):
        axis = int(a.get("axis", -1 if "Softmax" in op_type else 0)) % rank
        return x[axis], math.prod(x[axis + 1 :])
    return 1, 1


def _node(
    node: Any,
    shapes: dict[str, Any],
    initializers: set[str],
    consts: dict[str, Any] | None = None,
) -> KernelNode:
    a = _attrs(node)
    ins = tuple(shapes.get(i, ()) for i in node.input if i)
    outs = tuple(shapes.get(o, ()) for o in node.output if o)
    acts = tuple(s for i, s in zip(node.input, ins, strict=False) if i not in initializers)
    weights = tuple(s for i, s in zip(node.input, ins, strict=False) if i in initializers)
    op_type = node.op_type
    x = ins[0] if ins else ()
    y = outs[0] if outs else ()
    groups = int(a.get("group", 1))
    cin = cout = 0
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    out_elems = sum(math.prod(s) for s in outs)
    flops = float(out_elems)
    if op_type in _CONV_OPS and len(ins) > 1 and ins[1]:
        w = ins[1]
        cin, cout = w[1] * groups, w[0]
        kernel = tuple(a.get("kernel_shape") or w[2:])
        stride = tuple(a.get("strides") or [1] * len(kernel))
        flops = 2.0 * math.prod(y) * math.prod(w[1:]) if y else 0.0
    elif op_type in _DENSE_OPS and len(ins) > 1 and x and ins[1] and y:
        k = x[0] if a.get("transA") and op_type.endswith("Gemm") else x[-1]
        if op_type.endswith("MatMul") and a.get("transA"):
            k = x[-2]
        flops = 2.0 * math.prod(y) * k
        cin, cout = k, y[-1]
    elif op_type in _POOL_OPS and x:
        cin = cout = x[1] if len(x) > 1 else 0
        kernel = tuple(a.get("kernel_shape") or x[2:])
        stride = tuple(a.get("strides") or [1] * len(kernel))
        flops = float(math.prod(x))
    elif op_type in _RNN_OPS and len(x) == 3:
        hidden = int(a.get("hidden_size", 0))
        gates = {"GRU": 3, "LSTM": 4}.get(op_type, 1)
        seq, batch = x[0], x[1]
        dirs = 2 if a.get("direction") == "bidirectional" else 1
        flops = 2.0 * dirs * seq * batch * gates * hidden * (x[-1] + hidden)
        cin, cout = x[-1], hidden
    elif len(x) > 1 and op_type != "ReorderOutput":
        cin = cout = x[1]
    elif op_type == "ReorderOutput" and x:
        cin, cout = x[1], int(a.get("channels", x[1]))
    if op_type in _REDUCE_OPS | {"Softmax", "LogSoftmax"} or "Norm" in op_type:
        flops = float(sum(math.prod(s) for s in acts))
    act_bytes = 4.0 * (sum(math.prod(s) for s in acts) + out_elems)
    weight_bytes = 4.0 * sum(math.prod(s) for s in weights)
    activation = str(a.get("activation", ""))
    if op_type in ("FusedGemm", "FusedMatMul"):
        activation = str(a.get("activation", ""))
    kind = _kind(op_type, node.domain, groups, ins[1] if len(ins) > 1 else ())
    if kind in _BY_OP:  # one operator's cost per element differs from another's many times
        kind = f"{kind}:{op_type}"  # (ONNX Runtime's Softplus ~35x a Sigmoid)
    axes_input = (consts or {}).get(node.input[1]) if len(node.input) > 1 else None
    axis_size, axis_inner = _axis(op_type, x, a, axes_input)
    return KernelNode(
        name=node.name or (node.output[0] if node.output else op_type),
        op=f"{node.domain.removeprefix('com.microsoft').lstrip('.') or 'ms'}:{op_type}"
        if node.domain not in ("", "ai.onnx")
        else op_type,
        kind=kind,
        activation=activation,
        inputs=ins,
        outputs=outs,
        channels_in=int(cin),
        channels_out=int(cout),
        groups=groups,
        kernel=tuple(int(k) for k in kernel),
        stride=tuple(int(s) for s in stride),
        flops=flops,
        bytes=act_bytes + weight_bytes,
        weight_bytes=weight_bytes,
        axis_size=int(axis_size),
        axis_inner=int(axis_inner),
        perm=_perm(a, len(x)) if op_type == "Transpose" else (),
        attrs={k: v for k, v in a.items() if isinstance(v, int | float | str)},
    )


def _profiled_shapes(
    path: Path, out: Path, level: str, tmp: Path, *, weights_apart: bool = False
) -> dict[str, Any]:
    """Optimise ``path`` into ``out`` and run it once with ONNX Runtime's profiler on zeros:
    the profile names every node's output shapes as the runtime really allocated them
    (ONNX shape inference does not know the runtime's own operators). ``weights_apart``:
    ``out`` keeps only the graph and small constants; weights of over 1 kB go to a file
    beside it, which nothing reads (for a 48-MB kumar network 0.08 s less of writing and
    parsing them)."""
    import json

    import onnxruntime as ort

    opts = _ort_options(level)
    opts.optimized_model_filepath = str(out)
    if weights_apart:
        opts.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", f"{out.name}.weights"
        )
        opts.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
        )
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / "shapes")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {}
    for i in session.get_inputs():
        dtype = np.int64 if "int64" in i.type else np.float32
        feed[i.name] = np.zeros([d if isinstance(d, int) else 1 for d in i.shape], dtype)
    session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    return profiled_shapes(events, {k: v.shape for k, v in feed.items()}, runs=1)


def profiled_shapes(
    events: Sequence[dict[str, Any]], inputs: dict[str, tuple[int, ...]], *, runs: int
) -> dict[str, Any]:
    """Every node's output shapes from an ONNX Runtime profile of ``runs`` runs (the first
    run's): ``{"inputs": inputs, "nodes": {node name: [shape, ...]}}``. A name the runtime
    gave several nodes (seen more often than ``runs`` times) is left out: neither is trusted."""
    by_node: dict[str, list[tuple[int, ...]]] = {}
    seen: dict[str, int] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"].removesuffix("_kernel_time")
            seen[name] = seen.get(name, 0) + 1
            if name not in by_node:
                shapes = e["args"].get("output_type_shape", [])
                by_node[name] = [tuple(next(iter(d.values()))) for d in shapes]
    nodes = {k: v for k, v in by_node.items() if seen[k] == runs}
    return {"inputs": dict(inputs), "nodes": nodes}


def _generated_name(node: Any) -> bool:
    """Whether the runtime's profile may name this node differently from the saved graph
    (reorder nodes are renamed between the two), so its profiled shapes are not used."""
    return node.op_type in ("ReorderInput", "ReorderOutput")


def describe_onnx(path: str | Path, *, level: str = "all", keep: str | Path | None = None) -> Any:
    """The ``KernelGraph`` of the ONNX model at ``path`` as ONNX Runtime optimises it.

    Shapes are those the runtime allocates on one run on zeros (from its profiler), so they
    hold for its own operators too; values it does not report fall back to ONNX inference.

    Args:
        path: an exported model with static shapes.
        level: ``"all"`` (layout changes such as NCHWc included) or ``"extended"`` (fusions
            only, as on a runtime without NCHWc kernels).
        keep: also keep the optimised model at this path.
    """
    with tempfile.TemporaryDirectory(prefix="explorer-kernels-") as tmp:
        out = Path(keep) if keep else Path(tmp) / "opt.onnx"
        profiled = _profiled_shapes(Path(path), out, level, Path(tmp), weights_apart=not keep)
        return describe_optimised(path, out, profiled, level=level)


def describe_optimised(
    path: str | Path, optimised: str | Path, profiled: dict[str, Any], *, level: str
) -> KernelGraph:
    """The ``KernelGraph`` of the model ONNX Runtime saved at ``optimised`` after optimising
    the one at ``path``, with the shapes ``profiled`` (``profiled_shapes``) of one of its runs
    (``describe_onnx`` optimises and runs it; a caller that profiles the model anyway passes
    its own profile)."""
    import onnx

    model = onnx.load(str(optimised), load_external_data=False)  # dims suffice for weights
    block = nchwc_block() if level == "all" else 0
    shapes: dict[str, Any] = {}
    initializers = {i.name for i in model.graph.initializer}
    for init in model.graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    shapes.update(profiled["inputs"])
    for node in model.graph.node:
        if _generated_name(node):
            continue
        for name, shape in zip(node.output, profiled["nodes"].get(node.name, []), strict=False):
            shapes[name] = shape
    if any(o and o not in shapes for n in model.graph.node for o in n.output):
        original = _known_shapes(onnx.load(str(path)))
        shapes = _shapes(model, {**original, **shapes}, block)
    from onnx import numpy_helper

    consts = {  # small integer constants: the axes of reductions
        i.name: numpy_helper.to_array(i)
        for i in model.graph.initializer
        if i.data_type == 7 and math.prod(i.dims) <= 16
    }
    nodes = [_node(n, shapes, initializers, consts) for n in model.graph.node]
    total = sum(n.bytes for n in nodes)
    return KernelGraph(
        nodes=tuple(replace(n, network_bytes=total) for n in nodes), level=level, block=block
    )


def describe(model: Any, inputs: tuple[Any, ...], *, level: str = "all") -> KernelGraph:
    """Export ``model`` on ``inputs`` to ONNX and describe ONNX Runtime's optimised graph."""
    from explorer.export import export_onnx

    from ._export_helper import export_elsewhere

    with tempfile.TemporaryDirectory(prefix="explorer-kernels-") as tmp:
        path = Path(tmp) / "model.onnx"
        if not export_elsewhere(model, tuple(inputs), path):  # a family model: see there
            export_onnx(model, tuple(inputs), path, check=False)
        return describe_onnx(path, level=level)
