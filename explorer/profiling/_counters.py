"""Cross-checks against the external counters: PyTorch's ``FlopCounterMode``, fvcore, thop, NNI.

Each counter runs the real forward the way its users run it. fvcore, thop and NNI's
``count_flops_params`` report MACs (and call them FLOPs); ``FlopCounterMode`` reports FLOPs.
NNI counts per sample (one element of the batch), so its total is multiplied by the profile's
batch size. Every total here is converted to FLOPs
(2 per MAC) and compared with our dense ``flops``; more than 1 % apart is flagged. ``skipped``
names what the counter did not count: for torch, the aten ops we counted that it has no rule
for; for fvcore, its ``unsupported_ops``; for thop, module types without a rule that hold
parameters directly or do work as leaves; for NNI, module types outside its table (it matches
exact types: conv, linear, RNN/GRU/LSTM and their cells) that hold parameters directly.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from explorer.errors import MissingExtraError, UsageError

from ._types import ModelProfile

__all__ = ["COUNTERS", "CounterResult", "cross_check", "run_counter"]

COUNTERS = ("torch", "fvcore", "thop", "nni")
# What ``cross_check`` runs when no counter is named: the ones the dev install has (NNI 3.0 is
# an extra of its own: it pins old packages and adds ~300 MB).
_DEFAULT_COUNTERS = ("torch", "fvcore", "thop")
_TOLERANCE = 0.01


@dataclass(frozen=True, kw_only=True)
class CounterResult:
    """One external counter's total on a model, compared with ours."""

    name: str
    flops: int  # the counter's total converted to FLOPs (2 per MAC)
    macs: int  # the same total in MACs
    params: int | None  # the counter's parameter count, when it reports one
    skipped: tuple[str, ...]  # ops or module types it did not count
    ours_flops: int
    missed_macs: int  # our dense MACs the counter did not count (per op or per module)
    seconds: float  # wall time of the counter's run

    @property
    def relative_diff(self) -> float:
        """(theirs − ours) / ours on the totals; negative when the counter misses work."""
        return (self.flops - self.ours_flops) / self.ours_flops if self.ours_flops else 0.0

    @property
    def differs(self) -> bool:
        return abs(self.relative_diff) > _TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "flops": self.flops,
            "macs": self.macs,
            "params": self.params,
            "skipped": list(self.skipped),
            "ours_flops": self.ours_flops,
            "relative_diff": self.relative_diff,
            "differs": self.differs,
            "missed_macs": self.missed_macs,
            "seconds": self.seconds,
        }


def parse_counters(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"torch,fvcore"`` → ``("torch", "fvcore")``; unknown names raise ``UsageError``."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    for n in names:
        if n not in COUNTERS:
            raise UsageError(
                f"unknown counter {n!r} in --counters: choose from {', '.join(COUNTERS)} "
                "(comma-separated)"
            )
    return tuple(dict.fromkeys(names))


def cross_check(
    model: nn.Module,
    example_inputs: Any,
    profile: ModelProfile,
    *,
    counters: Sequence[str] = _DEFAULT_COUNTERS,
) -> tuple[CounterResult, ...]:
    """Run each named counter on ``model`` and compare its total with ``profile``.

    Raises:
        UsageError: an unknown counter name.
        MissingExtraError: fvcore or thop is not installed (extra ``counters``), or NNI
            (extra ``nni``).
    """
    inputs = (
        tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    )
    return tuple(
        run_counter(name, model, inputs, profile=profile) for name in parse_counters(counters)
    )


def run_counter(
    name: str, model: nn.Module, inputs: tuple[Any, ...], *, profile: ModelProfile
) -> CounterResult:
    """Run one external counter (``torch``, ``fvcore``, ``thop`` or ``nni``) on ``model``."""
    runner: Callable[..., tuple[int, int | None, tuple[str, ...], int]] = {
        "torch": _torch,
        "fvcore": _fvcore,
        "thop": _thop,
        "nni": _nni,
    }[name]
    start = time.perf_counter()
    macs, params, skipped, missed = runner(model, inputs, profile)
    return CounterResult(
        name=name,
        flops=2 * int(macs),
        macs=int(macs),
        params=params,
        skipped=skipped,
        ours_flops=profile.flops,
        missed_macs=int(missed),
        seconds=time.perf_counter() - start,
    )


def _missed_by_module(model: nn.Module, profile: ModelProfile, theirs: dict[str, float]) -> int:
    """Σ over modules of max(0, our MACs − theirs), both exclusive of child modules.

    Totals hide misses (fvcore adds batch-norm work we count as elementwise, which can cancel
    a GRU it skips), so the comparison is per module, where both sides use the same names.
    """
    ours: dict[str, int] = {}
    for op in profile.ops:
        ours[op.module] = ours.get(op.module, 0) + op.macs
    return sum(max(0, macs - int(theirs.get(path, 0))) for path, macs in ours.items())


def _exclusive(model: nn.Module, inclusive: dict[str, float]) -> dict[str, float]:
    children: dict[str, list[str]] = {}
    for path, _ in model.named_modules():
        if path:
            parent = path.rpartition(".")[0]
            children.setdefault(parent, []).append(path)
    return {
        path: total - sum(inclusive.get(c, 0) for c in children.get(path, ()))
        for path, total in inclusive.items()
    }


def _torch(model: nn.Module, inputs: tuple[Any, ...], profile: ModelProfile):
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    flops = counter.get_total_flops()
    # It counts per aten op with the same formulas as ours, so what it misses is the ops it
    # has no rule for. Our RNN rows are whole layers: on CPU it sees a GRU's addmm's (counted)
    # but not mkldnn_rnn_layer, so an LSTM is missed.
    known = {str(getattr(k, "overloadpacket", k)) for k in flop_registry}
    missed_ops = [
        op
        for op in profile.ops
        if op.macs
        and (
            (op.kind != "rnn" and op.op.rsplit(".", 1)[0] not in known)
            or (op.kind == "rnn" and op.module_type == "LSTM")
        )
    ]
    skipped = sorted(
        {op.op if op.kind != "rnn" else f"{op.module_type} ({op.module})" for op in missed_ops}
    )
    return flops // 2, None, tuple(skipped), sum(op.macs for op in missed_ops)


def _fvcore(model: nn.Module, inputs: tuple[Any, ...], profile: ModelProfile):
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:
        raise MissingExtraError("fvcore", "counters", "the fvcore cross-check") from None
    analysis = FlopCountAnalysis(model, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    with torch.no_grad():
        macs = analysis.total()
        by_module = analysis.by_module()
    skipped = tuple(f"{op} ×{n}" for op, n in sorted(analysis.unsupported_ops().items()))
    missed = _missed_by_module(model, profile, _exclusive(model, dict(by_module)))
    return macs, None, skipped, missed


def _thop(model: nn.Module, inputs: tuple[Any, ...], profile: ModelProfile):
    try:
        import thop
        from thop.profile import register_hooks
    except ImportError:
        raise MissingExtraError("thop", "counters", "the thop cross-check") from None
    # thop adds buffers and hooks to every module and switches to eval: work on a copy.
    clone = copy.deepcopy(model)
    macs, params, layers = thop.profile(clone, inputs=inputs, verbose=False, ret_layer_info=True)
    inclusive: dict[str, float] = {"": float(macs)}

    def walk(prefix: str, tree: dict[str, Any]) -> None:
        for name, (ops, _, children) in tree.items():
            path = f"{prefix}.{name}" if prefix else name
            inclusive[path] = float(ops)
            walk(path, children)

    walk("", layers)
    theirs = _exclusive(model, inclusive)
    skipped = set()
    for module in model.modules():
        if type(module) in register_hooks or isinstance(module, nn.Sequential | nn.ModuleList):
            continue
        own_params = any(True for _ in module.parameters(recurse=False))
        is_leaf = not any(True for _ in module.children())
        if own_params:
            skipped.add(f"{type(module).__name__} (parameters held directly)")
        elif is_leaf and module is not model:
            skipped.add(type(module).__name__)
    missed = _missed_by_module(model, profile, theirs)
    return int(macs), int(params), tuple(sorted(skipped)), missed


def _nni(model: nn.Module, inputs: tuple[Any, ...], profile: ModelProfile):
    try:
        from nni.compression.utils.counter import ModelProfiler, count_flops_params
    except ImportError:
        raise MissingExtraError("nni", "nni", "the NNI cross-check") from None
    # Its hooks sit on modules of exactly these types (subclasses such as the out_proj of
    # nn.MultiheadAttention are not counted) and are removed afterwards; it restores the mode.
    counted = set(ModelProfiler().ops)
    _, params, results = count_flops_params(model, inputs, verbose=False)
    batch = max(1, profile.batch_size)  # NNI counts one sample; ours is the whole batch
    theirs: dict[str, float] = {}
    for row in results:
        theirs[row["name"]] = theirs.get(row["name"], 0) + batch * int(row["flops"])
    skipped = {
        f"{type(m).__name__} (parameters held directly)"
        for m in model.modules()
        if type(m) not in counted and any(True for _ in m.parameters(recurse=False))
    }
    missed = _missed_by_module(model, profile, theirs)
    return int(sum(theirs.values())), int(params), tuple(sorted(skipped)), missed
