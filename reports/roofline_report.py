"""The roofline report of models on devices: the rooflines by both intensity definitions,
optionally every operator and a per-layer breakdown of each model, and the feasibility table
in the style of Lu, Lu and Lin (2025), Lightweight Multimodal Emotion Recognition for
Companion Robots, Table IX.

``explorer`` profiles the models and predicts their timings; ``roofline_report`` takes that
plain data (``ModelCost``, ``DeviceRoof``, ``Timing``) and assembles the page and the summary
the CLI prints (this package never imports ``explorer``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from . import breakdown as _breakdown
from . import feasibility as _feasibility
from . import roofline as _roofline
from ._inputs import DeviceRoof, ModelCost, Timing
from .html import Page, Section

__all__ = ["RooflineReport", "roofline_report"]


@dataclass(frozen=True, kw_only=True)
class RooflineReport:
    """The assembled roofline page and the data behind its main chart and its table."""

    page: Page
    intensity: str  # of the main chart: "traffic" or "weights"
    roofs: tuple[DeviceRoof, ...]
    roofline: _roofline.RooflineData
    feasibility: _feasibility.FeasibilityData

    @property
    def main_figure(self) -> go.Figure:
        """The roofline at ``intensity`` (the one exported as a static image)."""
        figure = self.page.sections[0].figure
        assert figure is not None  # the first section is always the main roofline
        return figure

    def summary(self) -> dict[str, Any]:
        """JSON-safe: the intensity, the devices with their ridge points, the placed models,
        the feasibility cells and the chart's notes."""
        return {
            "intensity": self.intensity,
            "devices": [
                dataclasses.asdict(r) | {"ridge_flops_per_byte": r.ridge_flops_per_byte}
                for r in self.roofs
            ],
            "models": [dataclasses.asdict(p) for p in self.roofline.models],
            "feasibility": [dataclasses.asdict(c) for c in self.feasibility.cells],
            "notes": list(self.roofline.notes),
        }


def roofline_report(
    costs: Sequence[ModelCost],
    roofs: Sequence[DeviceRoof],
    *,
    timings: Mapping[tuple[str, str], Timing],
    intensity: str = "traffic",
    per_layer: bool = False,
    paper_models: bool = False,
    title: str | None = None,
) -> RooflineReport:
    """Assemble the roofline page of ``costs`` on ``roofs``.

    Args:
        costs: the models (no models: the devices' roofs only).
        roofs: the devices, the first one is the breakdown's device.
        timings: (model name, device key) -> predicted timing.
        intensity: the main chart's intensity, "traffic" or "weights"; the second chart
            shows the other one.
        per_layer: add every model's operators and its per-layer breakdown.
        paper_models: add the models Table IX compares, from their published totals.
        title: the page title (default: "explorer roofline: " and the model names).

    Raises:
        ValueError: an unknown intensity, no devices, two models of the same name.
    """
    names = [c.name for c in costs]
    models = [*costs, *(_feasibility.TABLE_IX_MODELS if paper_models else ())]
    other = "weights" if intensity == "traffic" else "traffic"
    main = _roofline.roofline_data(models, roofs, timings=timings, intensity=intensity)
    sections = [
        Section(
            title=f"Roofline ({intensity} intensity)",
            figure=_roofline.figure(main),
            description="Hover a point for its intensity, attained GFLOP/s, share of the roof "
            "and latency. Models are placed by their predicted latency (calibrated when the "
            "device has a calibration, else the uncalibrated per-operator roofline).",
        ),
        Section(
            title=f"Roofline ({other} intensity)",
            figure=_roofline.figure(
                _roofline.roofline_data(models, roofs, timings=timings, intensity=other)
            ),
            description="The same models with the other intensity definition.",
        ),
    ]
    if per_layer:
        sections += _operator_sections(models, roofs, timings=timings)
    # lu2025 is the model Table IX calls "proposed": show its printed marks next to ours.
    marks = {**_feasibility.TABLE_IX_MARKS, "lu2025": _feasibility.TABLE_IX_MARKS["Lu (paper)"]}
    feas = _feasibility.feasibility_data(models, roofs, timings=timings, paper_marks=marks)
    if models:
        sections.append(
            Section(
                title="Feasibility (Lu, Lu and Lin (2025) Table IX)",
                figure=_feasibility.figure(feas),
                description=_feasibility.DESCRIPTION,
            )
        )
    page = Page(
        title=title or f"explorer roofline: {', '.join(names) or 'roofs'}",
        sections=tuple(sections),
    )
    return RooflineReport(
        page=page, intensity=intensity, roofs=tuple(roofs), roofline=main, feasibility=feas
    )


def _operator_sections(
    models: Sequence[ModelCost],
    roofs: Sequence[DeviceRoof],
    *,
    timings: Mapping[tuple[str, str], Timing],
) -> list[Section]:
    """Each profiled model's operators on the roofline and its breakdown on the first device
    (models known only by their totals have no operators and are skipped)."""
    sections = []
    for cost in models:
        if not cost.ops:
            continue
        data = _roofline.roofline_data([cost], roofs, timings=timings, per_layer=True)
        sections.append(
            Section(
                title=f"Operators of {cost.name}",
                figure=_roofline.figure(data, title=f"Operators of {cost.name}"),
            )
        )
        first = roofs[0]
        bd = _breakdown.breakdown_data(cost, timings.get((cost.name, first.key)), device=first)
        sections.append(Section(title=f"Breakdown of {cost.name}", figure=_breakdown.figure(bd)))
    return sections
