"""``explorer report RUN_DIR``: the standalone HTML report of a search run."""

from __future__ import annotations

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
    """Read the run, profile its best trial for the breakdown section when asked
    (``explorer.report_inputs``), assemble the page (``reports.search_report``) and write it;
    a summary."""
    import reports
    from explorer.errors import UsageError
    from explorer.files import check_output_path, write_text_atomic
    from explorer.report_inputs import best_trial_breakdown

    if out is not None:
        check_output_path(out, what="--out")
    try:
        run = reports.load_run(run_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    notes: list[str] = list(run.notes)
    best = None
    if breakdown:
        best, note = best_trial_breakdown(run)
        if note:
            notes.append(note)
    path = out if out is not None else Path(run_dir) / "report.html"
    page = reports.search_report(run, breakdown=best)
    write_text_atomic(path, page.html(), what="--out")
    return {"out": str(path), "trials": len(run.rows), "notes": notes}
