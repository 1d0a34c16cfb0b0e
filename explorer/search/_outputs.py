"""What a search leaves in its run directory: results.csv, search.json, Pareto checkpoints,
report.html, and the papers' presets profiled (and trained, when they fit) as references."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import torch

import search_spaces as ss
from explorer.budget import check_budgets
from explorer.files import write_text_atomic

from ._keys import StudyKey, TrialKey
from ._objective import Objective
from ._objectives import (
    SCORE,
    SearchObjective,
    get_objective,
    objective_names,
    own_columns,
    profile_totals,
)
from ._results import (
    SearchResult,
    columns_for,
    count_trials,
    pareto_numbers,
    prune_checkpoints,
    trial_rows,
    write_csv,
    write_json,
)
from ._settings import SearchConfig, redact_url
from ._space import paper_presets, preset_params
from ._stats import dominated_by, estimate, evaluations, means_of

__all__ = ["ensure_references", "finalize", "reference_rows"]


def reference_rows(objective: Objective, *, train: bool) -> list[dict[str, Any]]:
    """Profile the papers' presets of the searched families on every device, check them
    against the budgets, and train the ones that fit (same data, split and fidelity as the
    trials) when ``train``; rows use results.csv's column names plus ``name``."""
    from explorer.prediction import predict_latency
    from explorer.profiling import profile_model

    cfg = objective.config
    rows = []
    for name in paper_presets(cfg.families):
        preset = ss.get_preset(name)
        fields = set(ss.get_family(ss.presets()[name]).field_names())
        values = {"num_classes": objective.num_classes} if "num_classes" in fields else {}
        config = ss.config_from_dict({**ss.config_to_dict(preset), **values})
        torch.manual_seed(cfg.seed)  # the same initial weights in every run with this seed
        model = ss.build(config)
        inputs = ss.example_inputs(model, 1)
        profile = profile_model(model, inputs, name=name)
        totals = profile_totals(profile)
        predictions = {
            k: predict_latency(profile, d, model=model, inputs=inputs)
            for k, d in objective.devices.items()
        }
        latency = {k: p.ms for k, p in predictions.items()}
        check = check_budgets(
            cfg.budgets, totals=totals, latency_ms=latency, device=objective.device.address
        )
        row: dict[str, Any] = {
            "name": name,
            "family": ss.presets()[name],
            "config": ss.config_to_dict(config),
            **totals,
            "feasible": check.feasible,
            "trained": False,
            "note": check.reason,
        }
        for k, p in predictions.items():
            row[f"predicted_ms_{k}"] = p.ms
            row[f"predicted_low_ms_{k}"], row[f"predicted_high_ms_{k}"] = p.low_ms, p.high_ms
        spec = model.input_spec
        # Presets sit outside the capped space (e.g. ding2025's 64-px face); train those whose
        # video is at most 4x the pixels per sample the caps allow, only profile bigger ones.
        cap_px = (
            (cfg.max_frames or spec.frames)
            * (cfg.max_image_px or spec.height)
            * (cfg.max_image_px or spec.width)
        )
        too_big = spec.frames * spec.height * spec.width > 4 * cap_px
        if train and check.feasible and too_big:
            row["note"] = "not trained: its video input is over 4x --max-frames/--max-image-size"
        elif train and check.feasible:
            start = time.perf_counter()
            metrics = objective.train_reference(model)
            row.update(
                macro_f1=float(metrics.macro_f1),
                accuracy=float(metrics.accuracy),
                trained=True,
                train_seconds=time.perf_counter() - start,
            )
        rows.append(row)
    return rows


def ensure_references(study: optuna.Study, objective: Objective) -> str:
    """Compute the reference rows once per study and keep them on it (resumes and workers
    reuse them); runs before the first trial so ``--timeout`` bounds it too. Returns a note
    ('' when fine): references are a comparison aid, their failure must not stop a search."""
    if study.user_attrs.get(StudyKey.REFERENCES) is not None:
        return ""
    try:
        rows = reference_rows(objective, train=objective.config.reference_presets)
    except Exception as exc:
        return f"references failed: {type(exc).__name__}: {exc}"
    study.set_user_attr(StudyKey.REFERENCES, rows)
    return ""


def finalize(
    study: optuna.Study,
    config: SearchConfig,
    *,
    objective: Objective,
    wall_seconds: float,
    stopped: str,
    write_report: bool = True,
) -> SearchResult:
    """Write results.csv, search.json, report.html; keep only the Pareto checkpoints."""
    from explorer.environment import environment

    out: Path = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    references = list(study.user_attrs.get(StudyKey.REFERENCES, []))
    evals = evaluations(study.user_attrs, trials, references)
    cost = get_objective(config.objective)
    front = pareto_numbers(trials, means_of(evals), direction=cost.direction)
    prune_checkpoints(out, trials, front)
    devices = list(objective.devices)
    labels = [b.label for b in config.budgets]
    target = objective.device.address
    rows = trial_rows(
        trials,
        device=target,
        devices=devices,
        budget_labels=labels,
        objective=cost,
        out_dir=out,
        evals=evals,
        own_columns=own_columns(),
    )
    references = _annotate_references(references, rows, evals, cost.column_for(target), cost)
    references = _at_caps(references, rows, trials, config)
    results_csv = out / "results.csv"
    write_csv(results_csv, rows, columns_for(devices, labels, own_columns()))
    ref_note = "; ".join(
        n
        for n in (
            getattr(objective, "references_note", ""),
            getattr(objective, "confirm_note", ""),
        )
        if n
    )
    counts = count_trials(trials)
    search_json = out / "search.json"
    summary = {
        "format": "explorer.search/1",
        "study": config.study,
        "storage": redact_url(config.storage_url) if config.storage else "study.db",
        "settings": config.to_dict(),
        "device": objective.device.to_dict(),
        # the registry's description of the two objectives and of every cost (column,
        # direction, label, unit): the report's charts label their axes with it
        "objectives": [SCORE.describe(target), cost.describe(target)],
        "costs": [get_objective(n).describe(target) for n in objective_names()],
        "budgets": [
            {
                "label": b.label,
                "text": b.text,
                "metric": b.metric,
                "limit": b.limit,
                "device": b.device or objective.device.address,
            }
            for b in config.budgets
        ],
        "counts": counts,
        "stopped": stopped,
        "wall_seconds": wall_seconds,
        "pareto": front,
        "references": references,
        "references_note": ref_note,
        "results_csv": results_csv.name,
        "report_html": "report.html",
        "environment": environment(),
    }
    write_json(search_json, summary)
    report_html, report_note = (None, "")
    if write_report:
        report_html, report_note = _write_report(out)
    return SearchResult(
        config=config,
        out_dir=out,
        results_csv=results_csv,
        search_json=search_json,
        report_html=report_html,
        rows=tuple(rows),
        pareto=tuple(front),
        counts=counts,
        wall_seconds=wall_seconds,
        stopped=stopped,
        references=tuple(references),
        report_note=report_note or ref_note,
    )


def _annotate_references(
    references: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    evals: dict[tuple[str, str], list[float]],
    cost_column: str,
    cost: SearchObjective,
) -> list[dict[str, Any]]:
    """Each preset with its mean ± 95 % interval and the front member that dominates it
    (``cost_column``: the presets' value of the search's ``cost``)."""
    front = [
        (r["number"], cost.minimised(r["cost"]), estimate(evals[("trial", str(r["number"]))]))
        for r in rows
        if r["pareto"] and ("trial", str(r["number"])) in evals
    ]
    out = []
    for ref in references:
        ref = dict(ref)
        values = evals.get(("preset", str(ref["name"])))
        est = estimate(values) if values else None
        ref.update(
            macro_f1_mean=est.mean if est else None,
            macro_f1_ci95=est.ci95 if est else None,
            evaluations=est.n if est else 0,
            dominated_by=None,
            dominance="",
        )
        value = ref.get(cost_column)
        if est is not None and value is not None:
            ref["dominated_by"], ref["dominance"] = dominated_by(est, cost.minimised(value), front)
        out.append(ref)
    return out


def _at_caps(
    references: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    trials: list[optuna.trial.FrozenTrial],
    config: SearchConfig,
) -> list[dict[str, Any]]:
    """A preset within the budget but not trained (its input is over the caps) is compared
    through the trial that holds it projected onto the caps, when the search started its
    family from it (``paper_start``): ``at_caps`` names that trial, and the note gives its
    macro-F1 and whether the front dominates it."""
    by_number = {r["number"]: r for r in rows}
    stopped = {t.number: t.user_attrs.get(TrialKey.STOPPED_EARLY) for t in trials}
    out = []
    for ref in references:
        if ref.get("trained") or not ref.get("feasible"):
            out.append(ref)
            continue
        family = ref["family"]
        params = preset_params(
            family,
            ss.get_preset(ref["name"]),
            max_frames=config.max_frames,
            max_image_px=config.max_image_px,
        )
        match = next(
            (
                t.number
                for t in sorted(trials, key=lambda t: t.number)
                if t.params.get("family") == family
                and all(t.params.get(k) == v for k, v in params.items())
                and t.number in by_number
            ),
            None,
        )
        row = by_number.get(match) if match is not None else None
        if row is None or row.get("macro_f1") is None:
            out.append(ref)
            continue
        mean = row.get("macro_f1_mean")
        mean = row["macro_f1"] if mean is None else mean
        ci = row.get("macro_f1_ci95")
        f1 = f"{mean:.3f}" + (f" ± {ci:.3f}" if ci is not None else "")
        if row.get("pareto"):
            status = "on the front"
        elif stopped.get(match):
            status = "stopped early by successive halving"
        elif row.get("dominated_by") is not None:
            status = f"dominated by #{row['dominated_by']} ({row['dominance']})"
        else:
            status = "not on the front"
        note = f"at the search's input caps it is trial #{match}: macro-F1 {f1}, {status}"
        ref = dict(ref, at_caps=match, note="; ".join(n for n in (ref.get("note"), note) if n))
        out.append(ref)
    return out


def _write_report(out: Path) -> tuple[Path | None, str]:
    """report.html via the reports package (the same builder as ``explorer report``)."""
    from reports import report_page

    path = out / "report.html"
    try:
        write_text_atomic(path, report_page(out))
    except Exception as exc:  # the results are written; a chart failure must not lose them
        return (
            None,
            f"report.html failed: {type(exc).__name__}: {exc} (run `explorer report {out}`)",
        )
    return path, ""
