"""The search-efficiency benchmark's hypervolume: linear and log cost axes, on hand-made fronts."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "search_efficiency.py"
_spec = importlib.util.spec_from_file_location("search_efficiency", _PATH)
search_efficiency = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(search_efficiency)


def test_hypervolume_on_a_linear_and_a_log_cost_axis() -> None:
    hv = search_efficiency.hypervolume_2d
    front = [(0.5, 1.0), (0.8, 10.0)]  # (macro-F1, ms)
    # linear, reference 100 ms: 0.5 x (1 - 0.01) + 0.3 x (1 - 0.1)
    assert hv(front, cost_ref=100.0) == pytest.approx(0.5 * 0.99 + 0.3 * 0.9)
    # log from 1 ms to 100 ms: the 10-ms point sits half-way along the axis
    assert hv(front, cost_ref=100.0, cost_min=1.0) == pytest.approx(0.5 * 1.0 + 0.3 * 0.5)
    # a dominated point adds nothing; a point over the reference is outside the area
    assert hv([*front, (0.4, 20.0), (0.9, 200.0)], cost_ref=100.0) == hv(front, cost_ref=100.0)
    # on a log axis a point 10x dearer loses as much as one 100x dearer loses on a 100x span
    assert hv([(1.0, 10.0)], cost_ref=100.0, cost_min=1.0) == pytest.approx(
        1 - math.log(10) / math.log(100)
    )
