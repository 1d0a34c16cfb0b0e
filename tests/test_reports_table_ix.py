"""Lu, Lu and Lin (2025) Table IX with our counts of ding2025 and lu2025 on rpi4, rpi5, Zenbo.

The paper's rule (reports.feasibility): ✗ when the model's GFLOPs exceed the board's
GFLOP/s, ✓ when ridge / model intensity >= 1 (memory-bound side), / when the intensity is
above the ridge (compute-bound). Table IX prints ✓ ✓ ✓ for its model (lu2025). The README
discusses where our counts and the table differ.
"""

from __future__ import annotations

import pytest

import device_profiles
import search_spaces as ss
from explorer.prediction import predict_latency
from explorer.profiling import profile_model
from reports import DeviceRoof, ModelCost, Timing, feasibility, roofline

DEVICES = ("rpi4", "rpi5", "zenbo-junior-2")


@pytest.fixture(scope="module")
def table() -> dict:
    devs = [device_profiles.get(k) for k in DEVICES]
    roofs = [DeviceRoof.from_profile(d) for d in devs]
    costs, timings, preds = [], {}, {}
    for name in ("ding2025", "lu2025"):
        model = ss.build(ss.get_preset(name))
        profile = profile_model(model, ss.example_inputs(model), name=name, meta=True)
        costs.append(ModelCost.from_profile(profile))
        for d in devs:
            pred = predict_latency(profile, d)
            preds[(name, d.key)] = pred
            timings[(name, d.key)] = Timing.from_prediction(pred)
    return {
        "costs": {c.name: c for c in costs},
        "roofs": roofs,
        "timings": timings,
        "preds": preds,
        "feas": feasibility.feasibility_data(costs, roofs, timings=timings),
        "roof": roofline.roofline_data(costs, roofs, timings=timings),
    }


def test_counted_totals_are_the_ones_the_comparison_uses(table) -> None:
    ding, lu = table["costs"]["ding2025"], table["costs"]["lu2025"]
    assert (ding.params, ding.flops) == (66_584, 14_324_736)
    assert ding.ai_weights == pytest.approx(53.78, abs=0.01)
    assert 0.85e6 < lu.params < 0.95e6 and 1.2e9 < lu.flops < 1.4e9
    assert lu.ai_weights > 300  # 1.29 GFLOPs over 3.5 MB of weights


def test_both_models_fit_the_compute_of_every_board(table) -> None:
    for c in table["feas"].cells:
        assert c.fits_compute and c.mark_weights != "✗"


def test_papers_intensity_makes_both_models_compute_bound_everywhere(table) -> None:
    # FLOPs per weight byte is far above every ridge (1.01 .. 7.02): "/" everywhere, where
    # the paper prints ✓ for its model; so the paper cannot have divided by weight bytes.
    for c in table["feas"].cells:
        assert c.bound_weights == "compute" and c.mark_weights == "/"


def test_traffic_intensity_reproduces_table_ix_but_for_lu2025_on_zenbo(table) -> None:
    feas = table["feas"]
    lu = {d: feas.cell("lu2025", d) for d in DEVICES}
    assert {d: c.bound_traffic for d, c in lu.items()} == {
        "rpi4": "memory",
        "rpi5": "memory",
        "zenbo-junior-2": "compute",
    }
    assert {d: c.mark_traffic for d, c in lu.items()} == {
        "rpi4": "✓",
        "rpi5": "✓",
        "zenbo-junior-2": "/",
    }  # Table IX: ✓ ✓ ✓
    # Just above Zenbo's ridge (1.01): the model sits near the ridge, as Fig. 10 says.
    assert 1.01 < lu["zenbo-junior-2"].ai_traffic < 1.5
    ding = {d: feas.cell("ding2025", d).bound_traffic for d in DEVICES}
    assert ding == {"rpi4": "compute", "rpi5": "memory", "zenbo-junior-2": "compute"}


def test_counting_macs_as_flops_like_the_paper_gives_its_marks(table) -> None:
    # The paper's "0.77 GFLOPs" are thop-style MACs: in MACs per byte of traffic the
    # model is below every ridge and Table IX's ✓ ✓ ✓ follows.
    lu = table["costs"]["lu2025"]
    macs_per_byte = (lu.flops / 2) / lu.traffic_bytes
    assert macs_per_byte < 1.01
    marks = {
        r.key: feasibility.table_ix_mark(lu.flops / 2, macs_per_byte, r) for r in table["roofs"]
    }
    assert marks == feasibility.TABLE_IX_MARKS["Lu (paper)"]


def test_roofline_placement_agrees_with_the_latency_predictor(table) -> None:
    for p in table["roof"].models:
        pred = table["preds"][(p.model, p.device)]
        assert p.latency_ms == pytest.approx(pred.ms)
        assert p.attained_gflop_s <= p.roof_gflop_s * (1 + 1e-9)  # never above the roof
        assert p.bound == pred.bound  # model-level intensity vs ridge = the time-weighted bound
