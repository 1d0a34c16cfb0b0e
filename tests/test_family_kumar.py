"""The ``kumar`` family: published shapes on meta, Tucker equivalence, costs, validation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import search_spaces as ss
from search_spaces.kumar import Config, ResNetEncoder, TuckerFusion, resample_time

# A reduced config that runs for real in milliseconds (every stage of the model present).
SMALL = Config(
    frames=5,
    image_size_px=32,
    stem="small",
    resnet_base_width=8,
    resnet_blocks=(1, 1),
    n_mels=32,
    audio_steps=64,
    audio_channels=(8, 16),
    gru_hidden=16,
    d_model=32,
    attn_heads=4,
    t_common=12,
    tucker_rank_time=6,
    tucker_rank_audio=8,
    tucker_rank_visual=16,
    fbp_dim=32,
    fbp_factor=2,
)


def _macs(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / 2


def test_published_model_runs_on_meta_with_published_shapes() -> None:
    # kumar2025_factorized differs only in the fusion, checked at published sizes below
    # (the registry-wide test also runs both presets on meta).
    with torch.device("meta"):
        model = ss.build("kumar2025")
    spec = model.input_spec
    assert spec.audio_kind == "logmel" and spec.audio_shape == (128, 256)
    assert (spec.sample_rate_hz, spec.n_fft, spec.hop_length, spec.clip_seconds) == (
        16000,
        400,
        160,
        3.0,
    )
    assert spec.video_shape == (90, 3, 224, 224) and spec.num_classes == 8
    audio, video = ss.example_inputs(model, 2, device="meta")
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape))
        )
        for name in ("audio_encoder", "temporal", "audio_attends_video", "fusion")
    ]
    with torch.no_grad():
        logits = model(audio, video)
    for hook in hooks:
        hook.remove()
    assert logits.shape == (2, 8) and logits.device.type == "meta"
    assert seen["audio_encoder"] == (2, 64, 128)  # 256 frames pooled twice; 60 after resampling
    assert seen["temporal"] == (2, 90, 512)  # Bi-GRU hidden states, 2 × 256
    assert seen["audio_attends_video"] == (2, 60, 256)
    assert seen["fusion"] == (2, 512)


def test_both_tucker_presets_have_the_same_parameters() -> None:
    with torch.device("meta"):
        a = ss.build("kumar2025")
        b = ss.build("kumar2025_factorized")
    shapes_a = {k: v.shape for k, v in a.state_dict().items()}
    assert shapes_a == {k: v.shape for k, v in b.state_dict().items()}
    assert sum(p.numel() for p in a.parameters()) == 13_344_528


def test_resnet18_encoder_matches_the_reference_network() -> None:
    """Without its FC, torchvision's ResNet-18 has 11,176,512 parameters, ≈1.82 G MACs at 224²."""
    with torch.device("meta"):
        encoder = ResNetEncoder()
    assert encoder.out_dim == 512
    assert sum(p.numel() for p in encoder.parameters()) == 11_176_512
    macs = _macs(lambda: encoder(torch.empty(1, 3, 224, 224, device="meta")))
    assert macs == pytest.approx(1.814e9, rel=0.01)


def _reference_tucker(fusion: TuckerFusion, a: torch.Tensor, v: torch.Tensor):
    """The paper's Algorithm A1/A2 and our FBP readout, written as plain einsums."""
    x = torch.einsum("btp,btq->btpq", a, v)
    core = torch.einsum(
        "btpq,tk,pi,qj->bkij", x, fusion.factor_time, fusion.factor_audio, fusion.factor_visual
    )
    z = torch.einsum(
        "bkij,kn,in,jn->bn", core, fusion.pool_time, fusion.pool_audio, fusion.pool_visual
    )
    z = z.view(a.shape[0], fusion.out_dim, fusion.factor).sum(-1)
    return core, fusion.norm(z)


@pytest.mark.parametrize("impl", ["materialized", "factorized"])
def test_tucker_fusion_computes_the_papers_core_and_readout(impl: str) -> None:
    torch.manual_seed(0)
    fusion = TuckerFusion(
        steps=7,
        d_audio=10,
        d_visual=9,
        rank_time=3,
        rank_audio=4,
        rank_visual=5,
        out_dim=6,
        factor=2,
        impl=impl,
    ).double()
    a, v = torch.randn(2, 7, 10).double(), torch.randn(2, 7, 9).double()
    core, z = _reference_tucker(fusion, a, v)
    assert fusion.core(a, v).shape == (2, 3, 4, 5)
    torch.testing.assert_close(fusion.core(a, v), core)
    torch.testing.assert_close(fusion(a, v), z)


def test_factorized_model_equals_materialized_with_the_same_weights() -> None:
    torch.manual_seed(0)
    mat = ss.build(SMALL).double()
    fac = ss.build(dataclasses.replace(SMALL, tucker_impl="factorized")).double()
    fac.load_state_dict(mat.state_dict())
    audio, video = (t.double() for t in ss.example_inputs(mat, 3, seed=1))
    with torch.no_grad():
        expected, got = mat(audio, video), fac(audio, video)
    assert expected.shape == (3, 8)
    assert expected.std() > 1e-3  # not a degenerate constant output
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_factorized_tucker_is_much_cheaper_at_published_sizes() -> None:
    def fusion_macs(preset: str) -> float:
        with torch.device("meta"):
            fusion = ss.build(preset).fusion
        a = torch.empty(2, 60, 256, device="meta")
        with torch.no_grad():
            assert fusion(a, a).shape == (2, 512)
        return _macs(lambda: fusion(a[:1], a[:1]))

    materialized = fusion_macs("kumar2025")
    factorized = fusion_macs("kumar2025_factorized")
    # three mode products (60·30 + 30·128 + 30·128·128/256)·256² plus the readout 30·128²·512
    assert materialized == 30 * 256 * 256 * (60 + 128) + 30 * 128 * 256 * 128 + 30 * 128**2 * 512
    assert factorized == 2 * 60 * 256 * 128 + 60 * 30 * 512 + 2 * 60 * 128 * 512
    assert materialized > 50 * factorized


def test_small_model_trains_a_step_and_its_outputs_depend_on_both_inputs() -> None:
    torch.manual_seed(0)
    model = ss.build(SMALL).train()
    audio, video = ss.example_inputs(model, 4)
    loss = torch.nn.functional.cross_entropy(model(audio, video), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name in (
        "fusion.factor_time",
        "fusion.pool_visual",
        "visual_encoder.stem.0.weight",
        "audio_encoder.features.0.weight",
    ):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        base = model(audio, video)
        assert not torch.allclose(model(torch.zeros_like(audio), video), base)
        assert not torch.allclose(model(audio, torch.zeros_like(video)), base)


def test_resample_time_is_identity_or_linear_interpolation() -> None:
    x = torch.arange(6.0).view(1, 3, 2)
    assert resample_time(x, 3) is x
    y = resample_time(x, 6)
    assert y.shape == (1, 6, 2)
    assert y[0, 0].tolist() == x[0, 0].tolist() and y[0, -1].tolist() == x[0, -1].tolist()


def test_space_spans_budgets_from_1e6_to_1e11_flops() -> None:
    cheapest = ss.config_from_string(
        "kumar:frames=1,image_size_px=24,image_channels=1,resnet_base_width=4,"
        "resnet_blocks=[1],n_mels=32,audio_steps=64,audio_channels=[4],gru_hidden=16,"
        "gru_bidirectional=false,d_model=16,attn_heads=1,t_common=4,tucker_rank_time=2,"
        "tucker_rank_audio=4,tucker_rank_visual=4,fbp_dim=32,tucker_impl=factorized"
    )
    space = ss.get_family("kumar").space
    for field in dataclasses.fields(cheapest):  # every value lies inside SPACE
        param = space.get(field.name)
        value = getattr(cheapest, field.name)
        if isinstance(param, ss.Choice):
            assert value in param.values, field.name
        elif param is not None:
            assert param.low <= value <= param.high, field.name
    model = ss.build(cheapest)
    assert 2 * _macs(lambda: model(*ss.example_inputs(model))) < 1e6
    # the top of the space is the published model (all its values are in SPACE)
    published = ss.get_preset("kumar2025")
    for name, param in space.items():
        value = getattr(published, name)
        if isinstance(param, ss.Choice):
            assert value in param.values, name
        else:
            assert param.low <= value <= param.high, name


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("attn_heads=3", r"attn_heads=3 .*d_model=256"),
        ("tucker_rank_time=61", r"tucker_rank_time=61 .*\[1, 60\]"),
        ("tucker_rank_audio=300", r"tucker_rank_audio=300 .*\[1, 256\]"),
        ("tucker_impl=dense", r"tucker_impl='dense' .*'materialized', 'factorized'"),
        ("frames=0", r"frames=0 .*\[1, 512\]"),
        ("resnet_blocks=[2,2,2,2,2,2]", r"resnet_blocks=\(2, 2, 2, 2, 2, 2\) .*1 to 5"),
        ("stem=tiny", r"stem='tiny' .*'imagenet', 'small'"),
        ("audio_steps=8,audio_channels=[8,8,8,8]", r"audio_steps=8 .*at least 16"),
        ("resnet_blocks=[0,2]", r"resnet_blocks=\(0, 2\) .*\[1, 8\]"),
        ("dropout=1.5", r"dropout=1.5 .*\[0.0, 0.9\]"),
    ],
)
def test_invalid_configs_name_the_field_value_and_allowed_range(override: str, needle: str):
    with pytest.raises(ss.ConfigError, match=needle):
        ss.config_from_string(f"kumar2025:{override}")


def test_sampled_configs_are_valid_and_vary_the_tucker_impl() -> None:
    configs = [ss.sample("kumar", seed=s) for s in range(12)]
    assert {c.tucker_impl for c in configs} == {"materialized", "factorized"}
    assert len({c.frames for c in configs}) > 3
