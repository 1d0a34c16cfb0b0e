"""The ``lu`` family: published counts within tolerance, ablation presets, validation, space.

Counting runs on meta tensors (shapes only), so the full 15-frame 224² model does no
arithmetic; the only full-size forward is lu2025's. The other presets run on 2 frames of 64²:
their weights do not depend on frames or image size (global pooling, frame attention), so a
small input exercises every layer.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import search_spaces as ss
from search_spaces import lu


def _count(config: lu.Config) -> tuple[int, int]:
    """(parameters, MACs) of one batch-1 forward, counted on the meta device."""
    model = lu.LuModel(config).to("meta").eval()
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*ss.example_inputs(model, device="meta"))
    return params, counter.get_total_flops() // 2


def test_lu2025_is_within_tolerance_of_the_published_counts() -> None:
    published = ss.get_family("lu").published["lu2025"]
    assert published.flops_are_macs
    params, macs = _count(ss.get_preset("lu2025"))
    assert abs(params - published.params) / published.params < 0.10
    assert abs(macs - published.flops) / published.flops < 0.20
    # pinned so an accidental architecture change shows up (see presets_ding_lu.md)
    assert params == 872_430
    assert macs == 646_610_258


def _params(name: str) -> int:
    return sum(p.numel() for p in lu.LuModel(ss.get_preset(name)).parameters())


def test_ablation_presets_differ_as_the_paper_describes() -> None:
    assert ss.get_preset("lu2025_f4") == ss.get_preset("lu2025_s2") == ss.get_preset("lu2025")
    params = {name: _params(name) for name in lu.PRESETS}
    base = params["lu2025"]
    # F1 (no TAM, no FAN) < F2 (+TAM) and F3 (+FAN) < F4 (both)
    assert params["lu2025_f1"] < params["lu2025_f2"] < base
    assert params["lu2025_f1"] < params["lu2025_f3"] < base
    # TAM is 3 gates of (7·7·2 conv + BN 2) = 300 params in each of the 9 TAM rows
    assert base - params["lu2025_f3"] == 9 * 300
    # FAN: alpha fc (576+1) + beta fc (1152+1) + a classifier on 1152 instead of 576 features
    assert base - params["lu2025_f2"] == 577 + 1153 + 576 * 8
    # speech widths: S1 (last four 64) < S2 (last two 64) < S3 (all 128)
    assert params["lu2025_s1"] < base < params["lu2025_s3"]
    assert params["lu2025_arith"] == base
    # the TAM's 7×7 gates cost MACs too (15 frames × 9 TAMs)
    _, f3_macs = _count(ss.get_preset("lu2025_f3"))
    assert 0 < 646_610_258 - f3_macs < 646_610_258 * 0.2


@pytest.mark.parametrize("name", sorted(lu.PRESETS))
def test_each_preset_builds_and_returns_log_probabilities(name: str) -> None:
    model = ss.build(name)
    assert model.input_spec.video_shape == (15, 3, 224, 224)
    audio, video = ss.example_inputs(model, batch_size=2)
    if name != "lu2025":
        video = video[:, :2, :, :64, :64]
    with torch.no_grad():
        logits = model(audio, video)
    assert logits.shape == (2, 8)
    assert torch.isfinite(logits).all()
    # both fusions are logs of (sub-)probabilities: exp sums to at most 1 per row
    totals = logits.exp().sum(dim=1)
    assert ((totals > 0) & (totals <= 1 + 1e-5)).all()
    if model.config.fusion == "arithmetic":
        assert torch.allclose(totals, torch.ones(2), atol=1e-5)


def test_geometric_and_arithmetic_fusion_of_the_same_streams() -> None:
    small = dataclasses.replace(lu.Config(), frames=2, image_size_px=64)
    geo = lu.LuModel(small).eval()
    arith = lu.LuModel(dataclasses.replace(small, fusion="arithmetic")).eval()
    arith.load_state_dict(geo.state_dict())
    audio, video = ss.example_inputs(geo, batch_size=2)
    with torch.no_grad():
        b, t = video.shape[:2]
        per_frame = geo.face(video.flatten(0, 1)).view(b, t, -1)
        p_face = torch.softmax(geo.face_head(geo.frames(per_frame)), dim=1)
        p_speech = torch.softmax(geo.speech_head(geo.speech(audio)), dim=1)
        assert torch.allclose(geo(audio, video).exp(), (p_face * p_speech).sqrt(), atol=1e-6)
        assert torch.allclose(arith(audio, video).exp(), (p_face + p_speech) / 2, atol=1e-6)
        # different inputs, different outputs (the streams are really used)
        other = geo(audio.flip(0), video.flip(0))
        assert not torch.allclose(other, geo(audio, video))


def test_parts_for_hybrid_have_clean_interfaces() -> None:
    enc = lu.GhostNetTAM(in_channels=1, width_mult=0.5, block_table=lu.TABLE_I[:4])
    assert enc(torch.rand(6, 1, 64, 64)).shape == (6, enc.out_dim) == (6, 288)
    fan = lu.FrameAttention(enc.out_dim)
    assert fan(torch.rand(2, 3, enc.out_dim)).shape == (2, fan.out_dim) == (2, 576)
    speech = lu.LuSpeechCNN(channels=(32, 16), fc_units=24)
    assert speech(torch.randn(3, 40)).shape == (3, speech.out_dim) == (3, 24)
    # FAN of identical frames is that frame concatenated with itself
    frame = torch.rand(1, 1, 5)
    same = lu.FrameAttention(5)(frame.expand(1, 4, 5))
    assert torch.allclose(same, torch.cat([frame[:, 0], frame[:, 0]], dim=1), atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"frames": 0}, "frames", "[1, 64]"),
        ({"width_mult": 5.0}, "width_mult", "[0.1, 3.0]"),
        ({"fusion": "max"}, "fusion", "'geometric'"),
        ({"temporal": "lstm"}, "temporal", "'fan'"),
        ({"tam": "yes"}, "tam", "true or false"),
        ({"speech_channels": ()}, "speech_channels", "1 to 12"),
        ({"speech_kernels": (4, 7)}, "speech_kernels", "odd"),
        ({"depth": 1, "block_table": ((3, 16, 16, 1, 3),)}, "block_table", "stride in {1, 2}"),
        ({"depth": 6}, "depth", "5, 7, 11, 13"),
        ({"block_table": lu.TABLE_I_7}, "block_table", "set depth=7"),
        ({"kernel_override": 4}, "kernel_override", "0, 3, 5, 7"),
        # inconsistent: TAM requested but no row carries one
        ({"depth": 1, "block_table": ((3, 72, 24, 0, 2),)}, "tam", "no row has TAM=1"),
    ],
)
def test_invalid_configs_name_field_value_and_rule(
    overrides: dict, field: str, needle: str
) -> None:
    with pytest.raises(ss.ConfigError) as err:
        dataclasses.replace(lu.Config(), **overrides)
    message = str(err.value)
    assert f"lu.Config.{field}=" in message
    assert needle in message


def test_overrides_and_json_round_trip() -> None:
    config = ss.config_from_string("lu2025_f1:frames=4,speech_channels=[64,64]")
    assert config.tam is False and config.temporal == "mean" and config.frames == 4
    assert ss.config_from_dict(ss.config_to_dict(config)) == config
    custom = lu.Config(depth=7, block_table=lu.TABLE_I_7)
    assert ss.config_from_dict(json.loads(json.dumps(ss.config_to_dict(custom)))) == custom
    assert lu.Config().table == lu.TABLE_I == lu.TABLES[11]
    with pytest.raises(ss.ConfigError, match="did you mean 'frames'"):
        ss.config_from_string("lu:frame=4")


def test_space_samples_are_valid_and_span_far_below_to_above_the_paper() -> None:
    flops = [2 * _count(ss.sample("lu", seed=seed))[1] for seed in range(4)]
    assert len(set(flops)) == 4
    low = lu.Config(
        frames=1,
        image_size_px=32,
        width_mult=0.25,
        depth=5,
        speech_channels=(32, 32),
        speech_fc_units=32,
    )
    assert 2 * _count(low)[1] < 1e6
    high = lu.Config(
        width_mult=1.25,
        exp_mult=1.5,
        depth=13,
        kernel_override=5,
        speech_channels=(256, 256, 128, 128, 128, 128, 64, 64),
    )
    assert all(
        value in lu.SPACE[name].values
        for name, value in dataclasses.asdict(high).items()
        if name in lu.SPACE and name != "dropout"
    )
    assert 2 * _count(high)[1] > 2 * 1_293_220_516
    # a few real forwards of small samples (the big ones are counted above, not run)
    small = [
        c
        for c in map(lambda seed: ss.sample("lu", seed=seed), range(30))
        if c.frames * c.image_size_px**2 <= 4 * 96**2
    ][:6]
    assert len(small) == 6
    for config in small:
        model = ss.build(config)
        audio, video = ss.example_inputs(model, batch_size=2)
        with torch.no_grad():
            assert model(audio, video).shape == (2, config.num_classes)
