"""Standalone HTML: figures with plotly.js embedded once (works offline, opens from disk).

``render_html`` assembles sections (figures or HTML snippets); ``report_page`` turns a search
run directory into the page of ``report.html`` (the caller writes the file, atomically). The
run directory holds (written by ``explorer search``):

``results.csv`` — one row per trial. Columns read (any order; extra columns are kept and shown
in the trials table; missing ones are simply not charted):

- ``number`` (int), ``state`` (COMPLETE, PRUNED, FAIL, RUNNING), ``family``,
  ``feasible`` (true/false: within every budget), ``pareto`` (true/false, optional: the
  search's own front, shown in the table; charts recompute membership per pair of axes);
- scores: ``macro_f1``, ``accuracy`` (fractions; the chart uses ``macro_f1_mean`` when
  present, else ``macro_f1``); ``macro_f1_mean``, ``macro_f1_ci95`` (half-width of its 95 %
  interval, drawn as error bars), ``evaluations``, ``dominated_by``, ``dominance``
  (``significant`` / ``not significant``) after the search's confirmation stage;
- costs: ``params``, ``macs``, ``flops`` (2 x MACs), ``elementwise_flops``, ``weight_bytes``,
  ``traffic_bytes``, ``peak_activation_bytes``, ``predicted_ms_<device key>`` (one column per
  device), ``measured_ms_<device key>``, ``host_ms``;
- ``objective`` (name of the cost the search minimised, e.g. ``predicted_ms_rpi4``) and
  ``cost`` (its value), ``config_json`` (the trial's config as JSON), anything else.

``search.json`` (optional) — a JSON object; keys read: ``study`` or ``name``, ``objectives``
(list of ``{"name", "direction"}``: 2 or 3 give the search's own Pareto view), ``devices``
(list of ``DeviceProfile.to_dict()``, or ``device``: one), ``references`` (list of
``{"name", "objectives": {column: value}, "note"}`` or flat ``{"name", column: value, ...,
"predicted_ms": {device: ms}}``), ``environment`` (dict); every other key is shown as a setting.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from . import feasibility as _feasibility
from . import pareto as _pareto
from . import roofline as _roofline
from ._inputs import DeviceRoof, ModelCost, Timing

__all__ = [
    "RunData",
    "Section",
    "export_image",
    "load_run",
    "render_html",
    "report_page",
]


@dataclass(frozen=True, kw_only=True)
class Section:
    """One part of a report: a figure, or an HTML snippet, under a heading."""

    title: str
    figure: go.Figure | None = None
    html: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What ``load_run`` read from a run directory."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was wrong with the files and left out


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>
/* Script errors are recorded on <html data-report-errors> so a headless browser can check. */
window.__reportErrors = [];
window.addEventListener("error", function (e) {{
  window.__reportErrors.push(String(e.message || e));
  document.documentElement.setAttribute("data-report-errors", window.__reportErrors.join(" | "));
}});
</script>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1400px; color: #222; padding: 0 16px; }}
h1 {{ font-size: 1.6em; margin-bottom: 0.2em; }}
h2 {{ font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }}
p.desc {{ color: #555; max-width: 70em; }}
nav a {{ margin-right: 1em; }}
table.data {{ border-collapse: collapse; font-size: 12.5px; }}
table.data th, table.data td {{ border: 1px solid #ddd; padding: 3px 7px; text-align: right; }}
table.data td.text, table.data th.text {{ text-align: left; }}
table.sortable td {{ white-space: nowrap; }}
table.sortable td.config {{ white-space: normal; min-width: 60em; text-align: left;
                            font-size: 11.5px; color: #444; }}
table.sortable th {{ cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }}
table.sortable th:hover {{ background: #e8e8e8; }}
tr.pareto td {{ font-weight: 600; }}
tr.infeasible td {{ color: #999; }}
div.tablewrap {{ max-height: 640px; overflow: auto; border: 1px solid #ddd; }}
</style></head><body>
"""

_TAIL = """<script>
/* Click a header to sort by that column (numbers numerically, blanks last). */
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute("data-sort") !== "asc";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-sort"); });
      th.setAttribute("data-sort", asc ? "asc" : "desc");
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
        if (x === "" || y === "") { return x === "" ? (y === "" ? 0 : 1) : -1; }
        var nx = parseFloat(x), ny = parseFloat(y);
        var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
/* Mark the page as rendered once every chart has drawn (checked by the browser test). */
window.addEventListener("load", function () {
  var plots = document.querySelectorAll(".js-plotly-plot");
  var drawn = Array.prototype.filter.call(plots, function (p) {
    return p.querySelector(".main-svg") !== null;
  }).length;
  var root = document.documentElement;
  root.setAttribute("data-plots", String(plots.length));
  root.setAttribute("data-plots-rendered", String(drawn));
  root.setAttribute("data-report-status", window.__reportErrors.length ? "error" : "ok");
});
</script>
</body></html>
"""

_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}


def render_html(sections: Sequence[Section], *, title: str, intro: str = "") -> str:
    """One standalone page: plotly.js embedded once, before the first figure."""
    parts = [_HEAD.format(title=html.escape(title)), f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(intro)
    anchors = [f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections)]
    if len(sections) > 1:
        parts.append(f"<nav>{' '.join(anchors)}</nav>")
    js_done = False
    for i, s in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(s.title)}</h2>')
        if s.description:
            parts.append(f'<p class="desc">{s.description}</p>')
        if s.figure is not None:
            parts.append(
                pio.to_html(
                    s.figure,
                    full_html=False,
                    include_plotlyjs=not js_done,
                    config=_PLOT_CONFIG,
                    default_width="100%",
                )
            )
            js_done = True
        if s.html:
            parts.append(s.html)
    parts.append(_TAIL)
    return "\n".join(parts)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    row_classes: Sequence[str] = (),
    sortable: bool = True,
) -> str:
    """An HTML table (text columns left-aligned); click-to-sort when ``sortable``."""

    def is_num(v: Any) -> bool:
        try:
            float(str(v))
            return True
        except ValueError:
            return False

    text_cols = {
        i for i in range(len(columns)) if not all(is_num(r[i]) or str(r[i]) == "" for r in rows)
    }
    head = "".join(
        f'<th class="{"text" if i in text_cols else ""}">{html.escape(str(c))}</th>'
        for i, c in enumerate(columns)
    )
    body = []
    for k, r in enumerate(rows):
        cls = row_classes[k] if k < len(row_classes) else ""
        cells = "".join(_cell(columns[i], v, i in text_cols) for i, v in enumerate(r))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    klass = "data sortable" if sortable else "data"
    return (
        f'<div class="tablewrap"><table class="{klass}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell(column: str, value: Any, text: bool) -> str:
    klass = "config" if column == "config" else "text" if text else ""
    full = str(value)
    if column != "config" and len(full) > 60:  # e.g. a long "reason": full text on hover
        return f'<td class="{klass}" title="{html.escape(full)}">{html.escape(full[:57])}…</td>'
    return f'<td class="{klass}">{html.escape(full)}</td>'


def load_run(run_dir: str | Path) -> RunData:
    """Read ``results.csv`` (required) and ``search.json`` (optional) from ``run_dir``.

    Raises:
        FileNotFoundError: no directory or no results.csv in it (message says what to run).
        ValueError: results.csv has no header or no ``number`` column; search.json is not JSON;
            either is not a regular file.
    """
    path = Path(run_dir)
    csv_path = path / "results.csv"
    if not path.is_dir():
        raise FileNotFoundError(
            f"run directory {str(path)!r} does not exist: pass the --out "
            "directory of `explorer search` (runs/<study>)"
        )
    for name in ("results.csv", "search.json"):  # reading a FIFO would block forever
        if os.path.lexists(path / name) and not (path / name).is_file():
            raise ValueError(
                f"{str(path / name)!r} is not a regular file (a FIFO, device, directory or "
                "broken link): replace it with the file `explorer search` wrote"
            )
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"{str(csv_path)!r} does not exist: RUN_DIR must be a directory "
            "written by `explorer search`"
        )
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            rows = tuple(dict(r) for r in reader)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise ValueError(
            f"{str(csv_path)!r} is not a readable CSV ({exc}): re-run `explorer search` with "
            "the same arguments to rewrite it"
        ) from None
    notes: list[str] = []
    # DictReader fills a short row with None: the file ends mid-row (a killed writer, a copy
    # cut short); such rows would show as trials with missing values
    complete = tuple(r for r in rows if None not in r.values() and None not in r)
    if len(complete) < len(rows):
        notes.append(
            f"{str(csv_path)!r} has {len(rows) - len(complete)} incomplete row(s) (the file is "
            f"truncated or hand-edited); left out, {len(complete)} trial(s) shown: re-run "
            "`explorer search` with the same arguments to rewrite it"
        )
        rows = complete
    if "number" not in columns:
        raise ValueError(
            f"{str(csv_path)!r} has no 'number' column (columns: "
            f"{', '.join(columns) or 'none'}): it is not a results.csv of a search"
        )
    # a trial number is what links a row to its study and checkpoint: a row without a valid
    # one (text, nan, a negative or fractional number) is an edit, not a trial
    numbered = tuple(r for r in rows if str(r.get("number") or "").strip().isdigit())
    if len(numbered) < len(rows):
        notes.append(
            f"{str(csv_path)!r} has {len(rows) - len(numbered)} row(s) whose 'number' is not a "
            f"trial number (a whole number >= 0); left out, {len(numbered)} trial(s) shown"
        )
        rows = numbered
    settings: dict[str, Any] = {}
    json_path = path / "search.json"
    if json_path.is_file():
        try:
            settings = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{str(json_path)!r} is not valid JSON ({exc.msg} at line "
                f"{exc.lineno}): fix or delete it"
            ) from None
        except RecursionError:
            raise ValueError(
                f"{str(json_path)!r} nests deeper than any search.json `explorer search` "
                "writes: fix or delete it"
            ) from None
        if not isinstance(settings, dict):
            settings = {"settings": settings}
    return RunData(path=path, columns=columns, rows=rows, settings=settings, notes=tuple(notes))


def _references(settings: Mapping[str, Any]) -> list[_pareto.ReferencePoint]:
    out = []
    for ref in settings.get("references") or []:
        if not isinstance(ref, Mapping) or "name" not in ref:
            continue
        objs: dict[str, float] = {}
        source = ref.get("objectives") if isinstance(ref.get("objectives"), Mapping) else ref
        for k, v in source.items():
            if isinstance(v, Mapping) and k in ("predicted_ms", "measured_ms"):
                objs.update(
                    {f"{k}_{dev}": float(x) for dev, x in v.items() if isinstance(x, (int, float))}
                )
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                objs[k] = float(v)
        errors = {
            k: objs[k.removesuffix("_mean") + "_ci95"]
            for k in objs
            if k.removesuffix("_mean") + "_ci95" in objs and not k.endswith("_ci95")
        }
        out.append(
            _pareto.ReferencePoint(
                name=str(ref["name"]), objectives=objs, note=str(ref.get("note", "")), errors=errors
            )
        )
    return out


def _devices(settings: Mapping[str, Any]) -> list[DeviceRoof]:
    raw = settings.get("devices") or ([settings["device"]] if "device" in settings else [])
    out = []
    for d in raw:
        if not isinstance(d, Mapping) or "peak_gflops_fp32" not in d:
            continue
        cal = d.get("calibration") or None
        if not isinstance(cal, Mapping) or not all(
            _positive(cal.get(k)) for k in ("compute_fraction", "bandwidth_fraction")
        ):
            cal = None
        peak, bw = d.get("peak_gflops_fp32"), d.get("bandwidth_gb_s")
        if not (_positive(peak) and _positive(bw)):
            continue  # an edited search.json: no roofline can be drawn for this device
        peak, bw = float(peak), float(bw)
        out.append(
            DeviceRoof(
                key=str(d.get("key", "device")),
                name=str(d.get("name", d.get("key", "device"))),
                peak_gflop_s=peak,
                bandwidth_gb_s=bw,
                achievable_peak_gflop_s=peak * cal["compute_fraction"] if cal else None,
                achievable_bandwidth_gb_s=bw * cal["bandwidth_fraction"] if cal else None,
            )
        )
    return out


def _positive(value: Any) -> bool:
    """A finite number > 0 (roofs and fractions read from search.json)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def run_sections(run: RunData) -> list[Section]:
    """The charts and tables of a search run (Pareto views, roofline of the front, trials)."""
    cols = run.columns
    score = next((c for c in ("macro_f1_mean", "macro_f1", "accuracy") if c in cols), None)
    if score == "macro_f1_mean" and not any(math.isfinite(_num(r.get(score))) for r in run.rows):
        score = "macro_f1"
    costs = [c for c in cols if c.startswith(("predicted_ms_", "measured_ms_"))]
    costs += [c for c in ("flops", "params") if c in cols]
    costs = [c for c in costs if any(math.isfinite(_num(r.get(c))) for r in run.rows)]
    names = [c for c in cols if c != "number"]
    trials = [_pareto.trial_from_row(r, names) for r in run.rows]
    refs = _references(run.settings)
    sections: list[Section] = []
    objs = run.settings.get("objectives")
    searched = (
        [o.get("name") for o in objs if isinstance(o, Mapping)] if isinstance(objs, list) else []
    )
    primary = next((c for c in searched if c in costs), None)
    latency = [c for c in costs if c.startswith(("predicted_ms_", "measured_ms_"))]
    hint = "Hover a point for its trial number, scores and config."
    if score and primary:
        sections.append(
            Section(
                title=f"Pareto: {score} vs {primary} (the search's objectives)",
                figure=_pareto.figure(
                    _pareto.pareto_data(trials, [primary, score], references=refs)
                ),
                description=hint,
            )
        )
    if score and latency and latency != [primary]:
        datas = [_pareto.pareto_data(trials, [c, score], references=refs) for c in latency]
        sections.append(
            Section(
                title=f"Pareto: {score} vs latency, per device",
                figure=_pareto.figure_choice(datas) if len(datas) > 1 else _pareto.figure(datas[0]),
                description=hint + " Choose the device in the menu at the top right; the front is "
                "recomputed for each.",
            )
        )
    for cost in ("flops", "params"):
        if score and cost in costs and cost != primary:
            sections.append(
                Section(
                    title=f"Pareto: {score} vs {cost}",
                    figure=_pareto.figure(
                        _pareto.pareto_data(trials, [cost, score], references=refs)
                    ),
                    description=hint + " The front is recomputed for this pair of objectives.",
                )
            )
    if isinstance(objs, list) and len(objs) == 3:
        data = _pareto.pareto_data(
            trials,
            [_pareto.objective(o["name"], o.get("direction")) for o in objs],
            references=refs,
        )
        sections.append(
            Section(title="Pareto: the search's three objectives", figure=_pareto.figure(data))
        )
    sections.extend(_front_sections(run, score))
    confirmed = _confirmation_section(run)
    if confirmed is not None:
        sections.append(confirmed)
    sections.append(_trials_section(run))
    sections.append(_settings_section(run.settings))
    return sections


def _front_models(
    run: RunData, score: str | None
) -> tuple[list[ModelCost], dict[tuple[str, str], Timing], list[DeviceRoof]]:
    """The search's Pareto trials (else the 5 best) as ModelCosts, with predicted timings."""
    devices = _devices(run.settings)
    needed = ("flops", "weight_bytes", "traffic_bytes")
    if not devices or not all(c in run.columns for c in needed):
        return [], {}, devices
    chosen = [r for r in run.rows if str(r.get("pareto", "")).lower() == "true"]
    if not chosen:
        chosen = sorted(
            (r for r in run.rows if math.isfinite(_num(r.get(score or "")))),
            key=lambda r: -_num(r.get(score or "")),
        )[:5]
    models, timings = [], {}
    for r in chosen:
        if not all(math.isfinite(_num(r.get(c))) for c in needed):
            continue
        name = f"trial {r['number']} ({r.get('family', '?')})"
        flops = int(_num(r["flops"]))
        elem = _num(r.get("elementwise_flops"))
        params = _num(r.get("params"))
        models.append(
            ModelCost(
                name=name,
                params=int(params) if math.isfinite(params) else 0,
                flops=flops,
                weight_bytes=int(_num(r["weight_bytes"])),
                total_flops=flops + (int(elem) if math.isfinite(elem) else 0),
                traffic_bytes=int(_num(r["traffic_bytes"])),
                family=r.get("family", ""),
            )
        )
        for d in devices:
            ms = _num(r.get(f"predicted_ms_{d.key}"))
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
        mean, ci = _num(r.get("macro_f1_mean")), _num(r.get("macro_f1_ci95"))
        if not math.isfinite(mean):
            return "-"
        return f"{mean:.3f} ± {ci:.3f}" if math.isfinite(ci) else f"{mean:.3f}"

    def dom(r: Mapping[str, Any]) -> str:
        by = r.get("dominated_by")
        if by in (None, ""):
            return ""
        mark = "" if r.get("dominance") == "significant" else " (not significant)"
        return f"by trial {int(_num(str(by)))}{mark}"

    rows = [
        [f"trial {r['number']}", r.get("family", ""), f1(r), r.get("evaluations", ""), "front"]
        for r in run.rows
        if str(r.get("pareto", "")).lower() == "true"
    ]
    for r in run.rows:
        # confirmed members that fell off the front
        fell = str(r.get("pareto", "")).lower() != "true" and r.get("dominance")
        if fell and _num(r.get("evaluations")) >= 2:
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
            f = _num(v) if c != "config" else math.nan
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
    rest = {k: v for k, v in settings.items() if k not in ("environment", "references")}

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


def report_page(
    run_dir: str | Path,
    *,
    extra_sections: Sequence[Section] = (),
    title: str | None = None,
) -> str:
    """The standalone HTML report of a search run (``extra_sections`` go after the charts).

    Writing it is the caller's job (``explorer`` writes every file atomically).

    Raises:
        FileNotFoundError, ValueError: as ``load_run``.
    """
    run = load_run(run_dir)
    sections = run_sections(run)
    k = next((i for i, s in enumerate(sections) if s.title.startswith("Trials")), len(sections))
    sections[k:k] = list(extra_sections)
    name = run.settings.get("study") or run.settings.get("name") or run.path.name
    n_ok = sum(1 for r in run.rows if (r.get("state") or "").upper() == "COMPLETE")
    intro = (
        f"<p>{len(run.rows)} trials ({n_ok} complete) from "
        f"<code>{html.escape(str(run.path))}</code>.</p>"
    )
    return render_html(sections, title=title or f"explorer report: {name}", intro=intro)


def export_image(
    fig: go.Figure, path: str | Path, *, width: int = 1400, height: int | None = None
) -> Path:
    """Write ``fig`` as PNG/SVG/PDF (by suffix) with kaleido.

    Raises:
        ImportError: kaleido is not installed (the ``export`` extra).
        ValueError: unsupported suffix.
    """
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"image format {target.suffix!r} is not supported: use .png, .svg or .pdf")
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("kaleido").split(".")[0])
    except (PackageNotFoundError, ValueError):
        major = 0
    if major < 1:  # plotly >= 6.1 exports with kaleido 1, which drives a system Chromium
        raise ImportError(
            "static image export needs the optional package 'kaleido' >= 1.0 and a Chrome or "
            "Chromium; install it with: pip install -e '.[export]'"
        )
    pio.write_image(fig, target, width=width, height=height or fig.layout.height or 600)
    return target
