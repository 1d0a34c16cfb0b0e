"""The latency benchmarks' reporting helpers: the runs table, the noise spreads, the score
of an eager-GPU calibration, the per-kind table of a network's mispriced nodes and how often
a prediction's stated range holds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, _BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


latency_runs = _load("latency_runs")
machine_noise = _load("machine_noise")
gpu_latency = _load("gpu_latency")
latency_nodes = _load("latency_nodes")
latency_prediction = _load("latency_prediction")


def _run(learned: float, paced: float | None, **extra) -> dict:
    overall = {
        "learned": {"within_10pct": learned, "spearman": 0.9},
        "previous": {"within_10pct": 0.25},
        "noise_within_10pct": 0.5,
    }
    if paced is not None:
        overall |= {
            "learned_paced": {"within_10pct": paced, "spearman": 0.99},
            "previous_paced": {"within_10pct": 0.4},
            "noise_paced_within_10pct": 1.0,
        }
    return {
        "results": {"all": overall},
        "calibration": {"networks": 700},
        "drift": {"speed_scatter_calibrating": 0.05},
        "environment": {"cpu": "Example(R) CPU"},
        **extra,
    }


def test_the_runs_table_reads_each_run_and_skips_other_files(tmp_path: Path) -> None:
    files = {
        "latency_prediction_day1_busy.json": _run(0.5, 0.875, held_out_sessions="fresh"),
        "latency_prediction_day1.json": _run(0.8, None),
        "latency_prediction_cross.json": {"what": "an offline cross-scoring", "scores": []},
    }
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data), encoding="utf-8")
    text, skipped = latency_runs.table(sorted(tmp_path.glob("*.json")))
    assert [p.name for p in skipped] == ["latency_prediction_cross.json"]
    lines = text.splitlines()
    assert len(lines) == 2 + 2  # header, rule, two runs
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    busy = next(line for line in lines if "`day1_busy`" in line)
    # a paced run: its speed-normalised share, noise floor, ρ and previous model are the paced ones
    assert "| busy | fresh |" in busy and "88 % (100 %)" in busy
    assert "0.990" in busy and "| 40 % |" in busy
    assert "Example CPU" in busy and "±5 %" in busy
    plain = next(line for line in lines if "`day1`" in line)
    # before pacing: no speed-normalised column, the raw share and the raw ρ
    # a file from before the field: its held-out sessions were held open
    assert "| idle | open |" in plain and "| – | 80 % (50 %) | 0.900 | 25 % |" in plain


def test_noise_spreads_separate_a_shared_speed_from_the_runs_own_noise() -> None:
    rng = np.random.default_rng(0)
    n = 400
    speed = np.exp(rng.normal(0, 0.15, n))  # the machine's speed, run to run
    reference = 0.4 * speed * np.exp(rng.normal(0, 0.01, n))
    stream = 2.0 * np.exp(rng.normal(0, 0.15, n))  # unrelated to the network's speed
    network = 3.0 * speed * np.exp(rng.normal(0, 0.02, n))
    times = {
        "network": list(network),
        "reference": list(reference),
        "stream": list(stream),
    }
    out = machine_noise.spreads(times, ["reference", "stream"])
    assert out["runs"] == n
    assert out["raw"] == pytest.approx(0.15, rel=0.15)
    # dividing by a reading that shares the network's speed leaves only the two own noises
    assert out["over_reference"] == pytest.approx(np.hypot(0.01, 0.02), rel=0.2)
    # dividing by an unrelated one adds its noise instead
    assert out["over_stream"] == pytest.approx(np.hypot(0.15, 0.15), rel=0.15)
    assert out["mix_weights"][0] == pytest.approx(1.0, abs=0.05)
    assert abs(out["mix_weights"][1]) < 0.05
    assert out["window_medians"] == n // machine_noise.WINDOW


def test_gpu_score_prices_a_pass_with_a_profile_and_groups_the_errors(tmp_path: Path) -> None:
    """`gpu_latency.py score PROFILE PASS`: each network priced with the profile against its
    measured eager time; shares and groups follow from errors set by construction."""
    import device_profiles
    from explorer.prediction import predict_latency

    path = tmp_path / "gpu.toml"
    path.write_text(
        'key = "gpu-x"\nname = "X"\nkind = "gpu"\nbandwidth_gb_s = 1000.0\n'
        "sources = ['test']\n[peak_gflops]\nfp32 = 10000.0\n[calibration]\n"
        "compute_fraction = 0.5\nbandwidth_fraction = 0.5\noverhead_us = 10.0\n"
        "call_overhead_us = 20.0\nfuse_elementwise = false\n",
        encoding="utf-8",
    )
    device = device_profiles.load_file(path)
    errors = {"ding2025": 0.05, "hybrid_ding_lu": -0.2, "ding:num_classes=8": 0.6}
    profiles = gpu_latency._profiles([f"{m}|" for m in errors])
    entries = []
    for model, error in errors.items():  # measured so that predicted / measured - 1 = error
        predicted = predict_latency(profiles[f"{model}|"], device).ms
        entries.append({"model": model, "input_shape": "", "eager_ms": predicted / (1 + error)})
    (tmp_path / "pass").mkdir()
    (tmp_path / "pass" / "kernels.json").write_text(json.dumps(entries), encoding="utf-8")
    gpu_latency.score(path, [tmp_path / "pass"], tmp_path / "score.json")
    report = json.loads((tmp_path / "score.json").read_text(encoding="utf-8"))
    assert report["networks"] == 3
    assert report["all"]["within_10"] == pytest.approx(1 / 3, abs=1e-3)
    assert report["all"]["within_25"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["all"]["within_50"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["by_group"]["presets"]["n"] == 2 and report["by_group"]["ding"]["n"] == 1
    for row in report["rows"]:
        error = errors[row["model"].split("|")[0]]
        assert row["predicted_ms"] / row["measured_ms"] - 1 == pytest.approx(error, rel=1e-9)


def test_node_kinds_are_priced_relative_to_their_own_network() -> None:
    """A kind priced like the rest of its network reads 1 whatever the machine's speed; one
    priced too fast reads below 1 by its share of the error."""
    speed = 1.5  # the machine now against the recording: every prediction 1.5x the measurement
    rows = [("conv", 100.0, 150.0), ("conv", 300.0, 450.0), ("matmul", 50.0, 75.0)]
    rows += [("deep_conv", 200.0, 0.5 * speed * 200.0)]  # priced twice too fast
    table = {r["kind"]: r for r in latency_nodes.by_kind(rows)}
    assert latency_nodes.by_kind(rows)[0]["kind"] == "conv"  # dearest first
    assert table["conv"]["nodes"] == 2 and table["conv"]["measured_us"] == 400.0
    overall = (150 + 450 + 75 + 150) / 650
    assert table["conv"]["relative"] == pytest.approx(speed / overall)
    assert table["deep_conv"]["relative"] == pytest.approx(0.5 * speed / overall)
    assert table["matmul"]["measured_share"] == pytest.approx(50 / 650)


def test_the_stated_range_is_scored_against_both_kinds_of_measured_time() -> None:
    """A network counts as inside when its time lies within the low and high ms its prediction
    states, the ends included; raw and speed-normalised times are scored apart."""

    def row(measured: float, paced: float, learned: float = 1.0) -> dict:
        return {
            "learned_ms": learned,
            "low_ms": 0.8 * learned,
            "high_ms": 1.2 * learned,
            "previous_ms": learned,
            "measured_ms": measured,
            "paced_ms": paced,
            "noise": 0.0,
            "noise_paced": 0.0,
        }

    rows = [row(1.0, 1.0), row(1.2, 0.8), row(1.5, 1.1), row(0.7, 1.3), row(4.0, 4.0, 4.0)]
    scored = latency_prediction.report(rows, "all")
    assert scored["in_range"] == 0.6  # 1.5 and 0.7 ms fall outside 0.8-1.2
    assert scored["in_range_paced"] == 0.8  # only 1.3 ms does
    # a prediction without an upper bound (a roofline profile) states no range: not counted
    unbounded = row(9.0, 9.0) | {"high_ms": None}
    assert latency_prediction.report([*rows, unbounded], "all")["in_range"] == 0.6
    roofline_only = [row(t, t, t) | {"high_ms": None} for t in (1.0, 2.0, 3.0)]
    assert latency_prediction.report(roofline_only, "all")["in_range_paced"] is None
