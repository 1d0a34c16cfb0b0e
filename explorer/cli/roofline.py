"""``explorer roofline MODEL... --device KEY...``: models on the devices' rooflines, as HTML."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer

from explorer.errors import ExplorerError, MissingExtraError, UsageError

from ._app import app
from ._limits import MAX_MEMORY
from ._output import Format, err_console, print_csv, print_json, print_table


class Intensity(str, Enum):  # noqa: UP042 (typer choices, like _output.Format)
    """The two arithmetic-intensity definitions (see ``reports.roofline``)."""

    traffic = "traffic"
    weights = "weights"


@app.command("roofline")
def roofline_command(
    models: list[str] = typer.Argument(
        None,
        help="Presets (ding2025), family:key=value, checkpoints or module:function. None: the "
        "devices' roofs only.",
        show_default=False,
    ),
    device: list[str] = typer.Option(
        ..., "--device", "-d", help="Device key, alias or .toml path; repeat for several."
    ),
    per_layer: bool = typer.Option(
        False, "--per-layer", help="Also place every operator, sized by its share of time."
    ),
    intensity: Intensity = typer.Option(
        Intensity.traffic,
        "--intensity",
        help="traffic: FLOPs per byte of DRAM traffic (roofline); weights: dense FLOPs per "
        "weight byte (the papers', Lu, Lu and Lin (2025) Table IX).",
    ),
    paper_models: bool = typer.Option(
        False,
        "--paper-models",
        help="Add the models Table IX of Lu, Lu and Lin (2025), Lightweight Multimodal Emotion "
        "Recognition for Companion Robots, compares, from their published totals.",
    ),
    out: Path = typer.Option(Path("roofline.html"), "--out", "-o", help="HTML file to write."),
    image: Path | None = typer.Option(
        None, "--image", help="Also write the roofline as .png/.svg/.pdf (needs the export extra)."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    max_memory: str | None = MAX_MEMORY,
) -> None:
    """Place models on the roofline of one or more devices and write a standalone HTML file
    (roofline, feasibility table in the style of Lu, Lu and Lin (2025) Table IX, per-layer
    breakdown)."""
    result = build_roofline(
        models or [],
        device,
        per_layer=per_layer,
        intensity=intensity.value,
        paper_models=paper_models,
        out=out,
        image=image,
    )
    if format is Format.json:
        print_json(result)
        return
    if format is Format.csv:  # one row per (model, device): the feasibility cells
        print_csv(result["feasibility"])
        return
    rows = [
        (
            c["model"],
            c["device"],
            _num(c["ai_weights"]),
            "n/a" if c["ai_traffic"] is None else _num(c["ai_traffic"]),
            f"{c['ridge_flops_per_byte']:.3g}",
            c["bound_traffic"] or "–",
            "–" if c["predicted_ms"] is None else f"{c['predicted_ms']:.3g}",
            c["mark_weights"],
            c["mark_traffic"],
            c["paper_mark"] or "–",
        )
        for c in result["feasibility"]
    ]
    if not rows:
        err_console.print("no MODEL given: the chart shows the devices' roofs only")
    else:
        _print(rows)
    err_console.print(f"wrote {result['out']}" + (f" and {result['image']}" if image else ""))


def _print(rows: list[tuple[str, ...]]) -> None:
    print_table(
        rows,
        [
            "model",
            "device",
            "AI wt",
            "AI traf",
            "ridge",
            "bound",
            "ms",
            "IX wt",
            "IX traf",
            "paper",
        ],
        title="Roofline: intensities and ridge in FLOPs/byte (wt: per weight byte, traf: per "
        "byte of traffic); bound by traffic; ms predicted; Table IX marks by each intensity",
        right_align=(2, 3, 4, 6),
    )


def build_roofline(
    model_names: list[str],
    device_keys: list[str],
    *,
    per_layer: bool,
    intensity: str,
    paper_models: bool,
    out: Path,
    image: Path | None,
) -> dict[str, Any]:
    """Check the arguments, profile the models (``explorer.report_inputs``), assemble the page
    (``reports.roofline_report``) and write it (and the image); returns a JSON-safe summary."""
    import device_profiles
    import reports
    from explorer.files import check_output_path, write_text_atomic
    from explorer.report_inputs import cost_models

    check_output_path(out, what="--out")  # before the work, not after it
    if image is not None:
        check_output_path(image, what="--image")
    if not device_keys:
        raise UsageError("no --device given: name at least one (see `explorer devices`)")
    if len(set(model_names)) != len(model_names):
        raise UsageError(f"MODEL names must be unique, got {model_names}")
    profiles = [device_profiles.get(k) for k in device_keys]
    models = cost_models(model_names, profiles)
    report = reports.roofline_report(
        models.costs,
        [reports.DeviceRoof.from_profile(d) for d in profiles],
        timings=models.timings,
        intensity=intensity,
        per_layer=per_layer,
        paper_models=paper_models,
    )
    write_text_atomic(out, report.page.html(), what="--out")
    result: dict[str, Any] = {"out": str(out), "intensity": intensity}
    if image is not None:
        _write_image(report.main_figure, image, out=out)
        result["image"] = str(image)
    return result | report.summary()


def _write_image(figure: Any, image: Path, *, out: Path) -> None:
    """The main roofline as a static image, atomically; one-line errors naming the fix."""
    import reports
    from explorer.files import atomic_output

    try:
        with atomic_output(image, what="--image") as staged:
            reports.export_image(figure, staged)
    except ImportError:
        raise MissingExtraError("kaleido", "export", "Static PNG/SVG export") from None
    except ValueError as exc:
        raise UsageError(f"--image {str(image)!r}: {exc}") from None
    except Exception as exc:  # kaleido could not start its browser, or similar
        raise ExplorerError(
            f"static export to {str(image)!r} failed ({type(exc).__name__}: {exc}); the "
            f"HTML was written to {str(out)!r}. kaleido needs Chrome or Chromium installed"
        ) from None


def _num(v: float) -> str:
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"
