"""The numbers behind the charts: roofs, ridge points, placements, Pareto membership,
breakdown sums, the Table IX rule, and the figures built from them."""

from __future__ import annotations

import math

import pytest

import device_profiles
from reports import DeviceRoof, ModelCost, OpCost, Timing, breakdown, feasibility, pareto, roofline

TABLE_IX_DEVICES = ("rpi4", "rpi5", "zenbo-junior-2")


@pytest.fixture(scope="module")
def devices() -> list[DeviceRoof]:
    return [DeviceRoof.from_profile(device_profiles.get(k)) for k in TABLE_IX_DEVICES]


def _ding_totals() -> ModelCost:
    # Ding, Tang and Lu (2025) by their equations: 66,584 params, 14,324,736 FLOPs (FP32 weights).
    return ModelCost(name="ding2025", params=66_584, flops=14_324_736, weight_bytes=4 * 66_584)


def _ops_model() -> ModelCost:
    ops = (
        OpCost(
            module="a.conv",
            op="aten.convolution",
            kind="conv",
            flops=8_000_000,
            traffic_bytes=1_000_000,
        ),
        OpCost(
            module="a.relu", op="aten.relu", kind="activation", flops=100_000, traffic_bytes=800_000
        ),
        OpCost(module="a.view", op="aten.view", kind="memory", flops=0, traffic_bytes=400_000),
        OpCost(
            module="b.fc", op="aten.addmm", kind="linear", flops=2_000_000, traffic_bytes=4_000_000
        ),
    )
    return ModelCost(
        name="toy",
        params=1_000_000,
        flops=10_000_000,
        weight_bytes=4_000_000,
        total_flops=sum(o.flops for o in ops),
        traffic_bytes=sum(o.traffic_bytes for o in ops),
        family="ding",
        ops=ops,
    )


# --- roofs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "peak", "bw", "ridge"),
    [
        ("rpi4", 30.0, 12.8, 2.34),
        ("rpi5", 120.0, 17.1, 7.01),  # 7.0175: the paper truncates
        ("zenbo-junior-2", 25.76, 25.6, 1.01),
    ],
)
def test_device_roofs_reproduce_table_ix(key: str, peak: float, bw: float, ridge: float) -> None:
    roof = DeviceRoof.from_profile(device_profiles.get(key))
    assert (roof.peak_gflop_s, roof.bandwidth_gb_s) == (peak, bw)
    assert abs(roof.ridge_flops_per_byte - ridge) < 0.01
    # Below the ridge the bandwidth roof binds, above it the compute roof.
    assert roof.roof_gflop_s(0.5) == pytest.approx(0.5 * bw)
    assert roof.roof_gflop_s(ridge * 10) == peak
    assert roof.roof_gflop_s(roof.ridge_flops_per_byte) == pytest.approx(peak)


def test_achievable_roofs_scale_with_calibration() -> None:
    base = device_profiles.get("rpi4")
    cal = device_profiles.Calibration(
        compute_fraction=0.5, bandwidth_fraction=0.25, overhead_us=3.0
    )
    import dataclasses

    roof = DeviceRoof.from_profile(dataclasses.replace(base, calibration=cal))
    assert roof.calibrated
    assert roof.achievable_peak_gflop_s == pytest.approx(15.0)
    assert roof.achievable_bandwidth_gb_s == pytest.approx(3.2)
    assert roof.achievable_ridge_flops_per_byte == pytest.approx(15.0 / 3.2)
    assert roof.roof_gflop_s(1.0, achievable=True) == pytest.approx(3.2)
    fig = roofline.figure(roofline.roofline_data([_ding_totals()], [roof], intensity="weights"))
    dashed = [t for t in fig.data if t.line and t.line.dash == "dash"]
    assert len(dashed) == 1 and dashed[0].y[1] == pytest.approx(15.0)


# --- roofline placement ---------------------------------------------------------------------


def test_weights_intensity_places_ding_compute_bound_on_every_table_ix_device(devices) -> None:
    data = roofline.roofline_data([_ding_totals()], devices, intensity="weights")
    assert len(data.models) == 3
    for p in data.models:
        assert p.intensity == pytest.approx(14_324_736 / 266_336)  # 53.8 FLOPs per weight byte
        assert p.bound == "compute"
        assert p.source == "roof" and p.efficiency == pytest.approx(1.0)  # no timing: on roof
    assert {p.device: p.attained_gflop_s for p in data.models} == {
        "rpi4": 30.0,
        "rpi5": 120.0,
        "zenbo-junior-2": 25.76,
    }


def test_attained_performance_comes_from_the_timing(devices) -> None:
    model = _ops_model()
    timings = {("toy", "rpi4"): Timing(ms=2.0, source="measured")}
    data = roofline.roofline_data([model], devices, timings=timings)
    p = next(p for p in data.models if p.device == "rpi4")
    assert p.intensity == pytest.approx(10_100_000 / 6_200_000)
    assert p.attained_gflop_s == pytest.approx(10_100_000 / 2e-3 / 1e9)
    assert p.latency_ms == 2.0 and p.source == "measured"
    assert p.bound == "memory"  # 1.63 < 2.34
    assert next(p for p in data.models if p.device == "zenbo-junior-2").bound == "compute"


def test_traffic_intensity_skips_models_without_traffic(devices) -> None:
    data = roofline.roofline_data([_ding_totals(), _ops_model()], devices)
    assert {p.model for p in data.models} == {"toy"}
    assert any("ding2025" in n and "not placed" in n for n in data.notes)


def test_per_layer_places_operators_with_time_shares(devices) -> None:
    model = _ops_model()
    op_ms = (0.4, 0.1, 0.2, 0.3)
    timings = {("toy", "rpi4"): Timing(ms=sum(op_ms), op_ms=op_ms)}
    data = roofline.roofline_data([model], devices[:1], timings=timings, per_layer=True)
    ops = {o.module: o for o in data.ops}
    assert set(ops) == {"a.conv", "a.relu", "b.fc"}  # the view has no arithmetic
    assert ops["a.conv"].time_share == pytest.approx(0.4)
    assert ops["a.conv"].attained_gflop_s == pytest.approx(8e6 / 0.4e-3 / 1e9)
    assert ops["a.conv"].bound == "compute" and ops["b.fc"].bound == "memory"
    assert any("1 operator without arithmetic" in n and "20.0 %" in n for n in data.notes)


def test_per_layer_without_op_times_uses_the_roofline(devices) -> None:
    data = roofline.roofline_data([_ops_model()], devices[:1], per_layer=True)
    conv = next(o for o in data.ops if o.module == "a.conv")
    assert conv.ms == pytest.approx(8e6 / 30e9 * 1e3)  # compute-bound: FLOPs / peak
    assert conv.attained_gflop_s == pytest.approx(30.0)


def test_roofline_rejects_bad_arguments(devices) -> None:
    with pytest.raises(ValueError, match="intensity must be one of"):
        roofline.roofline_data([_ding_totals()], devices, intensity="bytes")
    with pytest.raises(ValueError, match="unique"):
        roofline.roofline_data([_ding_totals(), _ding_totals()], devices)
    with pytest.raises(ValueError, match="at least one device"):
        roofline.roofline_data([_ding_totals()], [])


def test_roofline_figure_has_roofs_ridges_log_axes_and_units(devices) -> None:
    data = roofline.roofline_data([_ops_model()], devices, per_layer=True)
    fig = roofline.figure(data)
    layout = fig.layout
    assert layout.xaxis.type == "log" and layout.yaxis.type == "log"
    assert "FLOPs per byte" in layout.xaxis.title.text
    assert "GFLOP/s" in layout.yaxis.title.text
    assert len([a for a in layout if a.startswith("xaxis")]) == 3  # one panel per device
    roofs = [t for t in fig.data if t.name and " roof: " in t.name and "achievable" not in t.name]
    assert len(roofs) == 3  # (rpi4 and rpi5 have shipped priors: achievable roofs beside)
    rpi5 = next(t for t in roofs if t.name.startswith("rpi5"))
    assert rpi5.x[1] == pytest.approx(120 / 17.1) and rpi5.y[1] == 120.0  # the ridge corner
    ridges = [t for t in fig.data if t.name and "ridge point" in t.name]
    assert sorted(round(t.x[0], 2) for t in ridges) == [1.01, 2.34, 7.02]
    hovers = [h for t in fig.data if t.hovertext for h in t.hovertext]
    assert any("GFLOP/s" in h and "FLOPs/byte" in h for h in hovers)


# --- Pareto ---------------------------------------------------------------------------------


def test_pareto_mask_handles_directions_ties_and_nan() -> None:
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (2.0, 0.7), (0.5, 0.2), (math.nan, 0.9)]
    assert pareto.pareto_mask(pts, ["minimize", "maximize"]) == [
        True,
        True,
        False,
        True,
        True,
        False,
    ]
    # Flip both directions: (2, 0.7) is now dominated by (3, 0.6).
    assert pareto.pareto_mask(pts[:5], ["maximize", "minimize"]) == [True, False, True, False, True]
    three = [(1, 1, 1), (0, 2, 2), (1, 1, 2), (2, 0, 0)]
    assert pareto.pareto_mask(three, ["minimize"] * 3) == [True, True, False, True]
    with pytest.raises(ValueError):
        pareto.pareto_mask(pts, ["min", "max"])


def _trials() -> list[pareto.TrialPoint]:
    rows = [  # number, family, latency ms, macro-F1, feasible, state
        (0, "ding", 1.0, 0.50, True, "COMPLETE"),
        (1, "lu", 5.0, 0.70, True, "COMPLETE"),
        (2, "lu", 6.0, 0.65, True, "COMPLETE"),
        (3, "kumar", 50.0, 0.90, False, "COMPLETE"),  # over budget: never competes
        (4, "yang", 2.0, 0.80, True, "FAIL"),
        (5, "yang", 8.0, 0.75, True, "COMPLETE"),
    ]
    return [
        pareto.TrialPoint(
            number=n,
            family=f,
            config={"width": 0.5},
            objectives={"predicted_ms_rpi4": ms, "macro_f1": f1},
            feasible=ok,
            state=st,
        )
        for n, f, ms, f1, ok, st in rows
    ]


def test_pareto_data_statuses_and_front() -> None:
    data = pareto.pareto_data(_trials(), ["predicted_ms_rpi4", "macro_f1"])
    status = {p.trial.number: p.status for p in data.points}
    assert status == {0: "optimal", 1: "optimal", 2: "dominated", 3: "infeasible", 5: "optimal"}
    assert data.skipped == 1
    assert [p.trial.number for p in data.front] == [0, 1, 5]
    assert data.objectives[0].direction == "minimize"
    assert data.objectives[0].label == "Predicted latency on rpi4 (ms)"
    assert data.objectives[1].direction == "maximize"


def test_pareto_figure_joins_the_front_and_marks_references() -> None:
    refs = [
        pareto.ReferencePoint(
            name="ding2025", objectives={"predicted_ms_rpi4": 0.9, "macro_f1": 0.6}
        ),
        pareto.ReferencePoint(name="lu2025", objectives={"predicted_ms_rpi4": 40.0}),
    ]
    fig = pareto.figure(
        pareto.pareto_data(_trials(), ["predicted_ms_rpi4", "macro_f1"], references=refs)
    )
    front = next(t for t in fig.data if t.name and t.name.startswith("Pareto front"))
    assert list(front.x) == [1.0, 5.0, 8.0] and front.line.shape == "hv"
    star = next(t for t in fig.data if t.name == "preset ding2025")
    assert star.marker.symbol == "star"
    assert any(s.x0 == 40.0 for s in fig.layout.shapes)  # cost-only reference: a line
    muted = [t for t in fig.data if t.name and "(dominated)" in t.name]
    assert muted and all(t.marker.opacity < 0.5 for t in muted)
    hover = " ".join(h for t in fig.data if t.hovertext for h in t.hovertext)
    assert "trial 1" in hover and "width=0.5" in hover and "over budget" in hover
    assert "lower is better" in fig.layout.xaxis.title.text


def test_pareto_figure_draws_the_95_percent_intervals_of_means() -> None:
    names = ["predicted_ms_rpi4", "predicted_low_ms_rpi4", "predicted_high_ms_rpi4",
             "macro_f1_mean", "macro_f1_ci95"]  # fmt: skip
    rows = [
        {"number": "0", "family": "ding", "predicted_ms_rpi4": "1.0", "macro_f1_mean": "0.5",
         "macro_f1_ci95": "0.08", "predicted_low_ms_rpi4": "0.8", "predicted_high_ms_rpi4": "1.5"},
        {"number": "1", "family": "ding", "predicted_ms_rpi4": "2.0", "macro_f1_mean": "0.6",
         "macro_f1_ci95": "", "predicted_low_ms_rpi4": "1.2", "predicted_high_ms_rpi4": ""},
    ]  # one evaluation: no interval; no upper latency bound  # fmt: skip
    trials = [pareto.trial_from_row(r, names) for r in rows]
    assert trials[0].errors == {"macro_f1_mean": 0.08} and trials[1].errors == {}
    assert trials[1].ranges == {"predicted_ms_rpi4": (1.2, math.inf)}
    ref = pareto.ReferencePoint(
        name="ding2025",
        objectives={"predicted_ms_rpi4": 3.0, "macro_f1_mean": 0.4},
        errors={"macro_f1_mean": 0.1},
    )
    data = pareto.pareto_data(trials, ["predicted_ms_rpi4", "macro_f1_mean"], references=[ref])
    fig = pareto.figure(data)
    bars = {t.name: t.error_y.array for t in fig.data if t.error_y and t.error_y.array}
    assert bars["ding (optimal)"] == (0.08, 0.0)
    ding = next(t for t in fig.data if t.name == "ding (optimal)")
    assert ding.error_x.array == pytest.approx((0.5, 0.0))  # up to high; none: no bound
    assert ding.error_x.arrayminus == pytest.approx((0.2, 0.8))  # down to low
    assert bars["preset ding2025"] == (0.1,)
    assert "95 % interval" in fig.layout.yaxis.title.text


def test_pareto_three_objectives_draws_3d() -> None:
    trials = [
        pareto.TrialPoint(
            number=i, family="lu", objectives={"flops": f, "params": p, "macro_f1": a}
        )
        for i, (f, p, a) in enumerate([(1, 3, 0.5), (2, 1, 0.6), (3, 3, 0.4)])
    ]
    data = pareto.pareto_data(trials, ["flops", "params", "macro_f1"])
    assert [p.status for p in data.points] == ["optimal", "optimal", "dominated"]
    fig = pareto.figure(data)
    assert {t.type for t in fig.data} == {"scatter3d"}
    with pytest.raises(ValueError, match="2 or 3"):
        pareto.pareto_data(trials, ["flops"])


# --- breakdown ------------------------------------------------------------------------------


def test_breakdown_sums_by_layer_and_kind(devices) -> None:
    model = _ops_model()
    op_ms = (0.4, 0.1, 0.2, 0.3)
    data = breakdown.breakdown_data(model, Timing(ms=1.0, op_ms=op_ms), device=devices[0])
    assert set(data.layers) == {"a.conv", "a.relu", "a.view", "b.fc"}  # fit in 4 rows
    assert data.total_flops == 10_100_000 and data.total_bytes == 6_200_000
    assert data.total_ms == pytest.approx(1.0)
    by_kind = {r.kind: r for r in data.by_kind}
    assert by_kind["conv"].flops == 8_000_000 and by_kind["memory"].bytes == 400_000
    assert sum(r.ms for r in data.by_layer) == pytest.approx(1.0)
    assert data.layers[0] == "a.conv"  # the heaviest first
    coarse = breakdown.breakdown_data(model, device=devices[0], max_layers=2)
    assert set(coarse.layers) == {"a", "b.fc"}  # a single child costs no row
    # Three rows: "a" (0.7 ms) has three children, too many; "b" goes down to its only one.
    three = breakdown.breakdown_data(model, Timing(ms=1.0, op_ms=op_ms), max_layers=3)
    assert three.layers == ("a", "b.fc")
    fig = breakdown.figure(data)
    assert fig.layout.barmode == "stack" and len(fig.layout.annotations) == 3
    with pytest.raises(ValueError, match="no per-operator rows"):
        breakdown.breakdown_data(_ding_totals())


# --- feasibility (Lu, Lu and Lin (2025) Table IX) ----------------------------------------------


def test_table_ix_rule_reproduces_the_printed_crosses(devices) -> None:
    data = feasibility.feasibility_data(
        feasibility.TABLE_IX_MODELS, devices, paper_marks=feasibility.TABLE_IX_MARKS
    )
    for c in data.cells:
        if c.paper_mark == "✗":
            assert c.mark_weights == "✗" and not c.fits_compute, c
        else:
            assert c.fits_compute, c


@pytest.mark.parametrize(
    ("ai", "marks"),
    [
        # An intensity at or below every ridge: ✓ everywhere (the paper's "proposed" row).
        (0.9, {"rpi4": "✓", "rpi5": "✓", "zenbo-junior-2": "✓"}),
        # Between Zenbo's ridge (1.01) and the RPi 4's (2.34): Sharafi et al. [24]'s row.
        (1.5, {"rpi4": "✓", "rpi5": "✓", "zenbo-junior-2": "/"}),
        # Above every ridge: compute-bound everywhere.
        (53.8, {"rpi4": "/", "rpi5": "/", "zenbo-junior-2": "/"}),
    ],
)
def test_table_ix_rule_by_intensity(devices, ai: float, marks: dict[str, str]) -> None:
    got = {d.key: feasibility.table_ix_mark(1e9, ai, d) for d in devices}
    assert got == marks
    assert feasibility.table_ix_mark(1e9, None, devices[0]) == "?"


def test_feasibility_cells_and_table(devices) -> None:
    model = _ops_model()
    data = feasibility.feasibility_data(
        [model], devices, timings={("toy", "rpi5"): Timing(ms=0.25)}
    )
    c = data.cell("toy", "rpi4")
    assert c.ai_weights == pytest.approx(2.5) and c.bound_weights == "compute"
    assert c.ai_traffic == pytest.approx(10_100_000 / 6_200_000) and c.bound_traffic == "memory"
    assert (c.mark_weights, c.mark_traffic) == ("/", "✓")
    assert data.cell("toy", "rpi5").predicted_ms == 0.25 and c.predicted_ms is None
    table = feasibility.rows(data)
    assert len(table) == 3 and len(table[0]) == len(feasibility.COLUMNS)
    fig = feasibility.figure(data)
    assert fig.data[0].type == "table"
    with pytest.raises(KeyError):
        data.cell("toy", "orin-nano")
