"""The ``ishtiaq`` family: presets, text on/off, the conv-parameter claim, validation, parts."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import search_spaces as ss
from search_spaces import ishtiaq


def _count(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, MACs) of one batch-1 forward; MACs = FlopCounterMode FLOPs / 2."""
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*ss.example_inputs(model))
    return params, counter.get_total_flops() // 2


def _block_conv_params(model: ishtiaq.IshtiaqModel) -> int:
    """Conv parameters after the stems: the layers ``conv_kind`` switches."""
    total = 0
    for stack in (model.audio_encoder.convs, model.frame_encoder.convs):
        convs = [m for m in stack.modules() if isinstance(m, nn.Conv2d)]
        total += sum(p.numel() for c in convs[1:] for p in c.parameters())
    return total


def test_ishtiaq2025_counts_and_input_spec() -> None:
    model = ss.build("ishtiaq2025")
    spec = model.input_spec
    assert spec.audio_kind == "logmel"
    assert spec.audio_shape == (64, 301)
    assert spec.video_shape == (15, 3, 112, 112)
    assert (spec.text_length, spec.vocab_size) == (6, 10)
    # regression values of our build (README table); the GRUs are counted on CPU
    assert _count(model) == (946_952, 120_247_936)


def test_audio_steps_match_librosa_centred_frames() -> None:
    librosa = pytest.importorskip("librosa")
    config = ishtiaq.Config()
    y = np.zeros(round(config.sample_rate_hz * config.clip_seconds), dtype=np.float32)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=config.sample_rate_hz,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
    )
    assert ss.build(config).input_spec.audio_shape == mel.shape


def test_family_defaults_are_the_paper_model() -> None:
    assert ss.config_from_string("ishtiaq") == ss.get_preset("ishtiaq2025")


@pytest.mark.parametrize("name", sorted(ishtiaq.PRESETS))
def test_each_preset_builds_and_returns_logits(name: str) -> None:
    model = ss.build(name)
    inputs = ss.example_inputs(model, batch_size=2)
    assert len(inputs) == (3 if model.config.text_enabled else 2)
    with torch.no_grad():
        logits = model(*inputs)
    assert logits.shape == (2, model.config.num_classes)
    assert torch.isfinite(logits).all()


def test_text_given_and_missing_both_work() -> None:
    model = ss.build("ishtiaq:frames=2,image_size_px=32")
    with torch.no_grad():
        for p in model.text_encoder.parameters():
            p.normal_()
        audio, video, text = ss.example_inputs(model, batch_size=2)
        with_text = model(audio, video, text)
        without = model(audio, video)
        padded = torch.cat([text, torch.zeros(2, 3, dtype=text.dtype)], dim=1)
    assert with_text.shape == without.shape == (2, 8)
    assert not torch.allclose(with_text, without)
    # padding tokens (id 0) do not change the transcript embedding
    enc = model.text_encoder
    assert torch.allclose(enc(text, 2), enc(padded, 2), atol=1e-6)
    assert ss.build("ishtiaq2025_av").input_spec.text_length == 0


def test_separable_convs_cut_conv_parameters_by_85_to_90_percent() -> None:
    # the paper: "reducing convolutional parameters by 85-90 %"
    sep = _block_conv_params(ss.build("ishtiaq2025"))
    std = _block_conv_params(ss.build("ishtiaq2025_standard_conv"))
    assert (sep, std) == (39_744, 331_776)
    assert 0.85 <= 1 - sep / std <= 0.90


def test_parts_have_clean_interfaces_for_hybrid() -> None:
    audio = ishtiaq.DSConvGRUAudioEncoder(widths=(8, 16), gru_hidden=24)
    assert audio(torch.randn(2, 40, 100)).shape == (2, audio.out_dim) == (2, 24)
    seq = ishtiaq.DSConvGRUAudioEncoder(widths=(8, 16), gru_hidden=24, return_sequence=True)
    assert seq.sequence and seq(torch.randn(2, 40, 100)).shape == (2, 25, 24)
    frames = ishtiaq.DSConvFrameEncoder(1, widths=(8, 16, 32))
    assert frames(torch.rand(6, 1, 48, 48)).shape == (6, frames.out_dim) == (6, 32)
    agg = ishtiaq.GRUAggregator(32, hidden=20)
    assert agg(torch.randn(2, 3, 32)).shape == (2, agg.out_dim) == (2, 20)
    fusion = ishtiaq.MFusHERFusion((24, 20, 7), d_model=32, num_heads=2, ff_dim=64)
    # vectors and a sequence mixed: each vector is one token, the sequence T tokens
    out = fusion([torch.randn(2, 24), torch.randn(2, 5, 20), torch.randn(2, 7)])
    assert out.shape == (2, fusion.out_dim) == (2, 32)
    concat = ishtiaq.ConcatMLPFusion((24, 20), out_dim=16)
    assert concat([torch.randn(2, 24), torch.randn(2, 20)]).shape == (2, 16)


@pytest.mark.parametrize(
    ("overrides", "field", "needle"),
    [
        ({"frames": 0}, "frames", "[1, 64]"),
        ({"conv_kind": "grouped"}, "conv_kind", "'separable'"),
        ({"conv_activation": "gelu"}, "conv_activation", "'mish'"),
        ({"fusion": "sum"}, "fusion", "'transformer'"),
        ({"audio_gru_hidden": 2}, "audio_gru_hidden", "[4, 1024]"),
        ({"video_channels": ()}, "video_channels", "1 to 6"),
        ({"dropout": 0.95}, "dropout", "[0.0, 0.9]"),
        # inconsistent combinations
        ({"d_model": 130, "num_heads": 4}, "num_heads", "divisible"),
        ({"n_mels": 128, "n_fft": 128}, "n_mels", "n_fft // 2 + 1 = 65"),
        ({"clip_seconds": 0.5, "n_fft": 8192}, "n_fft", "at most"),
    ],
)
def test_invalid_configs_name_field_value_and_rule(
    overrides: dict, field: str, needle: str
) -> None:
    with pytest.raises(ss.ConfigError) as err:
        dataclasses.replace(ishtiaq.Config(), **overrides)
    message = str(err.value)
    assert f"ishtiaq.Config.{field}=" in message
    assert needle in message


def test_unknown_field_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(ss.ConfigError, match="did you mean 'n_mels'"):
        ss.config_from_string("ishtiaq:n_mel=40")


def test_space_samples_are_valid_and_some_run() -> None:
    configs = [ss.sample("ishtiaq", seed=s) for s in range(200)]
    assert {c.text_enabled for c in configs} == {True, False}
    assert {c.fusion for c in configs} == {"transformer", "concat"}
    for config in [c for c in configs if c.frames <= 4][:3]:
        model = ss.build(config)
        with torch.no_grad():
            assert model(*ss.example_inputs(model)).shape == (1, config.num_classes)


def test_space_reaches_below_1e6_flops_and_above_the_paper() -> None:
    tiny = ss.config_from_string(
        "ishtiaq:frames=1,image_size_px=32,hop_length=320,n_mels=32,audio_channels=[8,16],"
        "video_channels=[8,16],audio_gru_hidden=16,video_gru_hidden=16,text_enabled=false,"
        "fusion=concat,d_model=32"
    )
    assert 2 * _count(ss.build(tiny))[1] < 1e6
    for field, value in dataclasses.asdict(tiny).items():
        if field in ishtiaq.SPACE and hasattr(ishtiaq.SPACE[field], "values"):
            assert value in ishtiaq.SPACE[field].values, field
    top = ss.config_from_string(
        "ishtiaq:image_size_px=160,kernel_size=5,audio_channels=[32,64,128,128],"
        "video_channels=[32,64,128,256],audio_gru_hidden=192,video_gru_hidden=192,"
        "d_model=192,ff_dim=512,encoder_layers=3,frames=16"
    )
    meta = copy.deepcopy(ss.build(top)).to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(*ss.example_inputs(meta.input_spec, device="meta"))
    assert counter.get_total_flops() > 2 * 120_247_936


def test_config_with_text_exports_to_onnx(tmp_path) -> None:
    model = ss.build("ishtiaq:frames=3,image_size_px=48,conv_activation=mish")
    inputs = ss.example_inputs(model, batch_size=2)
    path = tmp_path / "ishtiaq.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            inputs,
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["audio", "video", "text"],
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = dict(zip(["audio", "video", "text"], (t.numpy() for t in inputs), strict=True))
    with torch.no_grad():
        np.testing.assert_allclose(
            sess.run(None, feeds)[0], model(*inputs).numpy(), rtol=1e-3, atol=1e-4
        )
