"""YOLO11 in the zoo: rebuilt from the published configuration, checked against its figures."""

from __future__ import annotations

import pytest
import torch

from explorer.profiling import profile_model
from explorer.zoo import NETWORKS

# Ultralytics' yolo11.yaml states each scale's parameter count (batch norm unfused, the 80-class
# head); the README's model table gives the GFLOPs at 640 to one decimal. Those are thop's
# count, convolutions only (2 x multiply-accumulates; attention's matmuls are not counted).
PUBLISHED = {
    "yolo11n": (2_624_080, 6.5),
    "yolo11s": (9_458_752, 21.5),
    "yolo11m": (20_114_688, 68.0),
    "yolo11l": (25_372_160, 86.9),
    "yolo11x": (56_966_176, 194.9),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_yolo11_matches_ultralytics_parameters_and_flops(name: str) -> None:
    params, gflops = PUBLISHED[name]
    model = NETWORKS[name]().eval()  # real (CPU) weights: the profiler fakes them itself
    assert sum(p.numel() for p in model.parameters()) == params
    profile = profile_model(model, torch.empty(1, 3, 640, 640), name=name, meta=True)
    conv = sum(op.flops for op in profile.ops if op.op.startswith("aten.convolution"))
    assert round(conv / 1e9, 1) == gflops
    # the attention's matmuls are counted too, beyond the published figure
    assert profile.flops > conv


def test_yolo11_forward_is_the_exported_decoded_head() -> None:
    torch.manual_seed(0)
    model = NETWORKS["yolo11n"]().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 320, 320))
    # 4 box values + 80 class scores on 40² + 20² + 10² anchor points at 320
    assert out.shape == (1, 84, 2100)
    scores, boxes = out[:, 4:], out[:, :4]
    assert bool(((scores > 0) & (scores < 1)).all())  # sigmoid scores
    assert bool((boxes[:, 2:] > 0).all())  # widths and heights: sums of positive distances
    # a centre moves (right - left) / 2 <= 7.5 strides from its anchor (distances are 0..15 bins)
    centres = boxes[0, 0, :1600].view(40, 40)
    anchors = (torch.arange(40) + 0.5) * 8
    assert bool(((centres - anchors).abs() <= 7.5 * 8).all())
