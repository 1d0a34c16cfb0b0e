"""``yang``: dual-stream FRFT-MFCC + MobileNetV2 network (Yang, Lv & Liu 2025).

Video: grayscale 224×224 face crops, a fixed number of uniformly sampled frames, a per-frame
MobileNetV2 (inverted residuals, linear bottlenecks) → per-frame feature sequence → two Conv1D
residual stages over time (k3; 64, 64 then 128, 128; BN, ReLU; Table I).
Audio: 3.6 s clips, MFCCs of the fractional-Fourier-enhanced spectrum (FRFT order α), four
Conv1D blocks (k3, 64 filters, BN, ReLU, MaxPool 2; Table II).
Fusion: the two sequences are concatenated along features, processed over time by four more
Conv1D blocks, re-weighted by scaled-dot-product attention (Eq. 4–7) and classified by a
linear layer.

Choices where the paper is silent (each is a Config field):
- ``frames=15``, ``sample_rate_hz=22050``, ``n_mfcc=10``, ``hop_length=512``, ``n_fft=2048``: the
  paper's Table I is titled "EfficientFace branch" and its 3.6 s clips, k3/64/128 Conv1D stages
  and RAVDESS setting are those of Chumachenko et al. (2022), whose public code uses 15 frames,
  librosa at 22 050 Hz, 10 MFCCs and librosa's default frames. So the audio input is
  (10, 156): 79 380 samples, 1 + 79380 // 512 = 156 centred frames.
- ``frft_order=0.9``: the paper tunes α but never states it (α = 1 is the ordinary MFCC).
- "Improved MobileNetV2" is not described; we build the standard MobileNetV2 (t, c, n, s
  table of Sandler et al.) on a 1-channel input, up to its 1280-channel last 1×1 conv and
  global average pooling, with no ImageNet classifier.
- Each Conv1D "stage" is one residual block of two Conv1D+BN+act layers (Fig. 3) with a 1×1
  projection shortcut when the width changes. The four fusion blocks are two such stages of
  ``fusion_channels`` (128, 128) — the paper gives no widths.
- Audio blocks use ``padding=k//2`` and MaxPool(2, 2) (the paper: "max-pooling with a stride
  of 2"), so the 156 audio steps become 9 while video has 15 steps. The two time axes are
  aligned by linear interpolation of one onto the other's length (``time_align``: ``video``
  resamples audio to the frame count, the default; ``audio`` resamples video).
- Attention: one head, Q/K of ``attention_dim`` (128), V of the fused width, over the fused
  time steps; its output is mean-pooled over time, then dropout and the linear classifier.
  Written with matmul + softmax (not fused SDPA) so every counter sees its FLOPs.

Parts for hybrid (each has ``out_dim``; ``sequence`` tells whether it returns ``(B, T, D)``):
- ``FrftMfccAudioEncoder``: audio ``(B, n_mfcc, steps)`` → sequence ``(B, T', D)``.
- ``MobileNetV2FrameEncoder``: frames ``(B*T, C, H, W)`` → ``(B*T, D)``.
- ``Conv1dResidualAggregator``: ``(B, T, D)`` → ``(B, D')`` (``pool=True``) or ``(B, T, D')``.
- ``ConcatConvAttentionFusion``: list of ``(B, T_i, D_i)`` or ``(B, D_i)`` → ``(B, D)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ._base import AVModel
from ._blocks import check_int_tuple, make_activation, make_divisible
from ._registry import Published, register_family
from ._spec import Choice, ConfigError, FloatRange, InputSpec, check_choice, check_range

__all__ = [
    "PRESETS",
    "SPACE",
    "ConcatConvAttentionFusion",
    "Config",
    "Conv1dResidualAggregator",
    "FrftMfccAudioEncoder",
    "MobileNetV2FrameEncoder",
    "YangModel",
    "build",
]

ACTIVATIONS = ("relu", "relu6", "silu", "hardswish")
_DIVISOR = 8  # MobileNetV2 rounds channel counts to multiples of 8
TIME_ALIGN = ("video", "audio")
# MobileNetV2 (Sandler et al. 2018, Table 2): per stage expansion t, channels c, repeats n,
# stride s of the first block.
MBV2_EXPAND = (1, 6, 6, 6, 6, 6, 6)
MBV2_CHANNELS = (16, 24, 32, 64, 96, 160, 320)
MBV2_REPEATS = (1, 2, 3, 4, 3, 3, 1)
MBV2_STRIDES = (1, 2, 2, 2, 1, 2, 1)


def mfcc_steps(*, sample_rate_hz: int, clip_seconds: float, hop_length: int) -> int:
    """Frames of a librosa-style centred STFT: ``1 + samples // hop``."""
    return 1 + round(sample_rate_hz * clip_seconds) // hop_length


@dataclass(frozen=True, kw_only=True)
class Config:
    """Yang et al. 2025; defaults are the paper's model (see the module docstring).

    Raises:
        ConfigError: a field out of range, or an inconsistent combination (stage tuples of
            different lengths, a stride that shrinks the frame below 1 pixel, ...).
    """

    family: ClassVar[str]
    num_classes: int = 8
    # inputs
    frames: int = 15
    image_size_px: int = 224
    channels: int = 1
    sample_rate_hz: int = 22050
    clip_seconds: float = 3.6
    n_mfcc: int = 10
    n_fft: int = 2048
    hop_length: int = 512
    frft_order: float = 0.9
    # per-frame MobileNetV2
    width_mult: float = 1.0
    mbv2_stem_channels: int = 32
    mbv2_expand_ratios: tuple[int, ...] = MBV2_EXPAND
    mbv2_channels: tuple[int, ...] = MBV2_CHANNELS
    mbv2_repeats: tuple[int, ...] = MBV2_REPEATS
    mbv2_strides: tuple[int, ...] = MBV2_STRIDES
    mbv2_kernel_size: int = 3
    mbv2_last_channels: int = 1280
    # temporal Conv1D stages (video), audio blocks, fusion blocks
    video_stage_channels: tuple[int, ...] = (64, 128)
    audio_channels: tuple[int, ...] = (64, 64, 64, 64)
    fusion_channels: tuple[int, ...] = (128, 128)
    temporal_kernel_size: int = 3
    activation: str = "relu"
    time_align: str = "video"
    attention: bool = True
    attention_dim: int = 128
    dropout: float = 0.2

    def __post_init__(self) -> None:
        o = "yang.Config"
        check_range(o, "num_classes", self.num_classes, 2, 1000)
        check_range(o, "frames", self.frames, 1, 64)
        check_range(o, "image_size_px", self.image_size_px, 16, 448)
        check_choice(o, "channels", self.channels, (1, 3))
        check_range(o, "sample_rate_hz", self.sample_rate_hz, 4000, 48000)
        check_range(o, "clip_seconds", self.clip_seconds, 0.5, 10.0, integer=False)
        check_range(o, "n_mfcc", self.n_mfcc, 2, 128)
        check_range(o, "n_fft", self.n_fft, 64, 8192)
        check_range(o, "hop_length", self.hop_length, 16, 4096)
        check_range(o, "frft_order", self.frft_order, 0.0, 2.0, integer=False)
        check_range(o, "width_mult", self.width_mult, 0.1, 2.0, integer=False)
        check_range(o, "mbv2_stem_channels", self.mbv2_stem_channels, 4, 128)
        n = len(self.mbv2_channels) if isinstance(self.mbv2_channels, tuple) else 0
        check_int_tuple(o, "mbv2_channels", self.mbv2_channels, low=4, high=1024)
        check_int_tuple(o, "mbv2_expand_ratios", self.mbv2_expand_ratios, low=1, high=8, length=n)
        check_int_tuple(o, "mbv2_repeats", self.mbv2_repeats, low=1, high=8, length=n)
        check_int_tuple(o, "mbv2_strides", self.mbv2_strides, low=1, high=2, length=n)
        check_choice(o, "mbv2_kernel_size", self.mbv2_kernel_size, (3, 5, 7))
        check_range(o, "mbv2_last_channels", self.mbv2_last_channels, 8, 4096)
        check_int_tuple(
            o, "video_stage_channels", self.video_stage_channels, low=4, high=1024, max_len=6
        )
        check_int_tuple(o, "audio_channels", self.audio_channels, low=4, high=1024, max_len=6)
        check_int_tuple(
            o, "fusion_channels", self.fusion_channels, low=4, high=1024, min_len=0, max_len=6
        )
        check_choice(o, "temporal_kernel_size", self.temporal_kernel_size, (1, 3, 5, 7))
        check_choice(o, "activation", self.activation, ACTIVATIONS)
        check_choice(o, "time_align", self.time_align, TIME_ALIGN)
        check_choice(o, "attention", self.attention, (True, False))
        check_range(o, "attention_dim", self.attention_dim, 4, 1024)
        check_range(o, "dropout", self.dropout, 0.0, 0.9, integer=False)
        if self.n_fft > round(self.sample_rate_hz * self.clip_seconds):
            raise ConfigError(
                f"{o}.n_fft={self.n_fft} is invalid: must be at most the clip's samples "
                f"(sample_rate_hz*clip_seconds = {round(self.sample_rate_hz * self.clip_seconds)})"
            )
        steps = self.audio_steps
        if steps // 2 ** len(self.audio_channels) < 1:
            raise ConfigError(
                f"{o}.audio_channels has {len(self.audio_channels)} pooling blocks, too many for "
                f"{steps} MFCC steps: allowed at most {int(math.log2(steps))} blocks "
                "(shorten the tuple, or lower hop_length / raise clip_seconds)"
            )

    @property
    def audio_steps(self) -> int:
        """MFCC frames per clip (centred STFT)."""
        return mfcc_steps(
            sample_rate_hz=self.sample_rate_hz,
            clip_seconds=self.clip_seconds,
            hop_length=self.hop_length,
        )

    @property
    def input_spec(self) -> InputSpec:
        """What the model built from this config consumes."""
        return InputSpec(
            audio_kind="frft_mfcc_seq",
            audio_shape=(self.n_mfcc, self.audio_steps),
            frames=self.frames,
            channels=self.channels,
            height=self.image_size_px,
            width=self.image_size_px,
            num_classes=self.num_classes,
            sample_rate_hz=self.sample_rate_hz,
            clip_seconds=self.clip_seconds,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            frft_order=self.frft_order,
        )


# --- blocks ------------------------------------------------------------------------------


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand (ReLU6) → k×k depthwise (ReLU6) → linear 1×1 project."""

    def __init__(self, cin: int, cout: int, *, stride: int, expand: int, kernel: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout  # shortcut only when shapes match

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2FrameEncoder(nn.Module):
    """Per-frame MobileNetV2 trunk: ``(N, C, H, W)`` → ``(N, out_dim)`` (global average pool).

    Args:
        in_channels: 1 (grayscale) or 3.
        width_mult: scales every width (rounded to multiples of 8, as in MobileNetV2).
        stem_channels, expand_ratios, channels, repeats, strides, kernel_size, last_channels:
            the inverted-residual table and the final 1×1 conv width (scaled up, never down).
    """

    sequence = False

    def __init__(
        self,
        in_channels: int = 1,
        *,
        width_mult: float = 1.0,
        stem_channels: int = 32,
        expand_ratios: Sequence[int] = MBV2_EXPAND,
        channels: Sequence[int] = MBV2_CHANNELS,
        repeats: Sequence[int] = MBV2_REPEATS,
        strides: Sequence[int] = MBV2_STRIDES,
        kernel_size: int = 3,
        last_channels: int = 1280,
    ) -> None:
        super().__init__()
        cin = make_divisible(stem_channels * width_mult, _DIVISOR)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, cin, 3, 2, 1, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(),
        ]
        for t, c, n, s in zip(expand_ratios, channels, repeats, strides, strict=True):
            cout = make_divisible(c * width_mult, _DIVISOR)
            for i in range(n):
                layers.append(
                    InvertedResidual(
                        cin, cout, stride=s if i == 0 else 1, expand=t, kernel=kernel_size
                    )
                )
                cin = cout
        self.out_dim = make_divisible(last_channels * max(1.0, width_mult), _DIVISOR)
        layers += [
            nn.Conv2d(cin, self.out_dim, 1, bias=False),
            nn.BatchNorm2d(self.out_dim),
            nn.ReLU6(),
        ]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class Conv1dResidualStage(nn.Module):
    """Two Conv1D+BN+act layers over time with a shortcut (1×1 conv when widths differ)."""

    def __init__(self, cin: int, cout: int, *, kernel: int = 3, activation: str = "relu") -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(cin, cout, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(cout),
            make_activation(activation),
            nn.Conv1d(cout, cout, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))
        )
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C', T)
        return self.act(self.body(x) + self.shortcut(x))


class Conv1dResidualAggregator(nn.Module):
    """Temporal aggregator: Conv1D residual stages over ``(B, T, D)``.

    Returns ``(B, out_dim)`` (mean over time) when ``pool``, else ``(B, T, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int,
        *,
        channels: Sequence[int] = (64, 128),
        kernel: int = 3,
        activation: str = "relu",
        pool: bool = True,
    ) -> None:
        super().__init__()
        stages, cin = [], in_dim
        for c in channels:
            stages.append(Conv1dResidualStage(cin, c, kernel=kernel, activation=activation))
            cin = c
        self.stages = nn.Sequential(*stages)
        self.out_dim = cin
        self.pool = pool
        self.sequence = not pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stages(x.transpose(1, 2))
        return y.mean(dim=2) if self.pool else y.transpose(1, 2)


class FrftMfccAudioEncoder(nn.Module):
    """Audio encoder: ``(B, n_mfcc, steps)`` → ``(B, steps // 2**len(channels), out_dim)``.

    Each block: Conv1D(k, padding k//2) → BN → act → MaxPool1d(2, 2) (Table II).
    """

    sequence = True

    def __init__(
        self,
        n_mfcc: int,
        *,
        channels: Sequence[int] = (64, 64, 64, 64),
        kernel: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        blocks, cin = [], n_mfcc
        for c in channels:
            blocks += [
                nn.Conv1d(cin, c, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(c),
                make_activation(activation),
                nn.MaxPool1d(2, 2),
            ]
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = cin

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.blocks(audio).transpose(1, 2)


class ScaledDotProductReweight(nn.Module):
    """Single-head self-attention over time (Eq. 4–7): softmax(QKᵀ/√d)V, V keeps the width."""

    prune_protected: ClassVar[str] = "attention"

    def __init__(self, dim: int, *, attention_dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, attention_dim, bias=False)
        self.k = nn.Linear(dim, attention_dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.scale = 1.0 / math.sqrt(attention_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        scores = torch.matmul(self.q(x), self.k(x).transpose(1, 2)) * self.scale
        return torch.matmul(torch.softmax(scores, dim=-1), self.v(x))


class ConcatConvAttentionFusion(nn.Module):
    """Feature-level fusion: align time axes, concat features, Conv1D stages, attention, pool.

    Args:
        in_dims: feature width of each modality.
        align_to: index of the input whose time length the others are resampled to (linear
            interpolation); ``(B, D)`` vectors count as one step and are repeated.
        channels: widths of the Conv1D residual stages after the concat (may be empty).
        attention: apply ``ScaledDotProductReweight`` before pooling.

    forward(list of ``(B, T_i, D_i)`` or ``(B, D_i)``) → ``(B, out_dim)``.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        *,
        align_to: int = 0,
        channels: Sequence[int] = (128, 128),
        kernel: int = 3,
        activation: str = "relu",
        attention: bool = True,
        attention_dim: int = 128,
    ) -> None:
        super().__init__()
        self.align_to = align_to
        self.convs = Conv1dResidualAggregator(
            sum(in_dims), channels=channels, kernel=kernel, activation=activation, pool=False
        )
        self.out_dim = self.convs.out_dim  # = sum(in_dims) when channels is empty
        self.attn = (
            ScaledDotProductReweight(self.out_dim, attention_dim=attention_dim)
            if attention
            else None
        )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        seqs = [f if f.dim() == 3 else f.unsqueeze(1) for f in features]
        steps = seqs[self.align_to].shape[1]
        aligned = []
        for s in seqs:
            if s.shape[1] != steps:
                s = F.interpolate(
                    s.transpose(1, 2), size=steps, mode="linear", align_corners=False
                ).transpose(1, 2)
            aligned.append(s)
        x = self.convs(torch.cat(aligned, dim=2))
        if self.attn is not None:
            x = self.attn(x)
        return x.mean(dim=1)


# --- the model ---------------------------------------------------------------------------


class YangModel(AVModel):
    """Dual-stream FRFT-MFCC / MobileNetV2 network; ``forward(audio, video, text=None)``."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.frame_encoder = MobileNetV2FrameEncoder(
            c.channels,
            width_mult=c.width_mult,
            stem_channels=c.mbv2_stem_channels,
            expand_ratios=c.mbv2_expand_ratios,
            channels=c.mbv2_channels,
            repeats=c.mbv2_repeats,
            strides=c.mbv2_strides,
            kernel_size=c.mbv2_kernel_size,
            last_channels=c.mbv2_last_channels,
        )
        self.video_temporal = Conv1dResidualAggregator(
            self.frame_encoder.out_dim,
            channels=c.video_stage_channels,
            kernel=c.temporal_kernel_size,
            activation=c.activation,
            pool=False,
        )
        self.audio_encoder = FrftMfccAudioEncoder(
            c.n_mfcc,
            channels=c.audio_channels,
            kernel=c.temporal_kernel_size,
            activation=c.activation,
        )
        self.fusion = ConcatConvAttentionFusion(
            (self.video_temporal.out_dim, self.audio_encoder.out_dim),
            align_to=0 if c.time_align == "video" else 1,
            channels=c.fusion_channels,
            kernel=c.temporal_kernel_size,
            activation=c.activation,
            attention=c.attention,
            attention_dim=c.attention_dim,
        )
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(self.fusion.out_dim, c.num_classes)

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, t = video.shape[:2]
        frames = self.frame_encoder(video.flatten(0, 1)).reshape(b, t, -1)
        v = self.video_temporal(frames)
        a = self.audio_encoder(audio)
        return self.classifier(self.dropout(self.fusion([v, a])))


# --- presets, space, build ---------------------------------------------------------------

PRESETS: dict[str, Config] = {
    "yang2025": Config(),
    # Table V ablation "MFCC + MobileNetV2, feature-level fusion": α = 1 is the ordinary MFCC
    "yang2025_mfcc": Config(frft_order=1.0),
    # the same network without the attention re-weighting
    "yang2025_noattn": Config(attention=False),
}

_REPEATS = ((1, 1, 1, 1, 1, 1, 1), (1, 1, 2, 2, 2, 1, 1), (1, 2, 2, 3, 2, 2, 1), MBV2_REPEATS)
SPACE = {
    "frames": Choice((1, 2, 4, 8, 12, 15, 16)),
    "image_size_px": Choice((32, 48, 64, 96, 112, 128, 160, 192, 224)),
    "channels": Choice((1, 3)),
    "n_mfcc": Choice((10, 13, 20, 40)),
    "frft_order": Choice((0.7, 0.8, 0.9, 1.0)),
    "width_mult": Choice((0.25, 0.35, 0.5, 0.75, 1.0)),
    "mbv2_expand_ratios": Choice(tuple((1, t, t, t, t, t, t) for t in (2, 3, 4, 6))),
    "mbv2_repeats": Choice(_REPEATS),
    "mbv2_kernel_size": Choice((3, 5)),
    "mbv2_last_channels": Choice((256, 512, 1024, 1280)),
    "video_stage_channels": Choice(((16, 32), (32, 64), (64, 128), (64, 128, 128))),
    "audio_channels": Choice(((16, 16), (16, 16, 16, 16), (32, 32, 32, 32), (64, 64, 64, 64))),
    "fusion_channels": Choice(((), (32, 32), (64, 64), (128, 128))),
    "temporal_kernel_size": Choice((3, 5)),
    "activation": Choice(ACTIVATIONS),
    "time_align": Choice(TIME_ALIGN),
    "attention": Choice((True, False)),
    "attention_dim": Choice((16, 32, 64, 128), when={"attention": (True,)}),
    "dropout": FloatRange(0.0, 0.5),
}

PUBLISHED = {
    "yang2025": Published(
        source="Yang, Lv and Liu (2025), Multimodal Emotion Recognition Based on a Dual-Stream "
        "MFCC-MobileNetV2 Architecture",
        note="No params or FLOPs published; accuracy RAVDESS 90.62 %, CREMA-D 82.12 %.",
    ),
}


@register_family(
    "yang",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    published=PUBLISHED,
    summary="Per-frame MobileNetV2 + Conv1D residual stages, FRFT-MFCC Conv1D, "
    "concat + Conv1D + attention fusion",
    paper="Yang, Lv, Liu 2025: Dual-stream MFCC-MobileNetV2 multimodal emotion recognition",
)
def build(config: Config) -> YangModel:
    """Build the Yang model for ``config``."""
    return YangModel(config)
