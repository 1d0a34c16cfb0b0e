"""Registry-wide checks: every family, preset and sampled config builds, runs and exports.

Parametrised over the registry, so a new family is covered by registering it.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import defaultdict

import numpy as np
import onnxruntime as ort
import pytest
import torch

import search_spaces as ss
from search_spaces._spec import Choice, active

SAMPLES_PER_FAMILY = 50
# Above this many MACs a sampled model runs on the meta device only (shapes, no arithmetic),
# so the suite stays fast; the cheap majority runs for real and is exported to ONNX.
REAL_RUN_MAX_MACS = 3e8

FAMILIES = ss.list_families()
PRESETS = sorted(ss.presets())
# Presets that are the same model under another name (e.g. lu2025 = lu2025_f4) are run once.
DISTINCT_PRESETS = sorted(
    {
        json.dumps(ss.config_to_dict(ss.get_preset(p)), sort_keys=True): p
        for p in reversed(PRESETS)
    }.values()
)


def _macs(model: torch.nn.Module) -> float:
    """Dense MACs counted on fake tensors (the suite's cost guard; RNNs counted analytically)."""
    from explorer import profile_model

    return profile_model(model, ss.example_inputs(model), meta=True).macs


def _export_and_compare(model: torch.nn.Module, tmp_path, name: str) -> None:
    """Export at opset 17 and check ONNX Runtime reproduces PyTorch's logits."""
    inputs = ss.example_inputs(model)
    with torch.no_grad():
        expected = model(*inputs).numpy()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, str(path), opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), inputs, strict=False)}
    got = sess.run(None, feeds)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def _check_forward(model: torch.nn.Module, batch_size: int = 2) -> None:
    spec = model.input_spec
    inputs = ss.example_inputs(model, batch_size)
    with torch.no_grad():
        logits = model(*inputs)
    assert logits.shape == (batch_size, spec.num_classes)
    assert torch.isfinite(logits).all()


def _check_fake_forward(model: torch.nn.Module, macs: float) -> None:
    """Heavy models: the profile above already ran the forward on fake tensors; check its
    classifier produced one row of class scores without running the arithmetic."""
    from explorer import profile_model

    profile = profile_model(model, ss.example_inputs(model, 2), meta=True)
    assert profile.macs == pytest.approx(2 * macs, rel=0.02)  # batch 2 costs twice batch 1


# --- presets ------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", DISTINCT_PRESETS)
def test_preset_builds_runs_and_round_trips(preset: str, tmp_path) -> None:
    config = ss.get_preset(preset)
    data = ss.config_to_dict(config)
    assert ss.config_from_dict(json.loads(json.dumps(data))) == config
    model = ss.build(config)
    assert model.config == config
    assert isinstance(model.input_spec, ss.InputSpec)
    macs = _macs(model)
    if macs <= REAL_RUN_MAX_MACS:
        _check_forward(model)
        _export_and_compare(model, tmp_path, preset)
    else:
        _check_fake_forward(model, macs)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_defaults_are_valid(family: str) -> None:
    fam = ss.get_family(family)
    config = fam.config_cls()
    assert ss.config_from_string(family) == config


# --- sampled configs ----------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_build_run_export_and_cover_the_space(family: str, tmp_path) -> None:
    fam = ss.get_family(family)
    seen: dict[str, set] = defaultdict(set)
    exported = 0
    for seed in range(SAMPLES_PER_FAMILY):
        config = ss.sample(family, seed=seed)
        assert ss.sample(family, seed=seed) == config, "sampling must be deterministic"
        values = dataclasses.asdict(config)
        chosen: dict = {}
        for field, param in fam.space.items():
            if active(param, chosen):
                chosen[field] = values[field]
                seen[field].add(json.dumps(values[field]))
        assert ss.config_from_dict(json.loads(json.dumps(ss.config_to_dict(config)))) == config
        model = ss.build(config)
        macs = _macs(model)
        if macs <= REAL_RUN_MAX_MACS:
            _check_forward(model, batch_size=1)
            if exported < 5:  # a few real exports per family; export is the slow part
                _export_and_compare(model, tmp_path, f"{family}_{seed}")
                exported += 1
        else:
            _check_fake_forward(model, macs)
    assert exported >= 1, f"no cheap {family} sample among {SAMPLES_PER_FAMILY}"
    # every knob of the space was drawn, and with more than one value when it has several
    for field, param in fam.space.items():
        assert field in seen, f"{family}.{field} was never active in {SAMPLES_PER_FAMILY} samples"
        n_values = len(param.values) if isinstance(param, Choice) else 2
        assert len(seen[field]) >= min(2, n_values), f"{family}.{field} never varied"


@pytest.mark.parametrize("family", FAMILIES)
def test_different_seeds_give_different_configs(family: str) -> None:
    configs = {json.dumps(ss.config_to_dict(ss.sample(family, seed=s))) for s in range(10)}
    assert len(configs) >= 8


# --- errors -------------------------------------------------------------------------------


def test_unknown_family_and_preset_suggest_the_closest_name() -> None:
    with pytest.raises(ss.ConfigError, match=r"did you mean 'ding2025'"):
        ss.get_preset("ding2052")
    with pytest.raises(ss.ConfigError, match=r"unknown family 'nosuch'"):
        ss.config_from_string("nosuch:frames=3")


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_field_is_named_with_the_valid_fields(family: str) -> None:
    with pytest.raises(ss.ConfigError, match=r"no field 'not_a_knob'") as exc:
        ss.config_from_string(f"{family}:not_a_knob=3")
    first_field = ss.get_family(family).field_names()[0]
    assert first_field in str(exc.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_out_of_range_values_name_field_value_and_range(family: str) -> None:
    """Every numeric knob of the space rejects a value far outside its range."""
    fam = ss.get_family(family)
    numeric = [
        (name, p) for name, p in fam.space.items() if not isinstance(p, Choice) and not p.when
    ]
    assert numeric, f"{family} has no unconditional numeric knob to check"
    for name, _param in numeric:
        with pytest.raises(ss.ConfigError) as exc:
            ss.config_from_string(f"{family}:{name}=-1000000")
        message = str(exc.value)
        assert name in message and "-1000000" in message, message


def test_malformed_override_is_explained() -> None:
    with pytest.raises(ss.ConfigError, match=r"key=value"):
        ss.config_from_string("ding2025:dropout")


def test_override_parsing_keeps_lists_and_types() -> None:
    base = ss.get_preset(PRESETS[0])
    family = ss.family_of(base).name
    text = f"{PRESETS[0]}:"
    # pick the first numeric field of the family and override it with its own value
    field = next(f for f in dataclasses.fields(base) if isinstance(getattr(base, f.name), float))
    config = ss.config_from_string(text + f"{field.name}={getattr(base, field.name)}")
    assert config == base
    assert ss.family_of(config).name == family


def test_input_spec_validates_and_round_trips() -> None:
    spec = ss.InputSpec(
        audio_kind="logmel", audio_shape=(64, 100), frames=4, channels=3, height=32, width=32
    )
    assert ss.InputSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ss.ConfigError, match="audio_shape"):
        ss.InputSpec(
            audio_kind="mfcc_mean", audio_shape=(40, 3), frames=1, channels=1, height=8, width=8
        )
    with pytest.raises(ss.ConfigError, match=r"channels=2"):
        ss.InputSpec(
            audio_kind="mfcc_mean", audio_shape=(40,), frames=1, channels=2, height=8, width=8
        )
    audio, video = ss.example_inputs(spec, 3)
    assert audio.shape == (3, 64, 100) and video.shape == (3, 4, 3, 32, 32)
