"""The kernels ONNX Runtime runs: its optimised graph, node by node (explorer.latency._kernels)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from explorer.latency._kernels import KernelGraph, describe, nchwc_block, transpose_path


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
    # and all the bytes their network moves, the cache the other nodes leave them
    assert {n.network_bytes for n in graph.nodes} == {sum(n.bytes for n in graph.nodes)}
    assert graph.network_bytes > 4 * 3 * 32 * 32


def test_a_graph_survives_json_with_every_feature(graph):
    # what a recorded benchmark run keeps (benchmarks/latency_refit.py): a graph read back
    # equals the described one, down to the features the regressors price and its attributes
    back = KernelGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert back == graph and (back.level, back.block) == (graph.level, graph.block)
    assert [n.features() for n in back.nodes] == [n.features() for n in graph.nodes]
    assert [n.attrs for n in back.nodes] == [n.attrs for n in graph.nodes]
    assert any(n.attrs for n in back.nodes) and any(n.perm or n.kernel for n in back.nodes)


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


class _Gates(nn.Module):
    """Coordinate-attention gates: the same multiply over the width, the height, the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x * x.mean(3, keepdim=True)  # (n, c, h, 1): one value per row
        h = w * w.mean(2, keepdim=True)  # (n, c, 1, w): one row per plane
        c = h * h.mean(1, keepdim=True)  # (n, 1, h, w): one plane for all channels
        return c.permute(0, 3, 2, 1).contiguous() + 1  # width <-> channels: element by element


def test_broadcasts_and_transposes_count_the_contiguous_runs_they_walk():
    x = torch.randn(2, 16, 4, 8)  # 1024 elements
    graph = describe(_Gates().eval(), (x,), level="extended")
    spans = {n.inputs[1]: n.features()["spans"] for n in graph.nodes if n.op == "Mul"}
    # ONNX Runtime loops over runs of the output that every input walks alike: a row (8) when
    # the gate is one value per row or one row per plane, a plane (32) when it is one plane
    # for all channels; same FLOPs and bytes, the first two take 2-4x the time
    assert spans == {(2, 16, 4, 1): 128, (2, 16, 1, 8): 128, (2, 1, 4, 8): 32}
    (transpose,) = (n for n in graph.nodes if n.op == "Transpose")
    assert transpose.perm == (0, 3, 2, 1)
    assert transpose.features()["spans"] == 1024  # the channels innermost: no two neighbours
    # a plain multiply (same shapes) and a scalar one are one run
    mul = describe(_Scaled().eval(), (x,), level="extended").nodes
    assert [n.features()["spans"] for n in mul if n.op in ("Mul", "Add")] == [1, 1]


class _Scaled(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x + 2.0


def test_a_convolutions_border_share_counts_the_output_positions_its_padding_reaches():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 16x16 'same': the outer ring, 1 - (14/16)^2
        nn.Conv2d(8, 8, 3),  # unpadded: 14x14, no window reaches outside
        nn.Conv2d(8, 8, 7, stride=2, padding=3),  # 14 -> 7: 2 + 1 positions a side of 7
    ).eval()
    graph = describe(model, (torch.randn(1, 3, 16, 16),), level="extended")
    borders = [n.features()["border"] for n in graph.nodes if "conv" in n.kind]
    assert borders == pytest.approx([1 - (14 / 16) ** 2, 0.0, 1 - (4 / 7) ** 2])
    # nodes without a window have none
    assert all(n.features()["border"] == 0 for n in graph.nodes if "conv" not in n.kind)


@pytest.mark.parametrize(
    ("shape", "perm", "path"),
    [
        ((1, 1, 1024, 64), (2, 0, 3, 1), 0),  # the long axes keep their order: a copy
        ((1, 16, 112, 112), (0, 1, 3, 2), 1),  # one axis moved out, 4-byte blocks: MLAS
        ((8, 256, 24, 24), (0, 2, 3, 1), 1),  # channels moved in: MLAS
        ((23, 576, 2, 2), (0, 2, 1, 3), 2),  # one axis moved, blocks of two floats
        ((15, 648, 2, 4), (0, 2, 1, 3), 3),  # one axis moved, 16-byte blocks: memcpy each
        ((2, 3, 4, 5), (1, 2, 0, 3), 3),  # axis 0 moved in behind two, 20-byte blocks
        ((1, 138, 1, 3, 256), (3, 1, 2, 0, 4), 4),  # two axes swapped, the last kept
        ((15, 648, 4, 2), (0, 3, 2, 1), 5),  # two axes swapped around a third: per element
        # one-long axes count: (2, 4, 1080) -> (0, 2, 1) would be MLAS, the runtime does not
        # drop the ones, and this one goes element by element (~10 ns each on one x86 core)
        ((2, 1, 4, 1080), (0, 3, 2, 1), 5),
    ],
)
def test_a_transpose_is_told_by_the_runtime_routine_that_copies_it(shape, perm, path):
    assert transpose_path(shape, perm) == path


def test_described_transposes_carry_their_routine():
    graph = describe(_Gates().eval(), (torch.randn(2, 16, 4, 8),), level="extended")
    (transpose,) = (n for n in graph.nodes if n.op == "Transpose")
    assert transpose.features()["transpose_path"] == 5  # (0, 3, 2, 1): element by element
    assert all(n.features()["transpose_path"] == 0 for n in graph.nodes if not n.perm)


def _node_set(graph: KernelGraph) -> list[str]:
    return sorted(json.dumps({**n, "name": None}, sort_keys=True) for n in graph.to_dict()["nodes"])


def test_a_graph_described_without_reading_its_weights_is_the_one_read_with_them(tmp_path):
    """describe_onnx leaves weights over 1 kB out of the optimised model it reads; kept
    (``keep``), the model has them all. Both give every node the same description."""
    from explorer.export import export_onnx
    from explorer.latency._kernels import describe_onnx

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, groups=4), nn.Flatten(1, 2), nn.Linear(30, 300),
    ).eval()  # fmt: skip
    export_onnx(model, (torch.randn(2, 3, 32, 32),), tmp_path / "m.onnx", check=False)
    apart = describe_onnx(tmp_path / "m.onnx")
    kept = describe_onnx(tmp_path / "m.onnx", keep=tmp_path / "opt.onnx")
    assert (tmp_path / "opt.onnx").stat().st_size > 4 * (64 * 64 // 4 * 9)  # weights inside
    # the runtime numbers the reorders it inserts (ReorderOutput_token_364), and may save
    # the same graph's nodes in another order: names and order aside
    assert _node_set(apart) == _node_set(kept)
    assert any(n.kind == "matmul" for n in apart.nodes) and len(apart.nodes) >= 4
