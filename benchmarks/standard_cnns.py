"""Five standard CNNs, written out here (torchvision does not import beside this CPU torch).

Architectures as published, random weights (latency does not depend on them):
MobileNetV2 (Sandler et al., 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"),
MobileNetV3-Small (Howard et al., 2019, "Searching for MobileNetV3"), ShuffleNetV2 1.0x
(Ma et al., 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design"), ResNet-18 (He et al., 2016, "Deep Residual Learning for Image Recognition") and
SqueezeNet 1.1 (Iandola et al., 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters").
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["STANDARD_CNNS", "standard_cnns"]


def _cbr(cin: int, cout: int, k: int, s: int, groups: int = 1, act: type | None = nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([act()] if act else []))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers = [] if expand == 1 else [_cbr(cin, mid, 1, 1)]
        layers += [_cbr(mid, mid, 3, stride, groups=mid), _cbr(mid, cout, 1, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
               (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip
    layers: list[nn.Module] = [_cbr(3, 32, 3, 2)]
    cin = 32
    for t, c, n, s in setting:
        for i in range(n):
            layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [_cbr(cin, 1280, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(1280, num_classes)]  # fmt: skip
    return nn.Sequential(*layers)


class _SE(nn.Module):
    def __init__(self, c: int, mid: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, mid, 1), nn.ReLU(), nn.Conv2d(mid, c, 1),
            nn.Hardsigmoid(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class _V3Block(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride) -> None:
        super().__init__()
        layers = [] if exp == cin else [_cbr(cin, exp, 1, 1, act=act)]
        layers.append(_cbr(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(_SE(exp, max(8, (exp // 4 + 4) // 8 * 8)))
        layers.append(_cbr(exp, cout, 1, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v3_small(num_classes: int = 1000) -> nn.Module:
    hs, re = nn.Hardswish, nn.ReLU
    setting = [(3, 16, 16, True, re, 2), (3, 72, 24, False, re, 2), (3, 88, 24, False, re, 1),
               (5, 96, 40, True, hs, 2), (5, 240, 40, True, hs, 1), (5, 240, 40, True, hs, 1),
               (5, 120, 48, True, hs, 1), (5, 144, 48, True, hs, 1), (5, 288, 96, True, hs, 2),
               (5, 576, 96, True, hs, 1), (5, 576, 96, True, hs, 1)]  # fmt: skip
    layers: list[nn.Module] = [_cbr(3, 16, 3, 2, act=hs)]
    cin = 16
    for k, exp, c, se, act, s in setting:
        layers.append(_V3Block(cin, k, exp, c, se, act, s))
        cin = c
    layers += [_cbr(cin, 576, 1, 1, act=hs), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(576, 1024), hs(), nn.Linear(1024, num_classes)]  # fmt: skip
    return nn.Sequential(*layers)


def _shuffle(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class _ShuffleBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.left = nn.Sequential(_cbr(cin, cin, 3, stride, groups=cin, act=None),
                                      _cbr(cin, half, 1, 1, act=nn.ReLU))  # fmt: skip
        right_in = cin if stride > 1 else half
        self.right = nn.Sequential(
            _cbr(right_in, half, 1, 1, act=nn.ReLU),
            _cbr(half, half, 3, stride, groups=half, act=None),
            _cbr(half, half, 1, 1, act=nn.ReLU),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            out = torch.cat([self.left(x), self.right(x)], 1)
        else:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        return _shuffle(out)


def shufflenet_v2(num_classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = [_cbr(3, 24, 3, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, n in [(116, 4), (232, 8), (464, 4)]:
        for i in range(n):
            layers.append(_ShuffleBlock(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += [_cbr(cin, 1024, 1, 1, act=nn.ReLU), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(1024, num_classes)]  # fmt: skip
    return nn.Sequential(*layers)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _cbr(cin, cout, 3, stride, act=nn.ReLU), _cbr(cout, cout, 3, 1, act=None)
        )
        self.down = (
            _cbr(cin, cout, 1, stride, act=None) if stride > 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.down(x))


def resnet18(num_classes: int = 1000) -> nn.Module:
    layers: list[nn.Module] = [_cbr(3, 64, 7, 2, act=nn.ReLU), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [_Basic(cin, cout, stride), _Basic(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def squeezenet1_1(num_classes: int = 1000) -> nn.Module:
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(),
        _Fire(64, 16, 64), _Fire(128, 16, 64), pool(),
        _Fire(128, 32, 128), _Fire(256, 32, 128), pool(),
        _Fire(256, 48, 192), _Fire(384, 48, 192), _Fire(384, 64, 256), _Fire(512, 64, 256),
        nn.Conv2d(512, num_classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip


# name -> (builder, input size in pixels)
STANDARD_CNNS = {
    "mobilenet_v2": (mobilenet_v2, 224),
    "mobilenet_v3_small": (mobilenet_v3_small, 224),
    "shufflenet_v2": (shufflenet_v2, 224),
    "resnet18": (resnet18, 112),
    "squeezenet1_1": (squeezenet1_1, 224),
}


def standard_cnns() -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """(name, model in eval mode, example inputs) of the five networks."""
    torch.manual_seed(0)
    out = []
    for name, (build, px) in STANDARD_CNNS.items():
        out.append((f"{name}@{px}", build().eval(), (torch.randn(1, 3, px, px),)))
    return out
