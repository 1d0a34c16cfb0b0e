"""``explorer export MODEL --onnx FILE``: ONNX export checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._output import Format, print_json, print_table


@app.command("export")
def export_command(
    model: str = typer.Argument(..., help="Checkpoint, preset or family:k=v."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (>= 17)."),
    batch: int = typer.Option(1, "--batch", help="Fixed batch size of the exported graph."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Symbolic batch dimension."),
    exporter: str = typer.Option("auto", "--exporter", help="auto, torchscript or dynamo."),
    int8: bool = typer.Option(False, "--int8", help="Dynamic INT8 quantisation (ONNX Runtime)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare with PyTorch outputs."),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Export to ONNX and verify the outputs against PyTorch on the same inputs."""
    from explorer.errors import UsageError
    from explorer.export import export_onnx, quantize_int8
    from explorer.files import check_output_path
    from explorer.models import resolve_model

    check_output_path(onnx, what="--onnx")
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    resolved = resolve_model(model, batch_size=batch)
    result = export_onnx(
        resolved.model,
        resolved.example_inputs,
        onnx,
        opset=opset,
        dynamic_batch=dynamic_batch,
        check=check,
        exporter=exporter,
    )
    d = result.to_dict()
    if int8:
        d["int8"] = quantize_int8(onnx, resolved.model, resolved.example_inputs)
    d["model"] = model
    if format is Format.json:
        print_json(d)
        return
    print_table([(k, v) for k, v in d.items()], ["field", "value"], title=f"exported {onnx}")
