"""Integrated-Gradients explanation charts: modality shares, audio and video maps per class.

``explain_data`` reads an explanation (``explorer.explain.Explanation`` or anything with the
same fields; this package does not import ``explorer``) into plain rows and per-class maps
scaled to the largest value of each modality (tested); ``shares_figure`` draws each class's
audio and video share of the absolute attribution as stacked bars, ``maps_figure`` one row per
class with its audio map (coefficient by time step) and its video map (pixels), and
``explain_page`` assembles the standalone HTML page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "ExplainData",
    "ExplanationLike",
    "ShareRow",
    "explain_data",
    "explain_page",
    "maps_figure",
    "shares_figure",
]


class _ClassLike(Protocol):
    """One class's attributions (``explorer.explain.ClassAttribution``)."""

    @property
    def class_name(self) -> str: ...
    @property
    def samples(self) -> int: ...
    @property
    def audio_share(self) -> float: ...
    @property
    def video_share(self) -> float: ...
    @property
    def audio_total(self) -> float: ...
    @property
    def video_total(self) -> float: ...
    @property
    def audio_map(self) -> Sequence[Sequence[float]]: ...
    @property
    def video_map(self) -> Sequence[Sequence[float]]: ...
    @property
    def video_frames(self) -> Sequence[float]: ...


class ExplanationLike(Protocol):
    """What ``explain_data`` reads: an ``explorer.explain.Explanation`` (this package does
    not import ``explorer``)."""

    @property
    def model(self) -> str: ...
    @property
    def audio_kind(self) -> str: ...
    @property
    def samples(self) -> int: ...
    @property
    def steps(self) -> int: ...
    @property
    def classes(self) -> Sequence[_ClassLike]: ...
    @property
    def max_abs_delta(self) -> float: ...
    @property
    def max_abs_logit_change(self) -> float: ...


AUDIO_COLOUR = "#1f77b4"
VIDEO_COLOUR = "#d62728"
_AUDIO_LABELS = {
    "mfcc_mean": "MFCC (time-averaged)",
    "mfcc_seq": "MFCC",
    "frft_mfcc_seq": "FRFT-MFCC",
    "logmel": "log-mel",
}


@dataclass(frozen=True, kw_only=True)
class ShareRow:
    """One class: its samples and each modality's share of the absolute attribution."""

    class_name: str
    samples: int
    audio_share: float
    video_share: float
    audio_total: float
    video_total: float


@dataclass(frozen=True, kw_only=True)
class ExplainData:
    """Rows per class and maps scaled to [0, 1] by each modality's largest value."""

    model: str
    audio_label: str
    samples: int
    steps: int
    max_abs_delta: float
    max_abs_logit_change: float
    rows: tuple[ShareRow, ...]
    audio_maps: tuple[tuple[tuple[float, ...], ...], ...]  # per class: coefficient x step
    video_maps: tuple[tuple[tuple[float, ...], ...], ...]  # per class: row x column
    video_frames: tuple[tuple[float, ...], ...]  # per class: share of video attribution/frame


def _scaled(maps: list[Any]) -> tuple[tuple[tuple[float, ...], ...], ...]:
    top = max((max(map(max, m)) for m in maps if m and m[0]), default=0.0) or 1.0
    return tuple(tuple(tuple(v / top for v in row) for row in m) for m in maps)


def explain_data(explanation: ExplanationLike) -> ExplainData:
    """The chart data of ``explanation`` (see the module docstring).

    Raises:
        ValueError: the explanation has no class.
    """
    classes = tuple(explanation.classes)
    if not classes:
        raise ValueError(f"explanation of {explanation.model!r} has no class to show")
    rows = tuple(
        ShareRow(
            class_name=c.class_name,
            samples=c.samples,
            audio_share=c.audio_share,
            video_share=c.video_share,
            audio_total=c.audio_total,
            video_total=c.video_total,
        )
        for c in classes
    )
    frames = []
    for c in classes:
        total = sum(c.video_frames) or 1.0
        frames.append(tuple(v / total for v in c.video_frames))
    return ExplainData(
        model=explanation.model,
        audio_label=_AUDIO_LABELS.get(explanation.audio_kind, explanation.audio_kind or "audio"),
        samples=explanation.samples,
        steps=explanation.steps,
        max_abs_delta=explanation.max_abs_delta,
        max_abs_logit_change=explanation.max_abs_logit_change,
        rows=rows,
        audio_maps=_scaled([c.audio_map for c in classes]),
        video_maps=_scaled([c.video_map for c in classes]),
        video_frames=tuple(frames),
    )


def shares_figure(data: ExplainData) -> go.Figure:
    """Stacked horizontal bars: each class's audio and video share of |attribution|."""
    names = [f"{r.class_name} (n={r.samples})" for r in data.rows]
    fig = go.Figure()
    for label, colour, values in (
        (data.audio_label, AUDIO_COLOUR, [r.audio_share for r in data.rows]),
        ("face frames", VIDEO_COLOUR, [r.video_share for r in data.rows]),
    ):
        fig.add_trace(
            go.Bar(
                y=names,
                x=values,
                name=label,
                orientation="h",
                marker_color=colour,
                text=[f"{v:.0%}" for v in values],
                textposition="inside",
                hovertemplate="%{y}: %{x:.1%}<extra>" + label + "</extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=140 + 34 * len(names),
        xaxis={"title": "share of absolute attribution", "tickformat": ".0%", "range": [0, 1]},
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": 1.08},
        margin={"l": 160, "r": 20, "t": 40, "b": 50},
    )
    return fig


def maps_figure(data: ExplainData) -> go.Figure:
    """One row per class: audio attribution map and video (pixel) attribution map."""
    n = len(data.rows)
    titles = []
    for r in data.rows:
        titles += [f"{r.class_name}: {data.audio_label}", f"{r.class_name}: face frames"]
    fig = make_subplots(
        rows=n,
        cols=2,
        subplot_titles=titles,
        horizontal_spacing=0.14,
        vertical_spacing=min(0.08, 0.5 / max(n, 1)),
    )
    for i, (amap, vmap) in enumerate(zip(data.audio_maps, data.video_maps, strict=True)):
        show = i == 0
        fig.add_trace(
            go.Heatmap(
                z=[list(row) for row in amap],
                colorscale="Blues",
                zmin=0,
                zmax=1,
                showscale=show,
                colorbar={"title": "audio", "x": 0.44, "len": 0.3, "y": 1, "yanchor": "top"},
                hovertemplate="step %{x}, coefficient %{y}: %{z:.2f}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
        fig.add_trace(
            go.Heatmap(
                z=[list(row) for row in vmap],
                colorscale="Reds",
                zmin=0,
                zmax=1,
                showscale=show,
                colorbar={"title": "video", "len": 0.3, "y": 1, "yanchor": "top"},
                hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>",
            ),
            row=i + 1,
            col=2,
        )
        steps = len(amap[0]) if amap else 0
        fig.update_xaxes(
            title_text="time step" if steps > 1 else "", showticklabels=steps > 1, row=i + 1, col=1
        )
        fig.update_yaxes(title_text="coefficient", row=i + 1, col=1)
        fig.update_yaxes(autorange="reversed", row=i + 1, col=2)
    fig.update_layout(height=max(320, 230 * n), margin={"l": 50, "r": 20, "t": 40, "b": 30})
    return fig


def explain_page(explanation: ExplanationLike) -> str:
    """The standalone HTML page (plotly.js embedded) of ``explanation``.

    Raises:
        ValueError: as ``explain_data``.
    """
    from .html import Section, html_table, render_html

    data = explain_data(explanation)
    table = html_table(
        ["class", "samples", "audio share", "video share", "audio sum", "video sum"],
        [
            (
                r.class_name,
                r.samples,
                f"{r.audio_share:.3f}",
                f"{r.video_share:.3f}",
                f"{r.audio_total:.4g}",
                f"{r.video_total:.4g}",
            )
            for r in data.rows
        ],
    )
    intro = (
        f"<p>Integrated Gradients of <code>{html.escape(data.model)}</code> on {data.samples} "
        f"validation samples ({data.steps} steps each), attributing each sample's true class "
        "from a baseline of black frames and mean audio features. Completeness: the largest "
        f"convergence delta is {data.max_abs_delta:.3g} against logit changes up to "
        f"{data.max_abs_logit_change:.3g}.</p>"
    )
    sections = [
        Section(
            title="Share of attribution per modality",
            figure=shares_figure(data),
            description="Each sample's absolute attributions split between the audio features "
            "and the face frames, averaged over the class: a fused model that uses both "
            "modalities gives both a visible share.",
        ),
        Section(
            title="Attribution per class and modality",
            html=table,
            description="Shares of absolute attribution, and the mean signed sums (they add "
            "up to the mean change of the class logit from the baseline).",
        ),
        Section(
            title="Where the attribution falls",
            figure=maps_figure(data),
            description=f"Mean absolute attribution per {data.audio_label} coefficient and "
            "time step (left) and per pixel, summed over colour channels and averaged over "
            "frames (right); each modality scaled to its largest value over all classes.",
        ),
    ]
    return render_html(sections, title=f"explorer explain: {data.model}", intro=intro)
