"""``explorer search`` and ``explorer worker``: the budget-constrained architecture search."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from explorer.budget import parse_budget, tighten
from explorer.errors import UsageError
from explorer.search import (  # light: Optuna and torch load on first use of the heavy names
    SEARCH_DATASET,
    SEARCH_EPOCHS,
    SEARCH_MIN_EPOCHS,
    SEARCH_SCREEN,
    SearchConfig,
    default_workers,
    get_objective,
    objective_names,
    parse_duration,
)

if TYPE_CHECKING:
    from explorer.search import SearchResult, TrialEvent

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, err_console, human, print_json, print_table


def _families(values: list[str] | None) -> tuple[str, ...]:
    import search_spaces as ss

    names = tuple(n.strip() for v in values or () for n in v.split(",") if n.strip())
    for name in names:
        ss.get_family(name)  # unknown -> ConfigError naming the valid ones
    return names


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trials  best macro-F1 {task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}", style="dim"),
        console=err_console,
        transient=False,
    )
    task = bar.add_task("search", total=total, best="-", note="")
    started = False

    def update(event: TrialEvent) -> None:
        nonlocal started
        if not started:  # shown once the study is open, so argument errors print alone
            bar.start()
            started = True
        best = f"{event.best_f1:.3f}" if event.best_f1 is not None else "-"
        if event.state == "START":
            note = f"resuming: {event.done} trials done" if event.done else ""
        elif event.state == "FAIL":
            note = f"#{event.number} failed: {event.note[:60]}"
        elif not event.feasible:
            note = f"#{event.number} infeasible"
        else:
            note = f"#{event.number} macro-F1 {event.macro_f1:.3f}" if event.macro_f1 else ""
        bar.update(task, completed=event.done, total=event.total, best=best, note=note)

    try:
        yield update
    finally:
        if started:
            bar.stop()


def _f1_text(row: dict[str, Any]) -> str:
    """``0.512 ± 0.041 (n=3)``: mean and 95 % half-width over the evaluations."""
    mean = row.get("macro_f1_mean")
    if mean is None:
        mean = row.get("macro_f1")
    if mean is None:
        return "-"
    ci = row.get("macro_f1_ci95")
    n = row.get("evaluations") or 1
    return f"{mean:.3f} ± {ci:.3f} (n={n})" if ci is not None else f"{mean:.3f} (n={n})"


def _dominance_text(row: dict[str, Any]) -> str:
    if row.get("dominated_by") is None:
        # a trained preset no front member dominates: say so, it beats the search there
        return "not dominated by the front" if row.get("trained") else ""
    return f"dominated by #{row['dominated_by']} ({row['dominance']})"


def _summary(result: SearchResult, fmt: Format) -> None:
    if fmt is Format.json:
        print_json(
            {
                "study": result.config.study,
                "out_dir": str(result.out_dir),
                "results_csv": str(result.results_csv),
                "report_html": str(result.report_html) if result.report_html else None,
                "stopped": result.stopped,
                "wall_seconds": result.wall_seconds,
                "counts": result.counts,
                "pareto": result.pareto_rows,
                "references": list(result.references),
            }
        )
        return
    device = result.config.device
    cost_name = get_objective(result.config.objective).title(device)
    rows = []
    for r in result.pareto_rows:
        rows.append(
            (
                r["number"],
                r["family"],
                _f1_text(r),
                f"{r['accuracy']:.3f}",
                f"{r['cost']:.4g}",
                human(r["flops"] or 0),
                human(r["params"] or 0),
                r["checkpoint"] or "-",
            )
        )
    c = result.counts
    title = (
        f"Pareto front of {result.config.study}: {c['complete']} trials ({c['feasible']} within "
        f"budget, {c['infeasible']} over, {c['failed']} failed), {result.wall_seconds:.0f} s"
    )
    print_table(
        rows,
        [
            "trial",
            "family",
            "macro-F1 (mean ± 95 %)",
            "accuracy",
            cost_name,
            "FLOPs",
            "params",
            "checkpoint",
        ],
        title=title,
        right_align=(0, 2, 3, 4, 5, 6),
    )
    best = result.best_per_family
    if len(best) > 1:
        print_table(
            [
                (
                    r["family"],
                    r["number"],
                    _f1_text(r),
                    f"{r['cost']:.4g}",
                    "yes" if r["number"] in result.pareto else _dominance_text(r) or "no",
                )
                for r in best
            ],
            ["family", "trial", "macro-F1", cost_name, "on front"],
            title="Best fully trained candidate of each family",
            right_align=(1, 2, 3),
        )
    if result.references:
        refs = []
        for r in result.references:
            f1 = _f1_text(r)
            note = "; ".join(n for n in (r.get("note", ""), _dominance_text(r)) if n)
            refs.append(
                (
                    r["name"],
                    f1,
                    f"{r.get(f'predicted_ms_{device}', float('nan')):.4g}",
                    human(r["flops"]),
                    human(r["params"]),
                    "yes" if r["feasible"] else "no",
                    note,
                )
            )
        print_table(
            refs,
            ["paper preset", "macro-F1", f"ms on {device}", "FLOPs", "params", "fits", "note"],
            title="The papers' models, same data and budget",
            right_align=(1, 2, 3, 4),
        )
    where = result.report_html or result.results_csv
    err_console.print(f"results: {result.results_csv}   report: {where}")
    if result.report_note:
        err_console.print(f"[yellow]{result.report_note}")
    if result.stopped != "trials":
        err_console.print(f"stopped early ({result.stopped}); re-run the command to resume")


def _workers(text: str) -> int:
    if text.strip().lower() == "auto":
        return default_workers()
    try:
        value = int(text)
    except ValueError:
        value = 0
    limit = 4 * _cores()
    if not 1 <= value <= limit:
        raise UsageError(
            f"--workers {text!r} is invalid: use auto or an integer from 1 to {limit} "
            "(4 per core of this machine; each worker trains on one core)"
        )
    return value


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@app.command("search")
def search_command(
    device: str = typer.Option(..., "--device", help="Target device key, alias or .toml file."),
    budget: list[str] = typer.Option(
        None,
        "--budget",
        help="Repeatable: 1e9flops, 500Mflops, 300M macs, 2M params, 4MB, 20ms, 20ms@rpi4.",
    ),
    families: list[str] = typer.Option(
        None, "--families", help="Families to search, comma-separated (default: all + hybrid)."
    ),
    trials: int = typer.Option(40, "--trials", help="Completed trials the study should hold."),
    timeout: str = typer.Option(
        "4.5m",
        "--timeout",
        help="Wall-time bound of the whole run, e.g. 90s, 10m, 1h (default 4.5m, so the "
        "default search ends within 5 minutes on two cores; the last 30 % is kept for the "
        "confirmation stage; 'none' for no bound).",
    ),
    dataset: str = typer.Option(
        SEARCH_DATASET, "--dataset", help="synthetic[:options], ravdess:DIR, cremad:DIR."
    ),
    split: str = typer.Option("actor", "--split", help="actor (independent) or stratified."),
    storage: str = typer.Option(
        None,
        "--storage",
        envvar="EXPLORER_STORAGE",  # keeps a PostgreSQL password out of `ps`
        help="Optuna storage URL (default: sqlite file study.db in the run directory; or set "
        "EXPLORER_STORAGE, which keeps a password off the command line).",
    ),
    study: str = typer.Option(None, "--study", help="Study name (default: device_budgets)."),
    out: Path = typer.Option(None, "--out", help="Run directory (default: runs/<study>)."),
    sampler: str = typer.Option(
        "screen",
        "--sampler",
        help="screen (random candidates priced before training, the one with the largest "
        "expected hypervolume gain trained: no trial is spent over the budget), random, nsga2, "
        "tpe or gp (Gaussian process); compared in benchmarks/search_efficiency.py.",
    ),
    screen: int = typer.Option(
        SEARCH_SCREEN,
        "--screen",
        help="Candidates the screen sampler prices per trial (about 0.3 s each; none trains).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Sampler and training seed."),
    objective: str = typer.Option(
        "latency",
        "--objective",
        help="Cost to minimise: "
        + ", ".join(f"{n} ({get_objective(n).help})" for n in objective_names())
        + ".",
    ),
    epochs: int = typer.Option(
        SEARCH_EPOCHS, "--epochs", help="Training epochs per trial (low fidelity)."
    ),
    population: int = typer.Option(
        8,
        "--population",
        help="NSGA-II population size; TPE and GP draw this many at random first (the screen "
        "starts after the first round of one trial per family).",
    ),
    min_epochs: int = typer.Option(
        SEARCH_MIN_EPOCHS,
        "--min-epochs",
        help="First rung of successive halving: every candidate trains this many epochs, "
        "the top third (per family, or on the rung's front) goes on to 3x as many, and so on "
        "up to --epochs.",
    ),
    confirm_seeds: int = typer.Option(
        2,
        "--confirm-seeds",
        help="After the search, retrain each front member and fitting paper preset with this "
        "many further seeds; the front is decided on mean macro-F1 (0: off).",
    ),
    max_frames: int = typer.Option(2, "--max-frames", help="Cap on video frames drawn (0: none)."),
    max_image_size: int = typer.Option(
        48, "--max-image-size", help="Cap on the face-crop side in pixels drawn (0: none)."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, max=1024, help="torch threads while training (see docs)."
    ),
    workers: str = typer.Option(
        "auto",
        "--workers",
        help="Processes training trials in parallel on this machine, one core each "
        "(auto: one per core, at most 4).",
    ),
    heartbeat: int = typer.Option(
        10,
        "--heartbeat",
        help="Seconds between trial heartbeats; a trial silent for 3x this "
        "(its process was killed) is marked failed.",
    ),
    references: bool = typer.Option(
        True,
        "--references/--no-references",
        help="Train the papers' presets that fit the budget, for comparison.",
    ),
    paper_starts: bool = typer.Option(
        True,
        "--paper-starts/--no-paper-starts",
        help="Start a family whose paper model fits the budget from that model, at the "
        "search's input caps.",
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Search the families for the Pareto front of macro-F1 against cost on a device."""
    budgets, notices = tighten([parse_budget(b) for b in budget or ()])
    for notice in notices:
        typer.echo(f"note: {notice}", err=True)
    config = SearchConfig(
        device=device,
        budgets=budgets,
        families=_families(families),
        trials=trials,
        timeout_s=None if (timeout or "none").lower() in ("none", "0") else parse_duration(timeout),
        dataset=dataset,
        split=split,
        storage=storage,
        study=study or "",
        out_dir=out or Path("runs"),
        sampler=sampler,
        seed=seed,
        objective=objective,
        epochs=epochs,
        population=population,
        screen=screen,
        min_epochs=min_epochs,
        confirm_seeds=confirm_seeds,
        max_frames=max_frames or None,
        max_image_px=max_image_size or None,
        reference_presets=references,
        paper_starts=paper_starts,
        heartbeat_s=heartbeat,
        threads=threads,
        workers=_workers(workers),
    )
    if out is None:
        config = replace(config, out_dir=Path("runs") / config.study)
    with _progress(format is Format.table, config.trials) as update:
        from explorer.search import run_search

        result = run_search(config, progress=update)
    _summary(result, format)


@app.command("worker")
def worker_command(
    storage: str = typer.Option(
        ...,
        "--storage",
        envvar="EXPLORER_STORAGE",  # keeps a PostgreSQL password out of `ps`
        show_envvar=True,
        help="The study's Optuna storage URL (or set EXPLORER_STORAGE).",
    ),
    study: str = typer.Option(..., "--study", help="Name of a study `explorer search` created."),
    trials: int = typer.Option(None, "--trials", help="Override the study's target trial count."),
    timeout: str = typer.Option(None, "--timeout", help="Wall-time bound, e.g. 90s, 10m, 1h."),
    out: Path = typer.Option(
        None,
        "--out",
        help="Where this worker writes checkpoints and "
        "results (default: the run directory stored on the study).",
    ),
    seed: int = typer.Option(
        None, "--seed", min=0, max=2**31 - 1, help="Sampler seed (default: from the process id)."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Join a study in a shared storage and run its trials until it holds its target count."""
    with _progress(format is Format.table, trials or 0) as update:
        from explorer.search import run_worker as _run_worker

        result = _run_worker(
            storage,
            study,
            trials=trials,
            timeout_s=parse_duration(timeout) if timeout else None,
            out_dir=out,
            seed=seed,
            progress=update,
        )
    _summary(result, format)
