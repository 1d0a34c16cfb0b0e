"""Structural pruning of a trained network down to a budget (``explorer prune``).

    >>> from explorer.pruning import prune_to_budget
    >>> result = prune_to_budget(model, inputs, budget=parse_budget("1e6flops"))

Channels are removed with Torch-Pruning: its ``DependencyGraph`` finds the groups of coupled
channels, a group importance (magnitude or Taylor) ranks them, and each group loses the same
share of its channels (``BasePruner``'s local ranking, done here because ``BasePruner.step``
picks channels one by one and silently drops a group whose closure would empty a layer).
Torch-Pruning assumes every operator it does not know passes channels through unchanged,
which is wrong for GRUs, attention, Tucker/bilinear cores and custom parameters. So those
parts (``protected_layers``) are traced as single opaque nodes (``_graph``: traced inside, a
GRU made the group search run for minutes), each group is accepted only when every layer it
touches is a plain Conv/Linear/norm/PReLU outside them, and after each step the model must
still run, give the same output shape, and feed the protected parts the same shapes as
before. The protected parts are kept intact and listed in the result. Channels the graph
ties together (GhostNet's ``cat([x1, cheap(x1)])`` with a depthwise ``cheap`` ties channel
``j`` to ``j + n/2``) are removed as whole sets, so a group removes what was asked and never
a layer's last channel.

Pruning runs in ``steps``: each step removes channels until the budgeted quantity reaches a
geometric interpolation between the start and the limit (a bisection on the channel ratio,
tried on copies), then ``finetune`` (if given) trains the model for a few epochs.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from explorer.budget import Budget
from explorer.errors import ExplorerError, UsageError

if TYPE_CHECKING:
    from device_profiles import DeviceProfile, Target

from ._graph import (
    choose_channels,
    cut_broadcast_edges,
    map_feature_concats,
    map_flattens,
    opaque_handlers,
    size_concats,
    traced_as_one_node,
)

__all__ = [
    "IMPORTANCES",
    "PruneResult",
    "PruneStep",
    "model_costs",
    "protected_layers",
    "prune_to_budget",
]

IMPORTANCES = ("magnitude", "taylor")

# Layers Torch-Pruning may change: channel counts only, rebuilt from recorded shapes.
_PRUNABLE = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.PReLU,
)
# The families mark the modules pruning must keep intact with a class attribute
# ``prune_protected = "<reason>"`` and those channels pass through unchanged with
# ``prune_passthrough = True`` (search_spaces/_blocks.py). A user's model without markers
# is read by class name: attention of any kind (not the triplet/frame attention gates, whose
# parameters do not depend on the channels they see), Tucker/bilinear/MFusHER fusion cores.
_USER_PROTECTED_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!triplet)(?<!frame)(attention|attend|reweight)$", re.I), "attention"),
    (re.compile(r"tucker|bilinear|mfusher", re.I), "fusion core"),
)
_FAMILY_PACKAGE = "search_spaces"


def _marked_reason(module: nn.Module) -> str | None:
    """Why ``module`` must stay intact by its class: its marker, or for a user's class its
    name; ``None`` when nothing says so."""
    marker = getattr(type(module), "prune_protected", None)
    if marker:
        return str(marker)
    cls = type(module)
    if cls.__module__.split(".")[0] == _FAMILY_PACKAGE:
        return None  # a family module is protected by its marker alone
    return next((why for p, why in _USER_PROTECTED_NAMES if p.search(cls.__name__)), None)


@dataclass(frozen=True, kw_only=True)
class PruneStep:
    """One pruning step: the channel ratio used and the costs after it (before fine-tuning)."""

    step: int
    channel_ratio: float
    target: float  # the budgeted quantity this step aimed at
    value: float  # the budgeted quantity reached
    params: int
    flops: int
    groups_pruned: int
    groups_skipped: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    """What ``prune_to_budget`` did. The pruned model itself is changed in place."""

    budget: Budget
    start_value: float
    final_value: float
    met: bool
    steps: tuple[PruneStep, ...]
    kept_intact: Mapping[str, str]  # module name -> reason
    skipped_groups: int  # groups Torch-Pruning proposed that touched protected parts

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget.text or self.budget.describe(),
            "metric": self.budget.label,
            "limit": self.budget.limit,
            "start_value": self.start_value,
            "final_value": self.final_value,
            "met": self.met,
            "steps": [s.to_dict() for s in self.steps],
            "kept_intact": dict(self.kept_intact),
            "skipped_groups": self.skipped_groups,
        }


# --- protected parts ---------------------------------------------------------------------


def _output_classes(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int | None:
    spec = getattr(model, "input_spec", None)
    if spec is not None:
        return int(spec.num_classes)
    with torch.no_grad():
        out = model(*inputs)
    return int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.dim() >= 1 else None


def protected_layers(
    model: nn.Module, example_inputs: Sequence[torch.Tensor] = ()
) -> dict[str, str]:
    """Modules pruning must leave intact, name -> reason (outermost protected module only).

    Recurrent layers, embeddings, ``nn.MultiheadAttention``, modules whose class is marked
    ``prune_protected`` (the families' attention and fusion cores; in a user's model without
    markers, a class whose name says attention, Tucker, bilinear or MFusHER), modules holding
    parameters directly (custom layers), grouped convolutions that are not depthwise, and
    classifier heads (a Linear with as many outputs as classes: its inputs may shrink, its
    outputs never).
    """
    classes = _output_classes(model, tuple(example_inputs)) if example_inputs else None
    if classes is None:
        spec = getattr(model, "input_spec", None)
        classes = getattr(spec, "num_classes", None)
    found: dict[str, str] = {}

    def inside(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in found if p)

    for name, module in model.named_modules():
        if not name or inside(name):
            continue
        reason = None
        if isinstance(module, nn.RNNBase):
            reason = "recurrent"
        elif isinstance(module, nn.MultiheadAttention):
            reason = "attention"
        elif isinstance(module, nn.Embedding):
            reason = "embedding"
        elif isinstance(module, nn.modules.conv._ConvNd) and (
            module.transposed
            or (
                module.groups > 1 and not module.groups == module.in_channels == module.out_channels
            )
        ):
            reason = "grouped or transposed convolution"
        elif not isinstance(module, _PRUNABLE):
            reason = _marked_reason(module)
            if reason is None and any(p is not None for p in module._parameters.values()):
                reason = "custom parameters"
        is_head = isinstance(module, nn.Linear) and module.out_features == classes
        if reason is None and classes is not None and is_head:
            reason = "classifier head (outputs kept)"
        if reason is not None:
            found[name] = reason
    return found


def _modules_of(model: nn.Module, names: Mapping[str, str]) -> tuple[set[int], set[int]]:
    """ids of every module inside protected parts, and ids of the head layers."""
    inner: set[int] = set()
    heads: set[int] = set()
    for name, reason in names.items():
        module = model.get_submodule(name)
        if reason.startswith("classifier head"):
            heads.add(id(module))
        else:
            inner.update(id(m) for m in module.modules())
            inner.update(id(p) for p in module.parameters())
    return inner, heads


# --- costs -------------------------------------------------------------------------------


def model_costs(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    device: DeviceProfile | Target | None = None,
) -> dict[str, float]:
    """params, macs, flops, weight_bytes (batch 1) and, with a device (a board, priced on its
    selected target, or a target), predicted latency_ms."""
    from explorer.prediction import predict_latency
    from explorer.profiling import profile_model

    one = tuple(t[:1] for t in inputs)
    with torch.no_grad():
        profile = profile_model(model, one, name="model")
    costs: dict[str, float] = {
        "params": float(profile.params),
        "macs": float(profile.macs),
        "flops": float(profile.flops),
        "weight_bytes": float(profile.weight_bytes),
    }
    if device is not None:
        costs["latency_ms"] = float(predict_latency(profile, device, model=model, inputs=one).ms)
    return costs


def _fast_costs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """The same dense FLOPs as ``profile_model`` (conv/matmul, 2 per MAC) from torch's own
    counter on one real forward: several times cheaper, used inside the ratio search."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*(t[:1] for t in inputs))
    flops = float(counter.get_total_flops())
    params = {id(p): p for p in model.parameters()}.values()
    return {
        "params": float(sum(p.numel() for p in params)),
        "macs": flops / 2,
        "flops": flops,
        "weight_bytes": float(
            sum(p.numel() * p.element_size() for p in params)
            + sum(b.numel() * b.element_size() for b in model.buffers())
        ),
    }


# --- one pruning pass ----------------------------------------------------------------------


def _importance(kind: str):
    import torch_pruning as tp

    if kind == "magnitude":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    raise UsageError(f"--importance {kind!r} is unknown: use {' or '.join(IMPORTANCES)}")


def _group_ok(group, inner: set[int], heads: set[int], dg, custom: Mapping) -> bool:
    import torch_pruning as tp

    plain_ops = (
        tp.ops._ConcatOp,
        tp.ops._SplitOp,
        tp.ops._ReshapeOp,
        tp.ops._ElementWiseOp,
        tp.ops._UnbindOp,
        tp.ops._ExpandOp,
        tp.ops._SliceOp,
        tp.ops._OutputOp,
    )
    for item in group:
        dep = item.dep
        target = dep.target.module
        if isinstance(target, nn.Parameter) or id(target) in inner:
            return False
        if id(target) in heads:
            if dg.is_out_channel_pruning_fn(dep.handler):
                return False
            continue
        if isinstance(target, plain_ops) or type(target) in custom:
            continue
        if not isinstance(target, _PRUNABLE):
            return False
        if (
            isinstance(target, nn.modules.conv._ConvNd)
            and target.groups > 1
            and not (target.groups == target.in_channels == target.out_channels)
        ):
            return False
    return True


def _shape_probe(model: nn.Module, names: Mapping[str, str], inputs) -> dict[str, Any]:
    """Output shape and the input shapes each protected part receives (for verification)."""
    seen: dict[str, Any] = {}
    hooks = []
    for name, reason in names.items():
        if reason.startswith("classifier head"):
            continue  # its inputs may shrink; its output is the model's (checked below)
        module = model.get_submodule(name)

        def hook(mod, args, kwargs, name=name):
            seen[name] = tuple(
                tuple(a.shape) for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)
            )

        hooks.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    seen["<output>"] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    return seen


def _prune_once(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    ratio: float,
    importance: str,
    protected: Mapping[str, str],
    loss_fn: Callable[[nn.Module], torch.Tensor] | None,
    bad_roots: set[str],
    partitions: dict[tuple, list[list[int]]],
    round_to: int = 1,
    check: Callable[[nn.Module], bool] | None = None,
) -> tuple[int, int]:
    """Prune ``model`` in place with a uniform channel ratio; (groups pruned, skipped).

    Every group Torch-Pruning finds is ranked on the unpruned model (as ``BasePruner``
    does), then pruned. Groups rooted at a layer named in ``bad_roots`` are not proposed.
    With ``check``, the model is checked after each group; a group that breaks it is undone
    (its layers' state restored) and its root added to ``bad_roots``. ``partitions`` caches
    the coupled channel sets per root (same structure: same sets).
    """
    import warnings

    names = {id(m): n for n, m in model.named_modules()}
    model.eval()
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        dg, custom = _dependency_graph(model, inputs, protected)
        if importance == "taylor":
            if loss_fn is None:
                raise UsageError("--importance taylor needs data for the gradients: pass --dataset")
            model.zero_grad(set_to_none=True)
            loss_fn(model).backward()
        plans, skipped = _plans(
            model,
            dg,
            custom,
            names=names,
            ratio=ratio,
            importance=importance,
            protected=protected,
            bad_roots=bad_roots,
            partitions=partitions,
            round_to=round_to,
        )
        pruned = 0
        for root, fn, idxs in plans:
            group = dg.get_pruning_group(root, fn, idxs)
            if not dg.check_pruning_group(group):
                skipped += 1
            elif _prune_group(group, model, check=check):
                pruned += 1
            else:
                if id(root) in names:
                    bad_roots.add(names[id(root)])
                skipped += 1
    model.zero_grad(set_to_none=True)
    return pruned, skipped


def _dependency_graph(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], protected: Mapping[str, str]
) -> tuple[Any, dict[type, Any]]:
    """Torch-Pruning's dependency graph of ``model`` with our fixes (feature concatenations,
    flattens, broadcasts), and the custom handlers it was built with: protected modules are
    opaque, ``prune_passthrough`` modules pass channels through."""
    import torch_pruning as tp

    seen_channels: dict[int, int] = {}
    opaque, passthrough = opaque_handlers(seen_channels)
    custom: dict[type, Any] = {}
    for name, reason in protected.items():
        module = model.get_submodule(name)
        if not reason.startswith("classifier head") and not isinstance(module, _PRUNABLE):
            custom[type(module)] = opaque
    for m in model.modules():
        if getattr(type(m), "prune_passthrough", False):
            custom[type(m)] = passthrough
    one_node = [m for m in model.modules() if type(m) in custom]
    with traced_as_one_node(one_node, seen_channels):
        dg = tp.DependencyGraph().build_dependency(
            model, inputs, customized_pruners=custom or None, verbose=False
        )
    map_feature_concats(dg)
    map_flattens(dg)
    size_concats(dg)
    cut_broadcast_edges(dg)
    return dg, custom


def _plans(
    model: nn.Module,
    dg: Any,
    custom: Mapping[type, Any],
    *,
    names: Mapping[int, str],
    ratio: float,
    importance: str,
    protected: Mapping[str, str],
    bad_roots: set[str],
    partitions: dict[tuple, list[list[int]]],
    round_to: int,
) -> tuple[list[tuple[Any, Any, list[int]]], int]:
    """(root, handler, channels to remove) for every allowed group, ranked on the unpruned
    model, and the number of groups skipped (they touch protected parts)."""
    import torch_pruning as tp

    inner, heads = _modules_of(model, protected)
    ignored = [
        sub for n in (*protected, *sorted(bad_roots)) for sub in model.get_submodule(n).modules()
    ]
    imp = _importance(importance)
    plans = []
    skipped = 0
    for group in dg.get_all_groups(
        ignored_layers=ignored, root_module_types=(tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR)
    ):
        if not _group_ok(group, inner, heads, dg, custom):
            skipped += 1
            continue
        root, fn = group[0].dep.target.module, group[0].dep.handler
        scores = imp(group)
        if scores is None or len(scores) != dg.get_out_channels(root):
            continue
        key = (names.get(id(root)), len(scores))
        idxs = choose_channels(
            dg, root, fn, scores, ratio=ratio, key=key, partitions=partitions, round_to=round_to
        )
        if idxs:
            plans.append((root, fn, idxs))
    return plans, skipped


def _prune_group(
    group: Any, model: nn.Module, *, check: Callable[[nn.Module], bool] | None
) -> bool:
    """Prune one group; with ``check``, undo it when the model fails the check afterwards.
    True when the group stays pruned."""
    if check is None:
        group.prune()
        return True
    targets = {id(item.dep.target.module): item.dep.target.module for item in group}
    saved = {k: copy.copy(m.__dict__) for k, m in targets.items()}
    saved_params = {
        k: (dict(m._parameters), dict(m._buffers))
        for k, m in targets.items()
        if isinstance(m, nn.Module)
    }
    group.prune()
    if check(model):
        return True
    for k, m in targets.items():  # undo: TP replaces attributes, it does not mutate
        m.__dict__.clear()
        m.__dict__.update(saved[k])
        if k in saved_params:
            m._parameters = dict(saved_params[k][0])
            m._buffers = dict(saved_params[k][1])
    return False


# --- the budget loop -----------------------------------------------------------------------


def prune_to_budget(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    budget: Budget,
    device: DeviceProfile | None = None,
    importance: str = "magnitude",
    steps: int = 2,
    finetune: Callable[[nn.Module, int], None] | None = None,
    loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
    max_ratio: float = 0.9,
    round_to: int = 1,
) -> tuple[nn.Module, PruneResult]:
    """Prune ``model`` until ``budget`` holds; returns the pruned model and what was done.

    Args:
        model: the trained network (a copy is pruned; the argument is left as it was).
        example_inputs: one batch of inputs ``(audio, video[, text])`` for tracing.
        budget: FLOPs, MACs, params, weight bytes or predicted latency (needs ``device``).
        device: a ``DeviceProfile`` for latency budgets and predicted latencies.
        importance: ``magnitude`` (L2 of each channel group) or ``taylor`` (needs ``loss_fn``).
        steps: pruning steps; ``finetune(model, step)`` runs after each one.
        loss_fn: ``loss_fn(model) -> scalar`` on a training batch, for Taylor importance.
        max_ratio: the largest share of a layer's channels one step may remove.
        round_to: layers of at least ``2 * round_to`` channels keep a multiple of it (8 suits
            x86 and ARM kernels; 1: any count).

    Raises:
        UsageError: bad steps/importance, or a latency budget without a device.
        ExplorerError: the budget cannot be met by pruning the prunable parts, or pruning
            broke the model (a dependency Torch-Pruning did not see).
    """
    device = _check_arguments(
        budget=budget, device=device, importance=importance, steps=steps, round_to=round_to
    )
    inputs = tuple(example_inputs)
    model = copy.deepcopy(model).eval()
    protected = protected_layers(model, inputs)
    reference = _shape_probe(model, protected, inputs)
    start, value = _meter(model, inputs, budget=budget, device=device)
    current = start
    done: list[PruneStep] = []
    bad_roots: set[str] = set()
    for step in range(1, steps + 1):
        if current <= budget.limit:
            break
        remaining = steps - step + 1
        # geometric path from the current value to the limit; the last step aims at the limit
        target = current * (budget.limit / current) ** (1.0 / remaining)
        model, record = _step(
            model,
            inputs,
            step=step,
            target=target,
            budget=budget,
            device=device,
            value=value,
            importance=importance,
            protected=protected,
            loss_fn=loss_fn,
            max_ratio=max_ratio,
            round_to=round_to,
            bad_roots=bad_roots,
            reference=reference,
        )
        current = record.value
        done.append(record)
        if finetune is not None:
            finetune(model, step)
    model.eval()
    kept = dict(protected)
    for name in sorted(bad_roots):
        kept.setdefault(name, "outputs kept: pruning them breaks a dependency Torch-Pruning misses")
    return model, PruneResult(
        budget=budget,
        start_value=start,
        final_value=current,
        met=current <= budget.limit,
        steps=tuple(done),
        kept_intact=kept,
        skipped_groups=sum(s.groups_skipped for s in done),
    )


def _step(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    step: int,
    target: float,
    budget: Budget,
    device: DeviceProfile | None,
    value: Callable[[nn.Module], float],
    importance: str,
    protected: Mapping[str, str],
    loss_fn: Callable[[nn.Module], torch.Tensor] | None,
    max_ratio: float,
    round_to: int,
    bad_roots: set[str],
    reference: Mapping[str, Any],
) -> tuple[nn.Module, PruneStep]:
    """One pruning step: the smallest channel ratio that reaches ``target``, checked, and
    its record (costs after it, before fine-tuning).

    Raises:
        ExplorerError: the largest ratio does not reach the target, or pruning broke the model.
    """
    candidate, ratio, counts = _search_ratio(
        model,
        inputs,
        target=target,
        value=value,
        importance=importance,
        protected=protected,
        loss_fn=loss_fn,
        max_ratio=max_ratio,
        round_to=round_to,
        bad_roots=bad_roots,
        reference=reference,
    )
    if candidate is None:
        raise ExplorerError(
            f"cannot meet budget {budget.describe()}: pruning {max_ratio:.0%} of every "
            f"prunable layer's channels still leaves {budget.label}="
            f"{counts[2]:.4g}; the parts kept intact "
            f"({', '.join(sorted(protected)) or 'none'}) "
            "cost too much: use a larger budget or a smaller model"
        )
    _verify(candidate, protected, inputs, reference)
    costs = model_costs(candidate, inputs, device=device)
    return candidate, PruneStep(
        step=step,
        channel_ratio=ratio,
        target=target,
        value=costs[budget.metric],
        params=int(costs["params"]),
        flops=int(costs["flops"]),
        groups_pruned=counts[0],
        groups_skipped=counts[1],
    )


def _check_arguments(
    *, budget: Budget, device: DeviceProfile | None, importance: str, steps: int, round_to: int
) -> DeviceProfile | None:
    """Refuse bad arguments; the device that prices a latency budget (the budget's own
    ``@device`` when it names one)."""
    if importance not in IMPORTANCES:
        raise UsageError(f"--importance {importance!r} is unknown: use {' or '.join(IMPORTANCES)}")
    if not (isinstance(steps, int) and 1 <= steps <= 50):
        raise UsageError(f"--steps {steps!r} is invalid: use an integer in 1..50")
    if not (isinstance(round_to, int) and 1 <= round_to <= 64):
        raise UsageError(f"--round-to {round_to!r} is invalid: use an integer in 1..64, e.g. 8")
    if budget.metric == "latency_ms" and device is None:
        raise UsageError(f"budget {budget.text!r} is a latency: pass --device")
    if budget.metric == "latency_ms" and budget.device is not None:
        import device_profiles

        device = device_profiles.get(budget.device)
    return device


def _meter(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    budget: Budget,
    device: DeviceProfile | None,
) -> tuple[float, Callable[[nn.Module], float]]:
    """The budgeted quantity of the unpruned model, and a fast way to measure it on a
    candidate (torch's FLOP counter plus a constant offset, or the predicted latency)."""
    start = model_costs(model, inputs, device=device)[budget.metric]
    # torch's counter has no rule for fused RNN ops; those layers are kept intact, so their
    # cost is a constant offset between the two counts
    offset = (
        0.0 if budget.metric == "latency_ms" else start - _fast_costs(model, inputs)[budget.metric]
    )

    def value(m: nn.Module) -> float:
        if budget.metric == "latency_ms":
            return model_costs(m, inputs, device=device)["latency_ms"]
        return _fast_costs(m, inputs)[budget.metric] + offset

    return start, value


def _search_ratio(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    target: float,
    value: Callable[[nn.Module], float],
    importance: str,
    protected: Mapping[str, str],
    loss_fn,
    max_ratio: float,
    round_to: int,
    bad_roots: set[str],
    reference: Mapping[str, Any],
    iterations: int = 6,
) -> tuple[nn.Module | None, float, tuple[int, int, float]]:
    """The smallest channel ratio (bisection on copies) whose pruned model is <= target."""
    partitions: dict[tuple, list[list[int]]] = {}

    def healthy(m: nn.Module) -> bool:
        try:
            return _shape_probe(m, protected, inputs) == reference
        except Exception:  # a broken graph raises anything: shape, index, runtime errors
            return False

    def attempt(ratio: float) -> tuple[nn.Module, float, tuple[int, int]]:
        kwargs = dict(
            ratio=ratio,
            round_to=round_to,
            importance=importance,
            protected=protected,
            loss_fn=loss_fn,
            bad_roots=bad_roots,
            partitions=partitions,
        )
        trial = copy.deepcopy(model)
        counts = _prune_once(trial, inputs, **kwargs)
        if not healthy(trial):
            # a dependency Torch-Pruning did not see: redo group by group, undoing (and
            # remembering) each group that breaks the model
            trial = copy.deepcopy(model)
            counts = _prune_once(trial, inputs, check=healthy, **kwargs)
        return trial, value(trial), counts

    # the cost is not always monotone in the ratio near the top (a broken graph at a high
    # ratio leaves groups unpruned), so bracket from a few ratios downwards
    best = None
    lowest = math.inf
    for high in (max_ratio, 0.75 * max_ratio, 0.55 * max_ratio):
        top, top_value, top_counts = attempt(high)
        lowest = min(lowest, top_value)
        if top_value <= target:
            best, best_ratio, best_counts = top, high, top_counts
            break
    if best is None:
        return None, max_ratio, (*top_counts, lowest)
    low = 0.0
    for _ in range(iterations):
        mid = (low + high) / 2
        trial, v, counts = attempt(mid)
        if v <= target:
            best, best_ratio, best_counts, high = trial, mid, counts, mid
        else:
            low = mid
        if high - low < 0.02:
            break
    return best, best_ratio, (*best_counts, value(best))


def _verify(
    model: nn.Module, protected: Mapping[str, str], inputs, reference: Mapping[str, Any]
) -> None:
    try:
        now = _shape_probe(model, protected, inputs)
    except Exception as exc:  # the pruned graph no longer runs
        raise ExplorerError(
            f"pruning broke the model ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
            "a layer needs to be kept intact: please report the model"
        ) from None
    changed = [k for k in reference if now.get(k) != reference[k]]
    if changed:
        raise ExplorerError(
            f"pruning changed the shapes reaching {', '.join(changed)}; "
            "those parts must be kept intact: please report the model"
        )
