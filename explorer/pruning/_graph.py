"""What ``explorer prune`` adds to Torch-Pruning's dependency graph (1.6.1).

- ``traced_as_one_node``: protected parts (GRUs, attention, fusion cores) are traced as one
  opaque node instead of the hundreds of autograd nodes inside them.
- ``map_feature_concats``: concatenations on the feature (last) dim of ``(N, T, C)``
  sequences are index-mapped like channel concatenations.
- ``map_flattens``: a flatten of ``(N, C, *rest)`` maps channel ``c`` to features
  ``c * prod(rest) ...`` from the traced shapes, not from the consumer's width.
- ``size_concats``: a concatenation's input widths come from the traced shapes.
- ``cut_broadcast_edges``: a one-channel operand broadcast over another (``alpha * frames``)
  is not coupled to its channels.
- ``choose_channels`` / ``coupled_sets``: channels the graph ties together (GhostNet's
  ``cat([x1, cheap(x1)])``) are chosen as whole sets.
- ``opaque_handlers``: the handlers for opaque and channel-agnostic (passthrough) modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "choose_channels",
    "coupled_sets",
    "cut_broadcast_edges",
    "map_feature_concats",
    "map_flattens",
    "opaque_handlers",
    "size_concats",
    "traced_as_one_node",
]


class _OpaqueCall(torch.autograd.Function):
    """Joins a module's precomputed outputs to its inputs with one autograd node, so that
    Torch-Pruning's tracer (which walks ``grad_fn``s) sees the module as a single node and
    never enters it."""

    @staticmethod
    def forward(ctx, count: int, *tensors: torch.Tensor):  # type: ignore[override]
        ctx.n = len(tensors)
        return tuple(t.clone() for t in tensors[:count])

    @staticmethod
    def backward(ctx, *grads):  # never used: the patched forward only exists while tracing
        return (None,) * (ctx.n + 1)


@contextlib.contextmanager
def traced_as_one_node(modules: Sequence[nn.Module], channels: dict[int, int]):
    """While tracing, each of ``modules`` runs under ``no_grad`` and is tied to its inputs by
    one ``_OpaqueCall`` node; ``channels[id(module)]`` gets its output channel count.

    Why: Torch-Pruning follows every autograd node inside a module unless told otherwise. On
    CPU a GRU unrolls into hundreds of slice/unbind/elementwise nodes per time step, and
    attention into reshapes and matmuls; its group search then revisits the same nodes with
    ever new index lists and does not finish (minutes on a 16-unit GRU). The parts are kept
    intact anyway, so their insides need not be traced at all.
    """
    from torch.utils._pytree import tree_flatten, tree_unflatten

    def opaque(module: nn.Module, original):
        def forward(*args, **kwargs):
            with torch.no_grad():
                out = original(*args, **kwargs)
            leaves = [
                t
                for t in tree_flatten((args, kwargs))[0]
                if isinstance(t, torch.Tensor) and t.requires_grad
            ]
            flat, spec = tree_flatten(out)
            pos = [
                i
                for i, t in enumerate(flat)
                if isinstance(t, torch.Tensor) and t.is_floating_point()
            ]
            if pos:
                first = flat[pos[0]]
                # the channel count Torch-Pruning asks for (concat offsets): dim 1 of images
                # and (N, C) vectors, the feature (last) dim of sequences
                channels[id(module)] = int(
                    first.shape[-1] if first.dim() == 3 else first.shape[min(1, first.dim() - 1)]
                )
            if not leaves or not pos:
                return out
            joined = _OpaqueCall.apply(len(pos), *(flat[i] for i in pos), *leaves)
            for i, t in zip(pos, joined, strict=True):
                flat[i] = t
            return tree_unflatten(flat, spec)

        return forward

    patched = []
    try:
        for module in modules:
            module.forward = opaque(module, module.forward)
            patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward  # the instance attribute; the class's forward is back


class _FeatureCat:
    """Stands in for the ``CatBackward0`` of a concatenation on dim >= 2 so that
    Torch-Pruning maps its channels: it maps dim 1 only (and ``dim=-1``, by accident of an
    unsigned wrap), so ``torch.cat(seqs, dim=2)`` of ``(N, T, C)`` sequences (yang's fusion)
    passed the same indices to every input. Its own check still applies: the inputs'
    channel counts must add up to what the consumer takes, else nothing is mapped."""

    _saved_dim = 1

    def __init__(self, grad_fn: Any) -> None:
        self._grad_fn = grad_fn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grad_fn, name)


def map_feature_concats(dg) -> None:
    """Let ``dg`` index-map concatenations on dim >= 2 (see ``_FeatureCat``)."""
    import torch_pruning as tp
    from torch_pruning.dependency.constants import MAX_VALID_DIM

    for node in dg.module2node.values():
        dim = getattr(node.grad_fn, "_saved_dim", None)
        if node.type == tp.ops.OPTYPE.CONCAT and dim is not None and 2 <= dim < MAX_VALID_DIM:
            node.grad_fn = _FeatureCat(node.grad_fn)


class _MappedView:
    """Stands in for the ``ViewBackward0`` of a flatten whose index mapping ``map_flattens``
    set: Torch-Pruning re-derives reshape mappings before every group and leaves alone a
    view whose saved input has 3 dims, so this one reports 3."""

    _saved_self_sizes = (0, 0, 0)

    def __init__(self, grad_fn: Any) -> None:
        self._grad_fn = grad_fn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grad_fn, name)


def _view_shapes(grad_fn: Any) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    try:
        before = tuple(int(d) for d in grad_fn._saved_self_sym_sizes)
        after = tuple(int(d) for d in grad_fn._input_metadata[0].shape)
    except (AttributeError, IndexError, TypeError, RuntimeError):
        return None
    return before, after


def map_flattens(dg) -> None:
    """Index-map each flatten ``(N, C, *rest) -> (N, C * prod(rest))`` (and its inverse) by
    the traced shapes.

    Torch-Pruning 1.6.1 takes a flatten's width from the layer that consumes it; behind a
    concatenation that is the whole fused width (ding: audio ``32 x 7`` and visual
    ``64 x 6 x 6`` features concatenated into a 2528-wide Linear), so it maps audio channel
    ``c`` to features ``79c .. 79c + 78`` and back to channels beyond the layer's 32: an
    ``IndexError`` in the importance. (Its own check needs ``_saved_self_sizes``, which
    recent PyTorch renamed ``_saved_self_sym_sizes``.)
    """
    import torch_pruning as tp
    from torch_pruning.dependency.index_mapping import _FlattenIndexMapping

    for node in dg.module2node.values():
        if node.type != tp.ops.OPTYPE.RESHAPE or isinstance(node.grad_fn, _MappedView):
            continue
        shapes = _view_shapes(node.grad_fn)
        if shapes is None:
            continue
        before, after = shapes
        if len(before) >= 3 and len(after) == 2 and before[:2] != after[:2]:
            wide, narrow, stride = after, before, 1
        elif len(after) >= 3 and len(before) == 2 and before[:2] != after[:2]:
            wide, narrow, stride = before, after, 1
        else:
            continue
        for d in narrow[2:]:
            stride *= d
        if wide[0] != narrow[0] or wide[1] != narrow[1] * stride:
            continue  # not a flatten from dim 1 (batch and channels reordered): leave it
        # channels live on the narrow side: towards it indices shrink (reverse), away they grow
        flatten = len(after) == 2
        channel_side = node.inputs if flatten else node.outputs
        for other in channel_side:
            for dep in node.dependencies:
                if dep.target is other:
                    dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=True)
            for dep in other.dependencies:
                if dep.target is node:
                    dep.index_mapping[0] = _FlattenIndexMapping(stride=stride, reverse=False)
        node.grad_fn = _MappedView(node.grad_fn)


def size_concats(dg) -> None:
    """Give each concatenation of flattened features (an input mapped by ``map_flattens``)
    the widths of its inputs from the traced shapes, replacing Torch-Pruning's.

    Torch-Pruning infers them from the nearest layers: behind a flatten that is the layer's
    channel count (ding: 64 and 32 instead of 2304 and 224 features), the sum misses the
    consumer's width and the concatenation is left unmapped, so audio features reach the
    visual branch unshifted. Other concatenations keep Torch-Pruning's widths: where those
    do not add up it leaves them unmapped on purpose (lu's channel-pooled maps, widths 1
    and 1, must not be tied to the pooled layer's channels).
    """
    import torch_pruning as tp

    for node in dg.module2node.values():
        if node.type != tp.ops.OPTYPE.CONCAT or not any(
            isinstance(n.grad_fn, _MappedView) for n in node.inputs
        ):
            continue
        dim = getattr(node.grad_fn, "_saved_dim", None)
        if dim is None:
            continue
        sizes = []
        try:
            for fn, index in node.grad_fn.next_functions:
                if fn is None:
                    sizes = []
                    break
                sizes.append(int(fn._input_metadata[index].shape[dim]))
        except (AttributeError, IndexError, TypeError, RuntimeError):
            continue
        if sizes and len(sizes) == len(node.inputs):
            node.module.concat_sizes = sizes


def cut_broadcast_edges(dg) -> None:
    """Uncouple one-channel operands of elementwise ops from the other operand's channels.

    Torch-Pruning couples every operand of ``a * b`` channel by channel; with broadcasting
    (lu's FrameAttention: ``alpha (B, T, 1) * frames (B, T, D)``) that ties the D frame
    features to ``alpha``'s single output, so the whole feature space is never proposed.
    An operand the graph says has one channel, next to one with more, is a broadcast: its
    edges to the op are dropped and it is listed first, because the graph's channel
    inference takes the last operand's count.
    """
    import torch_pruning as tp
    from torch_pruning.dependency.shape_infer import infer_out_channels_recursively

    for node in list(dg.module2node.values()):
        if node.type != tp.ops.OPTYPE.ELEMENTWISE or len(node.inputs) < 2:
            continue
        chs = [infer_out_channels_recursively(dg, n, [0]) for n in node.inputs]
        if 1 not in chs or not any(c is not None and c > 1 for c in chs):
            continue
        single = [n for n, c in zip(node.inputs, chs, strict=True) if c == 1]
        for n in single:
            node.dependencies = [d for d in node.dependencies if d.target is not n]
            n.dependencies = [d for d in n.dependencies if d.target is not node]
        node.inputs = single + [n for n in node.inputs if all(n is not m for m in single)]


def opaque_handlers(channels: Mapping[int, int]):
    """(opaque, passthrough) Torch-Pruning handlers for modules traced as one node;
    ``channels`` maps ``id(module)`` to the output channels seen while tracing."""
    import torch_pruning as tp

    class _Opaque(tp.pruner.function.BasePruningFunc):
        """A part kept intact: its inputs and outputs are distinct, so a group reaching it
        stops there (and ``_group_ok`` then refuses the group)."""

        def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
            return layer

        def prune_in_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
            return layer

        def get_out_channels(self, layer: nn.Module) -> int | None:
            return channels.get(id(layer))

        def get_in_channels(self, layer: nn.Module) -> None:
            return None

    class _Passthrough(tp.pruner.function.BasePruningFunc):
        """A channel-agnostic module: pruning its input prunes its output, nothing inside."""

        def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
            return layer

        prune_in_channels = prune_out_channels

        def get_out_channels(self, layer: nn.Module) -> None:
            return None

        def get_in_channels(self, layer: nn.Module) -> None:
            return None

    return _Opaque(), _Passthrough()


def coupled_sets(dg, root: nn.Module, fn, n: int) -> list[list[int]]:
    """The root's channels partitioned into sets that must be removed together.

    Torch-Pruning maps a root channel through concatenations and depthwise layers; when two
    root channels reach the same channel elsewhere (GhostNet: ``cat([x1, cheap(x1)])`` with a
    depthwise ``cheap`` ties channel ``j`` to ``j + n/2``), removing one removes both. The
    closure of a single channel is read from the root entry of its group (Torch-Pruning merges
    every index that comes back to the root into it).
    """
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: set[int] = set()
    for i in range(n):
        if i in seen:
            continue
        closure = {int(j) for j in dg.get_pruning_group(root, fn, [i])[0].idxs if 0 <= j < n}
        closure.add(i)
        seen |= closure
        for j in closure:
            parent[find(j)] = find(i)
    sets: dict[int, list[int]] = {}
    for i in range(n):
        sets.setdefault(find(i), []).append(i)
    return list(sets.values())


def choose_channels(
    dg,
    root: nn.Module,
    fn,
    scores: torch.Tensor,
    *,
    ratio: float,
    key: tuple,
    partitions: dict[tuple, list[list[int]]],
    round_to: int = 1,
) -> list[int]:
    """Root channels to remove: about ``ratio`` of them, least important first, whole
    coupled sets only (else the group's closure removes far more than asked, or every
    channel of a layer, and Torch-Pruning drops the group). With ``round_to``, a layer of at
    least ``2 * round_to`` channels keeps a multiple of ``round_to`` (the nearest, at least
    ``round_to``): SIMD kernels work in blocks of 4-16 channels."""
    n = len(scores)
    keep = max(1, int(n * (1.0 - ratio)))
    if round_to > 1 and n >= 2 * round_to:
        keep = min(n, max(round_to, round(keep / round_to) * round_to))
    n_prune = n - keep
    if n_prune <= 0:
        return []
    order = torch.argsort(scores.float().cpu()).tolist()
    chosen = sorted(order[:n_prune])
    closure = dg.get_pruning_group(root, fn, chosen)[0].idxs
    if len(closure) == len(chosen):
        return chosen
    if key not in partitions:
        partitions[key] = coupled_sets(dg, root, fn, n)
    sets = partitions[key]
    flat = scores.float().cpu()
    ranked = sorted(sets, key=lambda s: float(flat[s].mean()))
    picked: list[int] = []
    for part in ranked[:-1]:  # never the last set: a layer keeps at least one channel
        if len(picked) + len(part) <= n_prune:
            picked += part
    return sorted(picked)
