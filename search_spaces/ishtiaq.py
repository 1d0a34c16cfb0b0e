"""``ishtiaq``: depthwise-separable CNN + GRU encoders, reduced MFusHER fusion.

Ishtiaq, Hashmi, Ali (2025). Audio: log-mel spectrogram → depthwise-separable CNN → GRU →
embedding. Video: per-frame face → depthwise-separable CNN → GRU, final hidden state →
embedding. Text: an embedding of the transcript. Fusion: the MFusHER transformer reduced to
two encoder and two decoder layers, GELU inside it, Mish or Swish in the conv parts; a linear
classifier over the 8 RAVDESS classes.

The paper gives no widths, sizes or input settings. Our choices (each a Config field):
- Audio front end: 16 kHz, 3.0 s, 25 ms window (``n_fft=400``), 10 ms hop, 64 mel bands → a
  (64, 301) log-mel input (librosa-style centred frames: 1 + 48000 // 160).
- Video: 15 frames of 112×112 RGB face crops (the paper's M-fusHER baseline used YOLO crops;
  15 frames per clip is the common RAVDESS choice).
- Conv encoders: a standard 3×3 stride-2 stem (a depthwise conv on 1 or 3 input channels
  would be degenerate), then depthwise-separable blocks (depthwise k×k stride 2 → BN → act →
  pointwise 1×1 → BN → act). Audio widths (32, 64, 128) over the (mel, time) plane, frequency
  averaged before the GRU; video widths (32, 64, 128, 128), global average pool per frame.
  ``conv_kind="standard"`` swaps each separable block for a full k×k conv — the paper's
  "85–90 % fewer conv parameters" comparison.
- GRUs: one layer, unidirectional, hidden 128 (audio and video); the final hidden state is
  the embedding.
- Text: ``text_enabled=True`` because the paper's model has three modalities. RAVDESS has only
  two sentences ("Kids/Dogs are … by the door"), spoken with every emotion, so text carries
  no emotion there: our tokeniser budget is 6 words and a 10-word vocabulary (8 words + pad +
  unknown). ``forward(audio, video, text=None)`` replaces a missing transcript by a learned
  "no text" embedding, so data sets without transcripts train the same model;
  ``ishtiaq2025_av`` is the audio-visual preset without the text branch.
- MFusHER: each modality embedding is projected to ``d_model=128`` and tagged with a learned
  modality embedding; 2 post-norm encoder layers (4 heads, FFN 256, GELU) over the modality
  tokens; 2 decoder layers whose single learned query attends to the encoder output; its
  output feeds the classifier. Attention is written with matmul + softmax (not a fused
  kernel) so every counter sees its FLOPs and ONNX export is plain.

Parts for hybrid (each has ``out_dim``; ``sequence`` tells whether it returns ``(B, T, D)``):
- ``DSConvGRUAudioEncoder``: log-mel ``(B, n_mels, steps)`` → ``(B, out_dim)`` (final GRU
  hidden) or ``(B, T', out_dim)`` with ``return_sequence=True``.
- ``DSConvFrameEncoder``: frames ``(B*T, C, H, W)`` → ``(B*T, out_dim)``.
- ``GRUAggregator``: ``(B, T, D)`` → ``(B, hidden)`` (final hidden state).
- ``TextEncoder``: token ids ``(B, L)`` or ``None`` → ``(B, out_dim)``.
- ``MFusHERFusion``: list of ``(B, D_i)`` or ``(B, T_i, D_i)`` → ``(B, d_model)``.
- ``ConcatMLPFusion``: list of ``(B, D_i)`` → ``(B, out_dim)``.
"""

from __future__ import annotations

import itertools
import math
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
    "ConcatMLPFusion",
    "Config",
    "DSConvFrameEncoder",
    "DSConvGRUAudioEncoder",
    "GRUAggregator",
    "IshtiaqModel",
    "MFusHERFusion",
    "TextEncoder",
    "build",
]

CONV_KINDS = ("separable", "standard")
CONV_ACTIVATIONS = ("mish", "swish", "relu")
FUSIONS = ("transformer", "concat")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Ishtiaq et al. 2025; defaults are our reading of the paper (module docstring).

    Raises:
        ConfigError: a field out of range or inconsistent (``d_model`` not divisible by
            ``num_heads``, more mel bands than FFT bins, an FFT longer than the clip, ...).
    """

    family: ClassVar[str]
    num_classes: int = 8
    # inputs
    frames: int = 15
    image_size_px: int = 112
    channels: int = 3
    sample_rate_hz: int = 16000
    clip_seconds: float = 3.0
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    # conv encoders
    conv_kind: str = "separable"
    conv_activation: str = "mish"
    kernel_size: int = 3
    audio_channels: tuple[int, ...] = (32, 64, 128)
    video_channels: tuple[int, ...] = (32, 64, 128, 128)
    audio_gru_hidden: int = 128
    video_gru_hidden: int = 128
    # text
    text_enabled: bool = True
    text_length: int = 6
    vocab_size: int = 10
    text_dim: int = 64
    # fusion
    fusion: str = "transformer"
    d_model: int = 128
    num_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        o = "ishtiaq.Config"
        check_range(o, "num_classes", self.num_classes, 2, 1000)
        check_range(o, "frames", self.frames, 1, 64)
        check_range(o, "image_size_px", self.image_size_px, 16, 448)
        check_choice(o, "channels", self.channels, (1, 3))
        check_range(o, "sample_rate_hz", self.sample_rate_hz, 4000, 48000)
        check_range(o, "clip_seconds", self.clip_seconds, 0.5, 10.0, integer=False)
        check_range(o, "n_fft", self.n_fft, 64, 8192)
        check_range(o, "hop_length", self.hop_length, 16, 4096)
        check_range(o, "n_mels", self.n_mels, 8, 256)
        check_choice(o, "conv_kind", self.conv_kind, CONV_KINDS)
        check_choice(o, "conv_activation", self.conv_activation, CONV_ACTIVATIONS)
        check_choice(o, "kernel_size", self.kernel_size, (3, 5, 7))
        check_int_tuple(o, "audio_channels", self.audio_channels, low=4, high=1024, max_len=6)
        check_int_tuple(o, "video_channels", self.video_channels, low=4, high=1024, max_len=6)
        check_range(o, "audio_gru_hidden", self.audio_gru_hidden, 4, 1024)
        check_range(o, "video_gru_hidden", self.video_gru_hidden, 4, 1024)
        check_choice(o, "text_enabled", self.text_enabled, (True, False))
        check_range(o, "text_length", self.text_length, 1, 512)
        check_range(o, "vocab_size", self.vocab_size, 3, 100_000)
        check_range(o, "text_dim", self.text_dim, 4, 1024)
        check_choice(o, "fusion", self.fusion, FUSIONS)
        check_range(o, "d_model", self.d_model, 8, 1024)
        check_range(o, "num_heads", self.num_heads, 1, 16)
        check_range(o, "encoder_layers", self.encoder_layers, 0, 8)
        check_range(o, "decoder_layers", self.decoder_layers, 0, 8)
        check_range(o, "ff_dim", self.ff_dim, 8, 4096)
        check_range(o, "dropout", self.dropout, 0.0, 0.9, integer=False)
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"{o}.num_heads={self.num_heads} is invalid with d_model={self.d_model}: "
                "d_model must be divisible by num_heads"
            )
        samples = round(self.sample_rate_hz * self.clip_seconds)
        if self.n_fft > samples:
            raise ConfigError(
                f"{o}.n_fft={self.n_fft} is invalid: must be at most the clip's samples "
                f"(sample_rate_hz*clip_seconds = {samples})"
            )
        if self.n_mels > self.n_fft // 2 + 1:
            raise ConfigError(
                f"{o}.n_mels={self.n_mels} is invalid with n_fft={self.n_fft}: must be at most "
                f"n_fft // 2 + 1 = {self.n_fft // 2 + 1} frequency bins"
            )

    @property
    def audio_steps(self) -> int:
        """Log-mel frames per clip (centred STFT): ``1 + samples // hop``."""
        return 1 + round(self.sample_rate_hz * self.clip_seconds) // self.hop_length

    @property
    def input_spec(self) -> InputSpec:
        """What the model built from this config consumes."""
        return InputSpec(
            audio_kind="logmel",
            audio_shape=(self.n_mels, self.audio_steps),
            frames=self.frames,
            channels=self.channels,
            height=self.image_size_px,
            width=self.image_size_px,
            num_classes=self.num_classes,
            sample_rate_hz=self.sample_rate_hz,
            clip_seconds=self.clip_seconds,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            text_length=self.text_length if self.text_enabled else 0,
            vocab_size=self.vocab_size if self.text_enabled else 0,
        )


# --- blocks ------------------------------------------------------------------------------


def _conv_bn_act(cin: int, cout: int, k: int, stride: int, act: str, groups: int = 1) -> list:
    return [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        make_activation(act),
    ]


class DSConvStack(nn.Module):
    """Standard k×k stride-2 stem, then stride-2 blocks: separable (depthwise + pointwise)
    or standard k×k convs. ``(N, C, H, W)`` → ``(N, widths[-1], H', W')``."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        *,
        kernel: int = 3,
        kind: str = "separable",
        activation: str = "mish",
    ) -> None:
        super().__init__()
        layers = _conv_bn_act(in_channels, widths[0], kernel, 2, activation)
        for cin, cout in itertools.pairwise(widths):
            if kind == "separable":
                layers += _conv_bn_act(cin, cin, kernel, 2, activation, groups=cin)
                layers += _conv_bn_act(cin, cout, 1, 1, activation)
            else:
                layers += _conv_bn_act(cin, cout, kernel, 2, activation)
        self.layers = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DSConvFrameEncoder(nn.Module):
    """Per-frame face encoder: ``(N, C, H, W)`` → ``(N, out_dim)`` (global average pool)."""

    sequence = False

    def __init__(
        self,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (32, 64, 128, 128),
        kernel: int = 3,
        kind: str = "separable",
        activation: str = "mish",
    ) -> None:
        super().__init__()
        self.convs = DSConvStack(
            in_channels, widths, kernel=kernel, kind=kind, activation=activation
        )
        self.out_dim = self.convs.out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).mean(dim=(2, 3))


class GRUAggregator(nn.Module):
    """``(B, T, D)`` → final GRU hidden ``(B, hidden)``, or all states with ``return_sequence``."""

    def __init__(self, in_dim: int, *, hidden: int = 128, return_sequence: bool = False) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, batch_first=True)
        self.out_dim = hidden
        self.sequence = return_sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, last = self.gru(x)
        return states if self.sequence else last[-1]


class DSConvGRUAudioEncoder(nn.Module):
    """Log-mel ``(B, n_mels, steps)`` → conv stack over (mel, time) → mean over mel → GRU.

    Returns the final GRU hidden state ``(B, out_dim)``, or ``(B, T', out_dim)`` when
    ``return_sequence``.
    """

    def __init__(
        self,
        *,
        widths: Sequence[int] = (32, 64, 128),
        gru_hidden: int = 128,
        kernel: int = 3,
        kind: str = "separable",
        activation: str = "mish",
        return_sequence: bool = False,
    ) -> None:
        super().__init__()
        self.convs = DSConvStack(1, widths, kernel=kernel, kind=kind, activation=activation)
        self.gru = GRUAggregator(
            self.convs.out_dim, hidden=gru_hidden, return_sequence=return_sequence
        )
        self.out_dim = gru_hidden
        self.sequence = return_sequence

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.convs(audio.unsqueeze(1))  # (B, C, mel', T')
        return self.gru(x.mean(dim=2).transpose(1, 2))


class TextEncoder(nn.Module):
    """Token ids ``(B, L)`` (0 = padding) → mean of the non-pad embeddings ``(B, out_dim)``.

    ``None`` gives a learned "no transcript" vector, so clips without text still work.
    """

    sequence = False

    def __init__(self, vocab_size: int, *, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.missing = nn.Parameter(torch.zeros(dim))
        self.out_dim = dim

    def forward(self, text: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        if text is None:
            # repeat, not expand: a view of a parameter made under no_grad keeps
            # requires_grad without a grad_fn, which breaks module-tracking counters
            return self.missing.unsqueeze(0).repeat(batch_size, 1)
        mask = (text != 0).unsqueeze(-1).to(self.embed.weight.dtype)
        return (self.embed(text) * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MultiHeadAttention(nn.Module):
    """Batch-first multi-head attention with explicit matmuls (countable, ONNX-plain)."""

    prune_protected: ClassVar[str] = "attention"

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q, k, v = (
            self._split(self.q(query)),
            self._split(self.k(memory)),
            self._split(self.v(memory)),
        )
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        y = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        return self.out(y.reshape(query.shape[0], query.shape[1], -1))


class _FeedForward(nn.Sequential):
    def __init__(self, dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim)
        )


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (self-attention, GELU FFN)."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn, self.ff = MultiHeadAttention(dim, heads), _FeedForward(dim, ff_dim, dropout)
        self.norm1, self.norm2, self.drop = (
            nn.LayerNorm(dim),
            nn.LayerNorm(dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.attn(x, x)))
        return self.norm2(x + self.drop(self.ff(x)))


class DecoderLayer(nn.Module):
    """Post-norm transformer decoder layer (self-attention, cross-attention, GELU FFN)."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn, self.cross_attn = (
            MultiHeadAttention(dim, heads),
            MultiHeadAttention(dim, heads),
        )
        self.ff = _FeedForward(dim, ff_dim, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](x + self.drop(self.self_attn(x, x)))
        x = self.norms[1](x + self.drop(self.cross_attn(x, memory)))
        return self.norms[2](x + self.drop(self.ff(x)))


class MFusHERFusion(nn.Module):
    """Reduced MFusHER: modality tokens → encoder layers → a learned query decodes them.

    forward(list of ``(B, D_i)`` (one token) or ``(B, T_i, D_i)`` (T_i tokens)) →
    ``(B, d_model)``. With ``decoder_layers=0`` the encoder output is mean-pooled.
    """

    prune_protected: ClassVar[str] = "fusion core"

    sequence = False

    def __init__(
        self,
        in_dims: Sequence[int],
        *,
        d_model: int = 128,
        num_heads: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        ff_dim: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, d_model) for d in in_dims)
        self.modality = nn.Parameter(torch.zeros(len(in_dims), d_model))
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, num_heads, ff_dim, dropout) for _ in range(encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, num_heads, ff_dim, dropout) for _ in range(decoder_layers)
        )
        self.query = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.normal_(self.modality, std=0.02)
        nn.init.normal_(self.query, std=0.02)
        self.out_dim = d_model

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        tokens = []
        for i, (f, proj) in enumerate(zip(features, self.proj, strict=True)):
            t = proj(f if f.dim() == 3 else f.unsqueeze(1))
            tokens.append(t + self.modality[i])
        x = torch.cat(tokens, dim=1)
        for layer in self.encoder:
            x = layer(x)
        if not self.decoder:
            return x.mean(dim=1)
        q = self.query.repeat(x.shape[0], 1, 1)  # not expand: see TextEncoder.forward
        for layer in self.decoder:
            q = layer(q, x)
        return q[:, 0]


class ConcatMLPFusion(nn.Module):
    """Concat ``(B, D_i)`` vectors → Linear → GELU → ``(B, out_dim)``."""

    sequence = False

    def __init__(self, in_dims: Sequence[int], *, out_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(sum(in_dims), out_dim), nn.GELU(), nn.Dropout(dropout))
        self.out_dim = out_dim

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.mlp(torch.cat(list(features), dim=1))


# --- the model ---------------------------------------------------------------------------


class IshtiaqModel(AVModel):
    """Lightweight MFusHER; ``forward(audio, video, text=None)`` → logits ``(B, classes)``."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        conv = {"kernel": c.kernel_size, "kind": c.conv_kind, "activation": c.conv_activation}
        self.audio_encoder = DSConvGRUAudioEncoder(
            widths=c.audio_channels, gru_hidden=c.audio_gru_hidden, **conv
        )
        self.frame_encoder = DSConvFrameEncoder(c.channels, widths=c.video_channels, **conv)
        self.video_temporal = GRUAggregator(self.frame_encoder.out_dim, hidden=c.video_gru_hidden)
        self.text_encoder = TextEncoder(c.vocab_size, dim=c.text_dim) if c.text_enabled else None
        dims = [self.audio_encoder.out_dim, self.video_temporal.out_dim]
        if self.text_encoder is not None:
            dims.append(self.text_encoder.out_dim)
        if c.fusion == "transformer":
            self.fusion: nn.Module = MFusHERFusion(
                dims,
                d_model=c.d_model,
                num_heads=c.num_heads,
                encoder_layers=c.encoder_layers,
                decoder_layers=c.decoder_layers,
                ff_dim=c.ff_dim,
                dropout=c.dropout,
            )
        else:
            self.fusion = ConcatMLPFusion(dims, out_dim=c.d_model, dropout=c.dropout)
        self.classifier = nn.Linear(c.d_model, c.num_classes)

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, t = video.shape[:2]
        frames = self.frame_encoder(video.flatten(0, 1)).reshape(b, t, -1)
        feats = [self.audio_encoder(audio), self.video_temporal(frames)]
        if self.text_encoder is not None:
            feats.append(self.text_encoder(text, b))
        return self.classifier(self.fusion(feats))


# --- presets, space, build ---------------------------------------------------------------

PRESETS: dict[str, Config] = {
    "ishtiaq2025": Config(),
    # audio + video only (RAVDESS transcripts carry no emotion)
    "ishtiaq2025_av": Config(text_enabled=False),
    # the same encoders with standard convs: the baseline of the paper's "85–90 % fewer
    # conv parameters" claim
    "ishtiaq2025_standard_conv": Config(conv_kind="standard"),
}

_TRANSFORMER = {"fusion": ("transformer",)}
SPACE = {
    "frames": Choice((1, 2, 4, 8, 15, 16)),
    "image_size_px": Choice((32, 48, 64, 96, 112, 128, 160)),
    "channels": Choice((1, 3)),
    "hop_length": Choice((160, 320)),
    "n_mels": Choice((32, 40, 64, 80, 128)),
    "conv_kind": Choice(CONV_KINDS),
    "conv_activation": Choice(CONV_ACTIVATIONS),
    "kernel_size": Choice((3, 5)),
    "audio_channels": Choice(((8, 16), (16, 32), (16, 32, 64), (32, 64, 128), (32, 64, 128, 128))),
    "video_channels": Choice(
        ((8, 16), (16, 32, 64), (16, 32, 64, 64), (32, 64, 128, 128), (32, 64, 128, 256))
    ),
    "audio_gru_hidden": Choice((16, 32, 64, 128, 192)),
    "video_gru_hidden": Choice((16, 32, 64, 128, 192)),
    "text_enabled": Choice((True, False)),
    "text_dim": Choice((16, 32, 64), when={"text_enabled": (True,)}),
    "fusion": Choice(FUSIONS),
    "d_model": Choice((32, 64, 128, 192)),
    "num_heads": Choice((1, 2, 4), when=_TRANSFORMER),
    "encoder_layers": Choice((1, 2, 3), when=_TRANSFORMER),
    "decoder_layers": Choice((0, 1, 2), when=_TRANSFORMER),
    "ff_dim": Choice((64, 128, 256, 512), when=_TRANSFORMER),
    "dropout": FloatRange(0.0, 0.5),
}

PUBLISHED = {
    "ishtiaq2025": Published(
        source="Ishtiaq, Hashmi and Ali (2025), Lightweight Multimodal Emotion Recognition Using "
        "Depthwise CNN and GRU-Based Modality Encoders",
        note="No params or FLOPs published; only '85-90 % fewer convolutional parameters, "
        "30-40 % less memory' than the M-fusHER encoders.",
    ),
}


@register_family(
    "ishtiaq",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    published=PUBLISHED,
    summary="Depthwise-separable CNN + GRU per modality, optional text, reduced MFusHER "
    "transformer fusion",
    paper="Ishtiaq, Hashmi, Ali 2025: Lightweight multimodal emotion recognition using "
    "depthwise CNN and GRU-based modality encoders",
)
def build(config: Config) -> IshtiaqModel:
    """Build the Ishtiaq model for ``config``."""
    return IshtiaqModel(config)
