"""``explorer explain CKPT --out explain.html``: Integrated-Gradients attributions per class and
modality, as a standalone HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._output import Format, print_json, print_table


@app.command("explain")
def explain_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) from explorer train/prune."),
    dataset: str = typer.Option(
        "synthetic", "--dataset", help="The data set it was trained on (validation clips)."
    ),
    samples_per_class: int = typer.Option(
        8, "--samples-per-class", help="Validation samples attributed per class."
    ),
    steps: int = typer.Option(32, "--steps", help="Integrated-Gradients steps per sample."),
    seed: int = typer.Option(0, "--seed", help="Split and sample choice (as in explorer train)."),
    out: Path | None = typer.Option(None, "--out", help="HTML page to write."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Which modality and which parts of it each class's prediction rests on (Captum IG)."""
    from explorer.explain import explain_checkpoint
    from explorer.files import check_output_path, write_text_atomic

    if out is not None:
        check_output_path(out, what="--out")  # before the attributions, not after them
    explanation = explain_checkpoint(
        checkpoint,
        dataset=dataset,
        samples_per_class=samples_per_class,
        steps=steps,
        seed=seed,
    )
    written = None
    if out is not None:
        from reports.explain import explain_page

        written = write_text_atomic(out, explain_page(explanation), what="--out")
    if format is Format.json:
        print_json(explanation.to_dict() | {"html": str(written) if written else None})
        return
    print_table(
        [
            (c.class_name, c.samples, f"{c.audio_share:.1%}", f"{c.video_share:.1%}")
            for c in explanation.classes
        ],
        ["class", "samples", "audio share", "video share"],
        title=f"Integrated Gradients of {explanation.model} ({explanation.audio_kind} + frames)",
        right_align=(1, 2, 3),
    )
    typer.echo(
        f"completeness: max |delta| {explanation.max_abs_delta:.3g} vs logit changes up to "
        f"{explanation.max_abs_logit_change:.3g} ({explanation.steps} steps)"
    )
    if written:
        typer.echo(f"wrote {written}")
