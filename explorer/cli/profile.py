"""``explorer profile MODEL``: MACs, FLOPs, bytes, intensity, per-device roofline, cross-checks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import typer

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, human, print_csv, print_json, print_table

_CSV_COLUMNS = (
    "module",
    "module_type",
    "op",
    "kind",
    "macs",
    "flops",
    "elementwise_flops",
    "bytes_read",
    "bytes_written",
    "weight_bytes",
    "intensity",
    "input_shape",
    "output_shape",
)


@app.command("profile")
def profile_command(
    model: str = typer.Argument(
        ..., help="Preset (ding2025), family:key=value, checkpoint .pt, or module:function."
    ),
    device: list[str] = typer.Option(
        [], "--device", "-d", help="Device key, alias or .toml path (repeatable)."
    ),
    per_layer: bool = typer.Option(False, "--per-layer", help="Also list every module's ops."),
    counters: str | None = typer.Option(
        None,
        "--counters",
        help="Cross-check with external counters: torch,fvcore,thop,nni (nni: extra [nni]).",
    ),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="Batch of the example."),
    input_shape: str | None = typer.Option(
        None,
        "--input-shape",
        help="The input of a module:function model without an input spec, e.g. 1x3x224x224 "
        "(explorer.zoo:resnet18).",
    ),
    real: bool = typer.Option(
        False, "--real", help="Run the real forward instead of fake (shape-only) tensors."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="A plain state_dict file (.pt/.pth) to load into MODEL."
    ),
    precision: str = typer.Option(
        "fp32",
        "--precision",
        help="Predict at fp16/int8: each device's target of that precision, else its peak "
        "for it (bytes scaled per element).",
    ),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Count a model's cost per operator and predict its roofline latency per device."""
    import device_profiles
    from explorer.models import resolve_model
    from explorer.profiling import parse_counters, profile_report
    from explorer.quantize import check_precision, device_at_precision

    precision = check_precision(precision)
    devices = [device_profiles.get(key) for key in device]
    if precision != "fp32":
        devices = [device_at_precision(d, precision) for d in devices]
    counter_names = parse_counters(counters) if counters else ()
    from explorer.measurements import parse_shape

    shape = parse_shape(input_shape, "--input-shape") if input_shape else None
    resolved = resolve_model(model, batch_size=batch_size, weights=weights, input_shape=shape)
    report = profile_report(
        resolved.model,
        resolved.example_inputs,
        name=resolved.name,
        devices=devices,
        counters=counter_names,
        meta=False if real else None,
    )
    if format is Format.json:
        print_json(report.to_dict(layers=True))
    elif format is Format.csv:
        rows = [op.to_dict() for op in report.profile.ops]
        for row in rows:
            for key in ("input_shape", "output_shape"):
                row[key] = "x".join(str(s) for s in row[key])
        print_csv(rows, _CSV_COLUMNS)
    else:
        _print_tables(report, per_layer=per_layer)


def _print_tables(report: Any, *, per_layer: bool) -> None:
    p = report.profile
    rows = [
        ("parameters", f"{p.params:,}", human(p.params)),
        ("MACs (multiply-accumulates)", f"{p.macs:,}", human(p.macs)),
        ("FLOPs (dense, 2 per MAC)", f"{p.flops:,}", human(p.flops)),
        ("elementwise FLOPs (separate)", f"{p.elementwise_flops:,}", human(p.elementwise_flops)),
        ("weight bytes", f"{p.weight_bytes:,}", human(p.weight_bytes, "B")),
        (
            "peak activation bytes",
            f"{p.peak_activation_bytes:,}",
            human(p.peak_activation_bytes, "B"),
        ),
        ("traffic bytes (unfused)", f"{p.traffic_bytes:,}", human(p.traffic_bytes, "B")),
        ("AI weights (FLOPs / weight byte)", f"{p.ai_weights:.2f}", ""),
        ("AI traffic (FLOPs / traffic byte)", f"{p.ai_traffic:.2f}", ""),
    ]
    title = f"{p.model}: batch {p.batch_size}" + (" (fake tensors)" if p.meta else "")
    print_table(rows, ["quantity", "value", ""], title=title, right_align=(1, 2))
    if p.uncounted_ops:
        print_table([(op,) for op in p.uncounted_ops], ["ops without a cost rule (0 FLOPs)"])
    if report.predictions:
        print_table(
            [
                (
                    pr.device,
                    f"{pr.roofline_ms:.3f}",
                    f"{pr.ms:.3f}",
                    pr.bound,
                    "yes" if pr.calibrated else "no",
                )
                for pr in report.predictions
            ],
            ["device", "roofline ms", "predicted ms", "bound", "calibrated"],
            title="per-operator roofline: Σ max(FLOPs / peak, bytes / bandwidth)",
            right_align=(1, 2),
        )
    if report.counters:
        print_table(
            [
                (
                    c.name,
                    f"{c.flops:,}",
                    f"{c.relative_diff:+.1%}",
                    "DIFFERS" if c.differs else "ok",
                    f"{c.missed_macs:,}",
                    "; ".join(c.skipped) or "-",
                )
                for c in report.counters
            ],
            ["counter", "FLOPs (2×MACs)", "vs ours", "", "missed MACs", "skipped"],
            title=f"external counters (ours: {p.flops:,} FLOPs)",
            right_align=(1, 2, 4),
        )
    if per_layer:
        _print_layers(p)


def _print_layers(p: Any) -> None:
    # One row per (module, op): an RNN's or a loop's repeated ops collapse into one line.
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for op in p.ops:
        groups[(op.module, op.op)].append(op)
    rows = []
    for (module, op_name), ops in groups.items():
        macs = sum(o.macs for o in ops)
        ew = sum(o.elementwise_flops for o in ops)
        traffic = sum(o.traffic_bytes for o in ops)
        rows.append(
            (
                module or "(model)",
                op_name.removeprefix("aten.").removesuffix(".default"),
                len(ops),
                human(macs),
                human(ew),
                human(traffic, "B"),
                f"{(2 * macs + ew) / traffic:.2f}" if traffic else "-",
            )
        )
    print_table(
        rows,
        ["module", "op", "calls", "MACs", "elem FLOPs", "bytes", "FLOP/B"],
        title="per layer (FLOPs = 2 × MACs; --format csv for every column)",
        right_align=(2, 3, 4, 5, 6),
    )
