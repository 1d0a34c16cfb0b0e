"""Fitting execution targets to measured latencies; measurement tables; `explorer calibrate`."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import device_profiles
from device_profiles import Calibration, CrossValidation, Target
from explorer import predict_latency
from explorer.board_fit import _design, _price, calibrate_from_table, fit_target, fit_transfer
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


def _single(name: str, o: OpRecord) -> ModelProfile:
    """A network of one operator."""
    return ModelProfile(
        model=name, params=0, macs=o.macs, flops=o.flops, elementwise_flops=0, weight_bytes=0,
        traffic_bytes=o.traffic_bytes, peak_activation_bytes=0, ops=(o,),
    )  # fmt: skip


def test_a_gpu_runs_a_grouped_convolution_in_one_launch() -> None:
    """A ghost module's cheap operation (groups = input channels, several outputs per group)
    pays its fixed cost once per group on a CPU (ONNX Runtime loops over them) and once on a
    GPU (one kernel; PyTorch's profiler on an H200 counted it so), in the fit's pricing and in
    predict_latency alike."""
    ghost = _op("conv", 0, 16, 64, 14, groups=16, k=3)
    plain = replace(ghost, groups=1, macs=ghost.macs, flops=ghost.flops)
    nets = [_single(name, o) for name, o in (("ghost", ghost), ("plain", plain))]
    cal = replace(TRUE, additive=False, work_exponent=0.0)
    for processor, calls in (("cpu", 16), ("gpu", 1)):
        target = replace(TARGET, processor=processor, calibration=cal)
        fast = _price(_design(target, nets), cal)
        slow = [predict_latency(n, target).ms for n in nets]
        np.testing.assert_allclose(fast, slow, rtol=1e-9)
        # the same work as one dense conv; only the launches differ
        assert slow[0] - slow[1] == pytest.approx((calls - 1) * cal.overhead_us * 1e-3)


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
    assert cv.points == counts["rpi4:cpu-fp32-ncnn"]
    # the acceptance bar: every default target with >= 5 points of its own predicts >= 80 %
    # of them within ±25 % with the network left out of its fit
    for address, n in counts.items():
        profile = device_profiles.get(address)
        if n >= 5 and profile.target.name == profile.default_target_name:
            cv = profile.target.cross_validation
            assert cv.points == n and cv.within_25 >= 0.8, (address, cv.within_25)


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


# torchvision's published parameter counts (its model pages), 1000 classes
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840, "resnet101": 44_549_160, "resnet152": 60_192_808,
    "vgg13": 133_047_848, "vgg19": 143_667_240, "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996, "mnasnet0_5": 2_218_512, "mnasnet0_75": 3_170_208,
    "mnasnet1_0": 4_383_312, "mnasnet1_3": 6_282_256,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_zoo_networks_have_torchvisions_parameter_counts(name: str) -> None:
    import torch

    from explorer.zoo import NETWORKS

    with torch.device("meta"):  # shapes only: VGG-19's 143 M weights are never allocated
        model = NETWORKS[name]()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMS[name]


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


def test_range_widens_the_fixed_cost_part_by_its_own_uncertainty() -> None:
    cv = CrossValidation(points=9, models=9, within_10=0.5, within_25=1.0, within_50=1.0,
                         low_ratio=0.9, high_ratio=1.1, fixed_ratio=4.0)  # fmt: skip
    target = replace(TARGET, calibration=TRUE, cross_validation=cv)
    # all work: the cross-validated ratios
    assert target.range_ms(10.0, roofline_ms=5.0) == pytest.approx((9.0, 11.0))
    # all fixed costs: their own, wider, factor
    assert target.range_ms(1.0, roofline_ms=0.1, fixed_ms=1.0) == pytest.approx((0.25, 4.0))
    # half and half: each part its own factor
    assert target.range_ms(2.0, roofline_ms=0.1, fixed_ms=1.0) == pytest.approx((1.15, 5.1))
    # a fixed-cost factor narrower than the cross-validated one never narrows the range
    tight = replace(target, cross_validation=replace(cv, fixed_ratio=1.05))
    assert tight.range_ms(1.0, roofline_ms=0.1, fixed_ms=1.0) == pytest.approx((0.9, 1.1))


def test_a_fit_on_large_networks_gives_tiny_ones_an_honest_range() -> None:
    """Fitted on 1-25 ms networks only, the fixed costs are barely pinned: a tiny network's
    range must hold its true time, and be relatively wider than a large network's."""
    truth = replace(TARGET, calibration=TRUE)
    large = [_network(*s) for s in [("pw", 64, 56, 3), ("pw", 256, 14, 8), ("c3", 64, 28, 4),
                                     ("c3", 128, 14, 4), ("dw", 128, 56, 4), ("dw", 256, 28, 6),
                                     ("pw", 128, 28, 6)]]  # fmt: skip
    noise = [1.08, 0.93, 1.05, 0.96, 1.1, 0.92, 1.02]  # a published table is never exact
    samples = [
        (n.model, n, predict_latency(n, truth).ms * e) for n, e in zip(large, noise, strict=True)
    ]
    assert min(ms for *_, ms in samples) > 1.0 and max(ms for *_, ms in samples) < 25.0
    fitted = fit_target(TARGET, samples, source="large only").target
    assert fitted.cross_validation.fixed_ratio > fitted.cross_validation.high_ratio
    tiny, big = _network("pw", 4, 4, 2), large[1]
    tiny_true = predict_latency(tiny, truth).ms
    assert tiny_true < 0.5
    pred_tiny, pred_big = predict_latency(tiny, fitted), predict_latency(big, fitted)
    assert pred_tiny.low_ms <= tiny_true <= pred_tiny.high_ms
    width = lambda p: p.high_ms / p.low_ms  # noqa: E731
    assert width(pred_tiny) > 1.5 * width(pred_big)
    # more measurements of small networks pin the fixed costs: a narrower factor
    small = [_network(*s) for s in [("pw", 4, 8, 2), ("pw", 8, 8, 3), ("dw", 8, 8, 2)]]
    more = samples + [(n.model, n, predict_latency(n, truth).ms) for n in small]
    refit = fit_target(TARGET, more, source="with small").target
    assert refit.cross_validation.fixed_ratio < fitted.cross_validation.fixed_ratio


def test_transfer_to_a_board_without_measurements_is_validated_board_by_board() -> None:
    """Two boards measured, a third not: its prior comes from the two, and its range from
    predicting each measured board with a fit on the other one only."""
    boards = [replace(TARGET, device=d, peak_gflops=p, bandwidth_gb_s=b)
              for d, p, b in [("a", 50.0, 10.0), ("b", 200.0, 30.0)]]  # fmt: skip
    pool = []
    for board, call in zip(boards, (300.0, 600.0), strict=True):
        truth = replace(board, calibration=replace(TRUE, call_overhead_us=call))
        samples = [(n.model, n, predict_latency(n, truth).ms) for n in NETWORKS]
        pool.append((fit_target(board, samples, source="own").target, samples))
    new = replace(TARGET, device="c", peak_gflops=100.0, bandwidth_gb_s=20.0)
    result = fit_transfer(new, pool)
    cal, cv = result.target.calibration, result.target.cross_validation
    assert cal.source.startswith("transferred from a:t, b:t (20 points; fixed costs)")
    # only the fixed costs move: the new board's work is priced at its own roofs
    assert cal.compute_fraction == cal.bandwidth_fraction == 1.0
    assert not cal.kind_compute_fraction and cal.work_exponent == 0.0
    assert 250.0 <= cal.call_overhead_us <= 700.0  # about the two boards' 300 and 600 µs
    assert cv.points == 20 and "leave-one-board-out over 2 boards" in cv.source
    assert {r.model.split("/")[0] for r in result.rows} == {"a:t", "b:t"}
    # the boards' per-inference costs differ by 2x: the fixed-cost factor says about that much
    assert cv.fixed_ratio == pytest.approx(math.exp(1.2816 * math.log(2) / math.sqrt(2)), rel=0.1)
    with pytest.raises(UsageError, match="no measurements to transfer"):
        fit_transfer(new, [])


def test_a_transfer_within_one_architecture_moves_the_efficiencies_too() -> None:
    """Boards of one generation run their kernels at similar fractions of their roofs: a
    board of that generation without measurements gets those fractions, not its bare roofs."""
    slow = replace(TRUE, compute_fraction=0.4, bandwidth_fraction=0.5)
    boards = [replace(TARGET, device=d, peak_gflops=p, bandwidth_gb_s=b)
              for d, p, b in [("a", 50.0, 10.0), ("b", 200.0, 30.0)]]  # fmt: skip
    pool = []
    for board in boards:
        samples = [
            (n.model, n, predict_latency(n, replace(board, calibration=slow)).ms) for n in NETWORKS
        ]
        pool.append((fit_target(board, samples, source="own").target, samples))
    new = replace(TARGET, device="c", peak_gflops=100.0, bandwidth_gb_s=20.0)
    kin = fit_transfer(new, pool, same_architecture=True)
    roofs = fit_transfer(new, pool)
    assert "efficiencies and fixed costs" in kin.target.calibration.source
    assert kin.target.calibration.compute_fraction < 1.0  # the boards' kernels are slow
    truth = [predict_latency(n, replace(new, calibration=slow)).ms for n in NETWORKS]

    def err(target: Target) -> float:
        pairs = zip(NETWORKS, truth, strict=True)
        return max(abs(predict_latency(n, target).ms / m - 1) for n, m in pairs)

    # the new board runs at the generation's fractions: moving them predicts it, roofs do not
    assert err(kin.target) < 0.1 < err(roofs.target)
    assert all(abs(r.predicted_ms / r.measured_ms - 1) < 0.1 for r in kin.rows)


def test_shipped_transfers_have_a_range_and_say_where_they_come_from(capsys) -> None:
    from explorer.cli import main

    for key in ("orin-nano", "xavier-nx"):
        target = device_profiles.get(key).target
        assert target.calibration.source.startswith("transferred from"), key
        assert "leave-one-board-out" in target.cross_validation.source, key
    # the default targets with rows of their own: fitted on them, within the bar
    # (the AGX Orin and Orin NX on Ultralytics' YOLO11 tables, five networks each)
    for key in ("rpi4", "rpi5", "jetson-nano", "agx-xavier", "agx-orin-64gb", "orin-nx-16gb"):
        target = device_profiles.get(key).target
        assert target.calibration.source.startswith("device_profiles/measurements/"), key
        assert target.cross_validation.points >= 5 and target.cross_validation.within_25 >= 0.8, key
    with pytest.raises(SystemExit) as info:
        main(["profile", "ding2025", "--device", "orin-nano", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert info.value.code == 0
    pred = doc["devices"]["orin-nano"]
    assert pred["calibrated"] and pred["high_ms"] is not None
    assert pred["low_ms"] < pred["predicted_ms"] < pred["high_ms"]


def test_the_older_python_name_fits_through_the_board_fit(tmp_path: Path) -> None:
    """explorer.latency.calibrate_from_measurements is board_fit's fit under its old name."""
    from explorer.latency import calibrate_from_measurements

    results = [{"model": "ding2025", "median_ms": 2.0, "batch_size": 1, "threads": 4},
               {"model": "lu2025", "median_ms": 30.0}]  # fmt: skip
    path = tmp_path / "board.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    fitted = calibrate_from_measurements(path, device_profiles.get("rpi4:cpu-fp32-xnnpack"))
    target = fitted.target
    assert fitted.address == "rpi4:cpu-fp32-xnnpack" and target.name == "cpu-fp32-xnnpack"
    assert target.calibration.source == "explorer calibrate --from-measurements board.json (2 rows)"
    profiles = profile_measurements(read_measurements(path, device="rpi4:cpu-fp32-xnnpack"))
    by_model = {name: p for (name, _, _), p in profiles.items()}
    assert predict_latency(by_model["ding2025"], fitted).ms == pytest.approx(2.0, rel=0.25)
    # the same fit as the CLI's: calibrate_from_table on the same file
    same, _ = calibrate_from_table(path, "rpi4:cpu-fp32-xnnpack", cross_validate_fit=False)
    assert same.target.calibration == target.calibration
    # the board's other targets are untouched
    assert fitted.all_targets["cpu-fp32-ncnn"] == device_profiles.get("rpi4").target
