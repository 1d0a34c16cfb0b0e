"""Turn a study's trials into rows, the Pareto set, ``results.csv`` and Pareto checkpoints."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from explorer.files import atomic_write, write_text_atomic
from reports.pareto import pareto_mask

from ._keys import TrialKey
from ._objectives import PROFILE_TOTALS, SCORE, SearchObjective, get_objective
from ._settings import SearchConfig
from ._stats import dominated_by, estimate, means_of

__all__ = [
    "RESULT_COLUMNS",
    "SearchResult",
    "count_trials",
    "pareto_numbers",
    "prune_checkpoints",
    "trial_rows",
    "write_csv",
]

# Columns of results.csv, in order; ``predicted_ms_<device>`` columns (target first, then every
# other known device), each followed by ``predicted_low_ms_<device>`` and
# ``predicted_high_ms_<device>`` (the prediction's range; high empty: no upper bound), the
# registered objectives' own columns (``_objectives.own_columns``: ``host_ms``...) and
# ``budget_<label>`` columns (used / limit) are inserted where marked. The profile totals keep
# their names (``PROFILE_TOTALS``).
RESULT_COLUMNS = (
    "number",
    "state",
    "family",
    "feasible",
    "pareto",
    "reason",
    "macro_f1",
    "macro_f1_mean",
    "macro_f1_ci95",
    "evaluations",
    "dominated_by",
    "dominance",
    "accuracy",
    "objective",
    "cost",
    *PROFILE_TOTALS,
    "<predicted>",
    "<objectives>",
    "<budgets>",
    "train_seconds",
    "epochs",
    "stopped_early",
    "duration_s",
    "checkpoint",
    "config_json",
    "error",
)


def _feasible_points(
    trials: Iterable[optuna.trial.FrozenTrial], means: Mapping[int, float] | None = None
) -> list[tuple[int, float, float]]:
    means = means or {}
    return [
        (t.number, float(means.get(t.number, t.values[0])), float(t.values[1]))
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE
        and t.values is not None
        and t.user_attrs.get(TrialKey.FEASIBLE)
        and not t.user_attrs.get(TrialKey.STOPPED_EARLY)
    ]


def pareto_numbers(
    trials: Iterable[optuna.trial.FrozenTrial],
    means: Mapping[int, float] | None = None,
    *,
    direction: str = "minimize",
) -> list[int]:
    """Numbers of the feasible, fully trained trials no other such trial dominates
    (macro-F1 and cost at least as good, one of them better; ``direction``: the cost's), by
    cost, best first. ``means`` (trial number -> mean macro-F1 over its evaluations, see
    ``_confirm``) replaces a trial's single score where given. The dominance rule is the
    charts' own (``reports.pareto.pareto_mask``): one front, one definition.

    Trials stopped early (median rule or timeout) stay in results.csv and inform the sampler,
    but are not on the front: their scores are from fewer epochs than the others'."""
    points = _feasible_points(trials, means)
    mask = pareto_mask([(p[1], p[2]) for p in points], (SCORE.direction, direction))
    sign = 1.0 if direction == "minimize" else -1.0
    front = [p for p, optimal in zip(points, mask, strict=True) if optimal]
    return [p[0] for p in sorted(front, key=lambda p: (sign * p[2], -p[1], p[0]))]


def prune_checkpoints(
    out_dir: Path, trials: Sequence[optuna.trial.FrozenTrial], keep: Iterable[int]
) -> None:
    """Delete the checkpoints of completed trials off the front: a dominated trial stays
    dominated however the study continues, and trials still running are left alone."""
    keep = set(keep)
    for t in trials:
        rel = t.user_attrs.get(TrialKey.CHECKPOINT)
        if rel and t.state == optuna.trial.TrialState.COMPLETE and t.number not in keep:
            (out_dir / rel).unlink(missing_ok=True)


def _estimate_columns(est: Any) -> dict[str, Any]:
    return {
        "macro_f1_mean": est.mean if est else None,
        "macro_f1_ci95": est.ci95 if est else None,
        "evaluations": est.n if est else 0,
    }


def trial_rows(
    trials: Sequence[optuna.trial.FrozenTrial],
    *,
    device: str,
    devices: Sequence[str],
    budget_labels: Sequence[str],
    objective: SearchObjective,
    out_dir: Path,
    evals: Mapping[tuple[str, str], Sequence[float]] | None = None,
    own_columns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One plain dict per trial with the ``RESULT_COLUMNS`` (``checkpoint`` only when the
    file exists, i.e. for Pareto models); ``objective`` is the search's cost and
    ``own_columns`` the objectives' own columns (read from the trials' attributes).
    ``evals`` (``_confirm.evaluations``) gives the mean ± 95 % interval columns; the front is
    decided on those means."""
    evals = evals or {}
    est = {int(i): estimate(v) for (kind, i), v in evals.items() if kind == "trial" and v}
    front_list = pareto_numbers(trials, means_of(evals), direction=objective.direction)
    front = set(front_list)
    by_number = {t.number: t for t in trials}
    lower = objective.minimised  # dominance compares costs lower-is-better
    front_points = [(n, lower(by_number[n].values[1]), est[n]) for n in front_list if n in est]
    rows = []
    for t in trials:
        a = t.user_attrs
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "family": a.get(TrialKey.FAMILY) or t.params.get("family", ""),
            "feasible": bool(a.get(TrialKey.FEASIBLE, False)),
            "pareto": t.number in front,
            "reason": a.get(TrialKey.REASON, ""),
            "macro_f1": a.get(TrialKey.MACRO_F1),
            **_estimate_columns(est.get(t.number)),
            "dominated_by": None,
            "dominance": "",
            "accuracy": a.get(TrialKey.ACCURACY),
            "objective": objective.column_for(device),
            "cost": t.values[1] if t.values else None,
        }
        if t.number in est and t.number not in front and not a.get(TrialKey.STOPPED_EARLY):
            row["dominated_by"], row["dominance"] = dominated_by(
                est[t.number], lower(t.values[1]), front_points
            )
        for key in PROFILE_TOTALS:
            row[key] = a.get(key)
        predicted = a.get(TrialKey.PREDICTED_MS) or {}
        ranges = a.get(TrialKey.PREDICTED_RANGE_MS) or {}
        for key in devices:
            row[f"predicted_ms_{key}"] = predicted.get(key)
            low, high = ranges.get(key) or (None, None)
            row[f"predicted_low_ms_{key}"], row[f"predicted_high_ms_{key}"] = low, high
        for key in own_columns:
            row[key] = a.get(key)
        usage = a.get(TrialKey.BUDGET_USAGE) or {}
        for label in budget_labels:
            row[f"budget_{label}"] = usage.get(label)
        row["train_seconds"] = a.get(TrialKey.TRAIN_SECONDS)
        row["epochs"] = a.get(TrialKey.EPOCHS)
        row["stopped_early"] = a.get(TrialKey.STOPPED_EARLY, "")
        row["duration_s"] = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        ckpt = a.get(TrialKey.CHECKPOINT)
        row["checkpoint"] = ckpt if ckpt and (out_dir / ckpt).exists() else ""
        config = a.get(TrialKey.CONFIG)
        row["config_json"] = json.dumps(config, separators=(",", ":")) if config else ""
        row["error"] = a.get(TrialKey.ERROR, "")
        rows.append(row)
    return rows


def columns_for(
    devices: Sequence[str], budget_labels: Sequence[str], own_columns: Sequence[str] = ()
) -> list[str]:
    """The concrete column list of results.csv."""
    cols: list[str] = []
    for col in RESULT_COLUMNS:
        if col == "<predicted>":
            for k in devices:
                cols += [f"predicted_ms_{k}", f"predicted_low_ms_{k}", f"predicted_high_ms_{k}"]
        elif col == "<objectives>":
            cols += list(own_columns)
        elif col == "<budgets>":
            cols += [f"budget_{label}" for label in budget_labels]
        else:
            cols.append(col)
    return cols


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``rows`` to ``path`` atomically (a reader never sees half a file)."""
    with atomic_write(path, text=True, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """What a finished (or stopped) search wrote and found."""

    config: SearchConfig
    out_dir: Path
    results_csv: Path
    search_json: Path
    report_html: Path | None
    rows: tuple[dict[str, Any], ...]
    pareto: tuple[int, ...]  # trial numbers on the front, by increasing cost
    counts: dict[str, int]
    wall_seconds: float
    stopped: str  # "trials", "timeout" or "interrupted"
    references: tuple[dict[str, Any], ...] = ()
    report_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pareto_rows(self) -> list[dict[str, Any]]:
        by_number = {r["number"]: r for r in self.rows}
        return [by_number[n] for n in self.pareto]

    @property
    def best_per_family(self) -> list[dict[str, Any]]:
        """The best fully trained feasible trial of each family (by macro-F1, then cost):
        how far each family's best is from the front, when the front is one family's."""
        lower = get_objective(self.config.objective).minimised
        best: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            if not r.get("feasible") or r.get("stopped_early") or r.get("macro_f1") in ("", None):
                continue
            old = best.get(r["family"])
            if old is None or (r["macro_f1"], -lower(r["cost"])) > (
                old["macro_f1"],
                -lower(old["cost"]),
            ):
                best[r["family"]] = r
        return sorted(best.values(), key=lambda r: lower(r["cost"]))


def count_trials(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """Trials by outcome: complete (evaluated), invalid, feasible, infeasible, trained, failed,
    running."""
    states = optuna.trial.TrialState
    complete = [t for t in trials if t.state == states.COMPLETE]
    feasible = [t for t in complete if t.user_attrs.get(TrialKey.FEASIBLE)]
    invalid = sum(
        1 for t in complete if t.user_attrs.get(TrialKey.REASON, "").startswith("invalid")
    )
    return {
        # Candidates evaluated (within or over budget): what --trials counts. Configs their
        # family rejects cost nothing and are recorded but not counted.
        "complete": len(complete) - invalid,
        "invalid": invalid,
        "feasible": len(feasible),
        "infeasible": len(complete) - len(feasible) - invalid,
        "trained": sum(1 for t in feasible if t.user_attrs.get(TrialKey.MACRO_F1) is not None),
        "failed": sum(1 for t in trials if t.state == states.FAIL),
        "running": sum(1 for t in trials if t.state == states.RUNNING),
    }
