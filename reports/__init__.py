"""Plotly charts and the standalone HTML report.

Each chart module has a pure ``*_data()`` function (the numbers, tested) and a ``figure()``
returning a ``plotly.graph_objects.Figure``; nothing calls ``.show()``. Inputs are the small
frozen records below (``DeviceRoof``, ``ModelCost``, ``Timing``, ``TrialPoint``) so that this
package does not import ``explorer``; each has a ``from_*`` constructor for explorer objects.

    >>> from reports import DeviceRoof, ModelCost, roofline
    >>> data = roofline.roofline_data([ModelCost(...)], [DeviceRoof(...)])
    >>> fig = roofline.figure(data)
"""

from __future__ import annotations

from . import breakdown, explain, feasibility, pareto, roofline
from ._inputs import DeviceRoof, ModelCost, OpCost, Timing
from .html import Section, export_image, load_run, render_html, report_page
from .pareto import Objective, ReferencePoint, TrialPoint

__all__ = [
    "DeviceRoof",
    "ModelCost",
    "Objective",
    "OpCost",
    "ReferencePoint",
    "Section",
    "Timing",
    "TrialPoint",
    "breakdown",
    "explain",
    "export_image",
    "feasibility",
    "load_run",
    "pareto",
    "render_html",
    "report_page",
    "roofline",
]
