"""Per-layer breakdown: where a model's FLOPs, bytes and predicted time go.

``breakdown_data`` groups the operators by layer (a prefix of the module path: the heaviest
layers are split into their children while ``max_layers`` rows suffice) and by operator kind
(tested); ``figure`` draws three bar panels (FLOPs,
bytes, ms) with layers on the y axis and kinds stacked in colour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._inputs import DeviceRoof, ModelCost, OpCost, Timing
from ._style import KIND_COLOURS

__all__ = ["BreakdownData", "BreakdownRow", "breakdown_data", "figure"]


@dataclass(frozen=True, kw_only=True)
class BreakdownRow:
    """The operators of one kind inside one layer (or, in ``by_kind``, in the whole model)."""

    layer: str
    kind: str
    flops: int
    bytes: int
    ms: float
    ops: int


@dataclass(frozen=True, kw_only=True)
class BreakdownData:
    """Rows by (layer, kind), by kind, and the model totals; ``layers`` in display order."""

    model: str
    device: str  # "" when no time is known
    layers: tuple[str, ...]  # ordered by time (or FLOPs), heaviest first
    by_layer: tuple[BreakdownRow, ...]
    by_kind: tuple[BreakdownRow, ...]
    total_flops: int
    total_bytes: int
    total_ms: float


def _prefix(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth]) if module else "(model)"


def _layers(ops: Sequence[OpCost], weights: Sequence[float], max_layers: int) -> list[str]:
    """A layer name per operator: start from the top-level modules and keep splitting the
    heaviest layer into its children while the count stays within ``max_layers``."""
    depth = [1] * len(ops)
    names = [_prefix(o.module, 1) for o in ops]
    while True:
        load: dict[str, float] = defaultdict(float)
        for name, w in zip(names, weights, strict=True):
            load[name] += w
        for layer in sorted(load, key=load.__getitem__, reverse=True):
            members = [i for i, n in enumerate(names) if n == layer]
            deeper = {_prefix(ops[i].module, depth[i] + 1) for i in members}
            can_split = deeper != {layer}  # the module path goes deeper
            if can_split and len(load) - 1 + len(deeper) <= max_layers:
                for i in members:
                    depth[i] += 1
                    names[i] = _prefix(ops[i].module, depth[i])
                break
        else:
            return names


def breakdown_data(
    model: ModelCost,
    timing: Timing | None = None,
    *,
    device: DeviceRoof | None = None,
    max_layers: int = 24,
) -> BreakdownData:
    """Group ``model.ops`` by layer and kind.

    Time per operator comes from ``timing.op_ms`` when it has one per operator, else from the
    uncalibrated roofline of ``device``, else it is 0 (the time panel is then empty).

    Raises:
        ValueError: the model has no per-operator rows.
    """
    if not model.ops:
        raise ValueError(f"model {model.name!r} has no per-operator rows to break down")
    if timing is not None and len(timing.op_ms) == len(model.ops):
        op_ms: Sequence[float] = timing.op_ms
    elif device is not None:
        op_ms = [device.roofline_ms(o.flops, o.traffic_bytes) for o in model.ops]
    else:
        op_ms = [0.0] * len(model.ops)
    weights = [ms if any(op_ms) else o.flops for o, ms in zip(model.ops, op_ms, strict=True)]
    names = _layers(model.ops, weights, max_layers)
    acc: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    for o, ms, layer in zip(model.ops, op_ms, names, strict=True):
        for bucket in (acc[(layer, o.kind)], kinds[o.kind]):
            bucket[0] += o.flops
            bucket[1] += o.traffic_bytes
            bucket[2] += ms
            bucket[3] += 1
    by_layer = tuple(
        BreakdownRow(
            layer=layer, kind=kind, flops=int(v[0]), bytes=int(v[1]), ms=v[2], ops=int(v[3])
        )
        for (layer, kind), v in acc.items()
    )
    weight: dict[str, tuple[float, float]] = defaultdict(lambda: (0.0, 0.0))
    for r in by_layer:
        ms, fl = weight[r.layer]
        weight[r.layer] = (ms + r.ms, fl + r.flops)
    layers = tuple(sorted(weight, key=lambda k: weight[k], reverse=True))
    by_kind = tuple(
        sorted(
            (
                BreakdownRow(
                    layer="(all)", kind=k, flops=int(v[0]), bytes=int(v[1]), ms=v[2], ops=int(v[3])
                )
                for k, v in kinds.items()
            ),
            key=lambda r: (r.ms, r.flops),
            reverse=True,
        )
    )
    return BreakdownData(
        model=model.name,
        device=device.key if device is not None else "",
        layers=layers,
        by_layer=by_layer,
        by_kind=by_kind,
        total_flops=sum(o.flops for o in model.ops),
        total_bytes=sum(o.traffic_bytes for o in model.ops),
        total_ms=float(sum(op_ms)),
    )


def figure(data: BreakdownData, *, title: str | None = None) -> go.Figure:
    """Three panels (MFLOPs, MB of traffic, ms), layers on y, operator kinds stacked."""
    panels = [("flops", "MFLOPs", 1e-6), ("bytes", "MB of traffic", 1e-6)]
    if data.total_ms > 0:
        panels.append(("ms", f"predicted ms on {data.device}", 1.0))
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[p[1] for p in panels],
    )
    layers = list(reversed(data.layers))  # heaviest at the top
    kinds = [r.kind for r in data.by_kind]
    in_legend: set[str] = set()
    for col, (attr, unit, scale) in enumerate(panels, start=1):
        for kind in kinds:
            values = {r.layer: getattr(r, attr) * scale for r in data.by_layer if r.kind == kind}
            if not any(values.values()):
                continue
            show = kind not in in_legend
            in_legend.add(kind)
            fig.add_trace(
                go.Bar(
                    y=layers,
                    x=[values.get(layer, 0.0) for layer in layers],
                    orientation="h",
                    name=kind,
                    legendgroup=kind,
                    showlegend=show,
                    marker_color=KIND_COLOURS.get(kind, "#7f7f7f"),
                    hovertemplate=f"%{{y}}<br>{kind}: %{{x:.4g}} {unit}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=unit, row=1, col=col)
    where = f" on {data.device}" if data.device else ""
    sub = (
        f"{data.total_flops / 1e6:.4g} MFLOPs (dense + elementwise), "
        f"{data.total_bytes / 1e6:.4g} MB of traffic"
        + (f", {data.total_ms:.3g} ms predicted{where}" if data.total_ms > 0 else "")
    )
    fig.update_layout(
        barmode="stack",
        title={"text": f"{title or f'Where {data.model} spends its work'}<br><sup>{sub}</sup>"},
        template="plotly_white",
        height=max(360, 120 + 22 * len(layers)),
        legend={"title": {"text": "operator kind"}},
    )
    return fig
