"""``ding``: the lightweight spatio-temporal CNN of Ding, Tang and Lu (2025),
Lightweight Spatio-Temporal Convolutional Neural Network for Audio-Visual Emotion Recognition.

One grayscale 64×64 face crop goes through a 3-layer 2D CNN (3×3 valid convs → 16, 32, 64, each
ReLU + MaxPool 2, dropout, flatten → 2304); the clip segment's 40 MFCCs, averaged over time, go
through a 2-layer 1D CNN (k5 valid convs → 16, 32, each ReLU + MaxPool 2, dropout, flatten → 224).
The two embeddings are concatenated (model-level fusion) → Dense 16 ReLU → Dropout → Dense 8.
The defaults of ``Config`` are the paper's RAVDESS model, so ``ding`` alone equals ``ding2025``:
exactly 66,584 parameters and 7,162,368 MACs (14,324,736 FLOPs = 2·MACs).

Choices the paper leaves open (each is a ``Config`` field):
- ``frames``: the paper treats each of the six frames of a clip (with its audio segment) as one
  sample, so ``frames=1``. With ``frames > 1`` each frame is encoded by the same CNN and the
  embeddings are averaged over time before fusion (our extension, for the search space).
- ``padding``: the paper's convs are unpadded (``"valid"``); ``"same"`` keeps the spatial size
  so deeper stacks fit small images.
- ``embedding``: the paper flattens (it argues against global pooling); ``"global_avg"`` is the
  cheap alternative a designer would try.
- ``dropout``: 0.3 / 0.4 / 0.5 for MEAD / RAVDESS / SAVEE; the default is RAVDESS's 0.4.
- The softmax of the paper is left out: ``forward`` returns logits for cross-entropy.

Parts for hybrid (clean interfaces, reusable by other families):
- ``DingVisualEncoder``: per-frame images ``(N, C, H, W) -> (N, out_dim)``.
- ``DingAudioEncoder``: averaged MFCCs ``(B, n_mfcc) -> (B, out_dim)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ._base import AVModel
from ._blocks import check_int_tuple, make_activation
from ._registry import Published, register_family
from ._spec import Choice, ConfigError, FloatRange, InputSpec, check_choice, check_range

__all__ = [
    "PRESETS",
    "SPACE",
    "Config",
    "DingAudioEncoder",
    "DingModel",
    "DingVisualEncoder",
    "build",
]

ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "hardswish")
PADDINGS = ("valid", "same")
EMBEDDINGS = ("flatten", "global_avg")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Hyper-parameters of a ``ding`` model; the defaults are the paper's RAVDESS model.

    Fields:
        num_classes: output classes (8 for RAVDESS/MEAD, 7 for SAVEE).
        image_size_px: side of the square face crop (paper: 64).
        image_channels: 1 = grayscale (paper), 3 = RGB.
        frames: face frames per sample; >1 averages the per-frame embeddings (extension).
        conv_channels: output channels of each 2D conv stage (one conv + pool per stage).
        conv_kernel: square kernel of every 2D conv (paper: 3; its ablation spans 2..12).
        n_mfcc: MFCC coefficients, the length of the audio sequence (paper: 40).
        audio_channels: output channels of each 1D conv stage.
        audio_kernel: kernel of every 1D conv (paper: 5).
        padding: ``"valid"`` (paper) or ``"same"`` for every conv.
        embedding: ``"flatten"`` (paper) or ``"global_avg"`` pooling before fusion.
        dense_units: width of the fusion dense layer (paper: 16; 14 for SAVEE).
        dropout: rate of the three dropout layers (paper: 0.3/0.4/0.5).
        activation: non-linearity after every conv and the fusion dense layer (paper: relu).
    """

    family: ClassVar[str]

    num_classes: int = 8
    image_size_px: int = 64
    image_channels: int = 1
    frames: int = 1
    conv_channels: tuple[int, ...] = (16, 32, 64)
    conv_kernel: int = 3
    n_mfcc: int = 40
    audio_channels: tuple[int, ...] = (16, 32)
    audio_kernel: int = 5
    padding: str = "valid"
    embedding: str = "flatten"
    dense_units: int = 16
    dropout: float = 0.4
    activation: str = "relu"

    def __post_init__(self) -> None:
        own = "ding.Config"
        check_range(own, "num_classes", self.num_classes, 2, 1000)
        check_range(own, "image_size_px", self.image_size_px, 8, 512)
        check_choice(own, "image_channels", self.image_channels, (1, 3))
        check_range(own, "frames", self.frames, 1, 64)
        check_int_tuple(
            own,
            "conv_channels",
            self.conv_channels,
            low=1,
            high=2048,
            max_len=6,
            example="(16, 32, 64)",
        )
        check_range(own, "conv_kernel", self.conv_kernel, 1, 12)
        check_range(own, "n_mfcc", self.n_mfcc, 8, 128)
        check_int_tuple(
            own,
            "audio_channels",
            self.audio_channels,
            low=1,
            high=2048,
            max_len=5,
            example="(16, 32, 64)",
        )
        check_range(own, "audio_kernel", self.audio_kernel, 1, 15)
        check_choice(own, "padding", self.padding, PADDINGS)
        check_choice(own, "embedding", self.embedding, EMBEDDINGS)
        check_range(own, "dense_units", self.dense_units, 1, 4096)
        check_range(own, "dropout", self.dropout, 0.0, 0.9, integer=False)
        check_choice(own, "activation", self.activation, ACTIVATIONS)
        if self.padding == "same":
            for name in ("conv_kernel", "audio_kernel"):
                if getattr(self, name) % 2 == 0:
                    raise ConfigError(
                        f"{own}.{name}={getattr(self, name)} is invalid with padding='same': "
                        "must be odd (1, 3, 5, ...); use an odd kernel or padding='valid'"
                    )
        # Each stage is conv (valid: size - k + 1) then MaxPool 2 (floor): the input must
        # still be at least one pixel after the last stage.
        sizes = stage_sizes(
            self.image_size_px, len(self.conv_channels), self.conv_kernel, self.padding
        )
        if sizes[-1] < 1:
            raise ConfigError(
                f"{own}.conv_channels={self.conv_channels!r} is invalid with image_size_px="
                f"{self.image_size_px}, conv_kernel={self.conv_kernel}, padding="
                f"{self.padding!r}: the feature map shrinks to nothing (sizes {sizes}); "
                "use fewer stages, a larger image, a smaller kernel or padding='same'"
            )
        lengths = stage_sizes(
            self.n_mfcc, len(self.audio_channels), self.audio_kernel, self.padding
        )
        if lengths[-1] < 1:
            raise ConfigError(
                f"{own}.audio_channels={self.audio_channels!r} is invalid with n_mfcc="
                f"{self.n_mfcc}, audio_kernel={self.audio_kernel}, padding={self.padding!r}: "
                f"the sequence shrinks to nothing (lengths {lengths}); use fewer stages, more "
                "MFCCs, a smaller kernel or padding='same'"
            )

    @property
    def input_spec(self) -> InputSpec:
        """What the model built from this config consumes."""
        return InputSpec(
            audio_kind="mfcc_mean",
            audio_shape=(self.n_mfcc,),
            frames=self.frames,
            channels=self.image_channels,
            height=self.image_size_px,
            width=self.image_size_px,
            num_classes=self.num_classes,
        )


def stage_sizes(size: int, stages: int, kernel: int, padding: str) -> list[int]:
    """Spatial size (or sequence length) after each conv + MaxPool-2 stage."""
    sizes = []
    for _ in range(stages):
        conv_out = size if padding == "same" else size - kernel + 1
        size = conv_out // 2 if conv_out >= 1 else 0
        sizes.append(size)
        if size < 1:
            break
    return sizes


# --- blocks ------------------------------------------------------------------------------


def _conv_stack(
    dims: int,
    in_channels: int,
    widths: Sequence[int],
    *,
    kernel: int,
    padding: str,
    activation: str,
    dropout: float,
) -> nn.Sequential:
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    pool = nn.MaxPool2d if dims == 2 else nn.MaxPool1d
    layers: list[nn.Module] = []
    for width in widths:
        pad = kernel // 2 if padding == "same" else 0
        layers += [
            conv(in_channels, width, kernel, padding=pad),
            make_activation(activation),
            pool(2),
        ]
        in_channels = width
    layers.append(nn.Dropout(dropout))  # the paper's dropout after the last conv stage
    return nn.Sequential(*layers)


class DingVisualEncoder(nn.Module):
    """Per-frame 2D CNN: ``(N, C, H, W) -> (N, out_dim)``; conv → act → MaxPool 2 per stage.

    Args:
        in_channels: 1 (grayscale) or 3 (RGB).
        image_size_px: side of the square input, needed to size the flattened embedding.
        channels: output channels per stage. kernel, padding, activation, dropout: as in Config.
        embedding: ``"flatten"`` (out_dim = C·h·w) or ``"global_avg"`` (out_dim = C).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        image_size_px: int = 64,
        channels: Sequence[int] = (16, 32, 64),
        kernel: int = 3,
        padding: str = "valid",
        embedding: str = "flatten",
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = _conv_stack(
            2,
            in_channels,
            channels,
            kernel=kernel,
            padding=padding,
            activation=activation,
            dropout=dropout,
        )
        side = stage_sizes(image_size_px, len(channels), kernel, padding)[-1]
        self.global_avg = embedding == "global_avg"
        self.out_dim = channels[-1] if self.global_avg else channels[-1] * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return x.mean(dim=(2, 3)) if self.global_avg else x.flatten(1)


class DingAudioEncoder(nn.Module):
    """1D CNN over the MFCC vector as a 1-channel sequence: ``(B, n_mfcc) -> (B, out_dim)``.

    Args:
        n_mfcc: length of the input vector. channels, kernel, padding, embedding, activation,
        dropout: as in Config (``kernel`` here is the 1D ``audio_kernel``).
    """

    def __init__(
        self,
        *,
        n_mfcc: int = 40,
        channels: Sequence[int] = (16, 32),
        kernel: int = 5,
        padding: str = "valid",
        embedding: str = "flatten",
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = _conv_stack(
            1, 1, channels, kernel=kernel, padding=padding, activation=activation, dropout=dropout
        )
        length = stage_sizes(n_mfcc, len(channels), kernel, padding)[-1]
        self.global_avg = embedding == "global_avg"
        self.out_dim = channels[-1] if self.global_avg else channels[-1] * length

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.features(audio.unsqueeze(1))
        return x.mean(dim=2) if self.global_avg else x.flatten(1)


# --- model -------------------------------------------------------------------------------


class DingModel(AVModel):
    """Visual CNN ‖ audio CNN → concat → Dense → act → Dropout → Dense (logits)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.visual = DingVisualEncoder(
            in_channels=c.image_channels,
            image_size_px=c.image_size_px,
            channels=c.conv_channels,
            kernel=c.conv_kernel,
            padding=c.padding,
            embedding=c.embedding,
            activation=c.activation,
            dropout=c.dropout,
        )
        self.audio = DingAudioEncoder(
            n_mfcc=c.n_mfcc,
            channels=c.audio_channels,
            kernel=c.audio_kernel,
            padding=c.padding,
            embedding=c.embedding,
            activation=c.activation,
            dropout=c.dropout,
        )
        self.head = nn.Sequential(
            nn.Linear(self.visual.out_dim + self.audio.out_dim, c.dense_units),
            make_activation(c.activation),
            nn.Dropout(c.dropout),
            nn.Linear(c.dense_units, c.num_classes),
        )

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, t = video.shape[:2]
        v = self.visual(video.flatten(0, 1))
        # One frame (the paper): the embedding is used as is, so no averaging op is counted.
        v = v.view(b, t, -1).mean(dim=1) if t > 1 else v
        a = self.audio(audio)
        return self.head(torch.cat([v, a], dim=1))


# --- presets and search space ------------------------------------------------------------

PRESETS: dict[str, Config] = {
    "ding2025": Config(),  # RAVDESS: Dense 16, 8 classes, dropout 0.4
    "ding2025_mead": Config(dropout=0.3),
    "ding2025_savee": Config(dense_units=14, num_classes=7, dropout=0.5),
}

_PUBLISHED = Published(
    params=60_000,
    flops=14_000_000,
    flops_are_macs=False,
    source="Ding et al. 2025, Table V (0.06 M params, 0.014 GFLOPs)",
    note="Table V truncates: the paper's own equations (3), (4) give exactly 66,584 params "
    "(0.0666 M) and 14,324,736 FLOPs = 2·MACs (eq. 3's bias adds, 98,680, left out)",
)

# Plain data: conditional fields none; widths as whole per-stage tuples so depth and width
# are drawn together (each stage doubles, as in the paper).
SPACE = {
    "image_size_px": Choice((48, 64, 96, 128, 160, 224)),
    "image_channels": Choice((1, 3)),
    "frames": Choice((1, 2, 4, 6)),  # 6 = all frames the paper extracts per clip
    "conv_channels": Choice(
        tuple(
            tuple(base * 2**i for i in range(depth))
            for depth in (1, 2, 3, 4)
            for base in (4, 8, 16, 32)
        )
    ),
    "conv_kernel": Choice((3, 5, 7)),
    "n_mfcc": Choice((20, 26, 40, 64)),
    "audio_channels": Choice(((8,), (16,), (8, 16), (16, 32), (32, 64), (16, 32, 64), (64, 128))),
    "audio_kernel": Choice((3, 5, 7)),
    "padding": Choice(PADDINGS),
    "embedding": Choice(EMBEDDINGS),
    "dense_units": Choice((8, 16, 32, 64, 128)),
    "dropout": FloatRange(0.0, 0.6),
    "activation": Choice(ACTIVATIONS),
}


@register_family(
    "ding",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    published={name: _PUBLISHED for name in PRESETS},
    summary="2D CNN on one grayscale face + 1D CNN on averaged MFCCs, concat fusion",
    paper="Ding, Tang and Lu (2025), Lightweight Spatio-Temporal Convolutional Neural Network "
    "for Audio-Visual Emotion Recognition",
)
def build(config: Config) -> DingModel:
    """Build the ``ding`` model for ``config``."""
    return DingModel(config)
