"""``explorer train``: train one model on a data set and save a safe checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, err_console, print_json, print_table
from ._paths import check_writable
from ._torch_device import old_device_option, refuse_old_device, torch_device_option


@app.command("train")
def train_command(
    model: str = typer.Argument(
        ..., help="Preset (ding2025), family:key=value, or a checkpoint to fine-tune."
    ),
    dataset: str = typer.Option(
        "synthetic", "--dataset", help="synthetic[:key=value,...], ravdess:DIR or cremad:DIR."
    ),
    split: str = typer.Option(
        "actor", "--split", help="actor (honest default), stratified, kfold or loao."
    ),
    fold: int = typer.Option(0, "--fold", help="Fold of kfold / loao."),
    epochs: int = typer.Option(
        100,
        "--epochs",
        help="Maximum epochs (early stopping usually ends sooner). The synthetic default's 288 "
        "training clips make 9 batches of 32 per epoch: ding2025 needs 40-80 epochs.",
    ),
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate."),
    weight_decay: float = typer.Option(0.0, "--weight-decay"),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam or adamw."),
    patience: int = typer.Option(
        15, "--patience", help="Early-stopping patience in epochs (on validation loss)."
    ),
    augment: bool = typer.Option(
        False,
        "--augment",
        help="The papers' augmentations (flip, rotation, brightness, noise, stretch).",
    ),
    samples_per_clip: int = typer.Option(
        1, "--samples-per-clip", help="Samples cut from each clip (Ding et al.: 6)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1),
    torch_device: str = torch_device_option("auto", help="cpu, cuda or auto."),
    old_device: str | None = old_device_option(),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp16 or int8: also export at that precision and compare validation macro-F1 "
        "with FP32 (both in ONNX Runtime).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Checkpoint to write (.pt)."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Train MODEL with early stopping and report validation metrics; --out saves a checkpoint."""
    from explorer.files import check_output_path
    from explorer.training import TrainSettings, train_model

    refuse_old_device(old_device, choices="cpu|cuda|auto")
    if out is not None:
        check_writable(out)  # before the training, not after it
        check_output_path(out, what="--out")  # not a device/FIFO

    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        optimizer=optimizer,
        patience=patience,
        augment=augment,
        seed=seed,
        device=torch_device,
    )
    report = train_model(
        model,
        dataset=dataset,
        split=split,
        fold=fold,
        settings=settings,
        samples_per_clip=samples_per_clip,
        out=out,
        progress=format is not Format.json,
        precision=precision,
    )
    if format is Format.json:
        print_json(report)
        return
    m = report["metrics"]
    rows = [
        ("model", report["model"]),
        ("dataset", f"{report['dataset']} ({report['samples']} samples)"),
        (
            "split",
            f"{report['split']['kind']}: {report['split']['train']} train / "
            f"{report['split']['val']} val",
        ),
        ("epochs run (best)", f"{report['epochs_run']} ({report['best_epoch']})"),
        (
            "features s",
            f"{report['feature_seconds']:.2f}"
            + (" (cache)" if report["features_from_cache"] else ""),
        ),
        ("s / epoch", f"{report['seconds_per_epoch']:.2f}"),
        ("accuracy (WA)", f"{m['accuracy']:.4f}"),
        ("UA", f"{m['unweighted_accuracy']:.4f}"),
        ("macro-F1", f"{m['macro_f1']:.4f}"),
        ("precision", f"{m['precision']:.4f}"),
        ("recall", f"{m['recall']:.4f}"),
    ]
    dep = report.get("deployment")
    if dep:
        rows += [
            (
                f"macro-F1 ONNX fp32 -> {dep['precision']}",
                f"{dep['fp32_macro_f1']:.4f} -> {dep['macro_f1']:.4f} "
                f"({dep['macro_f1_change']:+.4f})",
            ),
            (f"{dep['precision']} top-1 agreement", f"{dep['top1_agreement']:.1%}"),
        ]
    if report.get("checkpoint"):
        rows.append(("checkpoint", report["checkpoint"]))
    print_table(rows, ["item", "value"], title="training result")
    names = report["class_names"]
    print_table(
        [(names[i], *row) for i, row in enumerate(m["confusion"])],
        ["true \\ pred", *[n[:5] for n in names]],
        title="confusion matrix (validation)",
        right_align=range(1, len(names) + 1),
    )
    if report["skipped"]:
        err_console.print(f"{len(report['skipped'])} clip(s) skipped; see explorer data inspect")
