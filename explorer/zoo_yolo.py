"""YOLO11 detectors (Jocher and Qiu, 2024, Ultralytics YOLO11), architecture only: ``yolo11n``.

The layer graph of Ultralytics' ``yolo11.yaml`` (80 COCO classes) at its five scales, written
from the published configuration: convolution + batch norm + SiLU units, C3k2 blocks (C3k
inside them at the m/l/x scales), SPPF, one C2PSA attention block at stride 32, a top-down and
bottom-up neck, and the anchor-free detection head (a depthwise classification branch).

The forward is what ``yolo export format=engine`` puts into the TensorRT engine: the network,
then the head's decoding — distribution-focal-loss integral over 16 bins (softmax and a fixed
1x1 convolution), distances to centre/width/height boxes on the 8400 anchor points, sigmoid
class scores — giving one ``1 x 84 x 8400`` tensor. Non-maximum suppression runs outside
the engine and is not included. Batch norm stays a separate layer (Ultralytics fuses it
into the convolution before export; the count of multiply-accumulates is the same).

Weights are random; the models take ``1x3x640x640``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["YOLO11_SCALES", "yolo11l", "yolo11m", "yolo11n", "yolo11s", "yolo11x"]

# scale -> (depth multiple, width multiple, channel cap), as the published configuration gives
YOLO11_SCALES: dict[str, tuple[float, float, int]] = {
    "n": (0.50, 0.25, 1024),
    "s": (0.50, 0.50, 1024),
    "m": (0.50, 1.00, 512),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.50, 512),
}
_CLASSES = 80
_BINS = 16  # distribution bins per box side (reg_max)
_STRIDES = (8, 16, 32)


class _Conv(nn.Sequential):
    """Convolution (no bias, 'same' padding) + batch norm + SiLU (``act=False``: no SiLU)."""

    def __init__(self, cin: int, cout: int, k: int = 1, s: int = 1, *, groups: int = 1,
                 act: bool = True) -> None:  # fmt: skip
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03),
        ]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class _Bottleneck(nn.Module):
    """Two k x k units, hidden width ``int(cout * e)``, residual when the widths agree."""

    def __init__(self, cin: int, cout: int, *, k: tuple[int, int] = (3, 3), e: float = 0.5) -> None:
        super().__init__()
        hidden = int(cout * e)
        self.cv1 = _Conv(cin, hidden, k[0])
        self.cv2 = _Conv(hidden, cout, k[1])
        self.add = cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class _C3k(nn.Module):
    """CSP block of two 3x3 bottlenecks (full width) beside a 1x1 shortcut branch."""

    def __init__(self, cin: int, cout: int, *, n: int = 2, e: float = 0.5) -> None:
        super().__init__()
        hidden = int(cout * e)
        self.cv1 = _Conv(cin, hidden)
        self.cv2 = _Conv(cin, hidden)
        self.cv3 = _Conv(2 * hidden, cout)
        self.m = nn.Sequential(*(_Bottleneck(hidden, hidden, e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class _C3k2(nn.Module):
    """Split-and-extend block: a 1x1 unit makes two halves, ``n`` inner blocks (C3k when
    ``c3k``, else a half-width bottleneck) extend the last one, a 1x1 unit merges all."""

    def __init__(self, cin: int, cout: int, *, n: int, c3k: bool, e: float = 0.5) -> None:
        super().__init__()
        self.c = int(cout * e)
        self.cv1 = _Conv(cin, 2 * self.c)
        self.cv2 = _Conv((2 + n) * self.c, cout)
        self.m = nn.ModuleList(
            _C3k(self.c, self.c) if c3k else _Bottleneck(self.c, self.c) for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            y.append(block(y[-1]))
        return self.cv2(torch.cat(y, 1))


class _SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained 5x5 max pools of a half-width unit."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        hidden = cin // 2
        self.cv1 = _Conv(cin, hidden)
        self.cv2 = _Conv(4 * hidden, cout)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, 1))


class _Attention(nn.Module):
    """Multi-head self-attention over the pixels, keys half the head width, plus a 3x3
    depthwise positional term on the values."""

    def __init__(self, dim: int, *, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.key_dim = self.head_dim // 2
        self.qkv = _Conv(dim, dim + 2 * self.key_dim * heads, act=False)
        self.proj = _Conv(dim, dim, act=False)
        self.pe = _Conv(dim, dim, 3, groups=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (
            self.qkv(x)
            .view(b, self.heads, 2 * self.key_dim + self.head_dim, h * w)
            .split([self.key_dim, self.key_dim, self.head_dim], dim=2)
        )
        attn = ((q.transpose(-2, -1) @ k) * self.key_dim**-0.5).softmax(dim=-1)
        y = (v @ attn.transpose(-2, -1)).view(b, c, h, w) + self.pe(v.reshape(b, c, h, w))
        return self.proj(y)


class _PSABlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.attn = _Attention(c, heads=c // 64)
        self.ffn = nn.Sequential(_Conv(c, 2 * c), _Conv(2 * c, c, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class _C2PSA(nn.Module):
    """Half the channels pass through ``n`` attention blocks, the other half around them."""

    def __init__(self, c: int, *, n: int) -> None:
        super().__init__()
        self.c = c // 2
        self.cv1 = _Conv(c, 2 * self.c)
        self.cv2 = _Conv(2 * self.c, c)
        self.m = nn.Sequential(*(_PSABlock(self.c) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class _Detect(nn.Module):
    """Anchor-free head on strides 8/16/32 and its decoding into ``(x, y, w, h, scores)``."""

    def __init__(self, widths: tuple[int, int, int]) -> None:
        super().__init__()
        box = max(16, widths[0] // 4, 4 * _BINS)
        cls = max(widths[0], min(_CLASSES, 100))
        self.box = nn.ModuleList(
            nn.Sequential(_Conv(w, box, 3), _Conv(box, box, 3), nn.Conv2d(box, 4 * _BINS, 1))
            for w in widths
        )
        self.cls = nn.ModuleList(
            nn.Sequential(
                nn.Sequential(_Conv(w, w, 3, groups=w), _Conv(w, cls)),
                nn.Sequential(_Conv(cls, cls, 3, groups=cls), _Conv(cls, cls)),
                nn.Conv2d(cls, _CLASSES, 1),
            )
            for w in widths
        )
        # The integral over the bins is a fixed 1x1 convolution with weights 0..15.
        self.dfl = nn.Conv2d(_BINS, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.dfl.weight.copy_(torch.arange(_BINS, dtype=torch.float).view(1, _BINS, 1, 1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        b = feats[0].shape[0]
        outs, points, scale = [], [], []
        for f, box, cls, stride in zip(feats, self.box, self.cls, _STRIDES, strict=True):
            outs.append(torch.cat((box(f), cls(f)), 1).view(b, 4 * _BINS + _CLASSES, -1))
            h, w = f.shape[2:]
            ys, xs = torch.meshgrid(
                torch.arange(h, device=f.device, dtype=f.dtype) + 0.5,
                torch.arange(w, device=f.device, dtype=f.dtype) + 0.5,
                indexing="ij",
            )
            points.append(torch.stack((xs, ys)).view(2, -1))
            scale.append(torch.full((1, h * w), float(stride), device=f.device, dtype=f.dtype))
        raw = torch.cat(outs, 2)
        anchors, strides = torch.cat(points, 1).unsqueeze(0), torch.cat(scale, 1)
        dist, scores = raw.split((4 * _BINS, _CLASSES), 1)
        n = dist.shape[-1]
        dist = self.dfl(dist.view(b, 4, _BINS, n).transpose(2, 1).softmax(1)).view(b, 4, n)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = anchors - lt, anchors + rb
        boxes = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((boxes, scores.sigmoid()), 1)


class _YOLO11(nn.Module):
    def __init__(self, scale: str) -> None:
        super().__init__()
        depth, width, cap = YOLO11_SCALES[scale]
        c3k = scale in "mlx"  # the m/l/x scales use C3k inside every C3k2

        def ch(c: int) -> int:
            return math.ceil(min(c, cap) * width / 8) * 8

        n = max(round(2 * depth), 1)
        c64, c128, c256, c512, c1024 = (ch(c) for c in (64, 128, 256, 512, 1024))
        self.stem = nn.Sequential(_Conv(3, c64, 3, 2), _Conv(c64, c128, 3, 2))
        self.b2 = _C3k2(c128, c256, n=n, c3k=c3k, e=0.25)
        self.p3 = nn.Sequential(
            _Conv(c256, c256, 3, 2), _C3k2(c256, c512, n=n, c3k=c3k, e=0.25)
        )  # stride 8
        self.p4 = nn.Sequential(_Conv(c512, c512, 3, 2), _C3k2(c512, c512, n=n, c3k=True))
        self.p5 = nn.Sequential(
            _Conv(c512, c1024, 3, 2),
            _C3k2(c1024, c1024, n=n, c3k=True),
            _SPPF(c1024, c1024),
            _C2PSA(c1024, n=n),
        )
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.td4 = _C3k2(c1024 + c512, c512, n=n, c3k=c3k)
        self.td3 = _C3k2(c512 + c512, c256, n=n, c3k=c3k)
        self.down3 = _Conv(c256, c256, 3, 2)
        self.bu4 = _C3k2(c256 + c512, c512, n=n, c3k=c3k)
        self.down4 = _Conv(c512, c512, 3, 2)
        self.bu5 = _C3k2(c512 + c1024, c1024, n=n, c3k=True)
        self.detect = _Detect((c256, c512, c1024))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p3 = self.p3(self.b2(self.stem(x)))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        t4 = self.td4(torch.cat((self.up(p5), p4), 1))
        o3 = self.td3(torch.cat((self.up(t4), p3), 1))
        o4 = self.bu4(torch.cat((self.down3(o3), t4), 1))
        o5 = self.bu5(torch.cat((self.down4(o4), p5), 1))
        return self.detect([o3, o4, o5])


def yolo11n() -> nn.Module:
    """YOLO11n: 2.6 M parameters, 6.5 GFLOPs at 640² (Ultralytics' published figures)."""
    return _YOLO11("n")


def yolo11s() -> nn.Module:
    """YOLO11s: 9.4 M parameters, 21.5 GFLOPs at 640²."""
    return _YOLO11("s")


def yolo11m() -> nn.Module:
    """YOLO11m: 20.1 M parameters, 68.0 GFLOPs at 640²."""
    return _YOLO11("m")


def yolo11l() -> nn.Module:
    """YOLO11l: 25.3 M parameters, 86.9 GFLOPs at 640²."""
    return _YOLO11("l")


def yolo11x() -> nn.Module:
    """YOLO11x: 56.9 M parameters, 194.9 GFLOPs at 640²."""
    return _YOLO11("x")
