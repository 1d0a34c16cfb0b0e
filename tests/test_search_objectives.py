"""The registry of search objectives: one entry reaches the trial, results.csv, the study, the
summary table and the report's Pareto chart; the shared Pareto front honours its direction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

from explorer.errors import UsageError
from explorer.search import (
    SearchObjective,
    get_objective,
    objective_names,
    register_objective,
    run_search,
)
from explorer.search import _objectives as registry
from explorer.search._results import pareto_numbers
from tests._search_helpers import tiny_config


@pytest.fixture(autouse=True)
def _feature_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path_factory.getbasetemp() / "features"))


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> SearchObjective:
    """A cost no other file knows: the weights in KiB, registered for this test only."""
    monkeypatch.setattr(registry, "_COSTS", dict(registry._COSTS))
    return register_objective(
        SearchObjective(
            name="toy_weights",
            column="toy_weight_kib",
            label="Toy weights",
            unit="KiB",
            compute=lambda c: c.totals["weight_bytes"] / 1024,
            help="weights in KiB",
        )
    )


def test_a_toy_objective_registered_alone_reaches_results_csv_and_the_pareto_chart(
    tmp_path: Path, toy: SearchObjective, capsys: pytest.CaptureFixture[str]
) -> None:
    from explorer.cli._output import Format
    from explorer.cli.search import _summary
    from reports import load_run
    from reports.search_report import run_sections

    out = tmp_path / "run"
    result = run_search(tiny_config(out, objective="toy_weights", trials=3), write_report=False)
    assert result.counts["complete"] == 3

    with (out / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert "toy_weight_kib" in (reader.fieldnames or [])
        rows = list(reader)
    costed = [r for r in rows if r["weight_bytes"]]
    assert len(costed) >= 3
    for r in costed:
        assert float(r["toy_weight_kib"]) == pytest.approx(int(r["weight_bytes"]) / 1024)
        assert float(r["cost"]) == pytest.approx(float(r["toy_weight_kib"]))
        assert r["objective"] == "toy_weight_kib"
    study = optuna.load_study(study_name="tiny", storage=result.config.storage_url)
    assert study.metric_names == ["Validation macro-F1", "Toy weights (KiB)"]

    # the report's chart of the search's objectives: the toy column on x, labelled by the
    # registry (through search.json), one point per trial that has a value
    sections = run_sections(load_run(out))
    chart = next(s for s in sections if "(the search's objectives)" in s.title)
    assert "toy_weight_kib" in chart.title
    fig = chart.figure
    assert fig.layout.xaxis.title.text.startswith("Toy weights (KiB)")
    drawn = sorted(
        x for trace in fig.data if trace.mode == "markers" for x in trace.x if x is not None
    )
    assert drawn == pytest.approx(sorted(float(r["toy_weight_kib"]) for r in costed))

    # every registered cost is described in search.json, and the other charts take their
    # axis labels from there (the registry), not from a list of their own
    summary = json.loads((out / "search.json").read_text())
    costs = {c["objective"]: c for c in summary["costs"]}
    assert costs["toy_weights"]["label"] == "Toy weights (KiB)"
    costs["flops"]["label"] = "Dense compute (registry label)"
    (out / "search.json").write_text(json.dumps(summary))
    flops = next(s for s in run_sections(load_run(out)) if s.title.endswith(" vs flops"))
    assert flops.figure.layout.xaxis.title.text.startswith("Dense compute (registry label)")

    _summary(result, Format.table)
    assert "Toy weights (KiB)" in capsys.readouterr().out


def test_registry_refuses_duplicates_and_names_the_closest_on_a_typo(
    toy: SearchObjective,
) -> None:
    assert objective_names()[-1] == "toy_weights"
    assert get_objective("toy_weights") is toy
    with pytest.raises(ValueError, match="registered twice"):
        register_objective(toy)
    with pytest.raises(ValueError, match="column 'flops' is taken"):
        register_objective(
            SearchObjective(name="dense", column="flops", label="x", compute=lambda c: 0.0)
        )
    with pytest.raises(UsageError, match="did you mean 'toy_weights'"):
        get_objective("toy_weight")
    with pytest.raises(UsageError, match="toy_weights"):
        tiny_config(Path("unused"), objective="energy")


def test_the_front_follows_the_cost_direction_and_keeps_ties() -> None:
    study = optuna.create_study(directions=["maximize", "maximize"])
    attrs = {"feasible": True}
    for f1, cost in ((0.5, 10.0), (0.6, 5.0), (0.4, 20.0), (0.6, 5.0), (0.7, 1.0)):
        study.add_trial(optuna.trial.create_trial(values=[f1, cost], user_attrs=attrs))
    # higher cost is better here: 0 and 2 trade off against 1/3 (tied) and 4
    assert pareto_numbers(study.trials, direction="maximize") == [2, 0, 1, 3, 4]
    # lower is better: only the cheapest and best remains
    assert pareto_numbers(study.trials, direction="minimize") == [4]
    # the confirmation stage's means replace single scores
    means = {4: 0.1, 1: 0.65}
    assert pareto_numbers(study.trials, means, direction="minimize") == [4, 1]
