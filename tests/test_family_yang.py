"""The ``yang`` family: MobileNetV2 counts, presets, input spec, validation, parts, space."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import search_spaces as ss
from search_spaces import yang


def _count(model: torch.nn.Module, inputs: tuple) -> tuple[int, int]:
    """(parameters, MACs) of one forward; MACs = FlopCounterMode FLOPs / 2.

    Counted on the meta device (shapes only): the counts are the same, the arithmetic is skipped.
    """
    params = sum(p.numel() for p in model.parameters())
    meta_model = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model(*(t.to("meta") for t in inputs))
    return params, counter.get_total_flops() // 2


def test_mobilenetv2_trunk_matches_the_published_network() -> None:
    # torchvision's mobilenet_v2: 3,504,872 params, of which the 1000-way classifier is
    # 1280·1000 + 1000; its 0.30 G "FLOPs" are MACs and include that classifier (1.28 M)
    trunk = yang.MobileNetV2FrameEncoder(3).eval()
    params, macs = _count(trunk, (torch.rand(1, 3, 224, 224),))
    assert trunk.out_dim == 1280
    assert params == 3_504_872 - 1_281_000
    assert abs(macs + 1_281_000 - 300.77e6) / 300.77e6 < 0.01


def test_yang2025_counts_and_shapes() -> None:
    model = ss.build("yang2025")
    spec = model.input_spec
    assert spec.audio_kind == "frft_mfcc_seq"
    assert spec.audio_shape == (10, 156)
    assert spec.video_shape == (15, 1, 224, 224)
    assert (spec.sample_rate_hz, spec.clip_seconds, spec.hop_length) == (22050, 3.6, 512)
    params, macs = _count(model, ss.example_inputs(model))
    # regression values of our build (README table); 15 grayscale MobileNetV2 frames dominate
    assert params == 2_982_856
    assert macs == 4_396_815_232
    frame_macs = _count(model.frame_encoder, (torch.rand(1, 1, 224, 224),))[1]
    assert 15 * frame_macs / macs > 0.99


def test_audio_steps_match_librosa_centred_frames() -> None:
    librosa = pytest.importorskip("librosa")
    config = yang.Config(sample_rate_hz=16000, clip_seconds=2.5, hop_length=256, n_mfcc=13)
    y = np.zeros(round(config.sample_rate_hz * config.clip_seconds), dtype=np.float32)
    mfcc = librosa.feature.mfcc(
        y=y, sr=config.sample_rate_hz, n_mfcc=13, hop_length=256, n_fft=config.n_fft
    )
    assert ss.build(config).input_spec.audio_shape == mfcc.shape


def test_family_defaults_are_the_paper_model() -> None:
    assert ss.config_from_string("yang") == ss.get_preset("yang2025")


def test_paper_preset_returns_logits() -> None:
    model = ss.build("yang2025")
    audio, video = ss.example_inputs(model)
    with torch.no_grad():
        logits = model(audio, video)
    assert logits.shape == (1, model.config.num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", sorted(yang.PRESETS))
def test_each_preset_builds_with_batched_shapes(name: str) -> None:
    # the ablations differ from yang2025 only in frft_order (data) and the attention block:
    # shapes on the meta device keep the suite fast; test_paper_preset_... runs real numbers
    model = copy.deepcopy(ss.build(name)).to("meta")
    with torch.no_grad():
        logits = model(*ss.example_inputs(model.input_spec, 3, device="meta"))
    assert logits.shape == (3, model.config.num_classes)


def test_attention_changes_the_output_and_costs_its_matmuls() -> None:
    on = ss.build("yang:frames=4,image_size_px=64,width_mult=0.35")
    off = ss.build("yang:frames=4,image_size_px=64,width_mult=0.35,attention=false")
    inputs = ss.example_inputs(on)
    p_on, m_on = _count(on, inputs)
    p_off, m_off = _count(off, inputs)
    # Q, K (128→128) and V (128→128) without bias; the matmuls over 4 steps
    assert p_on - p_off == 3 * 128 * 128
    assert m_on - m_off == 4 * 3 * 128 * 128 + 2 * 4 * 4 * 128


@pytest.mark.parametrize("align", ["video", "audio"])
def test_time_axes_are_aligned_either_way(align: str) -> None:
    model = ss.build(f"yang:frames=3,image_size_px=32,width_mult=0.25,time_align={align}")
    audio, video = ss.example_inputs(model, batch_size=2)
    with torch.no_grad():
        assert model(audio, video).shape == (2, 8)


def test_parts_have_clean_interfaces_for_hybrid() -> None:
    frames = yang.MobileNetV2FrameEncoder(3, width_mult=0.5, last_channels=256)
    assert frames(torch.rand(6, 3, 64, 64)).shape == (6, frames.out_dim) == (6, 256)
    audio = yang.FrftMfccAudioEncoder(20, channels=(32, 32, 48))
    assert audio.sequence
    assert audio(torch.randn(2, 20, 100)).shape == (2, 100 // 8, audio.out_dim) == (2, 12, 48)
    agg = yang.Conv1dResidualAggregator(256, channels=(32, 64))
    assert agg(torch.randn(2, 7, 256)).shape == (2, agg.out_dim) == (2, 64)
    fusion = yang.ConcatConvAttentionFusion((64, 48, 10), channels=(32,), attention_dim=16)
    # sequences of different lengths and a plain vector
    out = fusion([torch.randn(2, 7, 64), torch.randn(2, 12, 48), torch.randn(2, 10)])
    assert out.shape == (2, fusion.out_dim) == (2, 32)


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"frames": 0}, "frames", "[1, 64]"),
        ({"width_mult": 3.0}, "width_mult", "[0.1, 2.0]"),
        ({"channels": 2}, "channels", "1, 3"),
        ({"activation": "tanh"}, "activation", "'relu'"),
        ({"time_align": "text"}, "time_align", "'video'"),
        ({"mbv2_kernel_size": 4}, "mbv2_kernel_size", "3, 5, 7"),
        ({"audio_channels": ()}, "audio_channels", "1 to 6"),
        ({"video_stage_channels": (64, 0)}, "video_stage_channels", "[4, 1024]"),
        # inconsistent combinations
        ({"mbv2_repeats": (1, 2, 3)}, "mbv2_repeats", "exactly 7"),
        ({"clip_seconds": 0.5, "hop_length": 2048, "n_fft": 1024}, "audio_channels", "at most"),
        ({"clip_seconds": 0.5, "n_fft": 8192, "sample_rate_hz": 8000}, "n_fft", "at most"),
    ],
)
def test_invalid_configs_name_field_value_and_rule(
    overrides: dict, field: str, needle: str
) -> None:
    with pytest.raises(ss.ConfigError) as err:
        dataclasses.replace(yang.Config(), **overrides)
    message = str(err.value)
    assert f"yang.Config.{field}" in message
    assert needle in message


def test_unknown_field_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ss.ConfigError, match="did you mean 'width_mult'"):
        ss.config_from_string("yang:width_mul=0.5")


def test_config_round_trips_through_json() -> None:
    config = ss.config_from_string("yang:mbv2_repeats=[1,1,1,1,1,1,1],fusion_channels=[]")
    assert config.fusion_channels == ()
    assert ss.config_from_dict(ss.config_to_dict(config)) == config


def test_space_samples_are_valid_and_small_ones_run() -> None:
    configs = [ss.sample("yang", seed=s) for s in range(200)]
    assert len({ss.config_to_dict(c)["image_size_px"] for c in configs}) > 3
    # build and run a few cheap ones (the registry-wide test runs more)
    cheap = [c for c in configs if c.frames <= 4 and c.image_size_px <= 96][:3]
    assert cheap
    for config in cheap:
        model = ss.build(config)
        with torch.no_grad():
            assert model(*ss.example_inputs(model)).shape == (1, config.num_classes)


def test_space_reaches_below_1e6_flops_and_above_the_paper() -> None:
    tiny = ss.config_from_string(
        "yang:frames=1,image_size_px=32,width_mult=0.25,mbv2_expand_ratios=[1,2,2,2,2,2,2],"
        "mbv2_repeats=[1,1,1,1,1,1,1],mbv2_last_channels=256,video_stage_channels=[16,32],"
        "audio_channels=[16,16],fusion_channels=[],attention=false"
    )
    model = ss.build(tiny)
    assert 2 * _count(model, ss.example_inputs(model))[1] < 1e6
    for field, value in dataclasses.asdict(tiny).items():
        if field in yang.SPACE and hasattr(yang.SPACE[field], "values"):
            assert value in yang.SPACE[field].values, field
    top = yang.SPACE
    assert max(top["frames"].values) >= 15 and max(top["image_size_px"].values) >= 224
    assert max(top["width_mult"].values) >= 1.0


def test_small_config_exports_to_onnx(tmp_path) -> None:
    model = ss.build("yang:frames=2,image_size_px=48,width_mult=0.35,channels=3")
    inputs = ss.example_inputs(model, batch_size=2)
    path = tmp_path / "yang.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, inputs, str(path), opset_version=17, dynamo=False, input_names=["audio", "video"]
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"audio": inputs[0].numpy(), "video": inputs[1].numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(*inputs).numpy(), rtol=1e-3, atol=1e-4)
