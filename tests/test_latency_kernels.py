"""The kernels ONNX Runtime runs: its optimised graph, node by node (explorer.latency._kernels)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from explorer.latency._kernels import describe, nchwc_block


@pytest.fixture(scope="module")
def graph():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.ReLU6(),
        nn.Conv2d(16, 24, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(24, 5),
    ).eval()
    return describe(model, (torch.randn(1, 3, 32, 32),))


def test_batch_norm_and_activations_are_fused_into_the_convolutions(graph):
    ops = [n.op for n in graph.nodes]
    assert not {"BatchNormalization", "Relu", "Clip"} & set(ops), ops
    convs = [n for n in graph.nodes if n.op.endswith("Conv")]
    assert len(convs) == 3
    assert [c.activation for c in convs[:2]] == ["Relu", "Clip"]
    # what each costs: a Relu inside the kernel, a Clip in a pass over the output, none
    assert [c.features()["activation"] for c in convs] == [1.0, 2.0, 0.0]
    if nchwc_block():  # x86: channel-blocked convolutions and a reorder back to NCHW
        assert [c.op for c in convs] == ["nchwc:Conv"] * 3
        assert [c.kind for c in convs] == ["nchwc_conv", "nchwc_dwconv", "nchwc_conv"]
        assert "nchwc:ReorderOutput" in ops
    else:  # a runtime without NCHWc kernels fuses into FusedConv
        assert convs[0].op == "ms:FusedConv"


def test_nodes_carry_the_sizes_that_decide_their_time(graph):
    first = next(n for n in graph.nodes if n.op.endswith("Conv"))
    assert first.inputs[0] == (1, 3, 32, 32)
    assert first.outputs[0][0] == 1 and first.outputs[0][2:] == (32, 32)
    assert first.kernel == (3, 3) and first.stride == (1, 1) and first.groups == 1
    # FLOPs as the runtime computes them: output channels padded to the NCHWc block
    padded = first.outputs[0][1]
    assert padded % max(graph.block, 1) == 0 and padded >= 16
    assert first.flops == 2 * padded * 32 * 32 * 3 * 9
    dw = next(n for n in graph.nodes if n.kind.endswith("dwconv"))
    assert dw.groups == dw.channels_out and dw.flops == 2 * math.prod(dw.outputs[0]) * 9
    gemm = next(n for n in graph.nodes if n.kind == "matmul")
    assert gemm.inputs[0] == (1, 24) and gemm.outputs[0] == (1, 5)
    assert gemm.flops == 2 * 5 * 24 and gemm.weight_bytes == 4 * (5 * 24 + 5)
    for node in graph.nodes:  # every node has its shapes (none left unknown)
        assert node.outputs and all(all(d > 0 for d in s) for s in node.outputs), node
        assert node.features()["out_elems"] > 0


class _Pools(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(1).flatten(1), (x.permute(0, 2, 3, 1) + 1).flatten(1)], 1)


def test_reductions_and_transposes_name_the_axis_they_work_along():
    graph = describe(_Pools().eval(), (torch.randn(2, 16, 8, 4),))
    by_op = {n.op: n for n in graph.nodes}
    mean = by_op["ReduceMean"]  # over channels: 16 values 32 apart
    assert (mean.axis_size, mean.axis_inner) == (16, 32)
    assert mean.inputs[0] == (2, 16, 8, 4) and mean.outputs[0] == (2, 8, 4)
    transpose = by_op["Transpose"]  # channels become innermost: read 32 apart
    assert (transpose.axis_size, transpose.axis_inner) == (16, 32)
    assert transpose.outputs[0] == (2, 8, 4, 16)
    assert (by_op["Concat"].axis_size, by_op["Concat"].axis_inner) == (32, 1)
