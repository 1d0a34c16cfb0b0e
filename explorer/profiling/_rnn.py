"""``nn.GRU`` / ``nn.LSTM`` / ``nn.RNN`` counted per layer and direction, whatever kernel runs.

PyTorch runs these modules as a per-time-step loop of ``addmm`` and pointwise ops (GRU on CPU,
anything on the meta device), as one ``mkldnn_rnn_layer`` per layer and direction (LSTM on CPU)
or as one ``_cudnn_rnn`` (CUDA). Counting what dispatch shows would make the rows, the bytes and
the peak memory depend on the kernel; so the recorder counts these modules here, analytically,
as the fused layers they are: per layer and direction ``tokens·(|W_ih| + |W_hh| (+ |W_hr|))``
MACs (``3H(I+H)`` per step for a GRU, ``4H(I+H)`` for an LSTM), the cell's pointwise work as
elementwise FLOPs, the layer's input, initial state and weights read once and its output
written once. On fake tensors the module does not even loop: ``shape_only_forward`` returns
outputs of the right shapes, so a 90-frame Bi-GRU profiles in milliseconds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ._rules import _RNN_CELL_ELEMENTWISE
from ._types import OpRecord

__all__ = ["is_counted_rnn", "rnn_records", "shape_only_forward"]

_TYPES = (nn.GRU, nn.LSTM, nn.RNN)


def is_counted_rnn(module: nn.Module) -> bool:
    """Exactly one of the stock RNN modules (subclasses may override ``forward``)."""
    return type(module) in _TYPES


def _mode(module: nn.Module) -> str:
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    return "rnn_relu" if getattr(module, "nonlinearity", "tanh") == "relu" else "rnn_tanh"


def _geometry(module: Any, x: Any) -> tuple[int, int, bool]:
    """(tokens, batch, batched) of the input."""
    if isinstance(x, PackedSequence):
        return int(x.data.shape[0]), int(x.batch_sizes[0]), True
    if x.dim() == 2:
        return int(x.shape[0]), 1, False
    return int(x.shape[0] * x.shape[1]), int(x.shape[0 if module.batch_first else 1]), True


def rnn_records(
    module: Any,
    *,
    path: str,
    args: tuple[Any, ...],
    element_size: int,
) -> list[OpRecord]:
    """One ``OpRecord`` per layer and direction of ``module`` run on ``args``."""
    x = args[0]
    tokens, batch, _ = _geometry(module, x)
    mode = _mode(module)
    hidden = module.hidden_size
    out_size = module.proj_size or hidden
    dirs = 2 if module.bidirectional else 1
    per_h = _RNN_CELL_ELEMENTWISE[mode]
    records = []
    for layer in range(module.num_layers):
        in_size = module.input_size if layer == 0 else dirs * out_size
        for d in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            weights = [
                getattr(module, f"{kind}{suffix}")
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
                if hasattr(module, f"{kind}{suffix}")
            ]
            weights = [w for w in weights if isinstance(w, torch.Tensor)]
            macs = tokens * sum(w.numel() for w in weights if w.dim() == 2)
            weight_bytes = sum(w.numel() * w.element_size() for w in weights)
            state_bytes = batch * (out_size + (hidden if mode == "lstm" else 0)) * element_size
            read = tokens * in_size * element_size + state_bytes + weight_bytes
            written = tokens * out_size * element_size + state_bytes
            records.append(
                OpRecord(
                    module=path,
                    module_type=type(module).__name__,
                    op=f"aten.{mode}.input[layer={layer},dir={d}]",
                    kind="rnn",
                    macs=macs,
                    flops=2 * macs,
                    elementwise_flops=tokens * hidden * per_h,
                    bytes_read=read,
                    bytes_written=written,
                    weight_bytes=weight_bytes,
                    output_shape=(tokens, out_size),
                )
            )
    return records


def shape_only_forward(module: Any) -> Any:
    """A ``forward`` for fake tensors: outputs of the right shapes, no time-step loop."""

    # ``input``, as nn.GRU/LSTM/RNN name it: models call gru(input=x) too
    def forward(input: Any, hx: Any = None) -> Any:
        x = input
        if isinstance(x, PackedSequence):
            return type(module).forward(module, x, hx)  # rare: run the real loop
        if x.dim() not in (2, 3) or x.shape[-1] != module.input_size:
            # what the real forward raises, so that the same input fails the same way
            raise RuntimeError(
                f"{type(module).__name__}: input of shape {tuple(x.shape)}: expected 2 or 3 "
                f"dims with size {module.input_size} last (input_size)"
            )
        hidden = module.hidden_size
        out_size = module.proj_size or hidden
        dirs = 2 if module.bidirectional else 1
        layers = module.num_layers
        if x.dim() == 2:
            out = x.new_empty((x.shape[0], dirs * out_size))
            h_shape: tuple[int, ...] = (dirs * layers, out_size)
            c_shape: tuple[int, ...] = (dirs * layers, hidden)
        else:
            t_dim, b_dim = (1, 0) if module.batch_first else (0, 1)
            b, t = x.shape[b_dim], x.shape[t_dim]
            # time-major storage, as PyTorch's CPU kernels return it (batch_first is a view):
            # later ops see the same strides, hence take the same kernels, as in a real run
            out = x.new_empty((t, b, dirs * out_size))
            if module.batch_first:
                out = out.transpose(0, 1)
            h_shape, c_shape = (dirs * layers, b, out_size), (dirs * layers, b, hidden)
        h_n = x.new_empty(h_shape)
        if isinstance(module, nn.LSTM):
            return out, (h_n, x.new_empty(c_shape))
        return out, h_n

    return forward
