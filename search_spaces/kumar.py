"""``kumar``: cross-modal attention + Tucker fusion of Kumar, Aruldoss & Wynn (2025).

Audio: a 3 s clip at 16 kHz → log-mel spectrogram, 128 bands × 256 frames (25 ms window, 10 ms
hop) → 2D CNN (conv k3 → BN → ReLU → MaxPool 3×3 s2 per block) → a sequence 60 × 128.
Video: 90 RGB frames 224×224 → ResNet-18 without its FC (our own, no torchvision) → 90 × 512
→ Bi-GRU (all hidden states) → 90 × 512. Both sequences are projected to ``d_model`` = 256, the
video is interpolated to ``t_common`` = 60 steps, and two cross-attention modules (4 heads)
give an audio sequence enriched with visual context and vice versa. Tucker fusion: per time
step the outer product a_t ⊗ v_t builds X (60 × 256 × 256), mode products with learned factor
matrices compress it to the core G (30 × 128 × 128), factorized bilinear pooling (FBP) turns G
into 512 features → classifier.

``tucker_impl`` chooses how the same function is computed:
- ``"materialized"`` (as published, Algorithm A1/A2): build X, then three mode products.
  0.50 G MACs (+ 0.25 G for the FBP readout of the core) and a 15.7 MB activation per sample
  at the published sizes (≈ 2 GB at the paper's batch of 128).
- ``"factorized"``: X is rank one per time step, so G = Σ_t A_t[t] ⊗ (a_t A_a) ⊗ (v_t A_v);
  and the FBP readout is a CP-factorized linear map of G, so the logits need only the three
  projected sequences: z[o] = Σ_r Σ_t (A_t W_t)[t,o,r]·(a_t A_a W_a)[o,r]·(v_t A_v W_v)[o,r].
  12.7 M MACs for Tucker + FBP, no tensor larger than T × 512. Same weights, same outputs
  (tested).

Choices the paper leaves open (each is a ``Config`` field or documented here):
- ``num_classes`` = 8 (RAVDESS; the appendix's "N × 7" contradicts its own 8-class Table 1).
- The audio CNN's block widths (``audio_channels``, default (64, 128): two blocks, so 256
  frames pool to 64 steps of 128 features); the frequency axis is averaged out and the time
  axis linearly interpolated to ``t_common`` (the paper states 60 × 128 but not how).
- The Tucker time mode maps ``t_common`` → ``tucker_rank_time`` (paper: 60 → 30).
- Factorized bilinear pooling of the core (the paper names it, no formula): a CP-rank-
  ``fbp_factor`` trilinear readout z[o] = Σ_r Σ_{k,p,q} G[k,p,q]·W_t[k,o,r]·W_a[p,o,r]·W_v[q,o,r]
  (MFB's sum-pooling over ``fbp_factor``), followed by LayerNorm (MFB uses power + L2
  normalisation), dropout 0.5 and a linear classifier; softmax is left to the loss.
- Cross-attention keeps the shape via a residual and LayerNorm: a' = LN(a + Attn(a → v)).
  Attention is written with explicit matmuls so every FLOP counter sees it.
- Pretrained ImageNet weights cannot be loaded here; ImageNet mean/std normalisation is left
  to the data pipeline. ``stem="small"`` (3×3 s1, no max-pool) suits small face crops.
- Audio framing: ``InputSpec`` asks for n_fft 400 / hop 160 at 256 frames, i.e. the first
  2.56 s of the 3 s clip (3 s at a 10 ms hop would be 301 frames; the paper says 256). Fewer
  ``audio_steps`` stretch hop and window so the same 2.56 s are covered.

Cost: ResNet-18 is ≈ 1.82 G MACs per 224² frame, so ``kumar2025`` is ≈ 165 G MACs per clip;
the search space reaches down to ≈ 1e5 MACs through frames, resolution, width and depth.

Parts for hybrid (``forward`` shapes):
- ``AudioCNN2d``: log-mel ``(B, n_mels, steps) -> (B, T', out_dim)`` sequence.
- ``ResNetEncoder``: per-frame images ``(N, C, H, W) -> (N, out_dim)``.
- ``GRUAggregator``: ``(B, T, D) -> (B, T, out_dim)`` (Bi-GRU hidden states).
- ``CrossAttention``: ``(query (B, Tq, d), context (B, Tk, d)) -> (B, Tq, d)``.
- ``TuckerFusion``: ``(a (B, T, d_a), v (B, T, d_v)) -> (B, fbp_dim)``; ``.core(a, v)``.
- ``resample_time(x, steps)``: linear interpolation of ``(B, T, D)`` along T.
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
from ._blocks import check_int_tuple, make_activation
from ._registry import Published, register_family
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
    "PRESETS",
    "SPACE",
    "AudioCNN2d",
    "Config",
    "CrossAttention",
    "GRUAggregator",
    "KumarModel",
    "ResNetEncoder",
    "TuckerFusion",
    "build",
    "resample_time",
]

ACTIVATIONS = ("relu", "gelu", "silu")
STEMS = ("imagenet", "small")
TUCKER_IMPLS = ("materialized", "factorized")
_MEL_SPAN_SAMPLES = 256 * 160  # the published 256 frames at a 160-sample hop


@dataclass(frozen=True, kw_only=True)
class Config:
    """Hyper-parameters of a ``kumar`` model; the defaults are the published model.

    Fields:
        num_classes: output classes (8 = RAVDESS; the paper's appendix says 7).
        frames: video frames per clip (paper: 90).
        image_size_px: side of the square RGB frame (paper: 224).
        image_channels: 3 = RGB (paper), 1 = grayscale.
        stem: ``"imagenet"`` (7×7 s2 conv + 3×3 s2 max-pool, paper) or ``"small"`` (3×3 s1).
        resnet_base_width: channels of the first ResNet stage; stage i has base·2^i (paper: 64).
        resnet_blocks: basic blocks per stage; its length is the number of stages
            (paper ResNet-18: (2, 2, 2, 2)).
        n_mels: mel bands (paper: 128).
        audio_steps: spectrogram frames (paper: 256).
        audio_channels: output channels of each audio conv block (our choice: (64, 128)).
        audio_kernel: square kernel of the audio convs (paper: 3).
        activation: non-linearity of the CNNs (paper: relu).
        gru_hidden: GRU hidden size per direction (ours: 256, so the Bi-GRU keeps 512).
        gru_bidirectional: Bi-GRU (paper) or a forward GRU.
        d_model: common latent width both modalities are projected to (paper: 256).
        attn_heads: heads of each cross-attention module (paper: 4).
        t_common: common number of time steps (paper: 60).
        tucker_rank_time, tucker_rank_audio, tucker_rank_visual: core size (paper: 30, 128, 128).
        fbp_dim: output features of the factorized bilinear pooling (paper: 512).
        fbp_factor: CP rank per FBP output (MFB's k; ours: 1).
        tucker_impl: ``"materialized"`` (paper) or ``"factorized"`` (same function, cheaper).
        dropout: before the classifier (paper: 0.5).
    """

    family: ClassVar[str]

    num_classes: int = 8
    frames: int = 90
    image_size_px: int = 224
    image_channels: int = 3
    stem: str = "imagenet"
    resnet_base_width: int = 64
    resnet_blocks: tuple[int, ...] = (2, 2, 2, 2)
    n_mels: int = 128
    audio_steps: int = 256
    audio_channels: tuple[int, ...] = (64, 128)
    audio_kernel: int = 3
    activation: str = "relu"
    gru_hidden: int = 256
    gru_bidirectional: bool = True
    d_model: int = 256
    attn_heads: int = 4
    t_common: int = 60
    tucker_rank_time: int = 30
    tucker_rank_audio: int = 128
    tucker_rank_visual: int = 128
    fbp_dim: int = 512
    fbp_factor: int = 1
    tucker_impl: str = "materialized"
    dropout: float = 0.5

    def __post_init__(self) -> None:
        own = "kumar.Config"
        check_range(own, "num_classes", self.num_classes, 2, 1000)
        check_range(own, "frames", self.frames, 1, 512)
        check_range(own, "image_size_px", self.image_size_px, 8, 512)
        check_choice(own, "image_channels", self.image_channels, (1, 3))
        check_choice(own, "stem", self.stem, STEMS)
        check_range(own, "resnet_base_width", self.resnet_base_width, 1, 512)
        check_int_tuple(
            own,
            "resnet_blocks",
            self.resnet_blocks,
            max_len=5,
            low=1,
            high=8,
            example="(2, 2, 2, 2)",
        )
        check_range(own, "n_mels", self.n_mels, 8, 256)
        check_range(own, "audio_steps", self.audio_steps, 8, 2048)
        check_int_tuple(
            own,
            "audio_channels",
            self.audio_channels,
            max_len=5,
            low=1,
            high=1024,
            example="(64, 128)",
        )
        check_choice(own, "audio_kernel", self.audio_kernel, (1, 3, 5, 7))
        check_choice(own, "activation", self.activation, ACTIVATIONS)
        check_range(own, "gru_hidden", self.gru_hidden, 1, 2048)
        check_choice(own, "gru_bidirectional", self.gru_bidirectional, (True, False))
        check_range(own, "d_model", self.d_model, 1, 2048)
        check_range(own, "attn_heads", self.attn_heads, 1, 64)
        check_range(own, "t_common", self.t_common, 1, 1024)
        check_range(own, "tucker_rank_time", self.tucker_rank_time, 1, 1024)
        check_range(own, "tucker_rank_audio", self.tucker_rank_audio, 1, 2048)
        check_range(own, "tucker_rank_visual", self.tucker_rank_visual, 1, 2048)
        check_range(own, "fbp_dim", self.fbp_dim, 1, 8192)
        check_range(own, "fbp_factor", self.fbp_factor, 1, 64)
        check_choice(own, "tucker_impl", self.tucker_impl, TUCKER_IMPLS)
        check_range(own, "dropout", self.dropout, 0.0, 0.9, integer=False)
        if self.d_model % self.attn_heads:
            raise ConfigError(
                f"{own}.attn_heads={self.attn_heads} is invalid with d_model={self.d_model}: "
                "d_model must be divisible by attn_heads; pick a divisor of d_model"
            )
        # Tucker compresses each mode: a rank above its mode's size would expand instead.
        for name, dim_name in (
            ("tucker_rank_time", "t_common"),
            ("tucker_rank_audio", "d_model"),
            ("tucker_rank_visual", "d_model"),
        ):
            rank, dim = getattr(self, name), getattr(self, dim_name)
            if rank > dim:
                raise ConfigError(
                    f"{own}.{name}={rank} is invalid with {dim_name}={dim}: must be in "
                    f"[1, {dim}] (a Tucker rank cannot exceed its mode's size)"
                )
        need = 2 ** len(self.audio_channels)
        for name in ("n_mels", "audio_steps"):
            if getattr(self, name) < need:
                raise ConfigError(
                    f"{own}.{name}={getattr(self, name)} is invalid with audio_channels="
                    f"{self.audio_channels!r}: each audio block halves it, so it must be at "
                    f"least {need}; use fewer audio blocks or a larger {name}"
                )

    @property
    def input_spec(self) -> InputSpec:
        """What the model built from this config consumes (log-mel, 16 kHz, 3 s clip)."""
        hop = max(1, round(_MEL_SPAN_SAMPLES / self.audio_steps))  # 160 at 256 frames
        return InputSpec(
            audio_kind="logmel",
            audio_shape=(self.n_mels, self.audio_steps),
            frames=self.frames,
            channels=self.image_channels,
            height=self.image_size_px,
            width=self.image_size_px,
            num_classes=self.num_classes,
            sample_rate_hz=16000,
            clip_seconds=3.0,
            n_fft=max(400, round(2.5 * hop)),  # 25 ms window = 2.5 hops, as published
            hop_length=hop,
        )


def resample_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Linearly interpolate ``(B, T, D)`` to ``(B, steps, D)``; identity when T == steps."""
    if x.shape[1] == steps:
        return x
    y = F.interpolate(x.transpose(1, 2), size=steps, mode="linear", align_corners=False)
    return y.transpose(1, 2)


# --- blocks ------------------------------------------------------------------------------


class AudioCNN2d(nn.Module):
    """Log-mel 2D CNN keeping time: ``(B, n_mels, steps) -> (B, T', out_dim)``.

    Each block: conv k×k (same padding) → BN → activation → MaxPool 3×3 s2 p1, so both axes
    halve (rounding up) per block; the frequency axis is then averaged out.

    Args:
        channels: output channels per block; ``out_dim = channels[-1]``.
        kernel: square kernel. activation: one of ``ACTIVATIONS``.
        steps: input frames, to report ``out_steps``.
    """

    def __init__(
        self,
        *,
        channels: Sequence[int] = (64, 128),
        kernel: int = 3,
        activation: str = "relu",
        steps: int = 256,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for cout in channels:
            layers += [
                nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm2d(cout),
                make_activation(activation),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.out_dim = channels[-1]
        self.out_steps = steps
        for _ in channels:
            self.out_steps = (self.out_steps + 1) // 2

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.features(audio.unsqueeze(1))  # (B, C, F', T')
        return x.mean(dim=2).transpose(1, 2)  # (B, T', C)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convs with BN, identity or 1×1-conv shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = make_activation(activation)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act2(y + identity)


class ResNetEncoder(nn.Module):
    """ResNet without its FC (ResNet-18 by default): ``(N, C, H, W) -> (N, out_dim)``.

    Args:
        in_channels: 1 or 3. base_width: channels of stage 0; stage i has base·2^i.
        blocks: basic blocks per stage (its length is the number of stages).
        stem: ``"imagenet"`` (7×7 s2 + max-pool) or ``"small"`` (3×3 s1, no pool).
        activation: one of ``ACTIVATIONS``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        base_width: int = 64,
        blocks: Sequence[int] = (2, 2, 2, 2),
        stem: str = "imagenet",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, base_width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(base_width),
                make_activation(activation),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, base_width, 3, padding=1, bias=False),
                nn.BatchNorm2d(base_width),
                make_activation(activation),
            )
        stages: list[nn.Module] = []
        cin = base_width
        for i, n in enumerate(blocks):
            cout = base_width * 2**i
            layers = [
                BasicBlock(
                    cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1, activation
                )
                for j in range(n)
            ]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


class GRUAggregator(nn.Module):
    """(Bi-)GRU keeping every hidden state: ``(B, T, D) -> (B, T, out_dim)``."""

    def __init__(self, in_dim: int, hidden: int, *, bidirectional: bool = True) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class CrossAttention(nn.Module):
    """Multi-head cross-attention with residual + LayerNorm: ``LN(q + Attn(q, ctx))``.

    Written with explicit matmuls (no fused kernel) so FLOP counters and ONNX see the work.
    """

    prune_protected: ClassVar[str] = "attention"

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, tq, d = query.shape
        tk = context.shape[1]
        h = self.heads
        q = self.q(query).view(b, tq, h, d // h).transpose(1, 2)
        k = self.k(context).view(b, tk, h, d // h).transpose(1, 2)
        v = self.v(context).view(b, tk, h, d // h).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(b, tq, d)
        return self.norm(query + self.out(y))


class TuckerFusion(nn.Module):
    """Tucker fusion of two aligned sequences + factorized bilinear pooling of the core.

    ``forward(a (B, T, d_a), v (B, T, d_v)) -> (B, fbp_dim)``. The core is
    G = X ×_t A_tᵀ ×_a A_aᵀ ×_v A_vᵀ with X[t] = a_t ⊗ v_t; the readout is
    z[o] = Σ_r Σ_{k,p,q} G[k,p,q] W_t[k,o,r] W_a[p,o,r] W_v[q,o,r], then LayerNorm.

    Args:
        impl: ``"materialized"`` builds X and G (as published); ``"factorized"`` never builds
            either and gives the same result (up to float rounding).
    """

    prune_protected: ClassVar[str] = "fusion core"

    def __init__(
        self,
        *,
        steps: int,
        d_audio: int,
        d_visual: int,
        rank_time: int,
        rank_audio: int,
        rank_visual: int,
        out_dim: int,
        factor: int = 1,
        impl: str = "materialized",
    ) -> None:
        super().__init__()
        self.impl = impl
        self.out_dim = out_dim
        self.factor = factor
        n = out_dim * factor
        # Column-scaled init keeps the trilinear products near unit scale.
        self.factor_time = nn.Parameter(torch.randn(steps, rank_time) / math.sqrt(steps))
        self.factor_audio = nn.Parameter(torch.randn(d_audio, rank_audio) / math.sqrt(d_audio))
        self.factor_visual = nn.Parameter(torch.randn(d_visual, rank_visual) / math.sqrt(d_visual))
        self.pool_time = nn.Parameter(torch.randn(rank_time, n) / math.sqrt(rank_time))
        self.pool_audio = nn.Parameter(torch.randn(rank_audio, n) / math.sqrt(rank_audio))
        self.pool_visual = nn.Parameter(torch.randn(rank_visual, n) / math.sqrt(rank_visual))
        self.norm = nn.LayerNorm(out_dim)

    def core(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The Tucker core G ``(B, rank_time, rank_audio, rank_visual)``."""
        if self.impl == "materialized":
            return self._core_materialized(a, v)
        a2 = a @ self.factor_audio  # (B, T, Ka)
        v2 = v @ self.factor_visual  # (B, T, Kv)
        # G[k] = Σ_t A_t[t, k] · a2_t ⊗ v2_t = (A_t[:, k] ∘ a2)ᵀ v2
        weighted = self.factor_time.t().unsqueeze(-1) * a2.unsqueeze(1)  # (B, K, T, Ka)
        return weighted.transpose(-2, -1) @ v2.unsqueeze(1)

    def _core_materialized(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, da = a.shape
        dv = v.shape[2]
        x = a.unsqueeze(-1) * v.unsqueeze(-2)  # outer products: (B, T, Da, Dv)
        x = self.factor_time.t() @ x.reshape(b, t, da * dv)  # mode-t: (B, K, Da·Dv)
        x = x.view(b, -1, da, dv)
        x = self.factor_audio.t() @ x  # mode-a: (B, K, Ka, Dv)
        return x @ self.factor_visual  # mode-v: (B, K, Ka, Kv)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b = a.shape[0]
        if self.impl == "materialized":
            g = self._core_materialized(a, v)  # (B, K, Ka, Kv)
            y = g @ self.pool_visual  # (B, K, Ka, N)
            y = (y * self.pool_audio).sum(dim=2)  # (B, K, N)
            z = (y * self.pool_time).sum(dim=1)  # (B, N)
        else:
            ct = self.factor_time @ self.pool_time  # (T, N)
            ca = (a @ self.factor_audio) @ self.pool_audio  # (B, T, N)
            cv = (v @ self.factor_visual) @ self.pool_visual  # (B, T, N)
            z = (ct * ca * cv).sum(dim=1)  # (B, N)
        z = z.view(b, self.out_dim, self.factor).sum(dim=-1)  # MFB sum-pooling
        return self.norm(z)


# --- model -------------------------------------------------------------------------------


class KumarModel(AVModel):
    """Audio 2D CNN ‖ ResNet + Bi-GRU → project, align → cross-attention ×2 → Tucker + FBP."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.audio_encoder = AudioCNN2d(
            channels=c.audio_channels,
            kernel=c.audio_kernel,
            activation=c.activation,
            steps=c.audio_steps,
        )
        self.visual_encoder = ResNetEncoder(
            in_channels=c.image_channels,
            base_width=c.resnet_base_width,
            blocks=c.resnet_blocks,
            stem=c.stem,
            activation=c.activation,
        )
        self.temporal = GRUAggregator(
            self.visual_encoder.out_dim, c.gru_hidden, bidirectional=c.gru_bidirectional
        )
        self.audio_proj = nn.Linear(self.audio_encoder.out_dim, c.d_model)
        self.visual_proj = nn.Linear(self.temporal.out_dim, c.d_model)
        self.audio_attends_video = CrossAttention(c.d_model, c.attn_heads)
        self.video_attends_audio = CrossAttention(c.d_model, c.attn_heads)
        self.fusion = TuckerFusion(
            steps=c.t_common,
            d_audio=c.d_model,
            d_visual=c.d_model,
            rank_time=c.tucker_rank_time,
            rank_audio=c.tucker_rank_audio,
            rank_visual=c.tucker_rank_visual,
            out_dim=c.fbp_dim,
            factor=c.fbp_factor,
            impl=c.tucker_impl,
        )
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.fbp_dim, c.num_classes)

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        steps = self.config.t_common
        a = resample_time(self.audio_proj(self.audio_encoder(audio)), steps)
        b, f = video.shape[:2]
        frames = self.visual_encoder(video.flatten(0, 1)).view(b, f, -1)
        v = resample_time(self.visual_proj(self.temporal(frames)), steps)
        a2 = self.audio_attends_video(a, v)
        v2 = self.video_attends_audio(v, a)
        return self.classifier(self.dropout(self.fusion(a2, v2)))


# --- presets and search space ------------------------------------------------------------

PRESETS: dict[str, Config] = {
    "kumar2025": Config(),
    "kumar2025_factorized": Config(tucker_impl="factorized"),
}

_PUBLISHED = Published(
    source="Kumar, Aruldoss, Wynn 2025 (MTI 9(116)), Appendix A",
    note="no params or FLOPs published; ResNet-18 alone is ≈1.8 G MACs per 224² frame, "
    "≈164 G MACs for the 90 frames",
)

# Heavy knobs (frames, resolution, width, depth) are spread so the median sample costs tens of
# M MACs while the published size (≈1.6e11 MACs) stays reachable.
SPACE = {
    "frames": IntRange(1, 90, log=True),
    "image_size_px": Choice((24, 32, 48, 64, 96, 128, 160, 224)),
    "image_channels": Choice((1, 3)),
    "stem": Choice(STEMS, when={"image_size_px": (24, 32, 48)}),
    "resnet_base_width": Choice((4, 8, 12, 16, 24, 32, 48, 64)),
    "resnet_blocks": Choice(
        ((1,), (1, 1), (1, 1, 1), (2, 2), (1, 1, 1, 1), (2, 2, 2), (2, 2, 2, 2))
    ),
    "n_mels": Choice((32, 40, 64, 80, 128)),
    "audio_steps": Choice((64, 96, 128, 192, 256)),
    "audio_channels": Choice(
        (
            (4,),
            (8,),
            (16,),
            (8, 16),
            (16, 32),
            (8, 16, 32),
            (32, 64),
            (16, 32, 64),
            (64, 128),
            (32, 64, 128),
        )
    ),
    "audio_kernel": Choice((3, 5)),
    "activation": Choice(ACTIVATIONS),
    "gru_hidden": Choice((16, 32, 64, 128, 256)),
    "gru_bidirectional": Choice((True, False)),
    "d_model": Choice((16, 32, 64, 128, 256)),
    "attn_heads": Choice((1, 2, 4, 8)),
    "t_common": IntRange(4, 60, log=True),
    # a rank above its mode's size is lowered to it (at_most) rather than rejected
    "tucker_rank_time": Choice((2, 4, 8, 16, 30), at_most="t_common"),
    "tucker_rank_audio": Choice((4, 8, 16, 32, 64, 128), at_most="d_model"),
    "tucker_rank_visual": Choice((4, 8, 16, 32, 64, 128), at_most="d_model"),
    "fbp_dim": Choice((32, 64, 128, 256, 512)),
    "fbp_factor": Choice((1, 2, 4)),
    "tucker_impl": Choice(TUCKER_IMPLS),
    "dropout": FloatRange(0.0, 0.6),
}


@register_family(
    "kumar",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    published={name: _PUBLISHED for name in PRESETS},
    summary="mel 2D CNN + ResNet-18/Bi-GRU, bidirectional cross-attention, Tucker fusion",
    paper="Kumar, Aruldoss and Wynn (2025), Cross-Modal Attention Fusion: A Deep Learning and "
    "Affective Computing Model for Emotion Recognition",
)
def build(config: Config) -> KumarModel:
    """Build the ``kumar`` model for ``config``."""
    return KumarModel(config)
