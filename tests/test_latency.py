"""Measurement backends, LatencyResult, `explorer bench` and calibration from measurements."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch
from torch import nn

import device_profiles
from explorer.errors import MissingExtraError, UsageError
from explorer.latency import BenchSettings, LatencyResult, bench, calibrate_from_measurements
from explorer.latency._backends import TensorRTBackend
from explorer.latency._result import summarise


class Small(nn.Module):
    """A two-input model shaped like the families' forward(audio, video)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8 * 14 * 14 + 40, 4)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        v = torch.relu(self.conv(video)).flatten(1)
        return self.fc(torch.cat([v, audio.flatten(1)], 1))


def small() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return Small().eval(), (torch.randn(1, 40), torch.rand(1, 1, 16, 16))


def test_summary_statistics_of_known_timings() -> None:
    r = summarise([5.0, 1.0, 4.0, 2.0, 3.0, 100.0], model="m", backend="ort", device="cpu",
                  warmup=2, batch_size=1, threads=1)  # fmt: skip
    assert r.median_ms == 3.5
    assert r.min_ms == 1.0 and r.runs == 6
    assert r.p10_ms == pytest.approx(1.5)  # numpy's linear interpolation
    assert r.p90_ms == pytest.approx(52.5)
    assert r.mean_ms == pytest.approx(115 / 6)
    assert r.timings_ms == (5.0, 1.0, 4.0, 2.0, 3.0, 100.0)  # in run order
    assert LatencyResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_cpu_backends_measure_a_real_model(backend: str) -> None:
    model, inputs = small()
    r = bench(model, inputs, backend=backend, settings=BenchSettings(runs=12, warmup=3),
              name="small")  # fmt: skip
    assert r.backend == backend and r.device == "cpu" and r.threads == 1
    assert len(r.timings_ms) == r.runs == 12
    assert 0 < r.min_ms <= r.p10_ms <= r.median_ms <= r.p90_ms
    env = r.environment
    assert env["cpu"] and env["cpu_count"] >= 1 and env["packages"]["onnxruntime"]
    assert "loadavg_1min" in env


def test_ort_uses_the_given_onnx_file(tmp_path: Path) -> None:
    from explorer.export import export_onnx

    model, inputs = small()
    path = export_onnx(model, inputs, tmp_path / "m.onnx").path
    r = bench(model, inputs, settings=BenchSettings(runs=5, warmup=1, onnx_path=path))
    assert r.runs == 5 and r.median_ms > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_backend_uses_events() -> None:
    model, inputs = small()
    r = bench(model, inputs, backend="torch",
              settings=BenchSettings(runs=20, warmup=5, device="cuda"))  # fmt: skip
    assert r.device.startswith("cuda") and r.threads is None and r.runs == 20
    assert r.environment["gpu"]


@pytest.mark.skipif(not TensorRTBackend.available(), reason="needs TensorRT and CUDA")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tensorrt_backend(precision: str) -> None:
    model, inputs = small()
    r = bench(model, inputs, backend="tensorrt",
              settings=BenchSettings(runs=20, warmup=5, precision=precision))  # fmt: skip
    assert r.backend == "tensorrt" and r.precision == precision and r.median_ms > 0


def test_tensorrt_missing_names_the_extra() -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed")
    except ImportError:
        pass
    model, inputs = small()
    with pytest.raises(MissingExtraError, match=r"\.\[tensorrt\]"):
        bench(model, inputs, backend="tensorrt")


def test_bad_settings_and_backend_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--threads"):
        BenchSettings(threads=0)
    with pytest.raises(UsageError, match="--runs"):
        BenchSettings(runs=0)
    with pytest.raises(UsageError, match="--runs must be from 1 to 100,000"):
        BenchSettings(runs=10**20)  # a typo would time the model for days
    with pytest.raises(UsageError, match="--warmup"):
        BenchSettings(warmup=10**20)
    model, inputs = small()
    with pytest.raises(UsageError, match="unknown backend 'tflite'"):
        bench(model, inputs, backend="tflite")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_bench_json_then_calibrate_from_measurements(tmp_path: Path, capsys, monkeypatch) -> None:
    """The lab workflow: bench on the board (JSON), fit the board's calibration here."""
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "devices"))
    code, out, err = run_cli(capsys, "bench", "ding2025", "--runs", "5", "--warmup", "2",
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "ding2025" and len(result["timings_ms"]) == 5
    assert result["environment"]["packages"]["onnxruntime"]
    # Pretend the board is 40x slower than this machine.
    result["median_ms"] *= 40
    (tmp_path / "board.json").write_text(json.dumps([result]), "utf-8")
    code, out, err = run_cli(
        capsys,
        "calibrate",
        "--from-measurements",
        str(tmp_path / "board.json"),
        "--device",
        "rpi4",
        "--format",
        "json",
    )
    assert code == 0, err
    written = Path(json.loads(out)["path"])
    assert written == tmp_path / "devices" / "rpi4.toml"
    board = device_profiles.get("rpi4")  # the user's calibrated copy replaces the built-in
    # the fit lands in the board's default target, replacing its shipped prior
    assert board.target.calibration.source.endswith("board.json (1 rows)")
    assert board.peak_gflops_fp32 == 30.0
    from explorer import predict_latency, profile_model
    from explorer.models import resolve_model

    resolved = resolve_model("ding2025")
    pred = predict_latency(profile_model(resolved.model, resolved.example_inputs), board)
    assert pred.ms == pytest.approx(result["median_ms"], rel=0.05)


def test_calibrate_from_bad_measurements_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.json").write_text("{not json", "utf-8")
    code, out, err = run_cli(capsys, "calibrate", "--from-measurements", str(tmp_path / "x.json"),
                             "--device", "rpi4")  # fmt: skip
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and out == ""
    with pytest.raises(UsageError, match="does not exist"):
        calibrate_from_measurements(tmp_path / "missing.json", device_profiles.get("rpi4"))
    code, _, err = run_cli(capsys, "bench", "nosuchmodel", "--format", "json")
    assert code == 2 and "unknown MODEL" in err


def test_calibrate_host_writes_a_usable_profile(tmp_path: Path, capsys, monkeypatch) -> None:
    """`explorer calibrate` end to end, on a shortened suite (the full one takes a minute)."""
    from explorer.latency import _calibrate

    full = _calibrate._suite()
    keep = ("conv3x3_16-32_s1_56", "linear_1x512-512", "relu6_64x28", "tiny_add_x1",
            "tiny_add_x8", "gru_8x32-32")  # fmt: skip
    monkeypatch.setattr(_calibrate, "_suite", lambda: [s for s in full if s[0] in keep])
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "devices"))
    code, out, err = run_cli(
        capsys, "calibrate", "--method", "roofline", "--networks", "0", "--format", "json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert Path(d["path"]) == tmp_path / "devices" / "host.toml"
    host = device_profiles.get("host")
    cal = host.calibration
    assert cal is not None and cal.threads == 1 and "cpu clock" in cal.source
    assert host.peak_gflops_fp32 > 1 and host.bandwidth_gb_s > 0.1
    assert host.alternatives["dram"]["bandwidth_gb_s"] <= host.bandwidth_gb_s
    assert len(d["samples"]) == len(keep)
    # The fit reproduces what it was fitted on (six samples, many parameters): closely as a
    # rule, each within half (on a VM whose speed jumped ±30 %, a 28-µs sample read 38 µs)
    errors = [abs(s["predicted_ms"] / s["measured_ms"] - 1) for s in d["samples"]]
    assert statistics.median(errors) < 0.15 and max(errors) < 0.5, errors


_EAGER_KEEP = ("conv3x3_16-32_s1_56", "gconv3x3_4x16-32_28", "linear_1x512-512", "bn_64x28",
               "relu6_64x28", "tiny_add_x1", "tiny_add_x8", "gru_8x32-32")  # fmt: skip


def _short_suite(monkeypatch) -> None:
    from explorer.latency import _calibrate, _eager

    full = _calibrate._suite()
    monkeypatch.setattr(_eager, "_suite", lambda: [s for s in full if s[0] in _EAGER_KEEP])


def test_calibrate_torch_eager_fits_a_cost_per_operator_class(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """`explorer calibrate --backend torch` (PyTorch eager, here on the CPU; a GPU is the same
    with CUDA events): nothing fused, one fitted cost per operator class, and the profile it
    writes prices models with `--device host-torch`."""
    _short_suite(monkeypatch)
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "devices"))
    code, out, err = run_cli(
        capsys, "calibrate", "--backend", "torch", "--networks", "0", "--format", "json"
    )
    assert code == 0, err
    assert "warning: PyTorch eager on a CPU is priced less well" in err  # and not trusted
    d = json.loads(out)
    assert Path(d["path"]) == tmp_path / "devices" / "host-torch.toml"  # not the ORT host's
    host = device_profiles.get("host-torch")
    cal = host.calibration
    assert host.kind == "cpu" and "PyTorch" in host.name and "eager" in cal.source
    assert not cal.fuse_elementwise  # eager runs the ReLU after a convolution on its own
    assert {"conv3x3", "gconv", "linear", "norm", "activation", "rnn"} <= set(cal.kind_overhead_us)
    assert cal.overhead_us_for("rnn") > cal.overhead_us_for("activation")  # a GRU's 8 steps
    errors = [abs(s["predicted_ms"] / s["measured_ms"] - 1) for s in d["samples"]]
    assert len(errors) == len(_EAGER_KEEP) and statistics.median(errors) < 0.15, errors
    code, out, err = run_cli(capsys, "profile", "ding2025", "--device", "host-torch",
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    predicted = json.loads(out)["devices"]["host-torch"]
    assert predicted["calibrated"] and predicted["predicted_ms"] > predicted["roofline_ms"] > 0


def test_calibrate_torch_refuses_what_it_cannot_do(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "devices"))
    code, out, err = run_cli(capsys, "calibrate", "--backend", "torch", "--method", "learned")
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert "roofline" in err
    code, _, err = run_cli(capsys, "calibrate", "--backend", "tflite")
    assert code == 2 and "--backend must be ort or torch" in err
    code, _, err = run_cli(capsys, "calibrate", "--torch-device", "cuda")  # ort: on the CPU
    assert code == 2 and "is for --backend torch" in err
    code, _, err = run_cli(capsys, "calibrate", "--backend", "torch", "--device", "cuda")
    assert code == 2 and "--torch-device" in err and err.count("\n") == 1
    if not torch.cuda.is_available():
        code, _, err = run_cli(capsys, "calibrate", "--backend", "torch", "--torch-device", "cuda")
        assert code == 2 and "needs CUDA" in err and err.count("\n") == 1
    assert not (tmp_path / "devices").exists()  # nothing written


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_calibrate_torch_on_cuda_is_a_gpu_profile(monkeypatch) -> None:
    from explorer.latency import calibrate_torch

    _short_suite(monkeypatch)
    run = calibrate_torch(torch_device="cuda", networks=0)
    profile, cal = run.profile, run.profile.calibration
    assert profile.kind == "gpu" and cal.threads is None and "CUDA events" in cal.source
    assert profile.peak_gflops_fp32 > 1000  # any CUDA GPU beats a teraFLOP/s in FP32
    errors = [abs(p / m - 1) for _, m, p in run.samples]
    assert statistics.median(errors) < 0.15, run.samples


def test_calibration_networks_are_small_and_disjoint_from_the_benchmark() -> None:
    """The family networks timed by `explorer calibrate` (seeds >= 1000, under the size cap)."""
    import search_spaces as ss
    from explorer import profile_model
    from explorer.latency import _calibrate

    nets = _calibrate._family_networks(1)
    assert sorted(n.split("#")[0] for n, _, _ in nets) == sorted(ss.list_families())
    for name, model, inputs in nets:
        assert int(name.split("#")[1]) >= 1000  # benchmarks/latency_prediction.py uses 0-199
        assert profile_model(model, inputs).macs <= _calibrate._NETWORK_MAX_MACS


class _Slow(torch.nn.Module):
    """A model whose forward takes half a second (a big network on a small CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(0.5)
        return x * 2


def test_warm_up_of_a_slow_model_stops_after_its_time_budget() -> None:
    import time

    start = time.perf_counter()
    r = bench(_Slow(), (torch.zeros(1, 3),), backend="torch", settings=BenchSettings(runs=1))
    # 10 warm-up runs asked (the default); a 0.5 s forward pays its first-call costs in one,
    # so they stop once 2 s are spent, and the result says how many ran
    assert 1 <= r.warmup <= 4 and len(r.timings_ms) == 1
    assert time.perf_counter() - start < 4.5


def test_torch_threads_restores_the_count_even_when_the_block_fails() -> None:
    from explorer.latency._timing import torch_threads

    before = torch.get_num_threads()
    inner = 2 if before != 2 else 1
    with pytest.raises(RuntimeError, match="measurement failed"), torch_threads(inner):
        assert torch.get_num_threads() == inner
        raise RuntimeError("measurement failed")
    assert torch.get_num_threads() == before
