"""Execution targets: the KEY / KEY:TARGET resolver, target TOML tables, prediction ranges."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import device_profiles as dp
from device_profiles import Calibration, CrossValidation, DeviceError, DeviceProfile, Target
from explorer import predict_latency
from explorer.profiling import ModelProfile, OpRecord

BOARD = """
key = "two-way"
name = "A board with two targets"
kind = "gpu"
bandwidth_gb_s = 10.0
default_target = "gpu-fp16"

[peak_gflops]
fp32 = 100.0
fp16 = 200.0

[targets.gpu-fp16]
runtime = "tensorrt"
precision = "fp16"

[targets.gpu-fp16.calibration]
compute_fraction = 0.5
bandwidth_fraction = 0.5
overhead_us = 10.0
call_overhead_us = 100.0

[targets.gpu-fp16.cross_validation]
points = 6
models = 6
within_10 = 0.5
within_25 = 0.8
within_50 = 1.0
low_ratio = 0.8
high_ratio = 1.3

[targets.cpu-fp32]
processor = "cpu"
runtime = "onnxruntime"
threads = 4
peak_gflops = 20.0
"""


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path / "devices"))
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "two-way.toml").write_text(BOARD, encoding="utf-8")


def _profile() -> ModelProfile:
    conv = OpRecord(
        module="c", module_type="Conv2d", op="aten.convolution", kind="conv", macs=1_000_000,
        flops=2_000_000, elementwise_flops=0, bytes_read=6_000, bytes_written=4_000,
        weight_bytes=0, output_shape=(1, 16, 10, 10),
    )  # fmt: skip
    return ModelProfile(
        model="m", params=0, macs=conv.macs, flops=conv.flops, elementwise_flops=0,
        weight_bytes=0, traffic_bytes=conv.traffic_bytes, peak_activation_bytes=0, ops=(conv,),
    )  # fmt: skip


def test_key_and_key_default_resolve_to_the_same_target() -> None:
    plain = dp.get("two-way")
    named = dp.get("two-way:gpu-fp16")
    assert plain == named and named.address == "two-way" and named.target.name == "gpu-fp16"
    assert plain.target.peak_gflops == 200.0  # the board's fp16 peak, read for an fp16 target
    other = dp.get("TWO-WAY:cpu-fp32")
    assert other.address == "two-way:cpu-fp32" and other.target.peak_gflops == 20.0
    assert other.target.processor == "cpu" and other.target.threads == 4
    assert dp.resolve("two-way:cpu-fp32") == other.target
    # the table figures of the board stay the board's (the paper tables read them)
    assert other.peak_gflops_fp32 == 100.0


def test_unknown_target_is_a_one_line_error_listing_the_targets() -> None:
    with pytest.raises(DeviceError) as info:
        dp.get("two-way:npu")
    msg = str(info.value)
    assert "\n" not in msg and "'npu'" in msg and "gpu-fp16, cpu-fp32" in msg


def test_a_profile_without_targets_has_one_default_target_from_its_figures() -> None:
    rpi = DeviceProfile(key="b", name="B", kind="cpu", peak_gflops={"fp32": 30.0},
                        bandwidth_gb_s=12.8)  # fmt: skip
    (name,) = rpi.all_targets
    assert rpi.target.peak_gflops == 30.0 and rpi.target.bandwidth_gb_s == 12.8
    assert rpi.address == "b" and name == "default"
    cal = Calibration(compute_fraction=0.5, bandwidth_fraction=0.5, overhead_us=1.0)
    assert replace(rpi, calibration=cal).target.calibration == cal  # built from the field


def test_prediction_prices_the_selected_target_and_carries_its_range() -> None:
    prof = _profile()
    gpu = predict_latency(prof, dp.get("two-way"))
    # 2e6 FLOPs at 0.5 x 200 GFLOP/s = 20 us; 1e4 B at 0.5 x 10 GB/s = 2 us; +10 us +100 us
    assert gpu.ms == pytest.approx(0.020 + 0.010 + 0.100)
    assert gpu.roofline_ms == pytest.approx(0.010)
    assert gpu.calibrated and gpu.device == "two-way" and gpu.target == "gpu-fp16"
    assert gpu.range_ms == pytest.approx((gpu.ms * 0.8, gpu.ms * 1.3))
    cpu = predict_latency(prof, dp.get("two-way:cpu-fp32"))
    assert not cpu.calibrated and cpu.device == "two-way:cpu-fp32"
    assert cpu.ms == cpu.roofline_ms == pytest.approx(0.1)  # 2e6 / 20e9
    assert cpu.low_ms == cpu.roofline_ms and cpu.high_ms is None  # a lower bound only
    d = cpu.to_dict()
    assert d["low_ms"] == cpu.roofline_ms and d["high_ms"] is None and not d["calibrated"]


def test_targets_round_trip_through_toml(tmp_path: Path) -> None:
    board = dp.get("two-way")
    path = tmp_path / "copy.toml"
    path.write_text(dp.to_toml(board), encoding="utf-8")
    again = dp.load_file(path)
    assert again.all_targets == board.all_targets
    assert again.default_target_name == "gpu-fp16"


@pytest.mark.parametrize(
    ("snippet", "needle"),
    [
        ('[targets.x]\nprecision = "int8"\n', "no peak_gflops.int8"),
        ('[targets.x]\nprocessor = "npu"\n', "processor must be one of"),
        ("[targets.x]\nthreads = 0\n", "threads must be a positive integer"),
        ("[targets.x]\nspeed = 1\n", "unknown key 'speed'"),
    ],
)
def test_bad_target_tables_are_one_line_errors(tmp_path: Path, snippet: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    text = 'name = "Bad"\nkind = "cpu"\nbandwidth_gb_s = 1.0\n[peak_gflops]\nfp32 = 1.0\n'
    path.write_text(text + snippet, encoding="utf-8")
    with pytest.raises(DeviceError) as info:
        dp.load_file(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_cross_validation_rejects_a_range_that_excludes_one() -> None:
    with pytest.raises(DeviceError, match="low_ratio must be <= 1"):
        CrossValidation(points=3, models=3, within_10=0, within_25=0, within_50=1,
                        low_ratio=1.2, high_ratio=1.5)  # fmt: skip
    t = Target(name="t", processor="cpu", runtime="ncnn", precision="fp32", peak_gflops=1.0,
               bandwidth_gb_s=1.0)  # fmt: skip
    assert t.range_ms(5.0, roofline_ms=2.0) == (2.0, None)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    from explorer.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_devices_show_lists_targets_with_points_and_error(capsys) -> None:
    code, out, err = _cli(capsys, "devices", "show", "rpi4", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["default_target"] == "cpu-fp32-ncnn" and doc["address"] == "rpi4"
    cv = doc["targets"]["cpu-fp32-ncnn"]["cross_validation"]
    assert cv["points"] == 9 and 0 <= cv["within_25"] <= 1
    assert doc["targets"]["cpu-fp32-xnnpack"]["runtime"] == "xnnpack"
    code, out, _ = _cli(capsys, "devices", "show", "two-way:cpu-fp32")
    assert code == 0 and "target cpu-fp32 (selected)" in out and "6 points" in out
    assert "uncalibrated: the roofline, a lower bound" in out


def test_a_borrowed_prior_names_the_boards_it_comes_from_and_their_error(capsys) -> None:
    # orin-nano has no TensorRT measurements of its own: its default target's prior is fitted
    # to other boards' TensorRT tables, and the devices table must say so, with the error of
    # such a transfer (leave-one-board-out), not present it as fitted on the board
    code, out, err = _cli(capsys, "devices", "show", "orin-nano")
    assert code == 0, err
    text = " ".join(out.split())
    # from the other Ampere boards' TensorRT FP16 tables (architecture = "ampere")
    assert (
        "transferred from agx-orin-64gb:gpu-fp16-trt, orin-nano-super:gpu-fp16-trtexec, "
        "orin-nano-super:gpu-fp16-trt, orin-nx-16gb:gpu-fp16-trt" in text
    )
    assert "efficiencies and fixed costs" in text and "leave-one-board-out" in text
    assert "agx-xavier" not in text.split("transferred from")[1].split(";")[0]
    cv = dp.get("orin-nano").target.cross_validation
    assert cv.points >= 10 and cv.low_ratio < 1 < cv.high_ratio
    # the Xavier NX (Volta) has one measured board of its generation: only fixed costs move
    assert "(56 points; fixed costs)" in dp.get("xavier-nx").target.calibration.source
    assert "leave-one-board-out" in cv.source


def test_key_and_key_target_resolve_the_same_in_profile_and_budgets(capsys) -> None:
    from explorer.budget import parse_budget

    runs = {}
    for device in ("two-way", "two-way:gpu-fp16", "two-way:cpu-fp32"):
        code, out, err = _cli(capsys, "profile", "ding2025", "--device", device, "--format", "json")
        assert code == 0, err
        runs[device] = json.loads(out)["devices"]
    assert runs["two-way"] == runs["two-way:gpu-fp16"]  # KEY is its default target
    (pred,) = runs["two-way"].values()
    assert pred["calibrated"] and pred["low_ms"] < pred["predicted_ms"] < pred["high_ms"]
    other = runs["two-way:cpu-fp32"]["two-way:cpu-fp32"]
    assert not other["calibrated"] and other["high_ms"] is None
    assert other["low_ms"] == other["roofline_ms"]
    budget = parse_budget("20ms@two-way:cpu-fp32")
    assert dp.get(budget.device).address == "two-way:cpu-fp32"
    code, _, err = _cli(capsys, "profile", "ding2025", "--device", "two-way:npu")
    assert code == 2 and "has no target 'npu'" in err and err.count("\n") == 1


def test_roofline_hover_shows_the_range_or_the_lower_bound() -> None:
    import search_spaces as ss
    from explorer.profiling import profile_model
    from reports import DeviceRoof, ModelCost, Timing, roofline

    model = ss.build(ss.get_preset("ding2025"))
    prof = profile_model(model, ss.example_inputs(model), name="ding2025", meta=True)
    devices = [dp.get("two-way"), dp.get("two-way:cpu-fp32")]
    timings = {("ding2025", d.address): Timing.from_prediction(predict_latency(prof, d))
               for d in devices}  # fmt: skip
    data = roofline.roofline_data(
        [ModelCost.from_profile(prof)], [DeviceRoof.from_profile(d) for d in devices],
        timings=timings,
    )  # fmt: skip
    by_device = {p.device: p for p in data.models}
    low, high = predict_latency(prof, devices[0]).range_ms
    assert by_device["two-way"].latency_range == f"{low:.3g}-{high:.3g} ms"
    assert "lower bound" in by_device["two-way:cpu-fp32"].latency_range
    hovers = [h for t in roofline.figure(data).data if t.hovertext for h in t.hovertext]
    assert any(f"range {low:.3g}-{high:.3g} ms" in h for h in hovers)
