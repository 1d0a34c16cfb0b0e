"""The ``ding`` family: exact published counts, presets, validation and its search space."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import search_spaces as ss
from search_spaces import ding


def _count(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, MACs) of one batch-1 forward; MACs = FlopCounterMode FLOPs / 2."""
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*ss.example_inputs(model))
    return params, counter.get_total_flops() // 2


def test_ding2025_has_exactly_the_papers_parameters_and_macs() -> None:
    model = ss.build("ding2025")
    params, macs = _count(model)
    assert params == 66_584
    assert macs == 7_162_368
    assert 2 * macs == 14_324_736
    # Table V prints 0.06 M and 0.014 GFLOPs: the parameter count is truncated, not rounded
    published = ss.get_family("ding").published["ding2025"]
    assert params // 10_000 * 10_000 == published.params
    assert round(2 * macs / 1e9, 3) == published.flops / 1e9


def test_family_defaults_are_the_paper_model() -> None:
    assert ss.config_from_string("ding") == ss.get_preset("ding2025")


def test_embedding_sizes_follow_the_paper() -> None:
    model = ss.build("ding2025")
    assert model.visual.out_dim == 6 * 6 * 64  # 64 → 62 → 31 → 29 → 14 → 12 → 6
    assert model.audio.out_dim == 7 * 32  # 40 → 36 → 18 → 14 → 7
    assert model.input_spec.video_shape == (1, 1, 64, 64)
    assert model.input_spec.audio_shape == (40,)
    assert model.input_spec.audio_kind == "mfcc_mean"


@pytest.mark.parametrize("name", sorted(ding.PRESETS))
def test_each_preset_builds_and_returns_logits(name: str) -> None:
    model = ss.build(name)
    audio, video = ss.example_inputs(model, batch_size=3)
    logits = model(audio, video)
    assert logits.shape == (3, model.config.num_classes)
    assert torch.isfinite(logits).all()


def test_savee_preset_counts() -> None:
    # Dense 14 and 7 classes: 2528·14+14 + 14·7+7 replace 2528·16+16 + 16·8+8
    params, macs = _count(ss.build("ding2025_savee"))
    assert params == 66_584 - (40_464 + 136) + (35_406 + 105)
    assert macs == 7_162_368 - (2528 * 16 + 16 * 8) + (2528 * 14 + 14 * 7)


def test_frames_average_embeddings_of_identical_frames() -> None:
    model = ss.build("ding:frames=3").eval()
    audio, video = ss.example_inputs(model, batch_size=2)
    same = video[:, :1].expand_as(video).contiguous()
    one = ss.build("ding").eval()
    one.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(audio, same), one(audio, video[:, :1]), atol=1e-5)


def test_encoders_have_clean_interfaces_for_hybrid() -> None:
    vis = ding.DingVisualEncoder(
        in_channels=3, image_size_px=48, channels=(8, 16), embedding="global_avg"
    )
    assert vis(torch.rand(5, 3, 48, 48)).shape == (5, vis.out_dim) == (5, 16)
    aud = ding.DingAudioEncoder(n_mfcc=20, channels=(4,), kernel=3)
    assert aud(torch.randn(2, 20)).shape == (2, aud.out_dim) == (2, 4 * 9)


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"image_size_px": 4}, "image_size_px", "[8, 512]"),
        ({"dropout": 1.5}, "dropout", "[0.0, 0.9]"),
        ({"activation": "tanh"}, "activation", "'relu'"),
        ({"padding": "full"}, "padding", "'valid'"),
        ({"conv_channels": ()}, "conv_channels", "1 to 6"),
        ({"conv_channels": (16, 0)}, "conv_channels", "[1, 2048]"),
        ({"image_channels": 2}, "image_channels", "1, 3"),
        # inconsistent combinations
        ({"image_size_px": 16, "conv_channels": (8, 8, 8, 8)}, "conv_channels", "shrinks"),
        (
            {"n_mfcc": 13, "audio_channels": (8, 8, 8), "audio_kernel": 5},
            "audio_channels",
            "shrinks",
        ),
        ({"padding": "same", "conv_kernel": 4}, "conv_kernel", "odd"),
    ],
)
def test_invalid_configs_name_field_value_and_rule(
    overrides: dict, field: str, needle: str
) -> None:
    with pytest.raises(ss.ConfigError) as err:
        dataclasses.replace(ding.Config(), **overrides)
    message = str(err.value)
    assert f"ding.Config.{field}=" in message
    assert needle in message


def test_unknown_field_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ss.ConfigError, match="did you mean 'n_mfcc'"):
        ss.config_from_string("ding:n_mfc=20")


def test_config_round_trips_through_json() -> None:
    config = ss.config_from_string("ding:conv_channels=[8,16],padding=same,frames=2")
    assert ss.config_from_dict(ss.config_to_dict(config)) == config
    assert config.conv_channels == (8, 16)


def test_space_samples_build_and_span_the_budget_range() -> None:
    macs = []
    for seed in range(8):
        config = ss.sample("ding", seed=seed)
        model = ss.build(config)
        spec = model.input_spec
        audio, video = ss.example_inputs(model, batch_size=2)
        assert video.shape == (2, *spec.video_shape)
        assert model(audio, video).shape == (2, config.num_classes)
        macs.append(_count(model)[1])
    assert len(set(macs)) > 5  # samples differ


def test_space_extremes_cover_far_below_to_far_above_the_paper() -> None:
    space = ding.SPACE
    low = ding.Config(
        image_size_px=min(space["image_size_px"].values),
        conv_channels=min(space["conv_channels"].values, key=sum),
        audio_channels=min(space["audio_channels"].values, key=sum),
        n_mfcc=min(space["n_mfcc"].values),
        dense_units=8,
    )
    _, low_macs = _count(ss.build(low))
    assert 2 * low_macs < 1e6 < 14_324_736
    # the biggest sampled corner (counted on meta tensors: shape-only, no arithmetic run)
    high = ding.Config(
        image_size_px=224,
        image_channels=3,
        frames=6,
        conv_kernel=7,
        padding="same",
        conv_channels=(32, 64, 128, 256),
    )
    assert high.conv_channels in space["conv_channels"].values
    model = ding.DingModel(high).to("meta")
    with FlopCounterMode(display=False) as counter:
        model(*ss.example_inputs(model, device="meta"))
    assert counter.get_total_flops() > 1e10
