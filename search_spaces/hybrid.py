"""``hybrid``: any audio encoder × visual encoder × temporal aggregator × fusion of the five.

The parts come from the family modules (each lists its "Parts for hybrid"):

audio encoders (``audio_encoder``; the input kind and front end are that family's):
  ``ding``    averaged MFCCs → 2-block 1D CNN, flattened               → vector
  ``lu``      averaged MFCCs → depth-tapered 1D CNN + FC                → vector
  ``yang``    FRFT-MFCC sequence → four Conv1D/BN/ReLU/MaxPool blocks   → sequence
  ``ishtiaq`` log-mel → depthwise-separable CNN → GRU (all states)      → sequence
  ``kumar``   log-mel → 2D CNN (conv/BN/ReLU/MaxPool 3×3 s2)           → sequence
visual encoders (``visual_encoder``, per frame ``(N, C, H, W) -> (N, D)``):
  ``ding`` 3-stage CNN, ``lu`` GhostNet + TAM, ``yang`` MobileNetV2, ``ishtiaq`` separable
  CNN, ``kumar`` ResNet-18.
temporal aggregators over the frame features (``temporal``):
  ``none`` (the frame sequence as is), ``fan`` (lu's Frame Attention Network → vector),
  ``conv1d_residual`` (yang), ``gru``, ``bigru`` (kumar), ``transformer`` (ishtiaq's encoder
  layers + learned positions).
fusions (``fusion``; each ends in the classifier):
  ``concat_dense`` (ding/ishtiaq: concat → dense), ``geometric_mean`` / ``arithmetic_mean``
  (lu: per-modality classifiers, decision-level mean of probabilities), ``attention_reweight``
  (yang: align, concat, Conv1D, scaled-dot-product re-weighting), ``mfusher`` (ishtiaq's
  reduced MFusHER transformer), ``cross_attention_tucker`` (kumar: bidirectional cross-attention
  + Tucker + factorized bilinear pooling), ``bilinear`` (projected bilinear pooling).

Adapters (our choices): a fusion that needs vectors averages a sequence over time; a
sequence fusion (``cross_attention_tucker``) needs sequences from both sides, so it is invalid
with a vector audio encoder (``ding``, ``lu``) or with ``fan`` — a ``ConfigError`` says so.
Widths are set by ``audio_width_mult`` / ``visual_width_mult`` on each part's published widths
(ResNet-18's base 64, GhostNet's width multiplier, MobileNetV2's, the CNNs' channel lists);
``ding``'s visual CNN is global-average-pooled here so its width does not grow with the crop.
``fusion_dim`` sizes every fusion (dense units, MFusHER d_model, cross-attention width,
bilinear width); Tucker ranks are half of each mode as in kumar2025 (steps/2, dim/2) and its
bilinear pooling gives 2·``fusion_dim`` features. Decision-level fusions return the log of the
fused probabilities (as ``lu``), so softmax/argmax/cross-entropy work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from . import ding, ishtiaq, kumar, lu, yang
from ._base import AVModel
from ._registry import register_family
from ._spec import (
    Choice,
    ConfigError,
    FloatRange,
    InputSpec,
    IntRange,
    check_choice,
    check_range,
)

__all__ = [
    "ENCODERS",
    "FUSIONS",
    "PRESETS",
    "SPACE",
    "TEMPORALS",
    "Bilinear",
    "Config",
    "FusionHead",
    "HybridModel",
    "TemporalTransformer",
    "build",
]

ENCODERS = ("ding", "lu", "yang", "ishtiaq", "kumar")
TEMPORALS = ("none", "fan", "conv1d_residual", "gru", "bigru", "transformer")
FUSIONS = (
    "concat_dense",
    "geometric_mean",
    "arithmetic_mean",
    "attention_reweight",
    "mfusher",
    "cross_attention_tucker",
    "bilinear",
)
SEQUENCE_AUDIO = ("yang", "ishtiaq", "kumar")  # the others give one vector per clip
SEQUENCE_TEMPORALS = ("none", "conv1d_residual", "gru", "bigru", "transformer")
_DIM_FUSIONS = tuple(f for f in FUSIONS if not f.endswith("_mean"))
_HEADED = ("mfusher", "cross_attention_tucker")


@dataclass(frozen=True, kw_only=True)
class Config:
    """A hybrid of parts from the five families; the defaults are a cheap, valid combination.

    Fields:
        num_classes: output classes.
        audio_encoder, visual_encoder: which family's encoder (``ding``, ``lu``, ``yang``,
            ``ishtiaq``, ``kumar``); the audio one fixes the input kind and front end.
        temporal: aggregator over the per-frame features (see ``TEMPORALS``).
        fusion: how the modalities meet (see ``FUSIONS``).
        frames, image_size_px, image_channels: the video input.
        audio_bands: MFCC coefficients or mel bands, depending on the audio encoder.
        audio_width_mult, visual_width_mult: scale each encoder's published widths.
        temporal_hidden: width of the GRU (per direction), Conv1D or transformer aggregator.
        temporal_layers: transformer layers.
        attn_heads: heads of the transformer aggregator, MFusHER and cross-attention.
        fusion_dim: width of the fusion (unused by the decision-level means).
        fusion_steps: common time steps of ``cross_attention_tucker`` (kumar: 60).
        tucker_impl: ``"materialized"`` or ``"factorized"`` Tucker (same function).
        dropout: before every classifier.
    """

    family: ClassVar[str]

    num_classes: int = 8
    audio_encoder: str = "ishtiaq"
    visual_encoder: str = "ding"
    temporal: str = "gru"
    fusion: str = "concat_dense"
    frames: int = 8
    image_size_px: int = 64
    image_channels: int = 1
    audio_bands: int = 40
    audio_width_mult: float = 0.5
    visual_width_mult: float = 0.5
    temporal_hidden: int = 64
    temporal_layers: int = 1
    attn_heads: int = 4
    fusion_dim: int = 64
    fusion_steps: int = 16
    tucker_impl: str = "factorized"
    dropout: float = 0.3

    def __post_init__(self) -> None:
        own = "hybrid.Config"
        check_range(own, "num_classes", self.num_classes, 2, 1000)
        check_choice(own, "audio_encoder", self.audio_encoder, ENCODERS)
        check_choice(own, "visual_encoder", self.visual_encoder, ENCODERS)
        check_choice(own, "temporal", self.temporal, TEMPORALS)
        check_choice(own, "fusion", self.fusion, FUSIONS)
        check_range(own, "frames", self.frames, 1, 256)
        check_range(own, "image_size_px", self.image_size_px, 32, 512)
        check_choice(own, "image_channels", self.image_channels, (1, 3))
        check_range(own, "audio_bands", self.audio_bands, 8, 128)
        check_range(own, "audio_width_mult", self.audio_width_mult, 0.1, 2.0, integer=False)
        check_range(own, "visual_width_mult", self.visual_width_mult, 0.1, 2.0, integer=False)
        check_range(own, "temporal_hidden", self.temporal_hidden, 4, 1024)
        check_range(own, "temporal_layers", self.temporal_layers, 1, 8)
        check_range(own, "attn_heads", self.attn_heads, 1, 16)
        check_range(own, "fusion_dim", self.fusion_dim, 4, 1024)
        check_range(own, "fusion_steps", self.fusion_steps, 1, 256)
        check_choice(own, "tucker_impl", self.tucker_impl, kumar.TUCKER_IMPLS)
        check_range(own, "dropout", self.dropout, 0.0, 0.9, integer=False)
        if self.fusion == "cross_attention_tucker":
            if self.audio_encoder not in SEQUENCE_AUDIO:
                raise ConfigError(
                    f"{own}.audio_encoder={self.audio_encoder!r} is invalid with fusion="
                    "'cross_attention_tucker': it gives one vector per clip, the fusion needs a "
                    f"sequence; use one of {', '.join(map(repr, SEQUENCE_AUDIO))} or another "
                    "fusion"
                )
            if self.temporal not in SEQUENCE_TEMPORALS:
                raise ConfigError(
                    f"{own}.temporal={self.temporal!r} is invalid with fusion="
                    "'cross_attention_tucker': it pools the frames to one vector, the fusion "
                    f"needs a sequence; use one of {', '.join(map(repr, SEQUENCE_TEMPORALS))}"
                )
        pairs = [("fusion_dim", self.fusion_dim)] if self.fusion in _HEADED else []
        if self.temporal == "transformer":
            pairs.append(("temporal_hidden", self.temporal_hidden))
        for name, width in pairs:
            if width % self.attn_heads:
                raise ConfigError(
                    f"{own}.attn_heads={self.attn_heads} is invalid with {name}={width}: "
                    f"{name} must be divisible by attn_heads; pick a divisor of {width}"
                )
        if self.audio_encoder == "ding":
            lengths = ding.stage_sizes(self.audio_bands, 2, 5, "valid")
            if lengths[-1] < 1:
                raise ConfigError(
                    f"{own}.audio_bands={self.audio_bands} is invalid with audio_encoder="
                    "'ding': its two valid k5 conv + pool stages need at least 14 MFCCs"
                )

    @property
    def input_spec(self) -> InputSpec:
        """What the model consumes: the audio encoder's family front end, our video."""
        return InputSpec(
            frames=self.frames,
            channels=self.image_channels,
            height=self.image_size_px,
            width=self.image_size_px,
            num_classes=self.num_classes,
            **_audio_front_end(self.audio_encoder, self.audio_bands),
        )


def _audio_front_end(encoder: str, bands: int) -> dict[str, Any]:
    """InputSpec audio fields of ``encoder``'s family (its defaults; ``bands`` rows)."""
    if encoder == "ding":
        spec = ding.Config(n_mfcc=bands).input_spec
    elif encoder == "lu":
        spec = lu.Config(n_mfcc=bands).input_spec
    elif encoder == "kumar":
        spec = kumar.Config(n_mels=bands).input_spec
    elif encoder == "yang":
        spec = yang.Config(n_mfcc=bands).input_spec
    else:
        spec = ishtiaq.Config(n_mels=bands).input_spec
    keys = (
        "audio_kind",
        "audio_shape",
        "sample_rate_hz",
        "clip_seconds",
        "n_fft",
        "hop_length",
        "frft_order",
    )
    return {k: getattr(spec, k) for k in keys}


def _scale(widths: Sequence[int], mult: float) -> tuple[int, ...]:
    return tuple(max(4, round(w * mult)) for w in widths)


# --- parts -------------------------------------------------------------------------------


def _audio_encoder(c: Config) -> nn.Module:
    m = c.audio_width_mult
    if c.audio_encoder == "ding":
        return ding.DingAudioEncoder(n_mfcc=c.audio_bands, channels=_scale((16, 32), m))
    if c.audio_encoder == "lu":
        (fc,) = _scale((128,), m)
        return lu.LuSpeechCNN(channels=_scale(lu.S2, m), fc_units=fc)
    if c.audio_encoder == "yang":
        return yang.FrftMfccAudioEncoder(c.audio_bands, channels=_scale((64, 64, 64, 64), m))
    if c.audio_encoder == "ishtiaq":
        (hidden,) = _scale((128,), m)
        return ishtiaq.DSConvGRUAudioEncoder(
            widths=_scale((32, 64, 128), m), gru_hidden=hidden, return_sequence=True
        )
    return kumar.AudioCNN2d(channels=_scale((64, 128), m), steps=c.input_spec.audio_shape[1])


def _visual_encoder(c: Config) -> nn.Module:
    m, cin = c.visual_width_mult, c.image_channels
    if c.visual_encoder == "ding":
        return ding.DingVisualEncoder(
            in_channels=cin,
            image_size_px=c.image_size_px,
            channels=_scale((16, 32, 64), m),
            embedding="global_avg",
        )
    if c.visual_encoder == "lu":
        (head,) = _scale((576,), m)
        return lu.GhostNetTAM(in_channels=cin, width_mult=m, head_channels=head)
    if c.visual_encoder == "yang":
        return yang.MobileNetV2FrameEncoder(cin, width_mult=m)
    if c.visual_encoder == "ishtiaq":
        return ishtiaq.DSConvFrameEncoder(cin, widths=_scale((32, 64, 128, 128), m))
    (base,) = _scale((64,), m)
    return kumar.ResNetEncoder(in_channels=cin, base_width=base)


class _Identity(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TemporalTransformer(nn.Module):
    """Linear → + learned positions → transformer encoder layers: ``(B, T, D) -> (B, T, h)``."""

    def __init__(
        self, in_dim: int, hidden: int, *, heads: int, layers: int, steps: int, dropout: float
    ) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)
        self.position = nn.Parameter(torch.randn(steps, hidden) * 0.02)
        self.layers = nn.Sequential(
            *(ishtiaq.EncoderLayer(hidden, heads, 2 * hidden, dropout) for _ in range(layers))
        )
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.proj(x) + self.position)


def _temporal(c: Config, dim: int) -> nn.Module:
    h = c.temporal_hidden
    if c.temporal == "none":
        return _Identity(dim)
    if c.temporal == "fan":
        return lu.FrameAttention(dim)
    if c.temporal == "conv1d_residual":
        return yang.Conv1dResidualAggregator(dim, channels=(h, h), pool=False)
    if c.temporal in ("gru", "bigru"):
        return kumar.GRUAggregator(dim, h, bidirectional=c.temporal == "bigru")
    return TemporalTransformer(
        dim, h, heads=c.attn_heads, layers=c.temporal_layers, steps=c.frames, dropout=c.dropout
    )


def _pool(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1) if x.dim() == 3 else x


class Bilinear(nn.Module):
    """y_o = a·W_o·v + b_o as one matmul plus a product-sum (counted and exported plainly)."""

    prune_protected: ClassVar[str] = "fusion core"

    def __init__(self, d_a: int, d_v: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_a, out_dim * d_v) / math.sqrt(d_a * d_v))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.out_dim, self.d_v = out_dim, d_v

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        t = (a @ self.weight).view(a.shape[0], self.out_dim, self.d_v)
        return (t * v.unsqueeze(1)).sum(dim=-1) + self.bias


class FusionHead(nn.Module):
    """``fusion`` + classifier: ``(audio features, visual features) -> logits``.

    Features are ``(B, T, D)`` sequences or ``(B, D)`` vectors (see the module docstring).
    """

    def __init__(self, c: Config, d_a: int, d_v: int) -> None:
        super().__init__()
        self.kind = c.fusion
        d, k = c.fusion_dim, c.num_classes
        self.dropout = nn.Dropout(c.dropout)
        out = d  # features reaching the classifier
        if self.kind == "concat_dense":
            self.fuse = ishtiaq.ConcatMLPFusion([d_a, d_v], out_dim=d, dropout=0.0)
        elif self.kind in ("geometric_mean", "arithmetic_mean"):
            self.audio_head, self.visual_head = nn.Linear(d_a, k), nn.Linear(d_v, k)
            return
        elif self.kind == "attention_reweight":
            self.fuse = yang.ConcatConvAttentionFusion(
                [d_a, d_v], align_to=1, channels=(d, d), attention_dim=d
            )
        elif self.kind == "mfusher":
            self.fuse = ishtiaq.MFusHERFusion(
                [d_a, d_v], d_model=d, num_heads=c.attn_heads, ff_dim=2 * d, dropout=c.dropout
            )
        elif self.kind == "cross_attention_tucker":
            self.steps = c.fusion_steps
            self.audio_proj, self.visual_proj = nn.Linear(d_a, d), nn.Linear(d_v, d)
            self.audio_attends_video = kumar.CrossAttention(d, c.attn_heads)
            self.video_attends_audio = kumar.CrossAttention(d, c.attn_heads)
            self.fuse = kumar.TuckerFusion(
                steps=self.steps,
                d_audio=d,
                d_visual=d,
                rank_time=max(1, self.steps // 2),
                rank_audio=max(1, d // 2),
                rank_visual=max(1, d // 2),
                out_dim=2 * d,
                impl=c.tucker_impl,
            )
            out = self.fuse.out_dim
        else:  # bilinear
            self.audio_proj, self.visual_proj = nn.Linear(d_a, d), nn.Linear(d_v, d)
            self.fuse = Bilinear(d, d, d)
        self.classifier = nn.Linear(out, k)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.kind in ("geometric_mean", "arithmetic_mean"):
            log_pa = torch.log_softmax(self.audio_head(self.dropout(_pool(a))), dim=-1)
            log_pv = torch.log_softmax(self.visual_head(self.dropout(_pool(v))), dim=-1)
            if self.kind == "geometric_mean":  # log √(p_a·p_v)
                return 0.5 * (log_pa + log_pv)
            return torch.logsumexp(torch.stack([log_pa, log_pv]), dim=0) - math.log(2.0)
        if self.kind == "concat_dense":
            z = self.fuse([_pool(a), _pool(v)])
        elif self.kind in ("attention_reweight", "mfusher"):
            z = self.fuse([a, v])
        elif self.kind == "cross_attention_tucker":
            a = kumar.resample_time(self.audio_proj(a), self.steps)
            v = kumar.resample_time(self.visual_proj(v), self.steps)
            z = self.fuse(self.audio_attends_video(a, v), self.video_attends_audio(v, a))
        else:
            z = torch.relu(self.fuse(self.audio_proj(_pool(a)), self.visual_proj(_pool(v))))
        return self.classifier(self.dropout(z))


class HybridModel(AVModel):
    """audio encoder ‖ (visual encoder per frame → temporal aggregator) → fusion head."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.audio_encoder = _audio_encoder(c)
        self.visual_encoder = _visual_encoder(c)
        self.temporal = _temporal(c, self.visual_encoder.out_dim)
        self.fusion = FusionHead(c, self.audio_encoder.out_dim, self.temporal.out_dim)

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, f = video.shape[:2]
        frames = self.visual_encoder(video.flatten(0, 1)).view(b, f, -1)
        return self.fusion(self.audio_encoder(audio), self.temporal(frames))


# --- presets and search space ------------------------------------------------------------

PRESETS: dict[str, Config] = {
    # Ding's tiny face CNN + Lu's speech CNN, FAN over frames, Lu's geometric-mean decision.
    "hybrid_ding_lu": Config(
        audio_encoder="lu",
        visual_encoder="ding",
        temporal="fan",
        fusion="geometric_mean",
        frames=8,
        image_size_px=64,
        image_channels=1,
        audio_width_mult=1.0,
        visual_width_mult=1.0,
    ),
    # Lu's GhostNet-TAM faces + Kumar's mel CNN, Bi-GRU, Kumar's cross-attention + Tucker.
    "hybrid_ghost_tucker": Config(
        audio_encoder="kumar",
        visual_encoder="lu",
        temporal="bigru",
        fusion="cross_attention_tucker",
        frames=8,
        image_size_px=112,
        image_channels=3,
        audio_bands=64,
        fusion_dim=64,
        fusion_steps=16,
        tucker_impl="factorized",
    ),
}

# Conditional knobs are drawn only where they are used; cross_attention_tucker draws with a
# vector audio encoder or FAN are rejected by Config and redrawn by the sampler.
SPACE = {
    "audio_encoder": Choice(ENCODERS),
    "visual_encoder": Choice(ENCODERS),
    "temporal": Choice(TEMPORALS),
    "fusion": Choice(FUSIONS),
    "frames": IntRange(1, 32, log=True),
    "image_size_px": Choice((32, 48, 64, 96, 112, 128, 160, 224)),
    "image_channels": Choice((1, 3)),
    "audio_bands": Choice((16, 20, 32, 40, 64, 80, 128)),
    "audio_width_mult": Choice((0.25, 0.5, 0.75, 1.0)),
    "visual_width_mult": Choice((0.25, 0.5, 0.75, 1.0)),
    "temporal_hidden": Choice(
        (16, 32, 64, 128, 256),
        when={"temporal": ("conv1d_residual", "gru", "bigru", "transformer")},
    ),
    "temporal_layers": IntRange(1, 4, when={"temporal": ("transformer",)}),
    "attn_heads": Choice((1, 2, 4), when={"fusion": _HEADED}),
    "fusion_dim": Choice((16, 32, 64, 128, 256), when={"fusion": _DIM_FUSIONS}),
    "fusion_steps": IntRange(4, 60, log=True, when={"fusion": ("cross_attention_tucker",)}),
    "tucker_impl": Choice(kumar.TUCKER_IMPLS, when={"fusion": ("cross_attention_tucker",)}),
    "dropout": FloatRange(0.0, 0.5),
}


@register_family(
    "hybrid",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    summary="any audio encoder × visual encoder × temporal aggregator × fusion of the five",
    paper="combines the papers of the ding, lu, yang, ishtiaq and kumar families",
)
def build(config: Config) -> HybridModel:
    """Build the ``hybrid`` model for ``config``."""
    return HybridModel(config)
