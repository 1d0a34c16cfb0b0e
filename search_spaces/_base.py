"""The base class every family's model derives from, and example inputs for it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._spec import InputSpec

__all__ = ["AVModel", "example_inputs"]


class AVModel(nn.Module):
    """An audio-visual classifier: ``forward(audio, video, text=None) -> logits (B, classes)``.

    A family's model passes its frozen ``Config`` to ``__init__``, which keeps it as
    ``self.config`` and its ``input_spec`` as ``self.input_spec``; a model without a Config
    sets ``self.input_spec`` itself.
    """

    config: Any
    input_spec: InputSpec

    def __init__(self, config: Any = None) -> None:
        super().__init__()
        if config is not None:
            self.config = config
            self.input_spec = config.input_spec

    def forward(  # pragma: no cover - abstract
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


def example_inputs(
    model_or_spec: AVModel | InputSpec,
    batch_size: int = 1,
    *,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, ...]:
    """Random inputs with the shapes ``input_spec`` declares: ``(audio, video[, text])``.

    Video values lie in [0, 1]; audio features are standard normal; text ids are uniform over
    the vocabulary. ``device="meta"`` gives shape-only tensors for profiling large models.
    """
    spec = model_or_spec if isinstance(model_or_spec, InputSpec) else model_or_spec.input_spec
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn((batch_size, *spec.audio_shape), generator=gen)
    video = torch.rand((batch_size, *spec.video_shape), generator=gen)
    inputs: tuple[torch.Tensor, ...] = (audio, video)
    if spec.text_length > 0:
        vocab = max(spec.vocab_size, 2)
        inputs += (torch.randint(0, vocab, (batch_size, spec.text_length), generator=gen),)
    if device is not None:
        inputs = tuple(t.to(device) for t in inputs)
    return inputs
