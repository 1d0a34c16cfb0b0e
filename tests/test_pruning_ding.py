"""The paper's own ding2025 prunes: a flatten behind a concatenation is index-mapped by the
traced shapes (Torch-Pruning mapped audio channels into the visual branch: IndexError)."""

from __future__ import annotations

import pytest
import torch

import search_spaces as ss
from explorer.budget import parse_budget
from explorer.pruning._core import prune_to_budget
from explorer.pruning._graph import map_flattens, size_concats


@pytest.fixture(scope="module")
def ding():
    torch.manual_seed(0)
    model = ss.build(ss.get_preset("ding2025")).eval()
    return model, ss.example_inputs(model.input_spec, 1)


def test_audio_channel_maps_to_its_own_features_of_the_fused_layer(ding) -> None:
    import torch_pruning as tp

    model, inputs = ding
    with torch.enable_grad():
        dg = tp.DependencyGraph().build_dependency(model, inputs)
    map_flattens(dg)
    size_concats(dg)
    conv = model.audio.features[3]  # 32 channels x 7 steps, after the visual 64 x 6 x 6
    group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, [0, 31])
    by_module = {}
    for item in group:
        by_module.setdefault(item.dep.target.module, set()).update(int(i) for i in item.idxs)
    head = model.head[0]
    assert by_module[conv] == {0, 31}
    assert by_module[head] == {*range(2304, 2311), *range(2304 + 31 * 7, 2304 + 32 * 7)}
    assert model.visual.features[6] not in by_module  # the visual branch is not touched


def test_ding2025_prunes_to_half_its_flops(ding) -> None:
    model, inputs = ding
    pruned, result = prune_to_budget(model, inputs, budget=parse_budget("7162368flops"), steps=1)
    assert result.met and result.final_value <= 7162368
    assert result.steps[0].groups_pruned >= 4
    audio, visual = pruned.audio.features, pruned.visual.features
    assert audio[3].out_channels < 32 and visual[6].out_channels < 64
    # the fused layer takes exactly what the pruned branches produce
    assert pruned.head[0].in_features == visual[6].out_channels * 36 + audio[3].out_channels * 7
    assert pruned(*inputs).shape == (1, 8)
