"""Roofline chart: device roofs, ridge points, and models (or their operators) placed on them.

``roofline_data`` computes every number (tested); ``figure`` draws it. Two intensities:

- ``"traffic"`` (default, the roofline's): all FLOPs (dense + elementwise) per byte of DRAM
  traffic, the sum over operators of weights + inputs + outputs (the unfused lower bound);
- ``"weights"`` (the papers', Lu, Lu and Lin (2025) Table IX): dense FLOPs (2 x MACs) per byte
  of weights.
  Weight bytes undercount what really crosses memory, so with this definition a model can
  plot above the bandwidth roof: that gap is the activation traffic the definition ignores.

Attained performance = the same FLOPs / time, where time is a measured or predicted latency
when one is given, else the roof itself at the model's intensity (the papers' placement).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._inputs import DeviceRoof, ModelCost, Timing
from ._style import KIND_COLOURS, device_colour, fmt_bytes, fmt_count, model_symbol

__all__ = [
    "INTENSITIES",
    "ModelPlacement",
    "OpPlacement",
    "RooflineData",
    "figure",
    "roofline_data",
]

INTENSITIES = ("traffic", "weights")
# Decades labelled, minor gridlines between: the default log ticks (2..9) clutter the axis.
_LOG_AXIS = {
    "dtick": 1,
    "showgrid": True,
    "gridcolor": "#dcdcdc",
    "minor": {"showgrid": True, "gridcolor": "#f2f2f2", "ticks": ""},
}
_AXIS_TITLES = {
    "traffic": "Arithmetic intensity (FLOPs per byte of DRAM traffic)",
    "weights": "Arithmetic intensity (dense FLOPs per byte of weights, as in the papers)",
}


@dataclass(frozen=True, kw_only=True)
class ModelPlacement:
    """Where one model sits on one device's roofline."""

    model: str
    family: str
    device: str
    intensity: float  # FLOPs/byte, by the chosen definition
    attained_gflop_s: float
    roof_gflop_s: float  # the roof at this intensity
    bound: str  # "compute" if intensity >= the device's ridge point, else "memory"
    latency_ms: float | None
    source: str  # "predicted" | "measured" | "roofline" | "roof" (no time given: on the roof)
    flops: int
    bytes: int
    latency_range: str = ""  # the prediction's range as text (Timing.range_text)

    @property
    def efficiency(self) -> float:
        """Attained / roof at this intensity (1.0 = on the roof)."""
        return self.attained_gflop_s / self.roof_gflop_s if self.roof_gflop_s else 0.0


@dataclass(frozen=True, kw_only=True)
class OpPlacement:
    """One operator of a model on one device (``--per-layer``); intensity is by traffic."""

    model: str
    device: str
    module: str
    op: str
    kind: str
    intensity: float
    attained_gflop_s: float
    ms: float
    time_share: float  # of the model's total time on this device
    bound: str


@dataclass(frozen=True, kw_only=True)
class RooflineData:
    """Everything ``figure`` draws."""

    intensity: str
    devices: tuple[DeviceRoof, ...]
    models: tuple[ModelPlacement, ...]
    ops: tuple[OpPlacement, ...] = ()
    notes: tuple[str, ...] = ()  # what could not be placed, and why
    x_range: tuple[float, float] = (0.1, 1000.0)  # FLOPs/byte
    y_range: tuple[float, float] = (0.1, 1000.0)  # GFLOP/s

    @property
    def x_title(self) -> str:
        return _AXIS_TITLES[self.intensity]


def _model_numbers(model: ModelCost, intensity: str) -> tuple[int, int] | None:
    if intensity == "weights":
        return model.flops, model.weight_bytes
    if model.traffic_bytes is None:
        return None
    return (model.total_flops or model.flops), model.traffic_bytes


def roofline_data(
    models: Sequence[ModelCost],
    devices: Sequence[DeviceRoof],
    *,
    timings: Mapping[tuple[str, str], Timing] | None = None,
    intensity: str = "traffic",
    per_layer: bool = False,
) -> RooflineData:
    """Place ``models`` on the roofline of every device.

    Args:
        models: counted costs (``ModelCost.from_profile``), names unique; none draws the
            roofs alone.
        devices: the roofs (``DeviceRoof.from_profile``).
        timings: ``(model name, device key) -> Timing``; pairs without one sit on the roof.
        intensity: ``"traffic"`` or ``"weights"`` (see the module docstring).
        per_layer: also place every operator (by traffic intensity), with its share of time.

    Raises:
        ValueError: unknown ``intensity``, no devices, duplicate names.
    """
    _check_arguments(models, devices, intensity)
    timings = timings or {}
    placements: list[ModelPlacement] = []
    ops: list[OpPlacement] = []
    notes: list[str] = []
    for model in models:
        numbers = _model_numbers(model, intensity)
        if numbers is None or numbers[1] <= 0 or numbers[0] <= 0:
            what = "traffic bytes" if intensity == "traffic" else "weight bytes or FLOPs"
            notes.append(f"{model.name}: no {what} known (published totals only), not placed")
            continue
        for device in devices:
            timing = timings.get((model.name, device.key))
            placements.append(_placement(model, device, timing, numbers))
            if per_layer:
                ops.extend(_op_placements(model, device, timing, notes))
    return RooflineData(
        intensity=intensity,
        devices=tuple(devices),
        models=tuple(placements),
        ops=tuple(ops),
        notes=tuple(notes),
        x_range=_log_range(
            [p.intensity for p in placements]
            + [o.intensity for o in ops]
            + [d.ridge_flops_per_byte for d in devices]
        ),
        y_range=_log_range(
            [p.attained_gflop_s for p in placements]
            + [o.attained_gflop_s for o in ops]
            + [d.peak_gflop_s for d in devices],
            top_pad=3.0,
        ),
    )


def _check_arguments(
    models: Sequence[ModelCost], devices: Sequence[DeviceRoof], intensity: str
) -> None:
    if intensity not in INTENSITIES:
        raise ValueError(f"intensity must be one of {', '.join(INTENSITIES)}, got {intensity!r}")
    if not devices:
        raise ValueError("a roofline needs at least one device")
    for what, names in (("model", [m.name for m in models]), ("device", [d.key for d in devices])):
        if len(set(names)) != len(names):
            raise ValueError(f"{what} names must be unique, got {names}")


def _placement(
    model: ModelCost, device: DeviceRoof, timing: Timing | None, numbers: tuple[int, int]
) -> ModelPlacement:
    """``model`` on ``device``: at its measured or predicted time, else on the roof."""
    flops, nbytes = numbers
    ai = flops / nbytes
    roof = device.roof_gflop_s(ai)
    if timing is not None and timing.ms > 0:
        attained = flops / (timing.ms * 1e-3) / 1e9
        latency, source = timing.ms, timing.source
    else:
        attained, latency, source = roof, None, "roof"
    return ModelPlacement(
        model=model.name,
        family=model.family,
        device=device.key,
        intensity=ai,
        attained_gflop_s=attained,
        roof_gflop_s=roof,
        bound="compute" if ai >= device.ridge_flops_per_byte else "memory",
        latency_ms=latency,
        source=source,
        flops=flops,
        bytes=nbytes,
        latency_range=timing.range_text() if timing is not None else "",
    )


def _op_placements(
    model: ModelCost, device: DeviceRoof, timing: Timing | None, notes: list[str]
) -> list[OpPlacement]:
    if not model.ops:
        notes.append(f"{model.name}: no per-operator rows, --per-layer shows the total only")
        return []
    if timing is not None and len(timing.op_ms) == len(model.ops):
        op_ms = timing.op_ms
    else:  # the uncalibrated roofline time of each operator
        op_ms = tuple(device.roofline_ms(o.flops, o.traffic_bytes) for o in model.ops)
    total_ms = sum(op_ms) or 1.0
    out: list[OpPlacement] = []
    hidden_ms = 0.0
    hidden = 0
    for o, ms in zip(model.ops, op_ms, strict=True):
        if o.flops <= 0 or o.traffic_bytes <= 0 or ms <= 0:
            # Pure data movement has intensity 0: no place on a log axis.
            hidden += 1
            hidden_ms += ms
            continue
        out.append(
            OpPlacement(
                model=model.name,
                device=device.key,
                module=o.module or "(model)",
                op=o.op,
                kind=o.kind,
                intensity=o.intensity,
                attained_gflop_s=o.flops / (ms * 1e-3) / 1e9,
                ms=ms,
                time_share=ms / total_ms,
                bound="compute" if o.intensity >= device.ridge_flops_per_byte else "memory",
            )
        )
    if hidden:
        notes.append(
            f"{model.name} on {device.key}: {hidden} operator{'s' * (hidden != 1)} without "
            f"arithmetic (copies, reshapes) not shown, {100 * hidden_ms / total_ms:.1f} % of "
            "the time"
        )
    return out


def _log_range(values: Sequence[float], *, top_pad: float = 3.0) -> tuple[float, float]:
    vals = [v for v in values if v > 0 and math.isfinite(v)]
    if not vals:
        return (0.1, 1000.0)
    lo, hi = min(vals) / 3.0, max(vals) * top_pad
    return (10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi)))


def _roof_trace(
    device: DeviceRoof, x_range: tuple[float, float], colour: str, *, achievable: bool
) -> go.Scatter:
    peak = device.achievable_peak_gflop_s if achievable else device.peak_gflop_s
    bw = device.achievable_bandwidth_gb_s if achievable else device.bandwidth_gb_s
    ridge = peak / bw  # type: ignore[operator]
    xs = [x_range[0], ridge, x_range[1]]
    ys = [bw * x_range[0], peak, peak]  # type: ignore[operator]
    label = "achievable roof" if achievable else "roof"
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": colour, "width": 2, "dash": "dash" if achievable else "solid"},
        name=f"{device.key} {label}: {peak:.4g} GFLOP/s, {bw:.4g} GB/s",
        legendgroup=device.key,
        hovertemplate=(
            f"<b>{device.name}</b> {label}<br>compute roof {peak:.4g} GFLOP/s<br>"
            f"bandwidth roof {bw:.4g} GB/s<br>ridge {ridge:.3g} FLOPs/byte<extra></extra>"
        ),
    )


def _ridge_trace(device: DeviceRoof, colour: str) -> go.Scatter:
    ridge = device.ridge_flops_per_byte
    return go.Scatter(
        x=[ridge],
        y=[device.peak_gflop_s],
        mode="markers+text",
        marker={"symbol": "diamond", "size": 10, "color": colour, "line": {"width": 1}},
        text=[f"ridge {ridge:.3g}"],
        textposition="top center",
        textfont={"color": colour, "size": 11},
        name=f"{device.key} ridge point: {ridge:.3g} FLOPs/byte",
        legendgroup=device.key,
        showlegend=False,
        hovertemplate=(
            f"<b>{device.name}</b> ridge point<br>{ridge:.3g} FLOPs/byte = "
            f"{device.peak_gflop_s:.4g} GFLOP/s / {device.bandwidth_gb_s:.4g} GB/s<extra></extra>"
        ),
    )


def _model_hover(p: ModelPlacement, unit: str) -> str:
    latency = f"{p.latency_ms:.3g} ms ({p.source})" if p.latency_ms is not None else "n/a"
    if p.latency_range:
        latency += f", range {p.latency_range}"
    return (
        f"<b>{p.model}</b> on {p.device}<br>"
        f"intensity {p.intensity:.3g} FLOPs/{unit}<br>"
        f"attained {p.attained_gflop_s:.3g} GFLOP/s = {100 * p.efficiency:.0f} % of the "
        f"{p.roof_gflop_s:.3g} GFLOP/s roof here<br>"
        f"{p.bound}-bound by this intensity<br>latency {latency}<br>"
        f"{fmt_count(p.flops)}FLOPs, {fmt_bytes(p.bytes)}"
    )


def figure(data: RooflineData, *, title: str | None = None) -> go.Figure:
    """Draw ``data``: one panel, or one panel per device when operators are shown."""
    per_device = bool(data.ops) and len(data.devices) > 1
    n_cols = len(data.devices) if per_device else 1
    fig = make_subplots(
        rows=1,
        cols=n_cols,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[d.name for d in data.devices] if per_device else None,
    )
    model_names = list(dict.fromkeys(p.model for p in data.models))
    kinds_shown: set[str] = set()
    for i, device in enumerate(data.devices):
        col = i + 1 if per_device else 1
        colour = device_colour(i)
        traces = [_roof_trace(device, data.x_range, colour, achievable=False)]
        if device.calibrated:
            traces.append(_roof_trace(device, data.x_range, colour, achievable=True))
        traces.append(_ridge_trace(device, colour))
        traces += _op_traces(data, device, kinds_shown=kinds_shown)
        traces += _model_traces(data, device, colour, model_names=model_names)
        for trace in traces:
            fig.add_trace(trace, row=1, col=col)
    _layout(fig, data, n_cols=n_cols, title=title, model_names=model_names)
    return fig


def _op_traces(
    data: RooflineData, device: DeviceRoof, *, kinds_shown: set[str]
) -> list[go.Scatter]:
    """The operators on ``device``, one trace per kind, sized by their share of the time;
    a kind's legend entry is shown once (``kinds_shown`` is updated)."""
    traces = []
    for op_kind in sorted({o.kind for o in data.ops if o.device == device.key}):
        rows = [o for o in data.ops if o.device == device.key and o.kind == op_kind]
        traces.append(
            go.Scatter(
                x=[o.intensity for o in rows],
                y=[o.attained_gflop_s for o in rows],
                mode="markers",
                marker={
                    "color": KIND_COLOURS.get(op_kind, "#7f7f7f"),
                    "size": [6 + 40 * math.sqrt(o.time_share) for o in rows],
                    "opacity": 0.65,
                    "line": {"width": 0.5, "color": "#333"},
                },
                name=f"operator: {op_kind}",
                legendgroup=f"kind-{op_kind}",
                showlegend=op_kind not in kinds_shown,
                hovertext=[
                    f"<b>{o.module}</b> ({o.model})<br>{o.op} [{o.kind}]<br>"
                    f"intensity {o.intensity:.3g} FLOPs/byte<br>"
                    f"attained {o.attained_gflop_s:.3g} GFLOP/s<br>"
                    f"{o.ms:.3g} ms, {100 * o.time_share:.1f} % of the time on {o.device}<br>"
                    f"{o.bound}-bound"
                    for o in rows
                ],
                hoverinfo="text",
            )
        )
        kinds_shown.add(op_kind)
    return traces


def _model_traces(
    data: RooflineData, device: DeviceRoof, colour: str, *, model_names: Sequence[str]
) -> list[go.Scatter]:
    """The models on ``device``, one symbol each; open symbols sit on the roof (no latency)."""
    unit = "weight byte" if data.intensity == "weights" else "byte"
    traces = []
    for j, name in enumerate(model_names):
        pts = [p for p in data.models if p.model == name and p.device == device.key]
        if not pts:
            continue
        on_roof = all(p.source == "roof" for p in pts)
        traces.append(
            go.Scatter(
                x=[p.intensity for p in pts],
                y=[p.attained_gflop_s for p in pts],
                mode="markers",
                marker={
                    "symbol": model_symbol(j) + ("-open" if on_roof else ""),
                    "size": 15,
                    "color": colour,
                    "opacity": 0.85,
                    "line": {
                        "width": 2 if on_roof else 1.5,
                        "color": colour if on_roof else "black",
                    },
                },
                name=f"{name} on {device.key}" + (" (no latency: on the roof)" if on_roof else ""),
                legendgroup=device.key,
                hovertext=[_model_hover(p, unit) for p in pts],
                hoverinfo="text",
            )
        )
    return traces


def _layout(
    fig: go.Figure,
    data: RooflineData,
    *,
    n_cols: int,
    title: str | None,
    model_names: Sequence[str],
) -> None:
    """Log axes over the data's ranges, the title with a legend of the marks, the notes."""
    lo, hi = data.x_range
    ylo, yhi = data.y_range
    for col in range(1, n_cols + 1):
        fig.update_xaxes(
            type="log",
            range=[math.log10(lo), math.log10(hi)],
            title_text=data.x_title,
            row=1,
            col=col,
            **_LOG_AXIS,
        )
    fig.update_yaxes(type="log", range=[math.log10(ylo), math.log10(yhi)], **_LOG_AXIS)
    fig.update_yaxes(title_text="Attained performance (GFLOP/s)", row=1, col=1)
    names = ", ".join(model_names)
    devices = ", ".join(d.key for d in data.devices)
    default_title = f"Roofline: {names} on {devices}" if names else f"Roofline of {devices}"
    subtitle = "lines: peak compute and bandwidth roofs"
    if any(d.calibrated for d in data.devices):
        subtitle += "; dashed: achievable (calibrated) roofs"
    subtitle += "; ◆ ridge point; hover a point for its numbers"
    if data.ops:
        subtitle += "; operators sized by their share of the model's time"
    if data.intensity == "weights":
        subtitle += (
            "<br>weight bytes leave out activations: a model's latency is set by its traffic, "
            "so it can sit below (or above) the roof drawn at its weight intensity"
        )
    fig.update_layout(
        title={"text": f"{title or default_title}<br><sup>{subtitle}</sup>"},
        template="plotly_white",
        height=620,
        hovermode="closest",
        legend={"font": {"size": 11}},
    )
    if data.notes:
        fig.add_annotation(
            text="<br>".join(data.notes[:4]),
            xref="paper",
            yref="paper",
            x=0,
            y=-0.22,
            showarrow=False,
            align="left",
            font={"size": 10, "color": "#555"},
        )
        fig.update_layout(margin={"b": 140})
