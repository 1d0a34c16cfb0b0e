"""Fitting execution targets to measured latencies; measurement tables; `explorer calibrate`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import device_profiles
from device_profiles import Calibration, Target
from explorer import predict_latency
from explorer.board_fit import _design, _price, calibrate_from_table, fit_target
from explorer.errors import UsageError
from explorer.measurements import (
    MEASUREMENT_COLUMNS,
    profile_measurements,
    read_measurements,
    shipped_measurements,
)
from explorer.profiling import ModelProfile, OpRecord

TARGET = Target(name="t", processor="cpu", runtime="ncnn", precision="fp32", threads=4,
                peak_gflops=50.0, bandwidth_gb_s=10.0, device="board")  # fmt: skip
TRUE = Calibration(
    compute_fraction=0.6, bandwidth_fraction=0.8, overhead_us=20.0, call_overhead_us=300.0,
    kind_compute_fraction={"conv3x3": 1.5, "dwconv": 0.2}, work_exponent=0.1, additive=True,
    fuse_elementwise=True, threads=4,
)  # fmt: skip


def _op(kind: str, macs: int, cin: int, cout: int, hw: int, *, groups: int = 1, k: int = 1,
        elementwise: int = 0) -> OpRecord:  # fmt: skip
    out = (1, cout, hw, hw)
    if kind == "conv":
        macs = cout * hw * hw * cin // groups * k * k
    return OpRecord(
        module="m", module_type="X", op=f"aten.{kind}", kind=kind, macs=macs, flops=2 * macs,
        elementwise_flops=elementwise, bytes_read=4 * cin * hw * hw + 4 * macs // (hw * hw),
        bytes_written=4 * cout * hw * hw, weight_bytes=0, output_shape=out,
        input_shape=(1, cin, hw, hw), groups=groups,
    )  # fmt: skip


def _network(kind: str, width: int, hw: int, depth: int) -> ModelProfile:
    """A chain of one block type: pointwise, 3x3 or depthwise-separable convolutions."""
    ops = []
    for _ in range(depth):
        if kind == "c3":
            ops.append(_op("conv", 0, width, width, hw, k=3))
        elif kind == "dw":
            ops.append(_op("conv", 0, width, width, hw, groups=width, k=3))
        ops.append(_op("conv", 0, width, width, hw))  # pointwise
        ops.append(_op("activation", 0, width, width, hw, elementwise=width * hw * hw))
        ops.append(_op("elementwise", 0, width, width, hw, elementwise=width * hw * hw))
    return ModelProfile(
        model=f"{kind}-{width}x{hw}x{depth}", params=0, macs=sum(o.macs for o in ops),
        flops=sum(o.flops for o in ops), elementwise_flops=sum(o.elementwise_flops for o in ops),
        weight_bytes=0, traffic_bytes=sum(o.traffic_bytes for o in ops), peak_activation_bytes=0,
        ops=tuple(ops),
    )  # fmt: skip


NETWORKS = [_network(*spec) for spec in [
    ("pw", 16, 56, 3), ("pw", 256, 7, 8), ("pw", 64, 28, 2), ("c3", 8, 56, 2), ("c3", 128, 14, 4),
    ("c3", 32, 28, 1), ("dw", 32, 56, 4), ("dw", 256, 14, 2), ("dw", 96, 7, 12), ("pw", 4, 8, 30),
]]  # fmt: skip


def test_vectorised_pricing_equals_predict_latency() -> None:
    design = _design(TARGET, NETWORKS)
    fast = _price(design, TRUE)
    slow = [predict_latency(n, replace(TARGET, calibration=TRUE)).ms for n in NETWORKS]
    np.testing.assert_allclose(fast, slow, rtol=1e-9)


def test_fit_recovers_known_efficiencies_and_fixed_costs() -> None:
    truth = replace(TARGET, calibration=TRUE)
    samples = [(n.model, n, predict_latency(n, truth).ms) for n in NETWORKS]
    result = fit_target(TARGET, samples, source="synthetic")
    cal = result.target.calibration
    assert cal.compute_fraction == pytest.approx(0.6, rel=0.05)
    assert cal.kind_compute_fraction["conv3x3"] == pytest.approx(1.5, rel=0.05)
    assert cal.kind_compute_fraction["dwconv"] == pytest.approx(0.2, rel=0.05)
    assert cal.bandwidth_fraction == pytest.approx(0.8, rel=0.05)
    assert cal.overhead_us == pytest.approx(20.0, rel=0.1)
    assert cal.call_overhead_us == pytest.approx(300.0, rel=0.1)
    assert cal.work_exponent == pytest.approx(0.1, abs=0.01)
    for row in result.rows:  # noise-free data: every left-out network predicted closely
        assert abs(row.error) < 0.05
    cv = result.target.cross_validation
    assert cv.points == len(NETWORKS) and cv.within_10 == 1.0
    pred = predict_latency(NETWORKS[0], result.target)
    assert pred.high_ms is not None and pred.low_ms <= pred.ms <= pred.high_ms


HEADER = ",".join(MEASUREMENT_COLUMNS)
GOOD = "rpi4,cpu-fp32-ncnn,ding2025,,1,ncnn,fp32,4,1.5,median,my lab notebook page 3"


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        (GOOD.replace(",my lab notebook page 3", ","), "has no source"),
        (GOOD.replace(",1.5,", ",0,"), "latency_ms must be a positive number"),
        (GOOD.replace(",1.5,", ",-3,"), "latency_ms must be a positive number"),
        (GOOD.replace("cpu-fp32-ncnn", "npu-int4"), "has no target 'npu-int4'"),
        (GOOD.replace("rpi4,", "rpi9,"), "unknown device 'rpi9"),
        (GOOD.replace(",,1,", ",1x3xa,1,"), "input_shape must be like"),
    ],
)
def test_bad_rows_are_one_line_errors(tmp_path: Path, row: str, needle: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{row}\n", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        read_measurements(path)
    msg = str(info.value)
    assert needle in msg and "m.csv:3" in msg and "\n" not in msg


def test_unknown_model_is_a_one_line_error_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"{HEADER}\n{GOOD.replace('ding2025', 'nosuchnet')}\n", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        profile_measurements(read_measurements(path))
    assert "m.csv:2" in str(info.value) and "unknown MODEL" in str(info.value)


def test_shipped_tables_are_valid_and_every_row_has_a_source() -> None:
    rows = shipped_measurements()
    assert len(rows) >= 60
    assert all(m.source and m.latency_ms > 0 for m in rows)
    counts = {}
    for m in rows:
        counts[m.address] = counts.get(m.address, 0) + 1
    assert counts["rpi4:cpu-fp32-ncnn"] >= 5 and counts["jetson-nano:gpu-fp16-trt"] >= 5
    # the shipped priors: every default target of these boards is calibrated
    for key in ("rpi4", "rpi5", "orin-nano", "jetson-nano", "xavier-nx", "agx-orin-64gb"):
        assert device_profiles.get(key).target.calibrated, key
    cv = device_profiles.get("rpi4").target.cross_validation
    assert cv.points == counts["rpi4:cpu-fp32-ncnn"] and cv.within_25 >= 0.8


def test_calibrate_cli_fits_a_target_and_cross_validates(tmp_path: Path, capsys) -> None:
    from explorer.cli import main

    rows = [
        "rpi4,cpu-fp32-xnnpack,explorer.zoo:mobilenet_v3_small,1x3x64x64,1,xnnpack,fp32,4,2.0,"
        "median,lab",
        "rpi4,cpu-fp32-xnnpack,explorer.zoo:squeezenet1_1,1x3x64x64,1,xnnpack,fp32,4,4.0,"
        "median,lab",
        "rpi4,cpu-fp32-xnnpack,ding2025,,1,xnnpack,fp32,4,1.0,median,lab",
        "rpi4,cpu-fp32-ncnn,ding2025,,1,ncnn,fp32,4,9.0,median,lab",  # another target: ignored
    ]
    table = tmp_path / "lab.csv"
    table.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "fitted.toml"
    args = ["calibrate", "--device", "rpi4:cpu-fp32-xnnpack", "--from-measurements", str(table),
            "--cross-validate", "--format", "json", "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    doc = json.loads(captured.out)
    assert [r["model"] for r in doc["rows"]] == [
        "explorer.zoo:mobilenet_v3_small", "explorer.zoo:squeezenet1_1", "ding2025"
    ]  # fmt: skip
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in doc["rows"])
    assert set(doc["summary"]) >= {"within_10", "within_25", "within_50", "points"}
    fitted = device_profiles.load_file(out).with_target("cpu-fp32-xnnpack")
    assert fitted.target.cross_validation.points == 3
    in_sample = {r["model"]: r["predicted_ms"] for r in doc["fitted"]}
    assert in_sample["ding2025"] == pytest.approx(1.0, rel=0.5)
    # the other targets of the board are written back unchanged
    assert fitted.all_targets["cpu-fp32-ncnn"] == device_profiles.get("rpi4").target


def test_calibrate_with_a_target_missing_from_the_file_is_one_line(tmp_path: Path) -> None:
    table = tmp_path / "lab.csv"
    table.write_text(f"{HEADER}\n{GOOD}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no rows for rpi4:cpu-fp32-xnnpack"):
        calibrate_from_table(table, "rpi4:cpu-fp32-xnnpack")


def test_standard_networks_profile_through_module_function_and_input_shape(capsys) -> None:
    from explorer.cli import main
    from explorer.zoo import NETWORKS

    assert {"resnet18", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_x1_0",
            "squeezenet1_1", "efficientnet_b0", "resnet50"} <= set(NETWORKS)  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(["profile", "explorer.zoo:mobilenet_v3_small", "--input-shape", "1x3x224x224",
              "--device", "rpi4", "--format", "json"])  # fmt: skip
    out = capsys.readouterr().out
    assert info.value.code == 0
    doc = json.loads(out)
    assert doc["params"] == 2_542_856  # torchvision's MobileNetV3-Small, 1000 classes
    assert doc["devices"]["rpi4"]["target"] == "cpu-fp32-ncnn"
    with pytest.raises(SystemExit) as info:
        main(["profile", "explorer.zoo:resnet18", "--device", "rpi4"])
    assert info.value.code == 2 and "input_spec" in capsys.readouterr().err
