"""``explorer bench MODEL...``: measured latency on ONNX Runtime, PyTorch or TensorRT."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, print_csv, print_json, print_table
from ._torch_device import old_device_option, refuse_old_device, torch_device_option


class BackendName(str, Enum):  # noqa: UP042 - typer needs a str Enum for choices
    ort = "ort"
    torch = "torch"
    tensorrt = "tensorrt"


@app.command("bench")
def bench_command(
    models: list[str] = typer.Argument(
        ..., metavar="MODEL...", help="Preset, family:k=v, checkpoint."
    ),
    backend: BackendName = typer.Option(
        BackendName.ort, "--backend", help="ort, torch or tensorrt."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, max=1024, help="Intra-op threads (CPU backends)."
    ),
    runs: int = typer.Option(0, "--runs", help="Timed runs (0: enough for about 1 s, 15-300)."),
    warmup: int = typer.Option(
        10, "--warmup", help="Untimed warm-up runs (at most; they stop once they took 2 s)."
    ),
    batch: int = typer.Option(1, "--batch", help="Batch size."),
    torch_device: str = torch_device_option("cpu", help="torch backend: cpu or cuda[:i]."),
    old_device: str | None = old_device_option(),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="ort/tensorrt: fp32, fp16 or int8 (the export is converted; INT8 static QDQ).",
    ),
    onnx: Path = typer.Option(None, "--onnx", help="ort/tensorrt: time this ONNX file."),
    clock: str = typer.Option(
        "wall",
        "--clock",
        help="wall, or cpu: thread CPU time (one thread; robust on a busy machine).",
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="A plain state_dict file (.pt/.pth) to load into MODEL."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Warm-up, many timed runs, median reported; JSON holds raw timings and the environment.

    `explorer bench MODEL --format json > FILE` on a board, then
    `explorer calibrate --from-measurements FILE --device KEY` here fits that board.
    """
    from explorer.errors import UsageError
    from explorer.latency import BenchSettings, bench
    from explorer.models import resolve_model
    from explorer.quantize import check_precision

    refuse_old_device(old_device, choices="cpu|cuda")
    precision = check_precision(precision)
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, got {batch}")
    if weights is not None and len(models) > 1:
        raise UsageError("--weights fits one model: give one MODEL with it")
    if onnx is not None and len(models) > 1:
        raise UsageError("--onnx times one file: give one MODEL with it")
    if onnx is not None and not onnx.is_file():
        raise UsageError(f"ONNX file {str(onnx)!r} does not exist")
    settings = BenchSettings(
        runs=runs or None,
        warmup=warmup,
        threads=threads,
        device=torch_device,
        precision=precision,
        onnx_path=onnx,
        clock=clock,
    )
    results = []
    for text in models:
        resolved = resolve_model(text, batch_size=batch, weights=weights, activations=True)
        results.append(
            bench(
                resolved.model,
                resolved.example_inputs,
                backend=backend.value,
                settings=settings,
                name=text,
            )
        )
    if format is Format.json:
        print_json(results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results])
        return
    if format is Format.csv:
        print_csv([r.to_dict(timings=False) | {"environment": ""} for r in results])
        return
    rows = [
        (
            r.model,
            r.backend,
            r.precision,
            r.device,
            r.threads or "",
            r.batch_size,
            f"{r.median_ms:.3f}",
            f"{r.p10_ms:.3f}",
            f"{r.p90_ms:.3f}",
            r.runs,
        )
        for r in results
    ]
    print_table(
        rows,
        [
            "model",
            "backend",
            "precision",
            "device",
            "threads",
            "batch",
            "median ms",
            "p10 ms",
            "p90 ms",
            "runs",
        ],
        title="latency",
        right_align=(4, 5, 6, 7, 8, 9),
    )
