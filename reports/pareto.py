"""Pareto chart: score against cost for the trials of a search, the front joined.

``pareto_data`` computes membership for any objective directions (tested); ``figure`` draws a
2-D chart (first objective on x, second on y) or a 3-D one for three objectives. Families have
their own colours; Pareto-optimal points are opaque and joined, dominated points are muted,
infeasible (over budget, never trained) points are grey crosses on a rug at the bottom, the
papers' presets are black stars (or dotted lines when only their cost is known).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from ._style import family_colour

__all__ = [
    "Objective",
    "ParetoData",
    "ParetoPoint",
    "ReferencePoint",
    "TrialPoint",
    "dominates",
    "figure",
    "figure_choice",
    "objective",
    "pareto_data",
    "pareto_mask",
]

DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True, kw_only=True)
class Objective:
    """One axis of the trade-off: a column name, its direction and an axis label with units."""

    name: str
    direction: str
    label: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"objective {self.name!r}: direction must be maximize or minimize, "
                f"got {self.direction!r}"
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)


_KNOWN = {
    "accuracy": ("maximize", "Accuracy (fraction of clips)"),
    "macro_f1": ("maximize", "Macro-F1"),
    "macro_f1_mean": ("maximize", "Macro-F1 (mean over seeds, bars: 95 % interval)"),
    "weighted_accuracy": ("maximize", "Weighted accuracy"),
    "unweighted_accuracy": ("maximize", "Unweighted accuracy"),
    "params": ("minimize", "Parameters (count)"),
    "macs": ("minimize", "MACs per inference"),
    "flops": ("minimize", "FLOPs per inference (2 × MACs)"),
    "weight_bytes": ("minimize", "Weights (bytes)"),
    "peak_activation_bytes": ("minimize", "Peak activation memory (bytes)"),
}


def objective(name: str, direction: str | None = None, label: str | None = None) -> Objective:
    """An ``Objective`` for a results.csv column, with the direction and label it implies
    unless given (a search's ``search.json`` describes its own objectives).

    ``predicted_ms_<device>`` / ``measured_ms_<device>`` are latencies in ms (minimised).
    """
    if name in _KNOWN:
        d, default = _KNOWN[name]
    elif name.startswith(("predicted_ms_", "measured_ms_")):
        kind, _, device = name.partition("_ms_")
        d, default = "minimize", f"{kind.capitalize()} latency on {device} (ms)"
    else:
        d, default = "minimize", name
    return Objective(name=name, direction=direction or d, label=label or default)


@dataclass(frozen=True, kw_only=True)
class TrialPoint:
    """One trial of a search (a row of results.csv)."""

    number: int
    family: str
    config: Mapping[str, Any] = field(default_factory=dict)
    objectives: Mapping[str, float] = field(default_factory=dict)
    feasible: bool = True
    state: str = "COMPLETE"
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    errors: Mapping[str, float] = field(default_factory=dict)  # objective -> 95 % half-width
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # objective -> lo, hi


@dataclass(frozen=True, kw_only=True)
class ReferencePoint:
    """A paper's preset drawn for reference; objectives it lacks are left out."""

    name: str
    objectives: Mapping[str, float]
    note: str = ""
    errors: Mapping[str, float] = field(default_factory=dict)  # objective -> 95 % half-width
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # objective -> lo, hi


@dataclass(frozen=True, kw_only=True)
class ParetoPoint:
    """A trial with its values on the chosen objectives and its status."""

    trial: TrialPoint
    values: tuple[float, ...]  # NaN where the trial has no value (e.g. never trained)
    status: str  # "optimal" | "dominated" | "infeasible"


@dataclass(frozen=True, kw_only=True)
class ParetoData:
    """Everything ``figure`` draws."""

    objectives: tuple[Objective, ...]
    points: tuple[ParetoPoint, ...]
    references: tuple[ReferencePoint, ...] = ()
    skipped: int = 0  # trials not drawn: failed, pruned or running, or without a cost value

    @property
    def front(self) -> tuple[ParetoPoint, ...]:
        """The Pareto-optimal points, sorted by the first objective."""
        return tuple(
            sorted((p for p in self.points if p.status == "optimal"), key=lambda p: p.values[0])
        )


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether point ``a`` dominates ``b``: at least as good in every objective (each
    ``maximize`` or ``minimize``) and better in one. The one rule of every front here."""
    return _dominates(a, b, _signs(directions))


def _signs(directions: Sequence[str]) -> list[float]:
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"direction must be maximize or minimize, got {d!r}")
    return [1.0 if d == "maximize" else -1.0 for d in directions]


def _dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[float]) -> bool:
    better = False
    for x, y, s in zip(a, b, signs, strict=True):
        if s * x < s * y:
            return False
        if s * x > s * y:
            better = True
    return better


def pareto_mask(values: Sequence[Sequence[float]], directions: Sequence[str]) -> list[bool]:
    """True for each row that no other row dominates (NaN rows are never optimal).

    A row dominates another when it is at least as good in every objective and better in one;
    equal rows are both optimal.
    """
    signs = _signs(directions)
    ok = [all(math.isfinite(v) for v in row) for row in values]
    mask = []
    for i, row in enumerate(values):
        if not ok[i]:
            mask.append(False)
            continue
        mask.append(
            not any(
                ok[j] and j != i and _dominates(values[j], row, signs) for j in range(len(values))
            )
        )
    return mask


def pareto_data(
    trials: Sequence[TrialPoint],
    objectives: Sequence[Objective | str],
    *,
    references: Sequence[ReferencePoint] = (),
) -> ParetoData:
    """Status of every completed trial on ``objectives`` (2 or 3 of them).

    Feasible trials with every value compete for the front; infeasible ones are kept (muted)
    with NaN where they have no value; failed, pruned or running trials, and trials without a
    value for the first (cost) objective, are counted in ``skipped``.
    """
    objs = tuple(o if isinstance(o, Objective) else objective(o) for o in objectives)
    if len(objs) not in (2, 3):
        raise ValueError(f"a Pareto chart needs 2 or 3 objectives, got {len(objs)}")
    kept: list[tuple[TrialPoint, tuple[float, ...]]] = []
    skipped = 0
    for t in trials:
        values = tuple(float(t.objectives.get(o.name, math.nan)) for o in objs)
        if t.state.upper() != "COMPLETE" and t.feasible:
            skipped += 1
            continue
        if not math.isfinite(values[0]):
            skipped += 1
            continue
        kept.append((t, values))
    competing = [i for i, (t, _) in enumerate(kept) if t.feasible]
    mask = pareto_mask([kept[i][1] for i in competing], [o.direction for o in objs])
    optimal = {i for i, m in zip(competing, mask, strict=True) if m}
    points = tuple(
        ParetoPoint(
            trial=t,
            values=v,
            status="infeasible" if not t.feasible else "optimal" if i in optimal else "dominated",
        )
        for i, (t, v) in enumerate(kept)
    )
    return ParetoData(objectives=objs, points=points, references=tuple(references), skipped=skipped)


def _fmt(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:.4g}"


def _hover(p: ParetoPoint, objs: Sequence[Objective]) -> str:
    t = p.trial
    lines = [f"<b>trial {t.number}</b> · {t.family} · {p.status}"]
    if not t.feasible:
        lines.append("over budget: not trained")
    lines += [f"{o.label}: {_fmt(v)}" for o, v in zip(objs, p.values, strict=True)]
    cfg = ", ".join(f"{k}={v}" for k, v in t.config.items() if k != "family")
    wrapped, line = [], ""
    for part in cfg.split(", "):
        if len(line) + len(part) > 60 and line:
            wrapped.append(line)
            line = ""
        line = f"{line}, {part}" if line else part
    if line:
        wrapped.append(line)
    return "<br>".join(lines + [f"<i>{w}</i>" for w in wrapped[:8]])


def _error_bars(
    errors: Sequence[Mapping[str, float]],
    name: str,
    values: Sequence[float] = (),
    ranges: Sequence[Mapping[str, tuple[float, float]]] = (),
) -> dict[str, Any] | None:
    """Plotly ``error_x`` / ``error_y`` for the objective ``name``: a symmetric 95 % interval
    (``errors``) or an asymmetric range around each value (``ranges``, e.g. a predicted
    latency's low..high; an infinite high draws only the lower side); None when no point has
    either."""
    if ranges and any(name in r for r in ranges):
        plus, minus = [], []
        for v, r in zip(values, ranges, strict=True):
            lo, hi = r.get(name, (v, v))
            plus.append(max(hi - v, 0.0) if math.isfinite(hi) else 0.0)
            minus.append(max(v - lo, 0.0) if math.isfinite(lo) else 0.0)
        return {
            "type": "data",
            "symmetric": False,
            "array": plus,
            "arrayminus": minus,
            "visible": True,
            "thickness": 1,
            "width": 3,
        }
    values = [float(e.get(name, math.nan)) for e in errors]
    if not any(math.isfinite(v) for v in values):
        return None
    return {
        "type": "data",
        "array": [v if math.isfinite(v) else 0.0 for v in values],
        "visible": True,
        "thickness": 1,
        "width": 3,
    }


def figure(data: ParetoData, *, title: str | None = None) -> go.Figure:
    """2-D chart for two objectives (x = first, y = second), 3-D for three."""
    if len(data.objectives) == 3:
        return _figure_3d(data, title=title)
    xo, yo = data.objectives
    fig = go.Figure()
    finite_y = [p.values[1] for p in data.points if math.isfinite(p.values[1])]
    finite_y += [r.objectives[yo.name] for r in data.references if yo.name in r.objectives]
    y_lo = min(finite_y) if finite_y else 0.0
    y_hi = max(finite_y) if finite_y else 1.0
    rug_y = y_lo - 0.08 * ((y_hi - y_lo) or 1.0)
    families = sorted({p.trial.family for p in data.points})
    for fam in families:
        for status, opacity, size in (("optimal", 1.0, 12), ("dominated", 0.3, 8)):
            pts = [p for p in data.points if p.trial.family == fam and p.status == status]
            if not pts:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p.values[0] for p in pts],
                    y=[p.values[1] for p in pts],
                    error_x=_error_bars(
                        [p.trial.errors for p in pts],
                        xo.name,
                        [p.values[0] for p in pts],
                        [p.trial.ranges for p in pts],
                    ),
                    error_y=_error_bars(
                        [p.trial.errors for p in pts],
                        yo.name,
                        [p.values[1] for p in pts],
                        [p.trial.ranges for p in pts],
                    ),
                    mode="markers",
                    name=f"{fam} ({status})",
                    legendgroup=fam,
                    marker={
                        "color": family_colour(fam),
                        "size": size,
                        "opacity": opacity,
                        "line": {"width": 1.2 if status == "optimal" else 0, "color": "black"},
                    },
                    hovertext=[_hover(p, data.objectives) for p in pts],
                    hoverinfo="text",
                )
            )
    bad = [p for p in data.points if p.status == "infeasible"]
    if bad:
        fig.add_trace(
            go.Scatter(
                x=[p.values[0] for p in bad],
                y=[p.values[1] if math.isfinite(p.values[1]) else rug_y for p in bad],
                mode="markers",
                name="infeasible (over budget)",
                marker={
                    "symbol": "x-thin",
                    "size": 9,
                    "color": "#999",
                    "line": {"width": 1.5, "color": "#999"},
                },
                hovertext=[_hover(p, data.objectives) for p in bad],
                hoverinfo="text",
            )
        )
    front = data.front
    if front:
        fig.add_trace(
            go.Scatter(
                x=[p.values[0] for p in front],
                y=[p.values[1] for p in front],
                mode="lines",
                line={"color": "black", "width": 1.5, "shape": "hv"},
                name=f"Pareto front ({len(front)} trials)",
                hoverinfo="skip",
            )
        )
    xs = [p.values[0] for p in data.points if p.values[0] > 0]
    log_x = bool(xs) and max(xs) / min(xs) > 50  # costs spanning decades: log spreads them
    untrained = 0  # labels of neighbouring preset lines alternate heights so they stay legible
    for ref in sorted(data.references, key=lambda r: r.objectives.get(xo.name, 0.0)):
        if xo.name not in ref.objectives:
            continue
        x = ref.objectives[xo.name]
        if yo.name in ref.objectives:
            fig.add_trace(
                go.Scatter(
                    x=[x],
                    y=[ref.objectives[yo.name]],
                    error_x=_error_bars([ref.errors], xo.name),
                    error_y=_error_bars([ref.errors], yo.name),
                    mode="markers+text",
                    text=[ref.name],
                    textposition="top center",
                    marker={"symbol": "star", "size": 16, "color": "black"},
                    name=f"preset {ref.name}",
                    hovertext=[
                        f"<b>{ref.name}</b> (preset)<br>{xo.label}: {x:.4g}<br>"
                        f"{yo.label}: {ref.objectives[yo.name]:.4g}<br>{ref.note}"
                    ],
                    hoverinfo="text",
                )
            )
        else:
            # plotly.js puts shapes in data units but annotations in log units on a log axis.
            fig.add_shape(
                type="line",
                x0=x,
                x1=x,
                y0=0,
                y1=1,
                xref="x",
                yref="paper",
                line={"dash": "dot", "color": "#444", "width": 1},
            )
            fig.add_annotation(
                x=math.log10(x) if log_x and x > 0 else x,
                y=1,
                xref="x",
                yref="paper",
                yanchor="bottom",
                yshift=12 * (untrained % 2),
                showarrow=False,
                font={"size": 10},
                text=f"{ref.name} (preset, not trained)",
                hovertext=f"{ref.name}: {xo.label} {x:.4g}<br>{ref.note}",
            )
            untrained += 1
    fig.update_xaxes(title_text=_axis_title(xo), showgrid=True, gridcolor="#e5e5e5")
    if log_x:
        fig.update_xaxes(type="log", dtick=1, minor={"showgrid": True, "gridcolor": "#f2f2f2"})
    fig.update_yaxes(title_text=_axis_title(yo), showgrid=True, gridcolor="#e5e5e5")
    sub = (
        f"{len(front)} Pareto-optimal of {len(data.points)} trials; muted: dominated; "
        "grey ×: over budget (not trained, drawn at the bottom)"
    )
    if data.skipped:
        sub += f"; {data.skipped} not drawn (failed, pruned, running or invalid: no value)"
    fig.update_layout(
        title={"text": f"{title or f'{yo.label} vs {xo.label}'}<br><sup>{sub}</sup>"},
        template="plotly_white",
        height=520,
        hovermode="closest",
    )
    return fig


def figure_choice(datas: Sequence[ParetoData], *, title: str | None = None) -> go.Figure:
    """Several 2-D Pareto charts in one figure, a dropdown choosing which one is shown (e.g.
    the same trials against the predicted latency on each device)."""
    if not datas:
        raise ValueError("figure_choice needs at least one ParetoData")
    figs = [figure(d) for d in datas]
    fig = go.Figure()
    owner: list[int] = []
    for i, f in enumerate(figs):
        for trace in f.data:
            trace.visible = i == 0
            fig.add_trace(trace)
            owner.append(i)
    buttons = []
    for i, (d, f) in enumerate(zip(datas, figs, strict=True)):
        layout = {
            "xaxis.title.text": f.layout.xaxis.title.text,
            "xaxis.type": f.layout.xaxis.type or "linear",
            "yaxis.title.text": f.layout.yaxis.title.text,
            "shapes": list(f.layout.shapes),
            "annotations": list(f.layout.annotations),
            "title.text": f.layout.title.text,
        }
        buttons.append(
            {
                "label": d.objectives[0].label,
                "method": "update",
                "args": [{"visible": [o == i for o in owner]}, layout],
            }
        )
    fig.update_layout(figs[0].layout)
    if title:
        fig.update_layout(title_text=title)
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.16,
                "yanchor": "top",
                "direction": "down",
                "showactive": True,
            }
        ],
    )
    return fig


def _axis_title(o: Objective) -> str:
    arrow = "higher is better" if o.direction == "maximize" else "lower is better"
    return f"{o.label} — {arrow}"


def _figure_3d(data: ParetoData, *, title: str | None) -> go.Figure:
    xo, yo, zo = data.objectives
    fig = go.Figure()
    for fam in sorted({p.trial.family for p in data.points}):
        for status, opacity, size in (("optimal", 1.0, 7), ("dominated", 0.25, 4)):
            pts = [
                p
                for p in data.points
                if p.trial.family == fam
                and p.status == status
                and all(math.isfinite(v) for v in p.values)
            ]
            if pts:
                fig.add_trace(
                    go.Scatter3d(
                        x=[p.values[0] for p in pts],
                        y=[p.values[1] for p in pts],
                        z=[p.values[2] for p in pts],
                        mode="markers",
                        name=f"{fam} ({status})",
                        marker={"color": family_colour(fam), "size": size, "opacity": opacity},
                        hovertext=[_hover(p, data.objectives) for p in pts],
                        hoverinfo="text",
                    )
                )
    fig.update_layout(
        title={"text": title or f"{xo.label} / {yo.label} / {zo.label}"},
        scene={
            "xaxis_title": _axis_title(xo),
            "yaxis_title": _axis_title(yo),
            "zaxis_title": _axis_title(zo),
        },
        template="plotly_white",
        height=620,
    )
    return fig


def trial_from_row(row: Mapping[str, str], objective_names: Sequence[str]) -> TrialPoint:
    """A ``TrialPoint`` from a results.csv row (columns documented in ``reports.html``)."""

    def num(key: str) -> float:
        text = (row.get(key) or "").strip()
        try:
            return float(text) if text else math.nan
        except ValueError:
            return math.nan

    config: dict[str, Any] = {}
    if row.get("config_json"):
        try:
            config = json.loads(row["config_json"])
        except json.JSONDecodeError:
            config = {"config_json": row["config_json"]}
    feasible = (row.get("feasible") or "true").strip().lower() in ("1", "true", "yes", "")
    # a mean's 95 % half-width sits in ``<score>_ci95`` (``macro_f1_mean`` -> ``macro_f1_ci95``)
    errors = {
        k: num(k.removesuffix("_mean") + "_ci95")
        for k in objective_names
        if math.isfinite(num(k.removesuffix("_mean") + "_ci95"))
    }
    # a predicted latency's range sits in ``predicted_low_ms_<dev>`` / ``predicted_high_ms_<dev>``
    ranges = {}
    for k in objective_names:
        if k.startswith("predicted_ms_"):
            dev = k[len("predicted_ms_") :]
            lo, hi = num(f"predicted_low_ms_{dev}"), num(f"predicted_high_ms_{dev}")
            if math.isfinite(lo) or math.isfinite(hi):
                ranges[k] = (lo, hi if math.isfinite(hi) else math.inf)
    return TrialPoint(
        errors=errors,
        ranges=ranges,
        number=int(float(row.get("number") or -1)),
        family=(row.get("family") or config.get("family") or "?"),
        config=config,
        objectives={k: num(k) for k in objective_names},
        feasible=feasible,
        state=(row.get("state") or "COMPLETE").strip().upper(),
    )
