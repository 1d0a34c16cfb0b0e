"""The ``hybrid`` family: every part is used, shapes hold, invalid combinations are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import search_spaces as ss
from search_spaces import hybrid
from search_spaces.hybrid import ENCODERS, FUSIONS, TEMPORALS, Config

# Tiny sizes so each combination runs in milliseconds.
TINY = Config(
    frames=3,
    image_size_px=32,
    audio_bands=20,
    audio_width_mult=0.25,
    visual_width_mult=0.25,
    temporal_hidden=16,
    fusion_dim=16,
    fusion_steps=6,
)

# Every audio encoder, visual encoder, temporal aggregator and fusion at least once (not the
# full 5·5·6·7 product): a Latin-style walk where each row changes all four parts.
COMBOS = [
    ("ding", "ding", "none", "concat_dense"),
    ("lu", "lu", "fan", "geometric_mean"),
    ("yang", "yang", "conv1d_residual", "attention_reweight"),
    ("ishtiaq", "ishtiaq", "gru", "mfusher"),
    ("kumar", "kumar", "bigru", "cross_attention_tucker"),
    ("ding", "yang", "transformer", "arithmetic_mean"),
    ("lu", "ishtiaq", "none", "bilinear"),
    ("yang", "kumar", "transformer", "cross_attention_tucker"),
    ("ishtiaq", "ding", "conv1d_residual", "cross_attention_tucker"),
    ("kumar", "lu", "fan", "mfusher"),
]


def test_combos_cover_every_part() -> None:
    for i, values in enumerate((ENCODERS, ENCODERS, TEMPORALS, FUSIONS)):
        assert {combo[i] for combo in COMBOS} == set(values)


@pytest.mark.parametrize(("audio", "visual", "temporal", "fusion"), COMBOS)
def test_combination_builds_and_gives_logits(audio, visual, temporal, fusion) -> None:
    config = dataclasses.replace(
        TINY, audio_encoder=audio, visual_encoder=visual, temporal=temporal, fusion=fusion
    )
    model = ss.build(config)
    spec = model.input_spec
    audio_in, video_in = ss.example_inputs(model, 2)
    assert video_in.shape == (2, 3, 1, 32, 32)
    with torch.no_grad():
        logits = model(audio_in, video_in)
    assert logits.shape == (2, 8) and torch.isfinite(logits).all()
    # the model is what the config says: the named family's part is inside it
    assert type(model.audio_encoder).__module__ == f"search_spaces.{audio}"
    assert type(model.visual_encoder).__module__ == f"search_spaces.{visual}"
    # both inputs reach the output (no modality silently dropped; at random init a deep
    # narrow trunk may pass only a tiny signal, so compare exactly)
    # In train mode (batch statistics) so a deep trunk's tiny eval-mode signal at init cannot
    # hide a branch; the same dropout masks for both calls via the same seed.
    model.train()

    def run(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        with torch.no_grad():
            return model(a, v)

    both = run(audio_in, video_in)
    assert not torch.equal(run(torch.zeros_like(audio_in), video_in), both)
    assert not torch.equal(run(audio_in, torch.zeros_like(video_in)), both)
    model.eval()
    # the InputSpec comes from the audio encoder's family
    kinds = {
        "ding": "mfcc_mean",
        "lu": "mfcc_mean",
        "yang": "frft_mfcc_seq",
        "ishtiaq": "logmel",
        "kumar": "logmel",
    }
    assert spec.audio_kind == kinds[audio] and spec.audio_shape[0] == 20


def test_audio_front_end_follows_the_source_family() -> None:
    yang_default = ss.get_family("yang").config_cls()
    spec = dataclasses.replace(TINY, audio_encoder="yang").input_spec
    assert spec.audio_shape == (20, yang_default.audio_steps)
    assert spec.sample_rate_hz == yang_default.sample_rate_hz
    assert spec.frft_order == yang_default.frft_order
    kumar_spec = dataclasses.replace(TINY, audio_encoder="kumar").input_spec
    assert (kumar_spec.audio_shape, kumar_spec.n_fft, kumar_spec.hop_length) == (
        (20, 256),
        400,
        160,
    )


@pytest.mark.parametrize("fusion", ["geometric_mean", "arithmetic_mean"])
def test_decision_fusions_return_log_probabilities(fusion: str) -> None:
    model = ss.build(dataclasses.replace(TINY, audio_encoder="lu", fusion=fusion))
    with torch.no_grad():
        logits = model(*ss.example_inputs(model, 3))
        head = model.fusion
        feats_a = model.audio_encoder(ss.example_inputs(model, 3)[0])
        frames = model.visual_encoder(ss.example_inputs(model, 3)[1].flatten(0, 1)).view(3, 3, -1)
        p_a = torch.softmax(head.audio_head(feats_a), -1)
        p_v = torch.softmax(head.visual_head(model.temporal(frames).mean(1)), -1)
    expected = (p_a * p_v).sqrt() if fusion == "geometric_mean" else (p_a + p_v) / 2
    torch.testing.assert_close(logits.exp(), expected)
    if fusion == "arithmetic_mean":  # already normalised
        torch.testing.assert_close(logits.exp().sum(-1), torch.ones(3))


def test_bilinear_matches_torch_bilinear() -> None:
    torch.manual_seed(0)
    ours = hybrid.Bilinear(5, 4, 3)
    ref = torch.nn.Bilinear(5, 4, 3)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.view(5, 3, 4).permute(1, 0, 2))
        ref.bias.copy_(torch.randn(3))
        ours.bias.copy_(ref.bias)
    a, v = torch.randn(2, 5), torch.randn(2, 4)
    torch.testing.assert_close(ours(a, v), ref(a, v))


def test_tucker_hybrid_runs_on_meta_and_both_impls_agree() -> None:
    config = dataclasses.replace(
        TINY,
        audio_encoder="kumar",
        visual_encoder="ishtiaq",
        temporal="gru",
        fusion="cross_attention_tucker",
    )
    torch.manual_seed(0)
    mat = ss.build(dataclasses.replace(config, tucker_impl="materialized")).double()
    fac = ss.build(config).double()
    fac.load_state_dict(mat.state_dict())
    inputs = [t.double() for t in ss.example_inputs(mat, 2)]
    with torch.no_grad():
        torch.testing.assert_close(fac(*inputs), mat(*inputs))
    with torch.device("meta"):
        meta_model = ss.build(config)
    with torch.no_grad():
        out = meta_model(*ss.example_inputs(meta_model, 2, device="meta"))
    assert out.shape == (2, 8) and out.device.type == "meta"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (
            "audio_encoder=ding,fusion=cross_attention_tucker",
            r"audio_encoder='ding' is invalid with fusion='cross_attention_tucker'.*'yang'",
        ),
        ("audio_encoder=lu,fusion=cross_attention_tucker", r"audio_encoder='lu' is invalid"),
        (
            "audio_encoder=kumar,temporal=fan,fusion=cross_attention_tucker",
            r"temporal='fan' is invalid with fusion='cross_attention_tucker'",
        ),
        (
            "temporal=transformer,temporal_hidden=30,attn_heads=4",
            r"attn_heads=4 is invalid with temporal_hidden=30",
        ),
        (
            "fusion=mfusher,fusion_dim=18,attn_heads=4",
            r"attn_heads=4 is invalid with fusion_dim=18",
        ),
        (
            "audio_encoder=ding,audio_bands=12",
            r"audio_bands=12 is invalid with audio_encoder='ding'",
        ),
        ("visual_encoder=resnet", r"visual_encoder='resnet' is invalid: must be one of 'ding'"),
        ("fusion=tucker", r"fusion='tucker' is invalid: must be one of"),
        ("temporal=lstm", r"temporal='lstm' is invalid: must be one of 'none'"),
        ("image_size_px=16", r"image_size_px=16 is invalid: must be an integer in \[32, 512\]"),
        ("visual_width_mult=3", r"visual_width_mult=3.0 is invalid: must be a number in"),
    ],
)
def test_invalid_combinations_raise_config_error(override: str, needle: str) -> None:
    with pytest.raises(ss.ConfigError, match=needle):
        ss.config_from_string(f"hybrid:{override}")


def test_space_samples_are_valid_and_use_conditional_knobs() -> None:
    configs = [ss.sample("hybrid", seed=s) for s in range(60)]
    tucker = [c for c in configs if c.fusion == "cross_attention_tucker"]
    assert tucker and all(
        c.audio_encoder in hybrid.SEQUENCE_AUDIO and c.temporal != "fan" for c in tucker
    )
    defaults = Config()
    # a knob is left at its default where its condition does not hold
    for c in configs:
        if c.temporal != "transformer":
            assert c.temporal_layers == defaults.temporal_layers
        if c.fusion != "cross_attention_tucker":
            assert (c.fusion_steps, c.tucker_impl) == (defaults.fusion_steps, defaults.tucker_impl)
    assert {c.fusion for c in configs} == set(FUSIONS)


@pytest.mark.parametrize("preset", ["hybrid_ding_lu", "hybrid_ghost_tucker"])
def test_presets_run(preset: str) -> None:
    model = ss.build(preset)
    with torch.no_grad():
        logits = model(*ss.example_inputs(model, 2))
    assert logits.shape == (2, 8) and torch.isfinite(logits).all()


def test_space_spans_budgets_from_1e6_to_1e11_flops() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    def flops(text: str) -> float:
        with torch.device("meta"):
            model = ss.build(text)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(*ss.example_inputs(model, device="meta"))
        return counter.get_total_flops()

    cheapest = (
        "hybrid:audio_encoder=ding,audio_bands=16,audio_width_mult=0.25,visual_encoder=ding,"
        "visual_width_mult=0.25,image_size_px=32,frames=1,temporal=none,fusion=arithmetic_mean"
    )
    largest = (
        "hybrid:visual_encoder=kumar,visual_width_mult=1.0,image_size_px=224,image_channels=3,"
        "frames=32,temporal=none,fusion=concat_dense"
    )
    assert flops(cheapest) < 1e6 < 1e11 < flops(largest)
    space = hybrid.SPACE  # both configs use only values the space can draw
    for text in (cheapest, largest):
        config = ss.config_from_string(text)
        for name, param in space.items():
            value = getattr(config, name)
            if isinstance(param, ss.Choice):
                assert value in param.values, name
            else:
                assert param.low <= value <= param.high, name
