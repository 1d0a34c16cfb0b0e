"""The dispatch-level recorder: every aten op of one forward, with its innermost module.

Module attribution comes from forward pre/post hooks on the model's own modules (a stack of
dotted paths); the recorder is a ``TorchDispatchMode``, so it sees the ops that actually run
after autograd and composite decomposition: ``linear`` arrives as ``addmm``, ``einsum`` as
``bmm``, and each op is counted once. Activation lifetimes are tracked through weak references
to output storages, so ``peak_bytes`` is the high-water mark of live tensors, not a sum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.nn.utils.rnn import PackedSequence
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from ._rnn import is_counted_rnn, rnn_records
from ._rules import ZERO_COST, Cost, cost_of
from ._types import OpRecord

__all__ = ["Recorder"]


def _storage_key(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):  # sparse, nested or storage-less tensors
        return None


def _tensor_bytes(t: torch.Tensor) -> int:
    if t.is_nested:  # no sizes or strides: the sum of its components' elements
        sizes = t._nested_tensor_size()
        return int(sizes.prod(dim=1).sum()) * t.element_size() if sizes.numel() else 0
    # Elements actually stored: a broadcast (stride-0) dimension is read once.
    n = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            n *= int(size)
    return n * t.element_size() if t.numel() else 0


def _shape(t: torch.Tensor | None) -> tuple[int, ...]:
    """The shape of ``t``; ``()`` for none and for a nested tensor (its rows differ)."""
    return () if t is None or t.is_nested else tuple(int(s) for s in t.shape)


class Recorder(TorchDispatchMode):
    """Record ops with module paths: ``attach(model)``, run it under ``with recorder:``,
    ``detach()``; then read ``records``, ``uncounted`` and ``peak_bytes``."""

    def __init__(self, model: nn.Module, *, weights: Iterable[torch.Tensor]) -> None:
        super().__init__()
        self.records: list[OpRecord] = []
        self.uncounted: Counter[str] = Counter()
        self.peak_bytes = 0
        self._names = {}
        for name, module in model.named_modules(remove_duplicate=False):
            self._names.setdefault(id(module), name)
        self._stack: list[nn.Module] = [model]
        self._weight_keys = {k for w in weights if (k := _storage_key(w)) is not None}
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self._handles: list[Any] = []
        # While inside an nn.GRU/LSTM/RNN, its ops are neither recorded nor tracked: the module
        # is counted as a whole on exit (see _rnn.py).
        self._rnn: nn.Module | None = None
        self._rnn_args: tuple[Any, ...] = ()

    # ------------------------------------------------------------------ module attribution
    def attach(self, model: nn.Module) -> None:
        """Register the hooks that keep the module stack (call ``detach`` afterwards).

        Global hooks, not per-module ones: ``TransformerEncoderLayer`` leaves its fast path
        when its modules carry hooks, and the profile must see the kernels a plain run uses.
        """
        from torch.nn.modules import module as module_mod

        self._handles.append(module_mod.register_module_forward_pre_hook(self._push))
        self._handles.append(
            module_mod.register_module_forward_hook(self._pop, with_kwargs=True, always_call=True)
        )

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _push(self, module: nn.Module, args: Any) -> None:
        self._stack.append(module)
        if self._rnn is None and is_counted_rnn(module):
            self._rnn, self._rnn_args = module, tuple(args)

    def _pop(self, module: nn.Module, args: Any, *rest: Any) -> None:
        # (kwargs, output); PyTorch leaves kwargs out when the forward raised (always_call)
        kwargs, output = rest if len(rest) == 2 else ({}, rest[-1])
        if len(self._stack) > 1 and self._stack[-1] is module:
            self._stack.pop()
        if module is self._rnn:
            self._rnn = None
            if not self._rnn_args:  # called as gru(input=x): the global pre-hook sees no kwargs
                self._rnn_args = tuple(
                    v for k in ("input", "hx") if (v := kwargs.get(k)) is not None
                )
            if not self._rnn_args:  # nothing to size the layers by; the forward failed anyway
                return
            x = self._rnn_args[0]
            x = x.data if isinstance(x, PackedSequence) else x
            self.records.extend(
                rnn_records(
                    module,
                    path=self._names.get(id(module), type(module).__name__),
                    args=self._rnn_args,
                    element_size=x.element_size(),
                )
            )
            self._rnn_args = ()
            self.track(t for t in pytree.tree_leaves(output) if isinstance(t, torch.Tensor))

    # ------------------------------------------------------------------ lifetimes
    def track(self, tensors: Iterable[Any]) -> None:
        """Count ``tensors`` (new storages only, never weights) as live activations."""
        # sweep first: a freed storage's address (the key) may be reused by a new one
        for key in [k for k, (ref, _) in self._live.items() if ref.expired()]:
            del self._live[key]
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                continue
            key = _storage_key(t)
            if key is None or key in self._live or key in self._weight_keys:
                continue
            storage = t.untyped_storage()
            self._live[key] = (StorageWeakRef(storage), storage.nbytes())
        live = sum(nbytes for _, nbytes in self._live.values())
        self.peak_bytes = max(self.peak_bytes, live)

    # ------------------------------------------------------------------ dispatch
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self._rnn is not None:
            return out
        outputs = [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        self._record(func, args, kwargs, out, outputs)
        self.track(outputs)
        return out

    def _record(self, func: Any, args: Any, kwargs: Any, out: Any, outputs: list) -> None:
        name = str(func)
        try:
            cost = cost_of(func, args, kwargs, out)
        except Exception as exc:  # a rule met arguments it does not know: report, never crash
            self.uncounted[f"{name} (rule failed: {type(exc).__name__})"] += 1
            cost = Cost("other")
        if cost is ZERO_COST:
            return
        if cost is None:
            self.uncounted[name] += 1
            cost = Cost("other")
        module = self._stack[-1]
        inputs: dict[int, torch.Tensor] = {}
        for t in pytree.tree_leaves((args, kwargs)):
            if isinstance(t, torch.Tensor):
                inputs.setdefault(id(t), t)
        bytes_read = weight_bytes = strided_bytes = 0
        has_weight = False
        for t in inputs.values():
            nbytes = _tensor_bytes(t)
            bytes_read += nbytes
            if _storage_key(t) in self._weight_keys:
                weight_bytes += nbytes
                has_weight = True
            elif (
                not t.is_nested
                and t.dim() > 1
                and t.numel() > 1
                and not t.is_contiguous()
                and 0 not in t.stride()
            ):
                strided_bytes += nbytes
        bytes_written = sum(_tensor_bytes(t) for t in outputs)
        kind = cost.kind
        if kind == "matmul" and has_weight:
            kind = "linear"
        if isinstance(module, nn.RNNBase | nn.RNNCellBase) and cost.macs:
            kind = "rnn"
        elif isinstance(module, nn.MultiheadAttention) and kind == "matmul":
            kind = "attention"
        first = outputs[0] if outputs else None
        tensors = list(inputs.values())
        first_in = tensors[0] if tensors else None
        groups = 1
        if kind == "conv" and len(tensors) > 1 and tensors[1].dim() > 1 and first is not None:
            # weight (Cout, Cin/groups, ...), transposed (Cin, Cout/groups, ...)
            transposed = len(args) > 6 and bool(args[6])
            channels = first.shape[1] if transposed else tensors[0].shape[1]
            groups = max(1, int(channels) // max(1, int(tensors[1].shape[1])))
        self.records.append(
            OpRecord(
                module=self._names.get(id(module), type(module).__name__),
                module_type=type(module).__name__,
                op=name,
                kind=kind,
                macs=int(cost.macs),
                flops=2 * int(cost.macs),
                elementwise_flops=int(cost.elementwise),
                bytes_read=bytes_read,
                bytes_written=bytes_written,
                weight_bytes=weight_bytes,
                output_shape=_shape(first),
                input_shape=_shape(first_in),
                groups=groups,
                strided_bytes=strided_bytes,
            )
        )
