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
    """Profile, predict, chart and write; returns a JSON-safe summary."""
    import dataclasses

    import device_profiles
    import reports
    from explorer.files import atomic_output, check_output_path, write_text_atomic
    from explorer.models import resolve_model
    from explorer.profiling import profile_report
    from reports import breakdown, feasibility, roofline

    check_output_path(out, what="--out")  # before the work, not after it
    if image is not None:
        check_output_path(image, what="--image")
    if not device_keys:
        raise UsageError("no --device given: name at least one (see `explorer devices`)")
    if len(set(model_names)) != len(model_names):
        raise UsageError(f"MODEL names must be unique, got {model_names}")
    profiles = [device_profiles.get(k) for k in device_keys]
    roofs = [reports.DeviceRoof.from_profile(d) for d in profiles]
    costs, timings = [], {}
    for name in model_names:
        resolved = resolve_model(name)
        family = _family(resolved.config)
        rep = profile_report(
            resolved.model, resolved.example_inputs, name=resolved.name, devices=profiles
        )
        cost = reports.ModelCost.from_profile(rep.profile, name=name, family=family)
        costs.append(cost)
        for d, pred in zip(profiles, rep.predictions, strict=True):
            timings[(name, d.address)] = reports.Timing.from_prediction(pred)
    if paper_models:
        costs.extend(feasibility.TABLE_IX_MODELS)
    other = "weights" if intensity == "traffic" else "traffic"
    main = roofline.roofline_data(costs, roofs, timings=timings, intensity=intensity)
    sections = [
        reports.Section(
            title=f"Roofline ({intensity} intensity)",
            figure=roofline.figure(main),
            description="Hover a point for its intensity, attained GFLOP/s, share of the roof "
            "and latency. Models are placed by their predicted latency (calibrated when the "
            "device has a calibration, else the uncalibrated per-operator roofline).",
        ),
        reports.Section(
            title=f"Roofline ({other} intensity)",
            figure=roofline.figure(
                roofline.roofline_data(costs, roofs, timings=timings, intensity=other)
            ),
            description="The same models with the other intensity definition.",
        ),
    ]
    if per_layer:
        for cost in costs:
            if not cost.ops:
                continue
            data = roofline.roofline_data([cost], roofs, timings=timings, per_layer=True)
            sections.append(
                reports.Section(
                    title=f"Operators of {cost.name}",
                    figure=roofline.figure(data, title=f"Operators of {cost.name}"),
                )
            )
            bd = breakdown.breakdown_data(
                cost, timings.get((cost.name, roofs[0].key)), device=roofs[0]
            )
            sections.append(
                reports.Section(title=f"Breakdown of {cost.name}", figure=breakdown.figure(bd))
            )
    # lu2025 is the model Table IX calls "proposed": show its printed marks next to ours.
    marks = {**feasibility.TABLE_IX_MARKS, "lu2025": feasibility.TABLE_IX_MARKS["Lu (paper)"]}
    feas = feasibility.feasibility_data(costs, roofs, timings=timings, paper_marks=marks)
    if costs:
        sections.append(
            reports.Section(
                title="Feasibility (Lu, Lu and Lin (2025) Table IX)",
                figure=feasibility.figure(feas),
                description=feasibility.DESCRIPTION,
            )
        )
    names = ", ".join(model_names) or "roofs"
    page = reports.render_html(sections, title=f"explorer roofline: {names}")
    write_text_atomic(out, page, what="--out")
    result: dict[str, Any] = {"out": str(out), "intensity": intensity}
    if image is not None:
        try:
            with atomic_output(image, what="--image") as staged:
                reports.export_image(sections[0].figure, staged)
        except ImportError:
            raise MissingExtraError("kaleido", "export", "Static PNG/SVG export") from None
        except ValueError as exc:
            raise UsageError(f"--image {str(image)!r}: {exc}") from None
        except Exception as exc:  # kaleido could not start its browser, or similar
            raise ExplorerError(
                f"static export to {str(image)!r} failed ({type(exc).__name__}: {exc}); the "
                f"HTML was written to {str(out)!r}. kaleido needs Chrome or Chromium installed"
            ) from None
        result["image"] = str(image)
    result["devices"] = [
        dataclasses.asdict(r) | {"ridge_flops_per_byte": r.ridge_flops_per_byte} for r in roofs
    ]
    result["models"] = [dataclasses.asdict(p) for p in main.models]
    result["feasibility"] = [dataclasses.asdict(c) for c in feas.cells]
    result["notes"] = list(main.notes)
    return result


def _family(config: Any) -> str:
    if config is None:
        return ""
    import search_spaces

    try:
        return search_spaces.family_of(config).name
    except Exception:  # a config from elsewhere: no family colour, nothing else lost
        return ""


def _num(v: float) -> str:
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"
