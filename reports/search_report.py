"""The report of a search run: Pareto views, roofline and feasibility of the front, the
confirmation stage, the trials and the settings, assembled from a ``RunData``.

``search_report`` returns the ``Page`` (the caller writes ``page.html()``, atomically);
``best_trial`` picks the trial whose per-layer breakdown the report shows, which ``explorer``
profiles and hands back as a ``TrialBreakdown`` (this package never imports ``explorer``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import breakdown as _breakdown
from . import feasibility as _feasibility
from . import pareto as _pareto
from . import roofline as _roofline
from ._inputs import DeviceRoof, ModelCost, Timing
from .html import Page, Section, html_table
from .run import RunData, device_roofs, load_run, number, references

__all__ = [
    "NO_TRAINED_TRIAL",
    "BestTrial",
    "TrialBreakdown",
    "best_trial",
    "breakdown_section",
    "report_page",
    "run_sections",
    "search_report",
]


def run_sections(run: RunData) -> list[Section]:
    """The charts and tables of a search run (Pareto views, roofline of the front, trials)."""
    score = _score_column(run)
    sections = _pareto_sections(run, score)
    sections.extend(_front_sections(run, score))
    confirmed = _confirmation_section(run)
    if confirmed is not None:
        sections.append(confirmed)
    sections.append(_trials_section(run))
    sections.append(_settings_section(run.settings))
    return sections


def _score_column(run: RunData) -> str | None:
    """The score the charts show: the confirmed mean when any trial has one, else the
    single-run macro-F1, else accuracy (None: no score column)."""
    cols = run.columns
    score = next((c for c in ("macro_f1_mean", "macro_f1", "accuracy") if c in cols), None)
    if score == "macro_f1_mean" and not any(math.isfinite(number(r.get(score))) for r in run.rows):
        score = "macro_f1"
    return score


def _pareto_sections(run: RunData, score: str | None) -> list[Section]:
    """The Pareto charts: each (score, cost) pair when there is a score, and the 3-D view
    when the search had three objectives."""
    names = [c for c in run.columns if c != "number"]
    trials = [_pareto.trial_from_row(r, names) for r in run.rows]
    refs = references(run.settings)
    searched = _described(run.settings.get("objectives"))
    sections = _pair_sections(run, score, trials=trials, refs=refs) if score else []
    if len(searched) == 3:
        data = _pareto.pareto_data(trials, list(searched.values()), references=refs)
        sections.append(
            Section(title="Pareto: the search's three objectives", figure=_pareto.figure(data))
        )
    return sections


def _pair_sections(
    run: RunData,
    score: str,
    *,
    trials: Sequence[_pareto.TrialPoint],
    refs: Sequence[_pareto.ReferencePoint],
) -> list[Section]:
    """Score against the search's own objective first, then the latency per device (one
    chart, a menu), FLOPs and parameters; only costs some trial has a value of."""
    cols = run.columns
    costs = [c for c in cols if c.startswith(("predicted_ms_", "measured_ms_"))]
    costs += [c for c in ("flops", "params") if c in cols]
    costs = [c for c in costs if any(math.isfinite(number(r.get(c))) for r in run.rows)]
    searched = _described(run.settings.get("objectives"))
    # every cost the search could have minimised, as its registry describes it (labels)
    described = {**_described(run.settings.get("costs")), **searched}
    # the searched cost: whatever column search.json names (a registered objective's own
    # column too, e.g. host_ms), labelled as search.json describes it
    primary = next(
        (
            c
            for c in searched
            if c in cols
            and c not in ("macro_f1_mean", "macro_f1", "accuracy")
            and any(math.isfinite(number(r.get(c))) for r in run.rows)
        ),
        None,
    )
    latency = [c for c in costs if c.startswith(("predicted_ms_", "measured_ms_"))]
    hint = "Hover a point for its trial number, scores and config."

    def pair(cost: str) -> _pareto.ParetoData:
        axis = described.get(cost) or cost  # no description: the column's usual label
        return _pareto.pareto_data(trials, [axis, score], references=refs)

    sections: list[Section] = []
    if primary:
        sections.append(
            Section(
                title=f"Pareto: {score} vs {primary} (the search's objectives)",
                figure=_pareto.figure(pair(primary)),
                description=hint,
            )
        )
    if latency and latency != [primary]:
        datas = [pair(c) for c in latency]
        sections.append(
            Section(
                title=f"Pareto: {score} vs latency, per device",
                figure=_pareto.figure_choice(datas) if len(datas) > 1 else _pareto.figure(datas[0]),
                description=hint + " Choose the device in the menu at the top right; the front is "
                "recomputed for each.",
            )
        )
    for cost in ("flops", "params"):
        if cost in costs and cost != primary:
            sections.append(
                Section(
                    title=f"Pareto: {score} vs {cost}",
                    figure=_pareto.figure(pair(cost)),
                    description=hint + " The front is recomputed for this pair of objectives.",
                )
            )
    return sections


def _described(objs: Any) -> dict[str, _pareto.Objective]:
    """Column -> chart ``Objective`` for a list of objectives search.json describes
    (``objectives``: the searched ones; ``costs``: every registered cost), each with ``name``
    and optionally ``direction`` and ``label``, as the search's registry of objectives
    writes them; malformed entries are left out."""
    out: dict[str, _pareto.Objective] = {}
    for o in objs if isinstance(objs, list) else ():
        if not isinstance(o, Mapping) or not isinstance(o.get("name"), str):
            continue
        direction = o.get("direction") if o.get("direction") in _pareto.DIRECTIONS else None
        label = o.get("label") if isinstance(o.get("label"), str) else None
        out[o["name"]] = _pareto.objective(o["name"], direction, label)
    return out


def _front_models(
    run: RunData, score: str | None
) -> tuple[list[ModelCost], dict[tuple[str, str], Timing], list[DeviceRoof]]:
    """The search's Pareto trials (else the 5 best) as ModelCosts, with predicted timings."""
    devices = device_roofs(run.settings)
    needed = ("flops", "weight_bytes", "traffic_bytes")
    if not devices or not all(c in run.columns for c in needed):
        return [], {}, devices
    chosen = [r for r in run.rows if str(r.get("pareto", "")).lower() == "true"]
    if not chosen:
        chosen = sorted(
            (r for r in run.rows if math.isfinite(number(r.get(score or "")))),
            key=lambda r: -number(r.get(score or "")),
        )[:5]
    models, timings = [], {}
    for r in chosen:
        if not all(math.isfinite(number(r.get(c))) for c in needed):
            continue
        name = f"trial {r['number']} ({r.get('family', '?')})"
        flops = int(number(r["flops"]))
        elem = number(r.get("elementwise_flops"))
        params = number(r.get("params"))
        models.append(
            ModelCost(
                name=name,
                params=int(params) if math.isfinite(params) else 0,
                flops=flops,
                weight_bytes=int(number(r["weight_bytes"])),
                total_flops=flops + (int(elem) if math.isfinite(elem) else 0),
                traffic_bytes=int(number(r["traffic_bytes"])),
                family=r.get("family", ""),
            )
        )
        for d in devices:
            ms = number(r.get(f"predicted_ms_{d.key}"))
            if math.isfinite(ms) and ms > 0:
                timings[(name, d.key)] = Timing(ms=ms, source="predicted")
    return models, timings, devices


def _front_sections(run: RunData, score: str | None) -> list[Section]:
    models, timings, devices = _front_models(run, score)
    if not models:
        return []
    data = _roofline.roofline_data(models, devices, timings=timings)
    feas = _feasibility.feasibility_data(models, devices, timings=timings)
    return [
        Section(
            title="Roofline of the Pareto-optimal trials",
            figure=_roofline.figure(data, title="Roofline of the Pareto-optimal trials"),
            description="Each trial placed by its FLOPs per byte of traffic and its predicted "
            "attained GFLOP/s on the search's device(s).",
        ),
        Section(
            title="Feasibility of the Pareto-optimal trials",
            figure=_feasibility.figure(feas),
            description=_feasibility.DESCRIPTION,
        ),
    ]


def _confirmation_section(run: RunData) -> Section | None:
    """The front and the papers' presets after the confirmation stage: mean ± 95 % interval,
    evaluations, and which dominance is within the noise."""
    if "macro_f1_ci95" not in run.columns:
        return None

    def f1(r: Mapping[str, Any]) -> str:
        mean, ci = number(r.get("macro_f1_mean")), number(r.get("macro_f1_ci95"))
        if not math.isfinite(mean):
            return "-"
        return f"{mean:.3f} ± {ci:.3f}" if math.isfinite(ci) else f"{mean:.3f}"

    def dom(r: Mapping[str, Any]) -> str:
        by = r.get("dominated_by")
        if by in (None, ""):
            return ""
        mark = "" if r.get("dominance") == "significant" else " (not significant)"
        return f"by trial {int(number(str(by)))}{mark}"

    rows = [
        [f"trial {r['number']}", r.get("family", ""), f1(r), r.get("evaluations", ""), "front"]
        for r in run.rows
        if str(r.get("pareto", "")).lower() == "true"
    ]
    for r in run.rows:
        # confirmed members that fell off the front
        fell = str(r.get("pareto", "")).lower() != "true" and r.get("dominance")
        if fell and number(r.get("evaluations")) >= 2:
            rows.append([f"trial {r['number']}", r.get("family", ""), f1(r),
                         r.get("evaluations", ""), dom(r)])  # fmt: skip
    for ref in run.settings.get("references") or []:
        if isinstance(ref, Mapping) and ref.get("trained"):
            rows.append([f"preset {ref.get('name')}", ref.get("family", ""), f1(ref),
                         ref.get("evaluations", ""), dom(ref) or "not dominated"])  # fmt: skip
    if not rows:
        return None
    return Section(
        title="Front and paper presets after confirmation",
        html=html_table(
            ["candidate", "family", "macro-F1 mean ± 95 %", "evaluations", "status"], rows
        ),
        description="Each front member and each paper preset that fits the budget is trained "
        "again with further seeds; the front is decided on the mean. 'Not significant': the "
        "dominating trial's higher mean is within the 95 % interval of the difference (Welch), "
        "so the two cannot be told apart on this data.",
    )


def _trials_section(run: RunData) -> Section:
    shown = [c for c in run.columns if c not in ("config_json",)] + (
        ["config"] if "config_json" in run.columns else []
    )
    rows, classes = [], []
    for r in run.rows:
        cfg = ""
        if r.get("config_json"):
            try:
                cfg = ", ".join(f"{k}={v}" for k, v in json.loads(r["config_json"]).items())
            except (json.JSONDecodeError, AttributeError):
                cfg = r["config_json"]
        row = []
        for c in shown:
            v = cfg if c == "config" else r.get(c, "")
            f = number(v) if c != "config" else math.nan
            row.append(f"{f:.4g}" if math.isfinite(f) and "." in str(v) else v)
        rows.append(row)
        classes.append(
            "pareto"
            if str(r.get("pareto", "")).lower() == "true"
            else "infeasible"
            if str(r.get("feasible", "")).lower() == "false"
            else ""
        )
    return Section(
        title=f"Trials ({len(run.rows)})",
        html=html_table(shown, rows, row_classes=classes),
        description="Click a column header to sort. Bold: on the search's Pareto front; grey: "
        "over budget (not trained).",
    )


def _settings_section(settings: Mapping[str, Any]) -> Section:
    env = settings.get("environment") if isinstance(settings.get("environment"), Mapping) else {}
    shown_elsewhere = ("environment", "references", "costs")  # costs: the charts' labels
    rest = {k: v for k, v in settings.items() if k not in shown_elsewhere}

    def text(key: str, v: Any) -> str:
        if isinstance(v, Mapping) and "peak_gflops_fp32" in v:  # a DeviceProfile.to_dict()
            return (
                f"{v.get('key')} ({v.get('name')}): {v['peak_gflops_fp32']:g} GFLOP/s FP32, "
                f"{v.get('bandwidth_gb_s', 0):g} GB/s, ridge "
                f"{v.get('ridge_flops_per_byte', 0):.3g} FLOPs/byte"
                + (", calibrated" if v.get("calibration") else "")
            )
        return v if isinstance(v, str) else json.dumps(v, default=str)

    def flat(d: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
        rows = []
        for k, v in d.items():
            if isinstance(v, Mapping) and "peak_gflops_fp32" not in v and not prefix:
                rows += flat(v, prefix=f"{k}.")  # one level: settings.trials, ...
            else:
                rows.append([prefix + k, text(k, v)])
        return rows

    body = "<h3>Search settings</h3>" + (
        html_table(["setting", "value"], flat(rest), sortable=False)
        if rest
        else "<p>No search.json in the run directory.</p>"
    )
    if env:
        body += "<h3>Environment</h3>" + html_table(["item", "value"], flat(env), sortable=False)
    return Section(title="Settings and environment", html=body)


@dataclass(frozen=True, kw_only=True)
class BestTrial:
    """The trial whose per-layer breakdown the report shows, as read from results.csv."""

    number: str
    family: str
    score: str  # the column it was ranked by
    config_json: str
    device_key: str | None  # the search's first device (None: search.json names none)

    @property
    def name(self) -> str:
        return f"trial {self.number} ({self.family})"


@dataclass(frozen=True, kw_only=True)
class TrialBreakdown:
    """What ``explorer`` measured of the ``BestTrial``: its cost, and its predicted timing
    on the search's device when that device could be loaded."""

    trial: BestTrial
    cost: ModelCost
    timing: Timing | None = None
    device: DeviceRoof | None = None


NO_TRAINED_TRIAL = "no trained trial with a config: no per-layer breakdown"


def best_trial(run: RunData) -> BestTrial | None:
    """The highest-scoring trained trial with a config, on the search's front when the run
    marks one (score: macro-F1, else accuracy); None when no trial qualifies."""
    score = "macro_f1" if "macro_f1" in run.columns else "accuracy"

    def value(row: Mapping[str, str]) -> float:
        return number(row.get(score) or "nan")

    rows = [r for r in run.rows if r.get("config_json") and math.isfinite(value(r))]
    front = [r for r in rows if str(r.get("pareto", "")).lower() == "true"]
    if not (front or rows):
        return None
    best = max(front or rows, key=value)
    devices = run.settings.get("devices") or [run.settings.get("device") or {}]
    key = devices[0].get("key") if devices and isinstance(devices[0], Mapping) else None
    return BestTrial(
        number=str(best["number"]),
        family=str(best.get("family", "?")),
        score=score,
        config_json=str(best["config_json"]),
        device_key=str(key) if key else None,
    )


def breakdown_section(data: TrialBreakdown) -> Section:
    """The per-layer breakdown of the best trial, as a report section."""
    chart = _breakdown.breakdown_data(data.cost, data.timing, device=data.device)
    return Section(
        title=f"Breakdown of the best trial: {data.trial.name}",
        figure=_breakdown.figure(chart),
        description=f"Highest {data.trial.score} on the front; where its FLOPs, bytes and "
        "predicted time go, by layer and operator kind.",
    )


def search_report(
    run: RunData,
    *,
    breakdown: TrialBreakdown | None = None,
    extra_sections: Sequence[Section] = (),
    title: str | None = None,
) -> Page:
    """The report of a search run: its charts, then the best trial's breakdown and
    ``extra_sections``, then the trials table and the settings."""
    sections = run_sections(run)
    extra = [breakdown_section(breakdown)] if breakdown is not None else []
    extra += list(extra_sections)
    k = next((i for i, s in enumerate(sections) if s.title.startswith("Trials")), len(sections))
    sections[k:k] = extra
    name = run.settings.get("study") or run.settings.get("name") or run.path.name
    n_ok = sum(1 for r in run.rows if (r.get("state") or "").upper() == "COMPLETE")
    intro = (
        f"<p>{len(run.rows)} trials ({n_ok} complete) from "
        f"<code>{html.escape(str(run.path))}</code>.</p>"
    )
    return Page(title=title or f"explorer report: {name}", sections=tuple(sections), intro=intro)


def report_page(
    run_dir: str | Path,
    *,
    extra_sections: Sequence[Section] = (),
    title: str | None = None,
) -> str:
    """The standalone HTML report of a search run directory (``search_report`` of
    ``load_run``, rendered); writing it is the caller's job (``explorer`` writes every file
    atomically).

    Raises:
        FileNotFoundError, ValueError: as ``load_run``.
    """
    run = load_run(run_dir)
    return search_report(run, extra_sections=extra_sections, title=title).html()
