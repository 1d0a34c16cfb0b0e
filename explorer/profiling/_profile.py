"""``profile_model``: one forward under the recorder, on fake tensors unless told otherwise."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from explorer.errors import ExplorerError, UsageError

from ._recorder import Recorder
from ._rnn import is_counted_rnn, shape_only_forward
from ._types import ModelProfile

__all__ = ["profile_model"]


def profile_model(
    model: nn.Module,
    example_inputs: Any,
    *,
    name: str = "model",
    meta: bool | None = None,
) -> ModelProfile:
    """Count one forward of ``model`` on ``example_inputs``, operator by operator.

    Args:
        model: the network; its train/eval mode is kept (the forward runs under ``no_grad``).
        example_inputs: a tensor or a tuple of positional inputs (the batch size is theirs).
        name: the label stored in the profile.
        meta: ``True`` runs on fake tensors (shapes only, no arithmetic, no activation memory;
            the same device as the real tensors, so PyTorch picks the same kernels and the counts
            are identical to a real run); ``False`` runs the real forward; ``None`` (default)
            uses fake tensors and falls back to a real run for a model whose forward needs
            data-dependent values (e.g. ``.item()``), with a warning.

    Returns:
        A ``ModelProfile`` with per-operator rows and totals.

    Raises:
        UsageError: ``model`` is not an ``nn.Module``.
        ExplorerError: ``meta=True`` and the forward cannot run on fake tensors.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(
            f"profile_model needs an nn.Module, got {type(model).__name__}: pass the model object"
        )
    inputs = (
        tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    )
    # Under torch.inference_mode() PyTorch dispatches conv2d, linear and batch_norm whole,
    # not as the aten operators the counting rules know: every count would be zero.
    with _padded_transformers(model), torch.inference_mode(False):
        try:
            recorder, used_meta = _run(model, inputs, name=name, meta=meta)
        except Exception as exc:
            _raise_if_inputs_wrong(model, inputs, name=name, cause=exc)
            raise
    return _summarise(model, inputs, recorder, name=name, meta=used_meta)


def _shapes(inputs: Any) -> str:
    def one(x: Any) -> str:
        if isinstance(x, torch.Tensor):
            return "x".join(str(int(d)) for d in x.shape) or "scalar"
        if isinstance(x, (list, tuple)):
            return "[" + ", ".join(one(v) for v in x) + "]"
        return type(x).__name__

    return ", ".join(one(x) for x in inputs)


def _raise_if_inputs_wrong(model: nn.Module, inputs: tuple[Any, ...], *, name: str, cause) -> None:
    """Raise ``UsageError`` when ``model`` fails on ``inputs`` with no recorder at all: then
    the inputs do not fit the model (wrong shapes, count or types), not the profiler."""
    if isinstance(cause, ExplorerError):
        return
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:
        spec = getattr(model, "input_spec", None)
        if spec is not None:
            import search_spaces as ss

            want = f"it takes {_shapes(ss.example_inputs(spec, 1))} (batch 1)"
        else:
            want = "give the example inputs its forward takes, as a tuple of positional arguments"
        reason = " ".join(str(exc).split())[:200]
        raise UsageError(
            f"{name!r} cannot run on the example inputs of shapes {_shapes(inputs)} "
            f"({type(exc).__name__}: {reason}); {want}"
        ) from None


@contextlib.contextmanager
def _padded_transformers(model: nn.Module) -> Iterator[None]:
    """Turn off ``nn.TransformerEncoder``'s nested-tensor path while profiling.

    In eval with a ``src_key_padding_mask`` it packs the unpadded tokens into a nested tensor,
    which fake tensors cannot hold and which has no shape to count bytes by; the profile
    counts the padded forward instead (what runs in training, on export and on the boards'
    runtimes), an upper bound of the nested path's work.
    """
    changed = [
        m
        for m in model.modules()
        if isinstance(m, nn.TransformerEncoder) and getattr(m, "use_nested_tensor", False)
    ]
    for m in changed:
        m.use_nested_tensor = False
    try:
        yield
    finally:
        for m in changed:
            m.use_nested_tensor = True


def _run(
    model: nn.Module, inputs: tuple[Any, ...], *, name: str, meta: bool | None
) -> tuple[Recorder, bool]:
    used_meta = meta is not False
    if meta is False:
        recorder = _run_real(model, inputs)
    else:
        try:
            recorder = _run_fake(model, inputs)
        except Exception as exc:
            if meta is True:
                raise ExplorerError(
                    f"cannot profile {name!r} on fake tensors ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}): run with meta=False"
                ) from exc
            used_meta = False
            recorder = _run_real(model, inputs)  # raises first when the inputs are wrong
            warnings.warn(
                f"profiling {name!r} on fake tensors failed ({type(exc).__name__}); "
                "counted the real forward instead",
                RuntimeWarning,
                stacklevel=3,
            )
    return recorder, used_meta


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


def _run_real(model: nn.Module, inputs: tuple[Any, ...]) -> Recorder:
    recorder = Recorder(model, weights=_weights(model))
    recorder.track(pytree.tree_leaves(inputs))
    recorder.attach(model)
    try:
        with torch.no_grad(), recorder:
            model(*inputs)
    finally:
        recorder.detach()
    return recorder


@contextlib.contextmanager
def _quiet_fake_tensor_log() -> Iterator[None]:
    """FakeTensorMode logs an ERROR line for an op that fails on fake tensors; the failure
    is handled here (a real run, or a one-line error), so the line is noise."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_fake(model: nn.Module, inputs: tuple[Any, ...]) -> Recorder:
    from torch._subclasses.fake_tensor import FakeTensorMode

    # allow_non_fake_inputs: plain tensor attributes (cached masks, constants) become fake on
    # the fly instead of failing.
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    fake_state = {k: fake_mode.from_tensor(v) for k, v in state.items()}
    fake_inputs = pytree.tree_map_only(torch.Tensor, fake_mode.from_tensor, inputs)
    recorder = Recorder(model, weights=fake_state.values())
    recorder.track(pytree.tree_leaves(fake_inputs))
    recorder.attach(model)
    # The RNNs' time-step loops cost milliseconds per step on fake tensors and their counts
    # come from _rnn.py anyway: skip the loop.
    rnns = [m for m in model.modules() if is_counted_rnn(m) and "forward" not in vars(m)]
    for m in rnns:
        m.forward = shape_only_forward(m)
    try:
        with torch.no_grad(), _quiet_fake_tensor_log(), fake_mode, recorder:
            torch.func.functional_call(model, fake_state, fake_inputs, strict=False)
    finally:
        recorder.detach()
        for m in rnns:
            del m.forward
    return recorder


def _summarise(
    model: nn.Module, inputs: Sequence[Any], recorder: Recorder, *, name: str, meta: bool
) -> ModelProfile:
    ops = tuple(recorder.records)
    seen: set[int] = set()
    weight_bytes = 0
    for t in _weights(model):
        if id(t) not in seen:
            seen.add(id(t))
            weight_bytes += t.numel() * t.element_size()
    tensors = [t for t in pytree.tree_leaves(tuple(inputs)) if isinstance(t, torch.Tensor)]
    batch = int(tensors[0].shape[0]) if tensors and tensors[0].dim() else 1
    macs = sum(op.macs for op in ops)
    return ModelProfile(
        model=name,
        params=sum(p.numel() for p in model.parameters()),
        macs=macs,
        flops=2 * macs,
        elementwise_flops=sum(op.elementwise_flops for op in ops),
        weight_bytes=weight_bytes,
        traffic_bytes=sum(op.traffic_bytes for op in ops),
        peak_activation_bytes=recorder.peak_bytes,
        batch_size=batch,
        ops=ops,
        input_shapes=tuple(tuple(int(s) for s in t.shape) for t in tensors),
        uncounted_ops=tuple(sorted(recorder.uncounted)),
        meta=meta,
    )
