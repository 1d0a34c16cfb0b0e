"""Small models for the profiling tests and benchmarks (and ``module:function`` specs).

``resnet18`` is torchvision's ResNet-18 layout (BasicBlock ×[2, 2, 2, 2], 11,689,512 params
with the 1000-class head) written out here so the tests need no torchvision.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "FrameGRU",
    "ResNet18",
    "TinyConvNet",
    "TuckerFusion",
    "conv_net",
    "frame_gru_90",
    "not_a_model",
    "resnet18",
]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int | None = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for i, cout in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class FrameGRU(nn.Module):
    """Kumar-style video branch: ResNet-18 per frame → Bi-GRU over the frames."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.backbone = ResNet18(num_classes=None)
        self.gru = nn.GRU(512, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 7)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        feats = self.backbone(video.flatten(0, 1)).view(b, t, -1)
        seq, _ = self.gru(feats)
        return self.head(seq.mean(1))


class TuckerFusion(nn.Module):
    """A custom module holding its parameter directly (a Tucker core used via einsum)."""

    def __init__(self, d_a: int = 8, d_v: int = 6, d_out: int = 5) -> None:
        super().__init__()
        self.core = nn.Parameter(torch.randn(d_a, d_v, d_out) * 0.1)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # two contractions, so the count does not depend on einsum's path optimiser:
        # B·I·J·K MACs, then B·J·K
        t = torch.einsum("bi,ijk->bjk", a, self.core)
        return torch.einsum("bjk,bj->bk", t, v)


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU()
        )
        self.fc = nn.Linear(16 * 13 * 13, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


def resnet18() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return ResNet18().eval(), (torch.randn(1, 3, 224, 224),)


def conv_net() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return TinyConvNet().eval(), (torch.randn(1, 1, 32, 32),)


def frame_gru_90() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return FrameGRU().eval(), (torch.randn(1, 90, 3, 224, 224),)


def not_a_model() -> int:
    return 3
