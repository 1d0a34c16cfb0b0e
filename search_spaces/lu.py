"""``lu``: GhostNet + Triplet Attention + Frame Attention ‖ 1D-CNN (Lu, Lu & Lin 2025).

Face stream: each of 15 RGB 224×224 face crops goes through a GhostNet whose Ghost bottlenecks
carry a Triplet Attention Module (TAM) where GhostNet has squeeze-excitation (Table I, which
follows MobileNetV3-Small's stage table), then a 1×1 conv to 576 maps and global average
pooling. A Frame Attention Network (FAN, Meng et al. 2019) weights the 15 frame features and
a linear classifier gives the face probabilities. Speech stream: 40 MFCCs averaged over time,
read as a length-40 one-channel sequence, pass eight Conv1d + BN + PReLU + Dropout blocks
(Table II: k5 s1 / k7 s2 alternating, 128 channels, the last two 64), global average pooling,
FC 64→128, FC 128→classes. Decision-level fusion: per-class geometric mean √(p_face·p_speech)
(the paper's choice) or arithmetic mean (its ablation).

``forward`` returns LOGITS: the log of the fused probabilities. For the geometric mean that
is ½(log p_face + log p_speech); softmax of it is the renormalised geometric mean, so argmax
and cross-entropy training work unchanged (training then updates both streams jointly; the
paper does not say whether it trained them separately). For the arithmetic mean it is
log((p_face + p_speech)/2), already normalised.

Choices the paper leaves open (each is a ``Config`` field):
- ``tam_residual``: the paper adds the TAM output to its input ("fused with the input via a
  residual connection"), unlike the original TAM; on by default.
- Ghost modules use ratio 2 and a depthwise 3×3 cheap operation, and the k×k depthwise conv
  only in stride-2 bottlenecks, as in the GhostNet reference code (``ghost_ratio``).
- Without FAN (ablations F1, F2) the frame features are averaged (``temporal="mean"``).
- The FAN output is [f_i ‖ f'] (2·576 = 1152 features), classified by one linear layer, as in
  Meng et al.'s code. The speech FC 64→128 is followed by PReLU + Dropout (``speech_*``).
- The speech stream pools its 3×64 map to 64 (Table II's FC input is 64): ``speech_pool``.
- PReLU has one slope per channel (PyTorch's ``num_parameters=C``); ``dropout`` (the paper
  grid-searched 0.1–0.5 without saying the result) defaults to 0.2 in both streams.

Parts for hybrid (clean interfaces, reusable by other families):
- ``GhostNetTAM``: per-frame visual encoder ``(N, C, H, W) -> (N, out_dim)``.
- ``FrameAttention``: FAN aggregator ``(B, T, D) -> (B, out_dim)`` with ``out_dim = 2·D``.
- ``LuSpeechCNN``: audio encoder ``(B, n_mfcc) -> (B, out_dim)`` (through the FC 64→128).
- ``TripletAttention`` and ``GhostBottleneck`` blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ._base import AVModel
from ._blocks import make_activation, make_divisible
from ._registry import Published, register_family
from ._spec import Choice, ConfigError, FloatRange, InputSpec, check_choice, check_range

__all__ = [
    "PRESETS",
    "SPACE",
    "TABLES",
    "TABLE_I",
    "Config",
    "FrameAttention",
    "GhostBottleneck",
    "GhostNetTAM",
    "LuModel",
    "LuSpeechCNN",
    "TripletAttention",
    "build",
]

# Table I of the paper, one row per Ghost bottleneck: (kernel, expansion, out, TAM, stride).
TABLE_I: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 16, 16, 1, 2),
    (3, 72, 24, 0, 2),
    (3, 88, 24, 0, 1),
    (3, 96, 40, 1, 2),
    (5, 240, 40, 1, 1),
    (5, 240, 40, 1, 1),
    (5, 120, 48, 1, 1),
    (5, 144, 48, 1, 1),
    (5, 288, 96, 1, 2),
    (3, 576, 96, 1, 1),
    (3, 576, 96, 1, 1),
)
# Shallower variants for the search space: same resolutions, fewer stride-1 repeats.
TABLE_I_7: tuple[tuple[int, int, int, int, int], ...] = (
    TABLE_I[0],
    TABLE_I[1],
    TABLE_I[3],
    TABLE_I[4],
    TABLE_I[6],
    TABLE_I[8],
    TABLE_I[9],
)
TABLE_I_5: tuple[tuple[int, int, int, int, int], ...] = (
    TABLE_I[0],
    TABLE_I[1],
    TABLE_I[3],
    TABLE_I[6],
    TABLE_I[8],
)
# Deeper: one more stride-1 block at 28² and at 7² (MobileNetV3-Large style repeats).
TABLE_I_13: tuple[tuple[int, int, int, int, int], ...] = (
    *TABLE_I[:3],
    (3, 88, 24, 1, 1),
    *TABLE_I[3:],
    (3, 576, 96, 1, 1),
)

TABLES = {5: TABLE_I_5, 7: TABLE_I_7, 11: TABLE_I, 13: TABLE_I_13}

FACE_ACTIVATIONS = ("relu", "hardswish", "silu", "gelu")
SPEECH_ACTIVATIONS = ("prelu", "relu", "silu", "gelu")
TEMPORAL = ("fan", "mean")
FUSIONS = ("geometric", "arithmetic")
POOLS = ("avg", "max")
_DIVISOR = 4  # GhostNet rounds channel counts to multiples of 4
S2 = (128, 128, 128, 128, 128, 128, 64, 64)


@dataclass(frozen=True, kw_only=True)
class Config:
    """Hyper-parameters of a ``lu`` model; the defaults are the paper's model (F4 + S2 + GM).

    Fields:
        num_classes: output classes (8 RAVDESS, 6 CREMA-D).
        frames: face frames per clip (paper: 15). image_size_px: square crop side (224).
        image_channels: 3 = RGB (paper), 1 = grayscale.
        width_mult: multiplies every face-stream channel count (rounded to a multiple of 4).
        exp_mult: multiplies the expansion (hidden) width of every bottleneck.
        depth: number of Ghost bottlenecks: 11 is Table I; 5, 7 drop stride-1 repeats, 13 adds
            one at 28² and one at 7² (``TABLES``).
        block_table: custom rows (kernel, expansion, out, TAM 0/1, stride) replacing the
            built-in table for ``depth``; must have ``depth`` rows. Empty = built-in.
        kernel_override: 0 keeps the table's kernels; 3, 5 or 7 sets every bottleneck's kernel.
        head_channels: the final 1×1 conv's width before width_mult (paper: 576).
        tam: whether the table's TAM rows get a TAM (F2, F4) or none do (F1, F3).
        tam_residual: add the TAM output to its input (paper) or not (original TAM).
        tam_kernel: kernel of the TAM's 2→1 convs (7 in Triplet Attention).
        ghost_ratio: Ghost module ratio s (2: half the maps come from the cheap operation).
        activation: face-stream non-linearity (GhostNet: relu).
        temporal: ``"fan"`` (F3, F4) or ``"mean"`` of frame features (F1, F2).
        n_mfcc: MFCC coefficients, the speech sequence length (paper: 40).
        speech_channels: output channels of each Conv1d block (S1/S2/S3 differ here).
        speech_kernels: kernels of the (stride 1, stride 2) blocks, which alternate (5, 7).
        speech_fc_units: width of the speech FC after pooling (128).
        speech_pool: how the final map is reduced to its channels (``"avg"`` or ``"max"``).
        speech_activation: speech-stream non-linearity (paper: PReLU).
        fusion: ``"geometric"`` (paper) or ``"arithmetic"`` mean of class probabilities.
        dropout: rate in both streams (paper: grid-searched 0.1–0.5).
    """

    family: ClassVar[str]

    num_classes: int = 8
    frames: int = 15
    image_size_px: int = 224
    image_channels: int = 3
    width_mult: float = 1.0
    exp_mult: float = 1.0
    depth: int = 11
    block_table: tuple[tuple[int, int, int, int, int], ...] = ()
    kernel_override: int = 0
    head_channels: int = 576
    tam: bool = True
    tam_residual: bool = True
    tam_kernel: int = 7
    ghost_ratio: int = 2
    activation: str = "relu"
    temporal: str = "fan"
    n_mfcc: int = 40
    speech_channels: tuple[int, ...] = S2
    speech_kernels: tuple[int, int] = (5, 7)
    speech_fc_units: int = 128
    speech_pool: str = "avg"
    speech_activation: str = "prelu"
    fusion: str = "geometric"
    dropout: float = 0.2

    def __post_init__(self) -> None:
        own = "lu.Config"
        check_range(own, "num_classes", self.num_classes, 2, 1000)
        check_range(own, "frames", self.frames, 1, 64)
        check_range(own, "image_size_px", self.image_size_px, 16, 512)
        check_choice(own, "image_channels", self.image_channels, (1, 3))
        check_range(own, "width_mult", self.width_mult, 0.1, 3.0, integer=False)
        check_range(own, "exp_mult", self.exp_mult, 0.25, 4.0, integer=False)
        check_range(own, "depth", self.depth, 1, 24)
        if self.block_table:
            _check_table(own, self.block_table)
            if len(self.block_table) != self.depth:
                raise ConfigError(
                    f"{own}.block_table={self.block_table!r} has {len(self.block_table)} rows "
                    f"but depth={self.depth}: they must agree; set depth={len(self.block_table)}"
                )
        elif self.depth not in TABLES:
            raise ConfigError(
                f"{own}.depth={self.depth} has no built-in table: must be one of "
                f"{', '.join(map(str, TABLES))}, or give block_table with that many rows"
            )
        check_choice(own, "kernel_override", self.kernel_override, (0, 3, 5, 7))
        check_range(own, "head_channels", self.head_channels, 8, 4096)
        for name in ("tam", "tam_residual"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"{own}.{name}={getattr(self, name)!r} is invalid: must be true or false"
                )
        check_choice(own, "tam_kernel", self.tam_kernel, (3, 5, 7))
        check_range(own, "ghost_ratio", self.ghost_ratio, 2, 6)
        check_choice(own, "activation", self.activation, FACE_ACTIVATIONS)
        check_choice(own, "temporal", self.temporal, TEMPORAL)
        check_range(own, "n_mfcc", self.n_mfcc, 8, 128)
        ok = isinstance(self.speech_channels, tuple) and 1 <= len(self.speech_channels) <= 12
        ok = ok and all(_is_int(c) and 1 <= c <= 1024 for c in self.speech_channels)
        if not ok:
            raise ConfigError(
                f"{own}.speech_channels={self.speech_channels!r} is invalid: must be a tuple "
                "of 1 to 12 integers in [1, 1024], e.g. (128, 128, 64, 64)"
            )
        ok = isinstance(self.speech_kernels, tuple) and len(self.speech_kernels) == 2
        if not ok or not all(_is_int(k) and k in (1, 3, 5, 7, 9, 11) for k in self.speech_kernels):
            raise ConfigError(
                f"{own}.speech_kernels={self.speech_kernels!r} is invalid: must be two odd "
                "kernels (stride-1 block, stride-2 block) in {1, 3, 5, 7, 9, 11}, e.g. (5, 7)"
            )
        check_range(own, "speech_fc_units", self.speech_fc_units, 1, 4096)
        check_choice(own, "speech_pool", self.speech_pool, POOLS)
        check_choice(own, "speech_activation", self.speech_activation, SPEECH_ACTIVATIONS)
        check_choice(own, "fusion", self.fusion, FUSIONS)
        check_range(own, "dropout", self.dropout, 0.0, 0.9, integer=False)
        if self.tam and not any(row[3] for row in self.table):
            raise ConfigError(
                f"{own}.tam=True is inconsistent with block_table: no row has TAM=1; set "
                "tam=False or mark rows with TAM=1"
            )

    @property
    def table(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """The bottleneck rows in use: ``block_table`` or the built-in one for ``depth``."""
        return self.block_table or TABLES[self.depth]

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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_table(owner: str, table: object) -> None:
    rule = (
        "must be a tuple of 1 to 24 rows (kernel in {3, 5, 7}, expansion in [1, 4096], "
        "out in [1, 2048], TAM in {0, 1}, stride in {1, 2}), e.g. lu.TABLE_I"
    )
    ok = isinstance(table, tuple) and 1 <= len(table) <= 24
    for row in table if ok else ():  # type: ignore[union-attr]
        ok = ok and isinstance(row, tuple) and len(row) == 5 and all(map(_is_int, row))
        if ok:
            k, exp, out, tam, stride = row
            ok = k in (3, 5, 7) and 1 <= exp <= 4096 and 1 <= out <= 2048
            ok = ok and tam in (0, 1) and stride in (1, 2)
    if not ok:
        raise ConfigError(f"{owner}.block_table={table!r} is invalid: {rule}")


# --- face blocks -------------------------------------------------------------------------


class _AttentionGate(nn.Module):
    """Z-pool (max ‖ mean over dim 1) → k×k conv 2→1 → BN → sigmoid, gating the input."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class TripletAttention(nn.Module):
    """Triplet attention (Misra et al. 2021): C–H, C–W and H–W gates, averaged; ``(N,C,H,W)``.

    With ``residual`` the average is added to the input, as the Lu paper describes.
    """

    prune_passthrough: ClassVar[bool] = True  # channels pass through its gates

    def __init__(self, *, kernel: int = 7, residual: bool = True) -> None:
        super().__init__()
        self.gate_ch = _AttentionGate(kernel)  # on (N, H, C, W): pools over H
        self.gate_cw = _AttentionGate(kernel)  # on (N, W, H, C): pools over W
        self.gate_hw = _AttentionGate(kernel)  # on (N, C, H, W): pools over C
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.gate_ch(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        b = self.gate_cw(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        y = (a + b + self.gate_hw(x)) * (1.0 / 3.0)
        return x + y if self.residual else y


class _GhostModule(nn.Module):
    """1×1 primary conv to ⌈out/ratio⌉ maps + depthwise 3×3 'cheap' maps, concatenated."""

    def __init__(self, cin: int, cout: int, *, ratio: int, act: str | None) -> None:
        super().__init__()
        self.cout = cout
        init = math.ceil(cout / ratio)
        self.primary = nn.Sequential(
            nn.Conv2d(cin, init, 1, bias=False),
            nn.BatchNorm2d(init),
            make_activation(act) if act else nn.Identity(),
        )
        self.cheap = nn.Sequential(
            nn.Conv2d(init, init * (ratio - 1), 3, padding=1, groups=init, bias=False),
            nn.BatchNorm2d(init * (ratio - 1)),
            make_activation(act) if act else nn.Identity(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary(x)
        out = torch.cat([x1, self.cheap(x1)], dim=1)
        return out if out.shape[1] == self.cout else out[:, : self.cout]


class GhostBottleneck(nn.Module):
    """Ghost → [k×k depthwise stride 2] → [TAM] → Ghost (linear), plus shortcut (GhostNet)."""

    def __init__(
        self,
        cin: int,
        hidden: int,
        cout: int,
        *,
        kernel: int,
        stride: int,
        tam: bool,
        tam_kernel: int = 7,
        tam_residual: bool = True,
        ratio: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_GhostModule(cin, hidden, ratio=ratio, act=activation)]
        if stride > 1:
            layers += [
                nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden),
            ]
        if tam:
            layers.append(TripletAttention(kernel=tam_kernel, residual=tam_residual))
        layers.append(_GhostModule(hidden, cout, ratio=ratio, act=None))
        self.body = nn.Sequential(*layers)
        if cin == cout and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class GhostNetTAM(nn.Module):
    """Per-frame face encoder ``(N, C, H, W) -> (N, out_dim)``: stem, bottlenecks, 1×1, GAP.

    Args mirror ``Config`` (``tam=False`` drops every TAM: the F1/F3 GhostNet).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        block_table: Sequence[Sequence[int]] = TABLE_I,
        width_mult: float = 1.0,
        exp_mult: float = 1.0,
        kernel_override: int = 0,
        head_channels: int = 576,
        tam: bool = True,
        tam_kernel: int = 7,
        tam_residual: bool = True,
        ghost_ratio: int = 2,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        cin = make_divisible(16 * width_mult, _DIVISOR)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, cin, 3, 2, 1, bias=False),
            nn.BatchNorm2d(cin),
            make_activation(activation),
        ]
        for k, exp, out, use_tam, stride in block_table:
            cout = make_divisible(out * width_mult, _DIVISOR)
            hidden = make_divisible(exp * width_mult * exp_mult, _DIVISOR)
            layers.append(
                GhostBottleneck(
                    cin,
                    hidden,
                    cout,
                    kernel=kernel_override or k,
                    stride=stride,
                    tam=tam and bool(use_tam),
                    tam_kernel=tam_kernel,
                    tam_residual=tam_residual,
                    ratio=ghost_ratio,
                    activation=activation,
                )
            )
            cin = cout
        self.out_dim = make_divisible(head_channels * width_mult, _DIVISOR)
        layers += [
            nn.Conv2d(cin, self.out_dim, 1, bias=False),
            nn.BatchNorm2d(self.out_dim),
            make_activation(activation),
        ]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class FrameAttention(nn.Module):
    """Frame Attention Network aggregation (Meng et al. 2019): ``(B, T, D) -> (B, 2·D)``.

    α_i = σ(fc(f_i)); f' = Σα_i f_i / Σα_i; β_i = σ(fc([f_i ‖ f'])); out = Σα_iβ_i[f_i ‖ f'] /
    Σα_iβ_i.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Linear(dim, 1)
        self.beta = nn.Linear(2 * dim, 1)
        self.out_dim = 2 * dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        alpha = torch.sigmoid(self.alpha(frames))  # (B, T, 1)
        pooled = (alpha * frames).sum(dim=1, keepdim=True) / alpha.sum(dim=1, keepdim=True)
        pair = torch.cat([frames, pooled.expand_as(frames)], dim=2)  # (B, T, 2D)
        weight = alpha * torch.sigmoid(self.beta(pair))
        return (weight * pair).sum(dim=1) / weight.sum(dim=1)


class _MeanOverFrames(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.mean(dim=1)


# --- speech blocks -----------------------------------------------------------------------


class LuSpeechCNN(nn.Module):
    """Depth-tapered 1D-CNN on averaged MFCCs: ``(B, n_mfcc) -> (B, out_dim)``.

    Blocks alternate stride 1 (kernel ``kernels[0]``) and stride 2 (``kernels[1]``), each
    Conv1d + BN + act + Dropout; then global pooling and FC → act → Dropout (out_dim units).
    """

    def __init__(
        self,
        *,
        channels: Sequence[int] = S2,
        kernels: tuple[int, int] = (5, 7),
        fc_units: int = 128,
        pool: str = "avg",
        activation: str = "prelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, cout in enumerate(channels):
            k, stride = (kernels[0], 1) if i % 2 == 0 else (kernels[1], 2)
            layers += [
                nn.Conv1d(cin, cout, k, stride, k // 2),
                nn.BatchNorm1d(cout),
                make_activation(activation, cout),
                nn.Dropout(dropout),
            ]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.max_pool = pool == "max"
        self.fc = nn.Sequential(
            nn.Linear(cin, fc_units), make_activation(activation, fc_units), nn.Dropout(dropout)
        )
        self.out_dim = fc_units

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.convs(audio.unsqueeze(1))
        x = x.amax(dim=2) if self.max_pool else x.mean(dim=2)
        return self.fc(x)


# --- model -------------------------------------------------------------------------------


class LuModel(AVModel):
    """Face stream (GhostNet-TAM per frame → FAN → linear) and speech stream (1D-CNN → linear),
    fused at decision level; returns the log of the fused class probabilities (logits)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        c = config
        self.face = GhostNetTAM(
            in_channels=c.image_channels,
            block_table=c.table,
            width_mult=c.width_mult,
            exp_mult=c.exp_mult,
            kernel_override=c.kernel_override,
            head_channels=c.head_channels,
            tam=c.tam,
            tam_kernel=c.tam_kernel,
            tam_residual=c.tam_residual,
            ghost_ratio=c.ghost_ratio,
            activation=c.activation,
        )
        agg = FrameAttention if c.temporal == "fan" else _MeanOverFrames
        self.frames = agg(self.face.out_dim)
        self.face_head = nn.Sequential(
            nn.Dropout(c.dropout), nn.Linear(self.frames.out_dim, c.num_classes)
        )
        self.speech = LuSpeechCNN(
            channels=c.speech_channels,
            kernels=c.speech_kernels,
            fc_units=c.speech_fc_units,
            pool=c.speech_pool,
            activation=c.speech_activation,
            dropout=c.dropout,
        )
        self.speech_head = nn.Linear(self.speech.out_dim, c.num_classes)

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, t = video.shape[:2]
        per_frame = self.face(video.flatten(0, 1)).view(b, t, -1)
        face = torch.log_softmax(self.face_head(self.frames(per_frame)), dim=1)
        speech = torch.log_softmax(self.speech_head(self.speech(audio)), dim=1)
        if self.config.fusion == "geometric":
            return 0.5 * (face + speech)  # log √(p_face · p_speech)
        # log of the arithmetic mean; the clamp keeps log finite if both underflow
        return torch.log(((face.exp() + speech.exp()) * 0.5).clamp_min(1e-30))


# --- presets and search space ------------------------------------------------------------

_BASE = Config()
PRESETS: dict[str, Config] = {
    "lu2025": _BASE,  # F4 + S2 + geometric mean: the paper's best (97.56 % RAVDESS)
    "lu2025_f1": Config(tam=False, temporal="mean"),  # GhostNet
    "lu2025_f2": Config(temporal="mean"),  # + TAM
    "lu2025_f3": Config(tam=False),  # + FAN
    "lu2025_f4": _BASE,  # + TAM + FAN
    "lu2025_s1": Config(speech_channels=(128, 128, 128, 128, 64, 64, 64, 64)),
    "lu2025_s2": _BASE,
    "lu2025_s3": Config(speech_channels=(128,) * 8),
    "lu2025_arith": Config(fusion="arithmetic"),
}

_PUBLISHED = Published(
    params=920_000,
    flops=770_000_000,
    flops_are_macs=True,
    source="Lu, Lu, Lin, abstract and Tables V/VI (0.92 M params, 0.77 GFLOPs)",
    note="one figure, for the full model (F4 + S2 + GM, 15 frames); its 'GFLOPs' are thop-style "
    "MACs (thop on our build: 740.3 M = 646.6 M conv MACs + 93.7 M BatchNorm ops)",
)

SPACE = {
    "frames": Choice((1, 2, 4, 8, 15)),
    "image_size_px": Choice((32, 64, 96, 112, 128, 160, 192, 224)),
    "image_channels": Choice((1, 3)),
    "width_mult": Choice((0.25, 0.35, 0.5, 0.75, 1.0, 1.25)),
    "exp_mult": Choice((0.5, 0.75, 1.0, 1.5)),
    "depth": Choice(tuple(TABLES)),
    "kernel_override": Choice((0, 3, 5)),
    "tam": Choice((True, False)),
    "tam_residual": Choice((True, False), when={"tam": (True,)}),
    "ghost_ratio": Choice((2, 3, 4)),
    "activation": Choice(FACE_ACTIVATIONS),
    "temporal": Choice(TEMPORAL),
    "n_mfcc": Choice((13, 20, 40, 64)),
    "speech_channels": Choice(
        (
            (32, 32),
            (64, 64),
            (64, 64, 32, 32),
            (128, 128, 64, 64),
            (128, 128, 128, 128, 64, 64),
            S2,
            (128, 128, 128, 128, 64, 64, 64, 64),
            (128,) * 8,
            (256, 256, 128, 128, 128, 128, 64, 64),
        )
    ),
    "speech_kernels": Choice(((3, 3), (3, 5), (5, 7), (7, 9))),
    "speech_fc_units": Choice((32, 64, 128, 256)),
    "speech_activation": Choice(SPEECH_ACTIVATIONS),
    "fusion": Choice(FUSIONS),
    "dropout": FloatRange(0.0, 0.5),
}


@register_family(
    "lu",
    config=Config,
    presets=PRESETS,
    space=SPACE,
    published={"lu2025": _PUBLISHED, "lu2025_f4": _PUBLISHED, "lu2025_s2": _PUBLISHED},
    summary="GhostNet+TAM per frame → FAN ‖ 1D-CNN on averaged MFCCs, probability fusion",
    paper="Lu, Lu and Lin (2025), Lightweight Multimodal Emotion Recognition for Companion Robots",
)
def build(config: Config) -> LuModel:
    """Build the ``lu`` model for ``config``."""
    return LuModel(config)
