"""Family building blocks: one input spec per config, shared helpers, pruning markers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import search_spaces as ss
from explorer.pruning import protected_layers
from search_spaces._blocks import ACTIVATIONS, make_activation, make_divisible

FAMILIES = ss.list_families()


def _configs(family: str) -> list:
    presets = [ss.get_preset(n) for n, f in ss.presets().items() if f == family]
    return presets + [ss.sample(family, seed=s) for s in range(3)]


@pytest.mark.parametrize("family", FAMILIES)
def test_config_input_spec_is_the_models(family: str) -> None:
    # data, profiling and export read the spec from the config without building the model
    for config in _configs(family):
        with torch.device("meta"):
            model = ss.build(config)
        assert config.input_spec == model.input_spec, config


def test_make_divisible_rounds_to_the_nearest_multiple_never_10_percent_below() -> None:
    assert make_divisible(16 * 0.5, 4) == 8
    assert make_divisible(37, 8) == 40  # nearest multiple
    assert make_divisible(27, 8) == 32  # 24 would be 11 % below 27
    assert make_divisible(1, 8) == 8  # never below the divisor


def test_every_activation_name_makes_a_fresh_module() -> None:
    for name in ACTIVATIONS:
        a, b = make_activation(name, 4), make_activation(name, 4)
        assert isinstance(a, nn.Module) and a is not b
    assert make_activation("prelu", 6).weight.shape == (6,)
    x = torch.linspace(-3, 3, 7)
    mish = make_activation("mish")(x)
    assert torch.allclose(mish, torch.nn.functional.mish(x), atol=1e-6)


def test_tuple_fields_are_checked_by_one_rule() -> None:
    needle = r"audio_channels=\(2, 64\) is invalid: must be a tuple of 1 to 6 integers in \[4, "
    with pytest.raises(ss.ConfigError, match=needle):
        ss.config_from_string("ishtiaq:audio_channels=[2,64]")
    with pytest.raises(ss.ConfigError, match=r"mbv2_repeats=.* tuple of exactly 7 integers"):
        ss.config_from_string("yang:mbv2_repeats=[1,1]")


def _marked(model: nn.Module) -> dict[str, str]:
    return {
        name: type(m).prune_protected
        for name, m in model.named_modules()
        if getattr(type(m), "prune_protected", None)
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_pruning_protects_exactly_the_marked_modules(family: str) -> None:
    for config in _configs(family):
        with torch.device("meta"):
            model = ss.build(config)
        protected = protected_layers(model)
        marked = _marked(model)
        # each marked module is kept intact, itself or inside a part kept around it
        assert all(
            any(name == p or name.startswith(p + ".") for p in protected) for name in marked
        ), (config, marked, protected)
        # every attention / fusion-core decision on a family model comes from a marker
        for name, why in protected.items():
            module = model.get_submodule(name)
            if why in ("attention", "fusion core") and not isinstance(
                module, nn.MultiheadAttention
            ):
                assert marked.get(name) == why, (config, name, why)


def test_markers_drive_pruning_on_a_users_model_too() -> None:
    class Mixer(nn.Module):  # no telling name: protected by its marker only
        prune_protected = "fusion core"

        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x)

    class SelfAttention(Mixer):  # a user's class without a marker is read by its name
        prune_protected = None

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 8)
            self.mix, self.attend, self.plain = Mixer(), SelfAttention(), nn.Sequential()
            self.head = nn.Linear(8, 3)

    kept = protected_layers(Net())
    assert kept["mix"] == "fusion core" and kept["attend"] == "attention"
    assert "body" not in kept and "plain" not in kept
