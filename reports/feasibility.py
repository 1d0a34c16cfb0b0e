"""Feasibility table in the style of Table IX of Lu, Lu and Lin (2025), Lightweight Multimodal
Emotion Recognition for Companion Robots: which model fits which device.

The paper's rule, read from its notes under Table IX and its text in §V-C:

- ✗ "the GFLOPs of architecture exceeded the capped GFLOPs of ECB": the model's FLOPs per
  inference exceed the board's FP32 GFLOP/s, i.e. one inference needs more than a second even
  at peak;
- ✓ "the arithmetic intensity ratio of ECB and architecture is larger than 1": the board's
  intensity (its ridge point, peak / bandwidth) divided by the model's is >= 1, i.e. the model's
  intensity "falls within the device limits";
- / otherwise: "possible implementation with more clock cycles due to arithmetic intensity
  overhead": the model's intensity exceeds the ridge.

In roofline terms ✓ means memory-bound (or at the ridge) and / means compute-bound; a
compute-bound model is not slower for it, so ``bound_*`` and the predicted latency are shown
next to the mark. The mark is computed with both intensity definitions (``ai_weights``,
``ai_traffic``; see ``reports.roofline``), because the paper does not say which bytes it used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from ._inputs import DeviceRoof, ModelCost, Timing

__all__ = [
    "COLUMNS",
    "DESCRIPTION",
    "TABLE_IX_MARKS",
    "TABLE_IX_MODELS",
    "FeasibilityCell",
    "FeasibilityData",
    "feasibility_data",
    "figure",
    "rows",
    "table_ix_mark",
]

DESCRIPTION = (
    "Marks follow Lu, Lu and Lin (2025) Table IX: ✗ when the model's GFLOPs per inference "
    "exceed the device's GFLOP/s (more than a second at peak); ✓ when the device's ridge point "
    "divided by the model's arithmetic intensity is at least 1; / when the model's intensity "
    "exceeds the ridge. In roofline terms / means compute-bound, which is not slower by "
    "itself: read the predicted latency next to it. Both intensity definitions are shown "
    "because the paper does not say which bytes it divided by."
)

# The models Lu, Lu and Lin (2025) compare in Table IX, with the params and "FLOPs" of its Table V
# (weights taken as FP32, 4 bytes per parameter; traffic not published).
TABLE_IX_MODELS = (
    ModelCost(name="Hu [29]", params=5_610_000, flops=390_730_000_000, weight_bytes=4 * 5_610_000),
    ModelCost(
        name="Mocanu [30]",
        params=64_110_000,
        flops=300_900_000_000,
        weight_bytes=4 * 64_110_000,
    ),
    ModelCost(
        name="Sharafi [24]",
        params=50_800_000,
        flops=12_310_000_000,
        weight_bytes=4 * 50_800_000,
    ),
    ModelCost(
        name="Lu (paper)",
        params=920_000,
        flops=770_000_000,
        weight_bytes=4 * 920_000,
        family="lu",
    ),
)
# Table IX as printed: model -> device key -> mark.
TABLE_IX_MARKS: Mapping[str, Mapping[str, str]] = {
    "Hu [29]": {"rpi4": "✗", "rpi5": "✗", "zenbo-junior-2": "✗"},
    "Mocanu [30]": {"rpi4": "✗", "rpi5": "✗", "zenbo-junior-2": "✗"},
    "Sharafi [24]": {"rpi4": "✓", "rpi5": "✓", "zenbo-junior-2": "/"},
    "Lu (paper)": {"rpi4": "✓", "rpi5": "✓", "zenbo-junior-2": "✓"},
}


def table_ix_mark(flops: float, intensity: float | None, device: DeviceRoof) -> str:
    """The paper's mark for a model of ``flops`` FLOPs and ``intensity`` FLOPs/byte.

    Returns "✗", "✓", "/" (see the module docstring) or "?" when the intensity is unknown.
    """
    if flops > device.peak_gflop_s * 1e9:
        return "✗"
    if intensity is None or intensity <= 0:
        return "?"
    return "✓" if device.ridge_flops_per_byte / intensity >= 1.0 else "/"


@dataclass(frozen=True, kw_only=True)
class FeasibilityCell:
    """One model on one device."""

    model: str
    device: str
    flops: int  # dense FLOPs per inference (the papers' FLOPs)
    peak_gflop_s: float
    ridge_flops_per_byte: float
    fits_compute: bool  # flops <= one second at peak
    ai_weights: float
    ai_traffic: float | None
    bound_weights: str  # "compute" if ai_weights >= ridge else "memory"
    bound_traffic: str  # likewise, "" when the traffic is unknown
    mark_weights: str  # the paper's mark computed with ai_weights
    mark_traffic: str  # ... with ai_traffic ("?" when unknown)
    predicted_ms: float | None
    paper_mark: str = ""  # Table IX's printed mark, for the models it lists


@dataclass(frozen=True, kw_only=True)
class FeasibilityData:
    """All cells, models in order, then devices in order."""

    cells: tuple[FeasibilityCell, ...]
    models: tuple[str, ...]
    devices: tuple[str, ...]

    def cell(self, model: str, device: str) -> FeasibilityCell:
        for c in self.cells:
            if c.model == model and c.device == device:
                return c
        raise KeyError(f"no cell for model {model!r} on device {device!r}")


def _bound(ai: float | None, ridge: float) -> str:
    if ai is None:
        return ""
    return "compute" if ai >= ridge else "memory"


def feasibility_data(
    models: Sequence[ModelCost],
    devices: Sequence[DeviceRoof],
    *,
    timings: Mapping[tuple[str, str], Timing] | None = None,
    paper_marks: Mapping[str, Mapping[str, str]] | None = None,
) -> FeasibilityData:
    """Compute every cell of the table (see the module docstring for the rule).

    ``timings`` maps ``(model, device key)`` to a predicted or measured ``Timing``;
    ``paper_marks`` (e.g. ``TABLE_IX_MARKS``) adds the printed mark for comparison.
    """
    timings = timings or {}
    paper_marks = paper_marks or {}
    cells = []
    for m in models:
        for d in devices:
            ridge = d.ridge_flops_per_byte
            t = timings.get((m.name, d.key))
            cells.append(
                FeasibilityCell(
                    model=m.name,
                    device=d.key,
                    flops=m.flops,
                    peak_gflop_s=d.peak_gflop_s,
                    ridge_flops_per_byte=ridge,
                    fits_compute=m.flops <= d.peak_gflop_s * 1e9,
                    ai_weights=m.ai_weights,
                    ai_traffic=m.ai_traffic,
                    bound_weights=_bound(m.ai_weights, ridge),
                    bound_traffic=_bound(m.ai_traffic, ridge),
                    mark_weights=table_ix_mark(m.flops, m.ai_weights, d),
                    mark_traffic=table_ix_mark(m.flops, m.ai_traffic, d),
                    predicted_ms=t.ms if t else None,
                    paper_mark=paper_marks.get(m.name, {}).get(d.key, ""),
                )
            )
    return FeasibilityData(
        cells=tuple(cells),
        models=tuple(m.name for m in models),
        devices=tuple(d.key for d in devices),
    )


COLUMNS = (
    "model",
    "device",
    "GFLOPs / inference vs device GFLOP/s",
    "ridge (FLOPs/byte)",
    "AI weights (FLOPs/byte): bound",
    "AI traffic (FLOPs/byte): bound",
    "Table IX rule, weights AI",
    "Table IX rule, traffic AI",
    "paper's mark",
    "predicted latency (ms)",
)


def rows(data: FeasibilityData) -> list[list[str]]:
    """The table as text cells (``COLUMNS``), for the HTML report and the terminal."""
    out = []
    for c in data.cells:
        traffic = f"{c.ai_traffic:.3g}: {c.bound_traffic}" if c.ai_traffic is not None else "n/a"
        fits = "fits" if c.fits_compute else "exceeds"
        out.append(
            [
                c.model,
                c.device,
                f"{c.flops / 1e9:.3g} vs {c.peak_gflop_s:.4g} ({fits})",
                f"{c.ridge_flops_per_byte:.3g}",
                f"{c.ai_weights:.3g}: {c.bound_weights}",
                traffic,
                c.mark_weights,
                c.mark_traffic,
                c.paper_mark or "–",
                f"{c.predicted_ms:.3g}" if c.predicted_ms is not None else "–",
            ]
        )
    return out


def figure(data: FeasibilityData) -> go.Figure:
    """The table as a Plotly table (✓ green, / amber, ✗ red)."""
    body = rows(data)
    shown = list(COLUMNS)
    widths = [1.6, 1.1, 1.9, 0.9, 1.4, 1.4, 0.9, 0.9, 0.7, 1.0]
    if not any(c.paper_mark for c in data.cells):  # e.g. searched trials: no printed marks
        k = COLUMNS.index("paper's mark")
        body = [r[:k] + r[k + 1 :] for r in body]
        shown.pop(k)
        widths.pop(k)
    colours = {"✓": "#d9f2d9", "/": "#fff0c2", "✗": "#f8d0d0"}
    columns = list(zip(*body, strict=True)) if body else [[] for _ in shown]
    fill = []
    for i, col in enumerate(columns):
        if shown[i].startswith(("Table IX", "paper")):
            fill.append([colours.get(v, "white") for v in col])
        else:
            fill.append(["white"] * len(col))
    fig = go.Figure(
        go.Table(
            header={
                "values": [f"<b>{c}</b>" for c in shown],
                "fill_color": "#eeeeee",
                "align": "left",
                "font": {"size": 12},
            },
            cells={
                "values": columns,
                "fill_color": fill,
                "align": "left",
                "height": 26,
                "font": {"size": 12},
            },
            columnwidth=widths,
        )
    )
    fig.update_layout(
        title={
            "text": "Feasibility (Lu, Lu and Lin (2025) Table IX rule)<br><sup>✗ FLOPs exceed the "
            "device's GFLOP/s; ✓ ridge / model intensity ≥ 1; / model intensity above the "
            "ridge (compute-bound)</sup>"
        },
        height=140 + 28 * max(len(body), 1),
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return fig
