"""``explorer prune``: prune a trained model structurally to a device budget, fine-tune, prove."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, human, print_json, print_table
from ._paths import check_writable

if TYPE_CHECKING:
    from explorer.pruning import PruneReport


def _fmt(value, unit: str = "", digits: str = ".4f") -> str:
    if value is None:
        return "-"
    if unit in ("", "B") and isinstance(value, int):
        return human(value, unit)
    return f"{value:{digits}}{unit}"


def _change(before, after) -> str:
    if before is None or after is None:
        return "-"
    if before and isinstance(before, (int, float)) and abs(before) > 0:
        return f"{(after - before) / before:+.1%}"
    return f"{after - before:+.4f}"


@app.command("prune")
def prune_command(
    model: str = typer.Argument(
        ..., help="Checkpoint (.pt from explorer train/search/prune), preset, or module:function."
    ),
    device: str = typer.Option(..., "--device", help="Device key for predicted latency."),
    budget: str = typer.Option(
        ...,
        "--budget",
        help="As in search (1e9flops, 300M macs, 2M params, 4MB, 20ms, 20ms@rpi4) or relative "
        "to the model (50%flops, 30%params, 50%latency).",
    ),
    dataset: str = typer.Option(
        "synthetic", "--dataset", help="Data for fine-tuning and accuracy; 'none' skips both."
    ),
    finetune_epochs: int = typer.Option(2, "--finetune-epochs", help="Epochs after each step."),
    importance: str = typer.Option("magnitude", "--importance", help="magnitude or taylor."),
    steps: int = typer.Option(2, "--steps", help="Pruning steps (fine-tuning between them)."),
    round_to: int = typer.Option(
        1, "--round-to", help="Keep channel counts a multiple of N (8 helps SIMD kernels)."
    ),
    lr: float = typer.Option(5e-4, "--lr", help="Fine-tuning learning rate."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1),
    runs: int | None = typer.Option(None, "--runs", help="ONNX Runtime timed runs (auto)."),
    no_bench: bool = typer.Option(False, "--no-bench", help="Skip the ONNX Runtime timing."),
    onnx: Path | None = typer.Option(None, "--onnx", help="Also export the pruned model here."),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp16 or int8: compare the pruned model's validation macro-F1 at that precision "
        "with FP32 (ONNX Runtime).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Pruned checkpoint to write (.pt)."),
    weights: Path | None = typer.Option(
        None, "--weights", help="A plain state_dict file (.pt/.pth) to load into MODEL."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Prune MODEL until --budget holds on --device, fine-tune, and compare before/after."""
    from explorer.files import check_output_path
    from explorer.pruning import prune_checkpoint

    for path, option in ((out, "--out"), (onnx, "--onnx")):
        if path is not None:
            check_writable(path, option=option)
            check_output_path(path, what=option)  # not a device/FIFO

    report = prune_checkpoint(
        model,
        device=device,
        budget=budget,
        out=out,
        dataset=None if dataset.strip().lower() == "none" else dataset,
        finetune_epochs=finetune_epochs,
        importance=importance,
        steps=steps,
        round_to=round_to,
        lr=lr,
        seed=seed,
        bench_runs=runs,
        measure=not no_bench,
        onnx=onnx,
        precision=precision,
        weights=weights,
    )
    if format is Format.json:
        print_json(report.to_dict())
        return
    rows = _rows(report)
    bud = report.pruning.to_dict()
    print_table(
        rows,
        ["", "before", "after", "change"],
        title=f"pruned to {bud['budget']} ({bud['metric']} <= {bud['limit']:.4g}: "
        f"{'met' if bud['met'] else 'NOT met'})",
        right_align=(1, 2, 3),
    )
    kept = report.kept_intact
    if kept:
        print_table(sorted(kept.items()), ["kept intact", "why"])
    if report.checkpoint:
        typer.echo(
            f"wrote {report.checkpoint} (reloads safely; outputs match to "
            f"{report.reload_max_abs_diff:.2g})"
        )
    if report.onnx is not None:
        typer.echo(
            f"exported {report.onnx.path} (ONNX Runtime matches to {report.onnx.max_abs_diff:.2g})"
        )


def _rows(report: PruneReport) -> list[tuple[str, str, str, str]]:
    """The before/after table: costs, times, scores, and the lower precision when asked."""
    b, a = report.before, report.after

    def score(before: float | None, after: float | None) -> str:
        return "-" if before is None or after is None else f"{after - before:+.4f}"

    rows = [
        ("params", _fmt(b.params), _fmt(a.params), _change(b.params, a.params)),
        ("MACs", _fmt(b.macs), _fmt(a.macs), _change(b.macs, a.macs)),
        ("FLOPs", _fmt(b.flops), _fmt(a.flops), _change(b.flops, a.flops)),
        (
            f"predicted ms ({report.device})",
            _fmt(b.predicted_ms, "", ".3f"),
            _fmt(a.predicted_ms, "", ".3f"),
            _change(b.predicted_ms, a.predicted_ms),
        ),
        (
            "ONNX Runtime ms (here, 1 thread)",
            _fmt(b.ort_ms, "", ".3f"),
            _fmt(a.ort_ms, "", ".3f"),
            _change(b.ort_ms, a.ort_ms),
        ),
        ("accuracy", _fmt(b.accuracy), _fmt(a.accuracy), score(b.accuracy, a.accuracy)),
        ("macro-F1", _fmt(b.macro_f1), _fmt(a.macro_f1), score(b.macro_f1, a.macro_f1)),
    ]
    dep = report.deployment
    if dep is not None:
        check = dep.check
        rows.append(
            (
                f"macro-F1 ONNX fp32 -> {check.precision}",
                _fmt(check.fp32_macro_f1),
                _fmt(check.macro_f1),
                f"{check.macro_f1 - check.fp32_macro_f1:+.4f}",
            )
        )
        if dep.predicted_ms is not None:
            rows.append(
                (
                    f"predicted ms at {check.precision} ({dep.target})",
                    "",
                    _fmt(dep.predicted_ms, "", ".3f"),
                    "",
                )
            )
    return rows
