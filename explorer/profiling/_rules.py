"""Cost rules per aten operator: kind, MACs and elementwise FLOPs.

Dense rules (conv ``Cout·(Cin/groups)·∏k·∏out``, linear ``M·N·K``,
attention ``B·heads·Lq·Lk·(dk+dv)``, bilinear ``I1·I2·O``, RNN ``tokens·Σ|W|`` which is
``3H(I+H)`` per step and direction for a GRU and ``4H(I+H)`` for an LSTM).

Fused kernels hide their work from dispatch (``_native_multi_head_attention``, the SDPA kernels,
``mkldnn_rnn_layer``, ``_cudnn_rnn``, ``_transformer_encoder_layer_fwd``), so they get analytic
rules whose MACs equal, and whose elementwise FLOPs mirror, the unfused path PyTorch takes
otherwise (train mode, the meta device, or the fast path disabled): a model counts the same in
eval and train mode and with CPU or CUDA kernels.

Elementwise costs are conventions, about one FLOP per element touched: pointwise ops 1 per
output element, reductions 1 per input element, softmax 5 (max, sub, exp, sum, div), layer
and group norm 5, batch norm 2 in inference and 4 in training, pooling 1 per window element.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

__all__ = ["ZERO_COST", "Cost", "cost_of"]

Tensor = torch.Tensor


class Cost(NamedTuple):
    kind: str
    macs: int = 0
    elementwise: int = 0


# Sentinel: the op moves no data and does no arithmetic (views, metadata, allocation).
ZERO_COST = Cost("none")

_SOFTMAX = 5
_LAYER_NORM = 5
# Elementwise FLOPs per hidden unit, per token and direction, of the unfused RNN cells PyTorch
# runs on CPU (bias adds, gate adds, nonlinearities, state update); see module docstring.
_RNN_CELL_ELEMENTWISE = {"lstm": 21, "gru": 16, "rnn_tanh": 4, "rnn_relu": 4}
_CUDNN_MODES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}

_ZERO_NAMES = frozenset(
    {
        "detach",
        "alias",
        "lift_fresh",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "_local_scalar_dense",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "sym_storage_offset",
        "is_same_size",
        "resize_",
        "set_",
        "_unsafe_view",
        "unsafe_split",
        "unsafe_split_with_sizes",
        "unsafe_chunk",
        "_reshape_alias",
        "transpose_",
        "t_",
        "squeeze_",
        "unsqueeze_",
        "as_strided_",
        "unbind",
        "split",
        "split_with_sizes",
        "chunk",
        "_to_dense",
        "dim",
        "is_nonzero",
        "equal",
        "_assert_async",
        "_assert_tensor_metadata",
        "copy",  # metadata-only variant produced by some decompositions
        "_has_compatible_shallow_copy_type",
        "resolve_conj",
        "resolve_neg",
        "conj",
        "_conj",
        "_neg_view",
    }
)

_MEMORY_NAMES = frozenset(
    {
        "clone",
        "_to_copy",
        "copy_",
        "cat",
        "stack",
        "constant_pad_nd",
        "reflection_pad1d",
        "reflection_pad2d",
        "reflection_pad3d",
        "replication_pad1d",
        "replication_pad2d",
        "replication_pad3d",
        "index",
        "_unsafe_index",
        "index_select",
        "gather",
        "scatter",
        "scatter_",
        "index_put",
        "index_put_",
        "embedding",
        "repeat",
        "roll",
        "flip",
        "upsample_nearest1d",
        "upsample_nearest2d",
        "upsample_nearest3d",
        "_upsample_nearest_exact1d",
        "_upsample_nearest_exact2d",
        "pixel_shuffle",
        "pixel_unshuffle",
        "masked_select",
        "nonzero",
        "zeros",
        "ones",
        "full",
        "fill_",
        "zero_",
        "new_zeros",
        "new_ones",
        "new_full",
        "zeros_like",
        "ones_like",
        "full_like",
        "arange",
        "lift_fresh_copy",
        "scalar_tensor",
        "contiguous",
        "randn",
        "rand",
        "randn_like",
        "rand_like",
        "tril",
        "triu",
        "im2col",
        "col2im",
        "unfold_copy",
    }
)

_REDUCTION_NAMES = frozenset(
    {
        "sum",
        "mean",
        "amax",
        "amin",
        "max",
        "min",
        "argmax",
        "argmin",
        "topk",
        "sort",
        "cumsum",
        "cumprod",
        "logsumexp",
        "var",
        "std",
        "var_mean",
        "std_mean",
        "linalg_vector_norm",
        "norm",
        "prod",
        "any",
        "all",
    }
)

_ACTIVATION_NAMES = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "gelu",
        "gelu_",
        "silu",
        "silu_",
        "sigmoid",
        "sigmoid_",
        "tanh",
        "tanh_",
        "hardswish",
        "hardswish_",
        "hardsigmoid",
        "hardsigmoid_",
        "hardtanh",
        "hardtanh_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "mish",
        "mish_",
        "softplus",
        "_prelu_kernel",
        "prelu",
        "glu",
        "threshold",
        "threshold_",
        "log_sigmoid_forward",
        "clamp_min",
        "clamp_min_",
    }
)


def _numel(t: Any) -> int:
    return t.numel() if isinstance(t, Tensor) else 0


def _prod(xs: Sequence[int]) -> int:
    return math.prod(int(x) for x in xs)


def _first_out(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, Tensor):
                return o
    return None


# ----------------------------------------------------------------------------- dense rules


def _conv(args: Sequence[Any], out: Any) -> Cost:
    x, w, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else False
    y = _first_out(out)
    kernel = _prod(w.shape[2:])
    # transposed: each input element scatters into Cout/groups · ∏k outputs
    macs = (x.numel() if transposed else _numel(y)) * w.shape[1] * kernel
    return Cost("conv", macs, _numel(y) if bias is not None else 0)


def _mm(args: Sequence[Any], out: Any) -> Cost:
    a, b = args[0], args[1]
    return Cost("matmul", a.shape[0] * a.shape[1] * b.shape[1])


def _addmm(args: Sequence[Any], out: Any) -> Cost:
    a, b = args[1], args[2]
    return Cost("matmul", a.shape[0] * a.shape[1] * b.shape[1], _numel(_first_out(out)))


def _bmm(args: Sequence[Any], out: Any) -> Cost:
    a, b = args[0], args[1]
    return Cost("matmul", a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2])


def _baddbmm(args: Sequence[Any], out: Any) -> Cost:
    a, b = args[1], args[2]
    return Cost(
        "matmul", a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], _numel(_first_out(out))
    )


def _addbmm(args: Sequence[Any], out: Any) -> Cost:
    a, b = args[1], args[2]
    return Cost("matmul", a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], _numel(out))


def _mv(args: Sequence[Any], out: Any) -> Cost:
    return Cost("matmul", args[0].numel())


def _addmv(args: Sequence[Any], out: Any) -> Cost:
    return Cost("matmul", args[1].numel(), _numel(out))


def _dot(args: Sequence[Any], out: Any) -> Cost:
    return Cost("matmul", args[0].numel())


def _trilinear(args: Sequence[Any], out: Any) -> Cost:
    # nn.Bilinear: every input is unsqueezed at its expand dims; the broadcast iteration space
    # (batch, out, in1, in2) is the MAC count I1·I2·O per sample.
    shapes = []
    for t, expand in zip(args[:3], args[3:6], strict=True):
        shape = list(t.shape)
        for d in sorted(expand):
            shape.insert(d, 1)
        shapes.append(shape)
    space = torch.broadcast_shapes(*shapes)
    return Cost("linear", _prod(space))


def _sdpa(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
    q, k, v = args[0], args[1], args[2]
    batch = _prod(q.shape[:-2])
    lq, e = q.shape[-2], q.shape[-1]
    lk, ev = k.shape[-2], v.shape[-1]
    scores = batch * lq * lk
    mask = kwargs.get("attn_mask")
    if mask is None and len(args) > 3 and isinstance(args[3], Tensor):
        mask = args[3]
    # the unfused (math) path scales q and k, adds the mask, and takes a softmax
    elementwise = q.numel() + batch * lk * e + _SOFTMAX * scores
    if mask is not None:
        elementwise += scores
    return Cost("attention", scores * (e + ev), elementwise)


def _mha_cost(
    *,
    batch: int,
    lq: int,
    lk: int,
    embed: int,
    heads: int,
    has_qkv_bias: bool,
    has_proj_bias: bool,
    need_weights: bool,
    has_mask: bool,
) -> Cost:
    macs = batch * lq * embed * embed  # q projection
    macs += 2 * batch * lk * embed * embed  # k and v projections
    macs += 2 * batch * lq * lk * embed  # q·kᵀ and attn·v, summed over heads
    macs += batch * lq * embed * embed  # output projection
    scores = batch * heads * lq * lk
    ew = batch * lq * embed  # scaling of q
    ew += _SOFTMAX * scores
    if has_qkv_bias:
        ew += batch * lq * embed + 2 * batch * lk * embed
    if has_proj_bias:
        ew += batch * lq * embed
    if need_weights:
        ew += scores  # average over heads of the returned weights
    if has_mask:
        ew += scores
    return Cost("attention", macs, ew)


def _native_mha(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
    names = (
        "query",
        "key",
        "value",
        "embed_dim",
        "num_head",
        "qkv_weight",
        "qkv_bias",
        "proj_weight",
        "proj_bias",
        "mask",
        "need_weights",
        "average_attn_weights",
    )
    a = dict(zip(names, args, strict=False))
    a.update(kwargs)
    q, k = a["query"], a["key"]
    # batch-first (B, L, E); an unbatched (L, E) query is one sequence
    batch = q.shape[0] if q.dim() == 3 else 1
    return _mha_cost(
        batch=batch,
        lq=q.shape[-2],
        lk=k.shape[-2],
        embed=int(a["embed_dim"]),
        heads=int(a["num_head"]),
        has_qkv_bias=a.get("qkv_bias") is not None,
        has_proj_bias=a.get("proj_bias") is not None,
        need_weights=bool(a.get("need_weights", True))
        and bool(a.get("average_attn_weights", True)),
        has_mask=a.get("mask") is not None,
    )


def _encoder_layer(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
    src, embed, heads = args[0], int(args[1]), int(args[2])
    qkv_bias, proj_bias = args[4], args[6]
    ffn_w1, ffn_b1, ffn_b2 = args[14], args[15], args[17]
    mask = args[18] if len(args) > 18 else kwargs.get("mask")
    batch = src.shape[0] if src.dim() == 3 else 1
    length = src.shape[-2]
    tokens = batch * length
    ffn = ffn_w1.shape[0]
    # self-attention as in the slow path (need_weights=False → SDPA: q and k scaled)
    attn = _mha_cost(
        batch=batch,
        lq=length,
        lk=length,
        embed=embed,
        heads=heads,
        has_qkv_bias=qkv_bias is not None,
        has_proj_bias=proj_bias is not None,
        need_weights=False,
        has_mask=mask is not None,
    )
    macs = attn.macs + 2 * tokens * embed * ffn
    ew = attn.elementwise + tokens * embed  # SDPA also scales k
    ew += 2 * tokens * embed  # two residual adds
    ew += 2 * _LAYER_NORM * tokens * embed  # two layer norms
    ew += tokens * ffn  # activation
    ew += tokens * ffn if ffn_b1 is not None else 0
    ew += tokens * embed if ffn_b2 is not None else 0
    return Cost("attention", macs, ew)


def _rnn_weights_macs(weights: Sequence[Any]) -> int:
    # Σ |W_ih| + |W_hh| (+ |W_hr|): the MACs per token over all layers and directions
    return sum(w.numel() for w in weights if isinstance(w, Tensor) and w.dim() == 2)


def _rnn_cost(mode: str, tokens: int, weights: Sequence[Any], hidden: int, cells: int) -> Cost:
    macs = tokens * _rnn_weights_macs(weights)
    return Cost("rnn", macs, tokens * cells * hidden * _RNN_CELL_ELEMENTWISE[mode])


def _mkldnn_rnn_layer(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
    x, w_ih, w_hh = args[0], args[1], args[2]
    hidden = int(args[10])
    tokens = x.shape[0] * x.shape[1]
    return _rnn_cost("lstm", tokens, (w_ih, w_hh), hidden, 1)


def _cudnn_rnn(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
    x, weights = args[0], args[1]
    mode = _CUDNN_MODES.get(int(args[6]), "lstm")
    hidden, layers, bidirectional = int(args[7]), int(args[9]), bool(args[13])
    batch_sizes = args[14] if len(args) > 14 else ()
    tokens = x.shape[0] if len(batch_sizes) else x.shape[0] * x.shape[1]
    return _rnn_cost(mode, tokens, weights, hidden, layers * (2 if bidirectional else 1))


def _rnn_composite(mode: str) -> Callable[..., Cost]:
    # aten.lstm/gru/rnn_*.input (input, hx, params, has_biases, num_layers, dropout, train,
    # bidirectional, batch_first) and .data (data, batch_sizes, hx, params, ...), when a mode
    # sees them unexpanded.
    def rule(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
        packed = isinstance(args[1], Tensor) and args[1].dim() == 1 and args[0].dim() == 2
        if packed:
            x, hx, params = args[0], args[2], args[3]
            layers, bidirectional = int(args[5]), bool(args[8])
            tokens = x.shape[0]
        else:
            x, hx, params = args[0], args[1], args[2]
            layers, bidirectional = int(args[4]), bool(args[7])
            tokens = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
        h0 = hx[0] if isinstance(hx, (list, tuple)) else hx
        hidden = h0.shape[-1]
        return _rnn_cost(mode, tokens, params, hidden, layers * (2 if bidirectional else 1))

    return rule


def _fused_cell(mode: str, gates: int) -> Callable[..., Cost]:
    def rule(args: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Cost:
        cells_x_hidden = args[0].numel() // gates
        # the gate matmuls ran before, as mm/addmm; here only the cell's pointwise work
        per_h = _RNN_CELL_ELEMENTWISE[mode] - 2 * gates
        return Cost("rnn", 0, cells_x_hidden * per_h)

    return rule


# ----------------------------------------------------------------------------- other rules


def _pool(args: Sequence[Any], out: Any) -> Cost:
    kernel = args[1]
    window = _prod(kernel) if isinstance(kernel, (list, tuple)) else int(kernel)
    y = _first_out(out)
    if y is not None and isinstance(kernel, (list, tuple)) and len(kernel) == 1:
        window = int(kernel[0]) ** max(1, y.dim() - 2)
    return Cost("pool", 0, _numel(y) * window)


def _adaptive_pool(args: Sequence[Any], out: Any) -> Cost:
    return Cost("pool", 0, _numel(args[0]))


def _batch_norm(training_index: int) -> Callable[[Sequence[Any], Any], Cost]:
    def rule(args: Sequence[Any], out: Any) -> Cost:
        training = bool(args[training_index]) if training_index < len(args) else False
        return Cost("norm", 0, (4 if training else 2) * _numel(args[0]))

    return rule


def _batch_norm_inference(args: Sequence[Any], out: Any) -> Cost:
    return Cost("norm", 0, 2 * _numel(args[0]))


def _layer_norm(args: Sequence[Any], out: Any) -> Cost:
    return Cost("norm", 0, _LAYER_NORM * _numel(args[0]))


def _softmax(args: Sequence[Any], out: Any) -> Cost:
    return Cost("activation", 0, _SOFTMAX * _numel(args[0]))


def _dropout(args: Sequence[Any], out: Any) -> Cost:
    return Cost("elementwise", 0, 2 * _numel(args[0]))


def _upsample_linear(args: Sequence[Any], out: Any) -> Cost:
    # interpolation: about 4 FLOPs (weights and blend) per output element
    return Cost("elementwise", 0, 4 * _numel(_first_out(out)))


_SIMPLE: dict[str, Callable[[Sequence[Any], Any], Cost]] = {
    "convolution": _conv,
    "_convolution": _conv,
    "mm": _mm,
    "addmm": _addmm,
    "bmm": _bmm,
    "baddbmm": _baddbmm,
    "addbmm": _addbmm,
    "mv": _mv,
    "addmv": _addmv,
    "dot": _dot,
    "vdot": _dot,
    "_trilinear": _trilinear,
    "max_pool1d": _pool,
    "max_pool2d": _pool,
    "max_pool3d": _pool,
    "max_pool1d_with_indices": _pool,
    "max_pool2d_with_indices": _pool,
    "max_pool3d_with_indices": _pool,
    "avg_pool1d": _pool,
    "avg_pool2d": _pool,
    "avg_pool3d": _pool,
    "_adaptive_avg_pool2d": _adaptive_pool,
    "_adaptive_avg_pool3d": _adaptive_pool,
    "adaptive_avg_pool1d": _adaptive_pool,
    "adaptive_max_pool1d": _adaptive_pool,
    "adaptive_max_pool2d": _adaptive_pool,
    "adaptive_max_pool3d": _adaptive_pool,
    "native_batch_norm": _batch_norm(5),
    "_native_batch_norm_legit": _batch_norm(5),
    "_native_batch_norm_legit_functional": _batch_norm(5),
    "_native_batch_norm_legit_no_training": _batch_norm_inference,
    "native_layer_norm": _layer_norm,
    "native_group_norm": _layer_norm,
    "_fused_rms_norm": _layer_norm,
    "_softmax": _softmax,
    "_safe_softmax": _softmax,
    "_log_softmax": _softmax,
    "native_dropout": _dropout,
    "upsample_bilinear2d": _upsample_linear,
    "upsample_linear1d": _upsample_linear,
    "upsample_bicubic2d": _upsample_linear,
    "upsample_trilinear3d": _upsample_linear,
    "_upsample_bilinear2d_aa": _upsample_linear,
}

_WITH_KWARGS: dict[str, Callable[[Sequence[Any], Any, dict[str, Any]], Cost]] = {
    "_scaled_dot_product_flash_attention_for_cpu": _sdpa,
    "_scaled_dot_product_flash_attention": _sdpa,
    "_scaled_dot_product_efficient_attention": _sdpa,
    "_scaled_dot_product_cudnn_attention": _sdpa,
    "_scaled_dot_product_fused_attention_overrideable": _sdpa,
    "_scaled_dot_product_attention_math": _sdpa,
    "_scaled_dot_product_attention_math_for_mps": _sdpa,
    "scaled_dot_product_attention": _sdpa,
    "_native_multi_head_attention": _native_mha,
    "_transformer_encoder_layer_fwd": _encoder_layer,
    "mkldnn_rnn_layer": _mkldnn_rnn_layer,
    "_cudnn_rnn": _cudnn_rnn,
    "lstm": _rnn_composite("lstm"),
    "gru": _rnn_composite("gru"),
    "rnn_tanh": _rnn_composite("rnn_tanh"),
    "rnn_relu": _rnn_composite("rnn_relu"),
    "_thnn_fused_lstm_cell": _fused_cell("lstm", 4),
    "_thnn_fused_gru_cell": _fused_cell("gru", 3),
}


def cost_of(func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> Cost | None:
    """Cost of one dispatched op; ``ZERO_COST`` for views and metadata; ``None`` if unknown."""
    name = func._schema.name.split("::")[-1] if hasattr(func, "_schema") else str(func)
    namespace = getattr(func, "namespace", "aten")
    if namespace == "prim":
        return ZERO_COST
    if name in _WITH_KWARGS:
        return _WITH_KWARGS[name](args, out, kwargs)
    if name in _SIMPLE:
        return _SIMPLE[name](args, out)
    if getattr(func, "is_view", False) or name in _ZERO_NAMES:
        return ZERO_COST
    if name in _MEMORY_NAMES:
        return Cost("memory")
    tags = getattr(func, "tags", ())
    if name in _ACTIVATION_NAMES:
        return Cost("activation", 0, _numel(_first_out(out)))
    if name in _REDUCTION_NAMES or torch.Tag.reduction in tags:
        return Cost("reduction", 0, _numel(args[0]) if args else 0)
    if torch.Tag.pointwise in tags or name.rstrip("_") in {"bernoulli", "uniform", "normal"}:
        return Cost("elementwise", 0, _numel(_first_out(out)))
    return None
