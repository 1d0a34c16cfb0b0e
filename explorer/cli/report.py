"""``explorer report RUN_DIR``: the standalone HTML report of a search run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from ._app import app
from ._output import Format, err_console, print_json


@app.command("report")
def report_command(
    run_dir: Path = typer.Argument(..., help="A directory written by `explorer search`."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: RUN_DIR/report.html)."
    ),
    breakdown: bool = typer.Option(
        True,
        "--breakdown/--no-breakdown",
        help="Re-profile the best Pareto trial for a per-layer breakdown (a few seconds).",
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Pareto charts, roofline and feasibility of the front, per-layer breakdown of the best
    trial, a sortable table of trials, the settings and environment: one HTML file that
    works offline."""
    result = build_report(run_dir, out=out, breakdown=breakdown)
    if format is Format.json:
        print_json(result)
        return
    err_console.print(f"wrote {result['out']} ({result['trials']} trials)")
    for note in result["notes"]:
        typer.echo(f"note: {note}", err=True)  # one line each, never wrapped


def build_report(run_dir: Path, *, out: Path | None, breakdown: bool) -> dict[str, Any]:
    """Write the report (with the breakdown section when it can be rebuilt); a summary."""
    import reports
    from explorer.errors import UsageError
    from explorer.files import check_output_path, write_text_atomic

    if out is not None:
        check_output_path(out, what="--out")
    try:
        run = reports.load_run(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    notes: list[str] = list(run.notes)
    extra = []
    if breakdown:
        section, note = _best_breakdown(run)
        if section is not None:
            extra.append(section)
        if note:
            notes.append(note)
    path = out if out is not None else Path(run_dir) / "report.html"
    write_text_atomic(path, reports.report_page(run_dir, extra_sections=extra), what="--out")
    return {"out": str(path), "trials": len(run.rows), "notes": notes}


def _best_breakdown(run: Any) -> tuple[Any, str]:
    """Profile the best feasible trial (on the search's front when marked) for a breakdown."""
    import device_profiles
    import reports
    import search_spaces
    from explorer.prediction import predict_latency
    from explorer.profiling import profile_model
    from reports import breakdown

    score = "macro_f1" if "macro_f1" in run.columns else "accuracy"

    def value(row: dict[str, str]) -> float:
        try:
            return float(row.get(score) or "nan")
        except ValueError:
            return math.nan

    rows = [r for r in run.rows if r.get("config_json") and math.isfinite(value(r))]
    front = [r for r in rows if str(r.get("pareto", "")).lower() == "true"]
    if not (front or rows):
        return None, "no trained trial with a config: no per-layer breakdown"
    best = max(front or rows, key=value)
    try:
        config = search_spaces.config_from_dict(json.loads(best["config_json"]))
        model = search_spaces.build(config)
        profile = profile_model(model, search_spaces.example_inputs(model), name="best")
    except Exception as exc:  # an old or foreign run: the rest of the report still stands
        reason = str(exc).split(";")[0][:160]
        return None, f"trial {best['number']} could not be rebuilt for a breakdown ({reason})"
    devices = run.settings.get("devices") or [run.settings.get("device") or {}]
    key = devices[0].get("key") if devices and isinstance(devices[0], dict) else None
    device, timing = None, None
    if key:
        try:
            dev = device_profiles.get(key)
            device = reports.DeviceRoof.from_profile(dev)
            timing = reports.Timing.from_prediction(predict_latency(profile, dev))
        except device_profiles.DeviceError:
            pass
    name = f"trial {best['number']} ({best.get('family', '?')})"
    cost = reports.ModelCost.from_profile(profile, name=name)
    data = breakdown.breakdown_data(cost, timing, device=device)
    return (
        reports.Section(
            title=f"Breakdown of the best trial: {name}",
            figure=breakdown.figure(data),
            description=f"Highest {score} on the front; where its FLOPs, bytes and predicted "
            "time go, by layer and operator kind.",
        ),
        "",
    )
