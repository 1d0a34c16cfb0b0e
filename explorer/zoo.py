"""Standard image networks, architecture only, for latency priors: ``explorer.zoo:resnet18``.

Published latency tables measure well-known networks (ResNet, MobileNet, ShuffleNet,
SqueezeNet, EfficientNet, VGG) on the boards of the device registry; to fit a board's target
to them, the tool profiles the same architectures. These are compact definitions with the
layer shapes of torchvision's (the names match, so ``torchvision.models:resnet18`` and
``explorer.zoo:resnet18`` count the same operators); they carry no weights, and profiling needs
none. They exist because the PyPI torchvision wheel does not load beside a CPU-only torch
build; with a matching torchvision installed, ``torchvision.models:NAME`` works as well.

Each function returns an ``nn.Module`` taking ``1x3x224x224`` (SqueezeNet as published in
Caffe: ``227``; the YOLO11 detectors of ``explorer.zoo_yolo``: ``640``); give ``input_shape``
where a MODEL is resolved for it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from explorer.zoo_yolo import yolo11l, yolo11m, yolo11n, yolo11s, yolo11x

__all__ = [
    "NETWORKS",
    "alexnet",
    "efficientnet_b0",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "yolo11l",
    "yolo11m",
    "yolo11n",
    "yolo11s",
    "yolo11x",
]


def _cna(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: type | None = nn.ReLU):
    """Conv + batch norm + activation (``act=None``: none), padding ``k // 2``."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class _Classifier(nn.Sequential):
    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


# --- ResNet (He et al., 2016) --------------------------------------------------------------
class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(_cna(cin, width, 3, stride), _cna(width, cout, 3, 1, act=None))
        self.down = (
            _cna(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.down(x))


class _Bottleneck(_Basic):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__(cin, width, stride)
        self.body = nn.Sequential(
            _cna(cin, width, 1), _cna(width, width, 3, stride), _cna(width, width * 4, 1, act=None)
        )


def _resnet(block: type[_Basic], depths: tuple[int, ...]) -> nn.Module:
    layers: list[nn.Module] = [_cna(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, (width, n) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
        for j in range(n):
            layers.append(block(cin, width, 2 if i > 0 and j == 0 else 1))
            cin = width * block.expansion
    return _Classifier(nn.Sequential(*layers), nn.Linear(cin, 1000))


def resnet18() -> nn.Module:
    """ResNet-18: 1.8 GMACs at 224²."""
    return _resnet(_Basic, (2, 2, 2, 2))


def resnet34() -> nn.Module:
    """ResNet-34: 3.6 GMACs at 224²."""
    return _resnet(_Basic, (3, 4, 6, 3))


def resnet50() -> nn.Module:
    """ResNet-50: 4.1 GMACs at 224²."""
    return _resnet(_Bottleneck, (3, 4, 6, 3))


def resnet101() -> nn.Module:
    """ResNet-101: 7.8 GMACs at 224²."""
    return _resnet(_Bottleneck, (3, 4, 23, 3))


def resnet152() -> nn.Module:
    """ResNet-152: 11.5 GMACs at 224²."""
    return _resnet(_Bottleneck, (3, 8, 36, 3))


# --- AlexNet (Krizhevsky et al., 2012), torchvision's one-GPU variant ----------------------
def alexnet() -> nn.Module:
    """AlexNet: 0.71 GMACs at 224²."""
    relu, pool = (lambda: nn.ReLU(inplace=True)), (lambda: nn.MaxPool2d(3, 2))
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), relu(), pool(), nn.Conv2d(64, 192, 5, padding=2), relu(),
        pool(), nn.Conv2d(192, 384, 3, padding=1), relu(), nn.Conv2d(384, 256, 3, padding=1),
        relu(), nn.Conv2d(256, 256, 3, padding=1), relu(), pool(),
    )  # fmt: skip
    head = nn.Sequential(
        nn.Flatten(), nn.Linear(256 * 36, 4096), relu(), nn.Linear(4096, 4096), relu(),
        nn.Linear(4096, 1000),
    )  # fmt: skip
    return nn.Sequential(features, nn.AdaptiveAvgPool2d(6), head)


# --- VGG (Simonyan and Zisserman, 2015) --------------------------------------------------
def _vgg(cfg: tuple[int | str, ...]) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    head = nn.Sequential(
        nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
        nn.ReLU(True), nn.Linear(4096, 1000),
    )  # fmt: skip
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), head)


def vgg11() -> nn.Module:
    """VGG-11 (configuration A): 7.6 GMACs at 224²."""
    return _vgg((64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"))


def vgg13() -> nn.Module:
    """VGG-13 (configuration B): 11.3 GMACs at 224²."""
    return _vgg((64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"))


def vgg19() -> nn.Module:
    """VGG-19 (configuration E): 19.6 GMACs at 224²."""
    return _vgg((64, 64, "M", 128, 128, "M", *(256,) * 4, "M", *(512,) * 4, "M", *(512,) * 4, "M"))


def vgg16() -> nn.Module:
    """VGG-16 (configuration D): 15.5 GMACs at 224²."""
    return _vgg(
        (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    )


# --- SqueezeNet (Iandola et al., 2016) ---------------------------------------------------
class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze(x)
        return torch.cat((self.e1(x), self.e3(x)), 1)


def _squeezenet(v11: bool) -> nn.Module:
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    if v11:
        stem: list[nn.Module] = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool]
        fires = [(64, 16, 64), (128, 16, 64), "M", (128, 32, 128), (256, 32, 128), "M"]
    else:
        stem = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(inplace=True), pool]
        fires = [(96, 16, 64), (128, 16, 64), (128, 32, 128), "M", (256, 32, 128)]
        fires += [(256, 48, 192), (384, 48, 192), (384, 64, 256), "M"]
    if v11:
        fires += [(256, 48, 192), (384, 48, 192), (384, 64, 256), (512, 64, 256)]
    else:
        fires += [(512, 64, 256)]
    body = [nn.MaxPool2d(3, 2, ceil_mode=True) if f == "M" else _Fire(*f) for f in fires]
    head = nn.Sequential(nn.Conv2d(512, 1000, 1), nn.ReLU(inplace=True))
    return nn.Sequential(*stem, *body, head, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def squeezenet1_0() -> nn.Module:
    """SqueezeNet 1.0: 0.82 GMACs at 224²."""
    return _squeezenet(False)


def squeezenet1_1() -> nn.Module:
    """SqueezeNet 1.1: 0.35 GMACs at 224² (ncnn's ``squeezenet`` at 227²)."""
    return _squeezenet(True)


# --- MobileNets (Howard et al., 2017; Sandler et al., 2018; Howard et al., 2019) -----------
def mobilenet_v1() -> nn.Module:
    """MobileNet v1 1.0: 0.57 GMACs at 224²."""
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    cfg += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers: list[nn.Module] = [_cna(3, 32, 3, 2)]
    cin = 32
    for cout, s in cfg:
        layers += [_cna(cin, cin, 3, s, groups=cin), _cna(cin, cout, 1)]
        cin = cout
    return _Classifier(nn.Sequential(*layers), nn.Linear(1024, 1000))


class _SE(nn.Module):
    def __init__(self, c: int, squeeze: int, gate: type, act: type = nn.ReLU) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, squeeze, 1), act(inplace=True),
            nn.Conv2d(squeeze, c, 1), gate(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)


class _Inverted(nn.Module):
    """Inverted residual: expand 1x1, depthwise kxk, optional squeeze-excite, project 1x1."""

    def __init__(
        self, cin: int, k: int, exp: int, cout: int, s: int, *, act: type, se: int = 0,
        gate: type = nn.Hardsigmoid, se_act: type = nn.ReLU,
    ) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = [] if exp == cin else [_cna(cin, exp, 1, act=act)]
        layers.append(_cna(exp, exp, k, s, groups=exp, act=act))
        if se:
            layers.append(_SE(exp, se, gate, se_act))
        layers.append(_cna(exp, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2() -> nn.Module:
    """MobileNet v2 1.0: 0.30 GMACs at 224²."""
    layers: list[nn.Module] = [_cna(3, 32, 3, 2, act=nn.ReLU6)]
    cin = 32
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):  # fmt: skip
        for i in range(n):
            layers.append(_Inverted(cin, 3, cin * t, c, s if i == 0 else 1, act=nn.ReLU6))
            cin = c
    layers.append(_cna(cin, 1280, 1, act=nn.ReLU6))
    return _Classifier(nn.Sequential(*layers), nn.Linear(1280, 1000))


# (kernel, expanded, out, squeeze-excite, hard-swish, stride) as in Howard et al. (2019)
_V3_LARGE = [
    (3, 16, 16, 0, 0, 1), (3, 64, 24, 0, 0, 2), (3, 72, 24, 0, 0, 1), (5, 72, 40, 1, 0, 2),
    (5, 120, 40, 1, 0, 1), (5, 120, 40, 1, 0, 1), (3, 240, 80, 0, 1, 2), (3, 200, 80, 0, 1, 1),
    (3, 184, 80, 0, 1, 1), (3, 184, 80, 0, 1, 1), (3, 480, 112, 1, 1, 1), (3, 672, 112, 1, 1, 1),
    (5, 672, 160, 1, 1, 2), (5, 960, 160, 1, 1, 1), (5, 960, 160, 1, 1, 1),
]  # fmt: skip
_V3_SMALL = [
    (3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
    (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
    (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1),
]  # fmt: skip


def _mobilenet_v3(cfg: list[tuple[int, ...]], last: int, hidden: int) -> nn.Module:
    layers: list[nn.Module] = [_cna(3, 16, 3, 2, act=nn.Hardswish)]
    cin = 16
    for k, exp, cout, se, hs, s in cfg:
        act = nn.Hardswish if hs else nn.ReLU
        layers.append(_Inverted(cin, k, exp, cout, s, act=act, se=_divisible(exp / 4) * se))
        cin = cout
    layers.append(_cna(cin, last, 1, act=nn.Hardswish))
    head = nn.Sequential(nn.Linear(last, hidden), nn.Hardswish(), nn.Linear(hidden, 1000))
    return _Classifier(nn.Sequential(*layers), head)


def mobilenet_v3_large() -> nn.Module:
    """MobileNetV3-Large 1.0: 0.22 GMACs at 224² (ncnn's ``mobilenet_v3``)."""
    return _mobilenet_v3(_V3_LARGE, 960, 1280)


def mobilenet_v3_small() -> nn.Module:
    """MobileNetV3-Small 1.0: 0.06 GMACs at 224²."""
    return _mobilenet_v3(_V3_SMALL, 576, 1024)


def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0 (Tan and Le, 2019): 0.39 GMACs at 224²."""
    layers: list[nn.Module] = [_cna(3, 32, 3, 2, act=nn.SiLU)]
    cin = 32
    for t, k, s, c, n in ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)):  # fmt: skip
        for i in range(n):
            layers.append(
                _Inverted(
                    cin,
                    k,
                    cin * t,
                    c,
                    s if i == 0 else 1,
                    act=nn.SiLU,
                    se=max(1, cin // 4),
                    gate=nn.Sigmoid,
                    se_act=nn.SiLU,
                )
            )
            cin = c
    layers.append(_cna(cin, 1280, 1, act=nn.SiLU))
    return _Classifier(nn.Sequential(*layers), nn.Linear(1280, 1000))


# --- MNASNet (Tan et al., 2019), torchvision's variant --------------------------------------
def _mnasnet(alpha: float) -> nn.Module:
    d = [_divisible(c * alpha) for c in (32, 16, 24, 40, 80, 96, 192, 320)]
    layers: list[nn.Module] = [
        _cna(3, d[0], 3, 2), _cna(d[0], d[0], 3, 1, groups=d[0]), _cna(d[0], d[1], 1, act=None)
    ]  # fmt: skip
    cin = d[1]
    # (kernel, stride, expansion, repeats) of the stacks whose outputs are d[2:]
    stacks = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))
    for cout, (k, s, t, n) in zip(d[2:], stacks, strict=True):
        for i in range(n):
            layers.append(_Inverted(cin, k, cin * t, cout, s if i == 0 else 1, act=nn.ReLU))
            cin = cout
    layers.append(_cna(cin, 1280, 1))
    return _Classifier(nn.Sequential(*layers), nn.Linear(1280, 1000))


def mnasnet0_5() -> nn.Module:
    """MNASNet 0.5: 0.10 GFLOPs (torchvision's count) at 224²."""
    return _mnasnet(0.5)


def mnasnet0_75() -> nn.Module:
    """MNASNet 0.75: 0.21 GFLOPs (torchvision's count) at 224²."""
    return _mnasnet(0.75)


def mnasnet1_0() -> nn.Module:
    """MNASNet 1.0: 0.31 GFLOPs (torchvision's count) at 224²."""
    return _mnasnet(1.0)


def mnasnet1_3() -> nn.Module:
    """MNASNet 1.3: 0.53 GFLOPs (torchvision's count) at 224²."""
    return _mnasnet(1.3)


# --- ShuffleNet V2 (Ma et al., 2018) -------------------------------------------------------
class _Shuffle(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.left = nn.Sequential(
                _cna(cin, cin, 3, stride, groups=cin, act=None), _cna(cin, half, 1)
            )
        branch_in = cin if stride > 1 else half
        self.right = nn.Sequential(
            _cna(branch_in, half, 1), _cna(half, half, 3, stride, groups=half, act=None),
            _cna(half, half, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.right(b)), 1)
        else:
            out = torch.cat((self.left(x), self.right(x)), 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


def _shufflenet_v2(widths: tuple[int, int, int], last: int) -> nn.Module:
    layers: list[nn.Module] = [_cna(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, n in zip(widths, (4, 8, 4), strict=True):
        for i in range(n):
            layers.append(_Shuffle(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers.append(_cna(cin, last, 1))
    return _Classifier(nn.Sequential(*layers), nn.Linear(last, 1000))


def shufflenet_v2_x0_5() -> nn.Module:
    """ShuffleNet V2 0.5x: 0.04 GFLOPs (torchvision's count) at 224²."""
    return _shufflenet_v2((48, 96, 192), 1024)


def shufflenet_v2_x1_0() -> nn.Module:
    """ShuffleNet V2 1.0x: 0.15 GMACs at 224²."""
    return _shufflenet_v2((116, 232, 464), 1024)


def shufflenet_v2_x1_5() -> nn.Module:
    """ShuffleNet V2 1.5x: 0.30 GFLOPs (torchvision's count) at 224²."""
    return _shufflenet_v2((176, 352, 704), 1024)


def shufflenet_v2_x2_0() -> nn.Module:
    """ShuffleNet V2 2.0x: 0.58 GFLOPs (torchvision's count) at 224²."""
    return _shufflenet_v2((244, 488, 976), 2048)


NETWORKS: dict[str, Callable[[], nn.Module]] = {
    f.__name__: f
    for f in (
        alexnet, efficientnet_b0, mnasnet0_5, mnasnet0_75, mnasnet1_0, mnasnet1_3, mobilenet_v1,
        mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, resnet18, resnet34, resnet50,
        resnet101, resnet152, shufflenet_v2_x0_5, shufflenet_v2_x1_0, shufflenet_v2_x1_5,
        shufflenet_v2_x2_0, squeezenet1_0, squeezenet1_1, vgg11, vgg13, vgg16, vgg19,
        yolo11n, yolo11s, yolo11m, yolo11l, yolo11x,
    )
}  # fmt: skip
