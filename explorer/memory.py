"""The memory a command may allocate for one model, checked before anything is allocated.

A configuration inside every field's range can still ask for gigabytes (``kumar:fbp_dim=8192``
holds a 4 GB bilinear layer) and ``--batch-size 1000000000`` for terabytes of example
inputs. ``check_model_memory`` builds the model on the ``meta`` device (shapes only), sizes its
parameters and buffers, the example inputs at the batch size and the activations of one
forward (the profile on fake tensors), and refuses a total over the limit with a one-line
``UsageError``. Training (``training=True``: ``train``, ``prune`` fine-tuning, each search
trial) also holds a gradient and two Adam moments per parameter and keeps every activation of
the forward for the backward, so its estimate counts those instead of one forward's peak.
``check_feature_memory`` sizes a data set's features in a model's input shapes the same way
before a clip is decoded (kumar2025's 90 frames of 224 px make 13.5 MB a clip).
The limit is ``DEFAULT_MAX_MEMORY`` unless ``--max-memory`` (or the
``EXPLORER_MAX_MEMORY`` environment variable, which worker processes inherit) raises it.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from explorer.errors import UsageError

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "ENV_VAR",
    "MAX_BATCH",
    "check_feature_memory",
    "check_model_memory",
    "estimate_memory",
    "max_memory",
    "parse_memory",
    "set_max_memory",
]

DEFAULT_MAX_MEMORY = 2 * 10**9  # bytes: every preset's forward at batch 1 (kumar2025: 0.74 GB)
ENV_VAR = "EXPLORER_MAX_MEMORY"
MAX_BATCH = 2**63 - 1  # PyTorch sizes are int64

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
_UNIT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNIT.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})


def parse_memory(text: str) -> int:
    """``8GB``, ``512MiB``, ``2e9`` (bytes) -> bytes.

    Raises:
        UsageError: not a size, or outside 1 MB .. 1 PB.
    """
    m = _SIZE.match(str(text)) if len(str(text)) <= 40 else None
    if m is None:
        raise UsageError(
            f"--max-memory {text!r} is not a size: write e.g. 8GB, 512MiB or 2e9 (bytes)"
        )
    value = float(m.group(1)) * _UNIT[(m.group(2) or "").lower()]
    if not (math.isfinite(value) and 1e6 <= value <= 1e15):
        raise UsageError(f"--max-memory {text!r} is out of range: give 1MB .. 1PB, e.g. 8GB")
    return int(value)


def max_memory() -> int:
    """The limit in bytes: ``EXPLORER_MAX_MEMORY`` when set, else ``DEFAULT_MAX_MEMORY``."""
    text = os.environ.get(ENV_VAR, "").strip()
    return parse_memory(text) if text else DEFAULT_MAX_MEMORY


def set_max_memory(text: str | None) -> None:
    """Set the limit for this process and the workers it starts (``--max-memory``)."""
    if text:
        os.environ[ENV_VAR] = str(parse_memory(text))


def _human(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def estimate_memory(
    config: Any,
    *,
    batch_size: int = 1,
    activations: bool = True,
    training: bool = False,
    stop_above: float = math.inf,
) -> dict[str, int]:
    """The bytes that building and running ``config`` (a search_spaces Config) at
    ``batch_size`` needs, by part: ``weights`` (parameters and buffers), ``inputs``, and
    ``activations`` (one forward's peak, from a profile on fake tensors) unless
    ``activations=False``.

    ``training=True`` sizes a training step instead: ``gradients`` and ``optimizer`` (one
    gradient and two Adam moments per parameter byte) and, as ``activations``, every tensor
    the forward writes in train mode, which autograd keeps until the backward has used it.

    Nothing is allocated: the model is built on the ``meta`` device. The forward is skipped
    (no ``activations`` part) once the other parts already exceed ``stop_above``.

    Raises:
        UsageError: ``batch_size`` is not an integer >= 1.
    """
    import torch

    import search_spaces as ss

    # the bound keeps the estimate a float (a 400-digit batch overflowed it); no tensor
    # dimension is larger anyway
    if not (isinstance(batch_size, int) and 1 <= batch_size <= MAX_BATCH):
        raise UsageError(
            f"batch size {str(batch_size)[:24]} is invalid: use an integer from 1 to {MAX_BATCH:,}"
        )
    with torch.device("meta"):
        model = ss.build(config)
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    spec = model.input_spec
    per_sample = math.prod(spec.audio_shape) + math.prod(spec.video_shape) + spec.text_length
    parts = {"weights": weights, "inputs": 4 * per_sample * batch_size}  # float32 inputs
    if training:
        trainable = sum(p.numel() * p.element_size() for p in model.parameters())
        parts["gradients"] = trainable
        parts["optimizer"] = 2 * trainable  # Adam/AdamW: exp_avg and exp_avg_sq
    if (activations or training) and sum(parts.values()) <= stop_above:
        from explorer.profiling import profile_model

        with torch.device("meta"):
            example = ss.example_inputs(spec, batch_size)
        profile = profile_model(model.train(training), example, meta=True)
        if training:
            parts["activations"] = sum(op.bytes_written for op in profile.ops)
        else:
            parts["activations"] = profile.peak_activation_bytes
    return parts


def check_model_memory(
    config: Any,
    *,
    batch_size: int = 1,
    what: str = "the model",
    activations: bool = True,
    training: bool = False,
) -> int:
    """Refuse ``config`` (a search_spaces Config) if building and running (or with
    ``training``, training) it at ``batch_size`` would need more than ``max_memory()``;
    returns the estimate in bytes (see ``estimate_memory`` for what it counts).

    Raises:
        UsageError: one line with the estimate by part, the limit and the fix.
    """
    limit = max_memory()
    parts = estimate_memory(
        config,
        batch_size=batch_size,
        activations=activations,
        training=training,
        stop_above=limit,
    )
    total = sum(parts.values())
    if total > limit:
        detail = ", ".join(f"{k} {_human(v)}" for k, v in parts.items())
        raise UsageError(
            f"{what} needs about {_human(total)} ({detail}), over the {_human(limit)} memory "
            "limit: use a smaller configuration or batch, or raise the limit with "
            "--max-memory (e.g. --max-memory 16GB)"
        )
    return total


def check_feature_memory(samples: int, spec: Any, *, dataset: str, stacking: bool = True) -> int:
    """Refuse building (``stacking``: the per-clip arrays and their stacked copy, twice the
    set) or loading the features of ``samples`` samples in ``spec``'s shapes (float32 audio,
    uint8 video frames) when they need more than ``max_memory()``; returns the bytes.

    Raises:
        UsageError: one line with the estimate, the limit and the fixes.
    """
    video = spec.frames * spec.channels * spec.height * spec.width
    per_sample = 4 * math.prod(spec.audio_shape) + video
    need = samples * per_sample * (2 if stacking else 1)
    limit = max_memory()
    if need > limit:
        raise UsageError(
            f"the features of data set {dataset!r} for this model need about {_human(need)} "
            f"({samples} samples of {spec.frames}x{spec.channels}x{spec.height}x{spec.width} "
            f"video frames{', held twice while they are stacked' if stacking else ''}), over "
            f"the {_human(limit)} memory limit: give the model fewer frames or a smaller image "
            "(e.g. MODEL:frames=16,image_size_px=112), or raise the limit with --max-memory "
            "(e.g. --max-memory 16GB)"
        )
    return need
