"""Reports are assembled in ``reports`` from plain data: the roofline page, the choice of the
best trial and the search report's sections, without ``explorer``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import reports
from reports import DeviceRoof, ModelCost, OpCost, RunData, Timing, feasibility

ROOFS = (
    DeviceRoof(key="a", name="Board A", peak_gflop_s=30.0, bandwidth_gb_s=12.8),
    DeviceRoof(key="b", name="Board B", peak_gflop_s=120.0, bandwidth_gb_s=17.1),
)


def _toy(name: str = "toy") -> ModelCost:
    ops = (
        OpCost(module="a.conv", op="aten.convolution", kind="conv", flops=8_000_000,
               traffic_bytes=1_000_000),
        OpCost(module="b.fc", op="aten.addmm", kind="linear", flops=2_000_000,
               traffic_bytes=4_000_000),
    )  # fmt: skip
    return ModelCost(
        name=name,
        params=1_000_000,
        flops=10_000_000,
        weight_bytes=4_000_000,
        total_flops=10_000_000,
        traffic_bytes=5_000_000,
        family="ding",
        ops=ops,
    )


def test_roofline_report_sections_and_summary() -> None:
    toy = _toy()
    totals = ModelCost(name="totals", params=10, flops=1_000, weight_bytes=40)  # no operators
    timings = {("toy", "a"): Timing(ms=2.0, op_ms=(1.5, 0.5)), ("toy", "b"): Timing(ms=1.0)}
    rep = reports.roofline_report(
        [toy, totals], ROOFS, timings=timings, intensity="weights", per_layer=True
    )
    titles = [s.title for s in rep.page.sections]
    assert titles == [
        "Roofline (weights intensity)",
        "Roofline (traffic intensity)",
        "Operators of toy",
        "Breakdown of toy",  # only the model with operators gets these two
        "Feasibility (Lu, Lu and Lin (2025) Table IX)",
    ]
    assert rep.page.title == "explorer roofline: toy, totals"
    assert rep.main_figure is rep.page.sections[0].figure
    summary = json.loads(json.dumps(rep.summary()))  # JSON-safe
    assert summary["intensity"] == "weights"
    assert [d["key"] for d in summary["devices"]] == ["a", "b"]
    assert summary["devices"][0]["ridge_flops_per_byte"] == pytest.approx(30.0 / 12.8)
    assert {(c["model"], c["device"]) for c in summary["feasibility"]} == {
        (m, d) for m in ("toy", "totals") for d in ("a", "b")
    }
    placed = {(m["model"], m["device"]): m for m in summary["models"]}
    assert placed[("toy", "a")]["latency_ms"] == 2.0
    html = rep.page.html()
    assert html.count("Plotly.newPlot(") == 5 and html.count("plotly.js v") == 1


def test_roofline_report_adds_the_papers_models_and_draws_roofs_alone() -> None:
    rep = reports.roofline_report([], ROOFS[:1], timings={}, paper_models=True)
    names = {c.model for c in rep.feasibility.cells}
    assert names == {m.name for m in feasibility.TABLE_IX_MODELS}
    alone = reports.roofline_report([], ROOFS[:1], timings={})
    assert alone.page.title == "explorer roofline: roofs"
    assert [s.title for s in alone.page.sections] == [
        "Roofline (traffic intensity)",
        "Roofline (weights intensity)",
    ]  # no models: no feasibility table
    with pytest.raises(ValueError, match="intensity"):
        reports.roofline_report([_toy()], ROOFS, timings={}, intensity="bogus")


def _run(tmp_path: Path, rows: list[dict[str, str]], settings: dict | None = None) -> RunData:
    columns = tuple(dict.fromkeys(k for r in rows for k in r))
    return RunData(path=tmp_path, columns=columns, rows=tuple(rows), settings=settings or {})


def test_best_trial_prefers_the_front_and_needs_a_config(tmp_path: Path) -> None:
    rows = [
        {"number": "0", "family": "ding", "macro_f1": "0.9", "pareto": "false",
         "config_json": "{}"},
        {"number": "1", "family": "lu", "macro_f1": "0.6", "pareto": "true",
         "config_json": '{"family": "lu"}'},
        {"number": "2", "family": "lu", "macro_f1": "0.7", "pareto": "true", "config_json": ""},
        {"number": "3", "family": "yang", "macro_f1": "x", "pareto": "true",
         "config_json": "{}"},
    ]  # fmt: skip
    settings = {"devices": [{"key": "rpi4"}, {"key": "rpi5"}]}
    best = reports.best_trial(_run(tmp_path, rows, settings))
    assert best is not None
    assert (best.number, best.name, best.score) == ("1", "trial 1 (lu)", "macro_f1")
    assert (best.config_json, best.device_key) == ('{"family": "lu"}', "rpi4")
    off_front = [{**r, "pareto": "false"} for r in rows]
    assert reports.best_trial(_run(tmp_path, off_front)).number == "0"  # the highest score
    untrained = [{**r, "macro_f1": ""} for r in rows]
    assert reports.best_trial(_run(tmp_path, untrained)) is None


def test_search_report_puts_the_breakdown_before_the_trials(tmp_path: Path) -> None:
    rows = [
        {"number": "0", "state": "COMPLETE", "family": "ding", "feasible": "true",
         "pareto": "true", "macro_f1": "0.6", "flops": "1e7", "params": "1000",
         "config_json": "{}"},
        {"number": "1", "state": "COMPLETE", "family": "ding", "feasible": "true",
         "pareto": "false", "macro_f1": "0.5", "flops": "2e7", "params": "2000",
         "config_json": "{}"},
    ]  # fmt: skip
    run = _run(tmp_path, rows, {"study": "demo"})
    best = reports.best_trial(run)
    assert best is not None
    detail = reports.TrialBreakdown(trial=best, cost=_toy(best.name), device=ROOFS[0])
    page = reports.search_report(run, breakdown=detail)
    titles = [s.title for s in page.sections]
    assert titles[-3:] == [
        "Breakdown of the best trial: trial 0 (ding)",
        "Trials (2)",
        "Settings and environment",
    ]
    assert "Pareto: macro_f1 vs flops" in titles
    assert page.title == "explorer report: demo"
    assert "2 trials (2 complete)" in page.intro
    without = reports.search_report(run)
    assert len(without.sections) == len(page.sections) - 1


def test_the_cli_assembles_no_report() -> None:
    # the report commands call one assembly function of ``reports`` and write its page; no
    # chart module (and no Section) is used in the CLI, so a new section goes in ``reports``
    import ast

    cli = Path(__file__).resolve().parents[1] / "explorer" / "cli"
    charts = {"breakdown", "feasibility", "pareto", "roofline"}
    for path in sorted(cli.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "reports"
        }
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "reports"
            for alias in node.names
        }
        assert not (used | imported) & (charts | {"Section", "render_html"}), path.name
    text = (cli / "roofline.py").read_text(encoding="utf-8")
    assert "reports.roofline_report(" in text
    assert "reports.search_report(" in (cli / "report.py").read_text(encoding="utf-8")
