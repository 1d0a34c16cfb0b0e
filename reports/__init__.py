"""Plotly charts and the standalone HTML reports.

Each chart module has a pure ``*_data()`` function (the numbers, tested) and a ``figure()``
returning a ``plotly.graph_objects.Figure``; nothing calls ``.show()``. Inputs are the small
frozen records below (``DeviceRoof``, ``ModelCost``, ``Timing``, ``TrialPoint``) so that this
package does not import ``explorer``; each has a ``from_*`` constructor for explorer objects.

Every report is assembled here, as a ``Page`` the caller renders and writes:
``search_report`` (a search run read by ``load_run``), ``roofline_report`` (models on
devices) and ``explain.explain_page`` (attributions).

    >>> from reports import DeviceRoof, ModelCost, roofline
    >>> data = roofline.roofline_data([ModelCost(...)], [DeviceRoof(...)])
    >>> fig = roofline.figure(data)
"""

from __future__ import annotations

from . import breakdown, explain, feasibility, pareto, roofline
from ._inputs import DeviceRoof, ModelCost, OpCost, Timing
from .html import Page, Section, export_image, render_html
from .pareto import Objective, ReferencePoint, TrialPoint
from .roofline_report import RooflineReport, roofline_report
from .run import RunData, load_run
from .search_report import (
    NO_TRAINED_TRIAL,
    BestTrial,
    TrialBreakdown,
    best_trial,
    report_page,
    search_report,
)

__all__ = [
    "NO_TRAINED_TRIAL",
    "BestTrial",
    "DeviceRoof",
    "ModelCost",
    "Objective",
    "OpCost",
    "Page",
    "ReferencePoint",
    "RooflineReport",
    "RunData",
    "Section",
    "Timing",
    "TrialBreakdown",
    "TrialPoint",
    "best_trial",
    "breakdown",
    "explain",
    "export_image",
    "feasibility",
    "load_run",
    "pareto",
    "render_html",
    "report_page",
    "roofline",
    "roofline_report",
    "search_report",
]
