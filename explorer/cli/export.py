"""``explorer export MODEL --onnx FILE``: ONNX export checked against PyTorch, at FP32, FP16 or
INT8."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, print_json, print_table


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="Checkpoint, preset or family:k=v."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file."),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="fp32, fp16 (converted graph, float32 IO) or int8 (static QDQ, calibrated).",
    ),
    dataset: str = typer.Option(
        "synthetic", "--dataset", help="int8/fp16: data set whose samples calibrate and compare."
    ),
    calibration_samples: int = typer.Option(
        64, "--calibration-samples", help="int8/fp16: clips drawn from --dataset."
    ),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (>= 17)."),
    batch: int = typer.Option(1, "--batch", help="Fixed batch size of the exported graph."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Symbolic batch dimension."),
    exporter: str = typer.Option("auto", "--exporter", help="auto, torchscript or dynamo."),
    int8: bool = typer.Option(False, "--int8", help="Same as --precision int8."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare with PyTorch outputs."),
    weights: Path | None = typer.Option(
        None, "--weights", help="A plain state_dict file (.pt/.pth) to load into MODEL."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Export to ONNX and verify the outputs against PyTorch on the same inputs.

    At fp16/int8 the FP32 export is checked against PyTorch first, then converted; the report
    gives the converted graph's logit difference from FP32 on the calibration samples.
    """
    from explorer.errors import UsageError
    from explorer.files import check_output_path
    from explorer.models import resolve_model
    from explorer.quantize import calibration_feeds, check_precision, export_at_precision

    check_output_path(onnx, what="--onnx")
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    precision = "int8" if int8 else check_precision(precision)
    resolved = resolve_model(model, batch_size=batch, weights=weights, activations=True)
    feeds = None
    if precision != "fp32":
        if resolved.input_spec is None:
            raise UsageError(
                f"--precision {precision} calibrates on data, but {model!r} declares no "
                "input_spec: use a preset, family:k=v or an explorer checkpoint"
            )
        feeds = calibration_feeds(
            resolved.input_spec,
            dataset=dataset,
            samples=calibration_samples,
            batch_size=batch,
            normalization=_normalization(model),
        )
    exported, converted = export_at_precision(
        resolved.model,
        resolved.example_inputs,
        onnx,
        precision=precision,
        feeds=feeds,
        opset=opset,
        dynamic_batch=dynamic_batch,
        check=check,
        exporter=exporter,
    )
    d = exported.to_dict()
    d["precision"] = precision
    if converted is not None:
        d[precision] = converted.to_dict() | {"dataset": dataset}
    d["model"] = model
    if format is Format.json:
        print_json(d)
        return
    rows = [(k, v) for k, v in d.items() if k != precision]
    if converted is not None:
        rows += [
            (f"{precision} max |diff| vs fp32", f"{converted.max_abs_diff:.3g}"),
            (f"{precision} mean |diff| vs fp32", f"{converted.mean_abs_diff:.3g}"),
            ("fp32 max |logit|", f"{converted.max_abs_logit:.3g}"),
            (f"{precision} top-1 agreement", f"{converted.top1_agreement:.1%}"),
            ("calibration", f"{converted.samples} samples of {dataset}"),
            ("size bytes (fp32)", f"{converted.size_bytes} ({converted.fp32_size_bytes})"),
        ]
    print_table(rows, ["field", "value"], title=f"exported {onnx}")


def _normalization(model: str) -> dict | None:
    """A checkpoint's training-set audio statistics, so calibration sees what training did."""
    path = Path(model)
    if path.suffix not in (".pt", ".pth", ".ckpt") or not path.is_file():
        return None
    from explorer.checkpoints import load_checkpoint

    return load_checkpoint(path).extra.get("audio_normalization") or None
