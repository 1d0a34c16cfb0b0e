"""pandas views of a profile and of latency results: the frames hold the same numbers."""

from __future__ import annotations

import pytest
import torch

import search_spaces as ss
from explorer.errors import UsageError
from explorer.latency import BenchSettings, bench, latency_frame
from explorer.profiling import profile_model


@pytest.fixture(scope="module")
def profile():
    model = ss.build(ss.config_from_string("ding2025"))
    return profile_model(model, ss.example_inputs(model, 2))


def test_profile_frame_per_operator_sums_to_the_totals(profile) -> None:
    frame = profile.to_frame()
    assert len(frame) == len(profile.ops)
    assert int(frame["macs"].sum()) == profile.macs > 0
    assert int(frame["flops"].sum()) == profile.flops
    assert int(frame["elementwise_flops"].sum()) == profile.elementwise_flops
    assert int(frame["traffic_bytes"].sum()) == profile.traffic_bytes
    first = profile.ops[0]
    assert frame.iloc[0]["op"] == first.op and frame.iloc[0]["intensity"] == first.intensity


def test_profile_frame_per_module_groups_the_operators(profile) -> None:
    layers = profile.to_frame(by="module")
    assert layers["module"].is_unique
    assert int(layers["macs"].sum()) == profile.macs
    assert int(layers["calls"].sum()) == len(profile.ops)
    for _, row in layers.iterrows():
        ops = [op for op in profile.ops if op.module == row["module"]]
        assert row["macs"] == sum(op.macs for op in ops)
        assert row["calls"] == len(ops)
    with pytest.raises(UsageError, match="by='op' or by='module'"):
        profile.to_frame(by="layer")


def test_latency_frames_hold_the_measured_runs() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU())
    inputs = (torch.randn(1, 16),)
    settings = BenchSettings(runs=7, warmup=1, threads=1)
    results = [
        bench(model, inputs, backend=b, settings=settings, name=f"mlp-{b}")
        for b in ("torch", "ort")
    ]
    summary = latency_frame(results)
    assert summary["backend"].tolist() == ["torch", "ort"]
    assert summary["median_ms"].tolist() == [r.median_ms for r in results]
    assert summary["env_loadavg_1min"].notna().all()  # the environment, flattened
    runs = results[1].to_frame(timings=True)
    assert runs["ms"].tolist() == list(results[1].timings_ms) and len(runs) == 7
    assert runs["ms"].median() == pytest.approx(results[1].median_ms)
    assert set(runs["model"]) == {"mlp-ort"}
    assert latency_frame([]).columns.tolist()[:3] == ["model", "backend", "device"]
