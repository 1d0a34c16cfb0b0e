"""``explorer devices`` and ``explorer devices show KEY``: the device registry."""

from __future__ import annotations

import typer

import device_profiles

from ._app import app
from ._output import Format, print_json, print_table

devices_app = typer.Typer(
    help="List the known devices, or show one (key, alias or path to a .toml file).",
    no_args_is_help=False,
)
app.add_typer(devices_app, name="devices")

_FORMAT = typer.Option(Format.table, "--format", help="table or json.")


@devices_app.callback(invoke_without_command=True)
def devices_command(ctx: typer.Context, format: Format = _FORMAT) -> None:
    """Every device: built-in, ~/.config/explorer/devices and $EXPLORER_DEVICES."""
    if ctx.invoked_subcommand is not None:
        return
    devices = device_profiles.list_devices()
    if format is Format.json:
        print_json([d.to_dict() for d in devices])
        return
    if format is Format.csv:
        from ._output import print_csv

        print_csv(
            [
                {k: v for k, v in d.to_dict().items() if not isinstance(v, (dict, list))}
                for d in devices
            ]
        )
        return
    rows = [
        (
            d.key,
            d.name,
            d.kind,
            f"{d.peak_gflops_fp32:g}",
            f"{d.bandwidth_gb_s:g}",
            f"{d.ridge_flops_per_byte:.2f}",
            "yes" if d.calibration else "",
        )
        for d in devices
    ]
    print_table(
        rows,
        ["key", "name", "kind", "FP32 GFLOP/s", "GB/s", "ridge FLOP/B", "calibrated"],
        title="devices (`explorer devices show KEY` for aliases and sources)",
        right_align=(3, 4, 5),
    )


@devices_app.command("show")
def show_command(
    key: str = typer.Argument(..., help="Device key, alias, or path to a .toml file."),
    format: Format = _FORMAT,
) -> None:
    """One device's figures, derived ridge point, alternatives, calibration and sources."""
    device = device_profiles.get(key)
    d = device.to_dict()
    if format is Format.json:
        print_json(d)
        return
    rows: list[tuple[str, str]] = [
        ("key", device.key),
        ("name", device.name),
        ("kind", device.kind),
        ("aliases", ", ".join(device.aliases)),
    ]
    rows += [(f"peak {p} GFLOP/s", f"{v:g}") for p, v in device.peak_gflops.items()]
    rows += [
        ("bandwidth GB/s", f"{device.bandwidth_gb_s:g}"),
        ("ridge FLOPs/byte", f"{device.ridge_flops_per_byte:.3f}"),
        ("memory GB", "" if device.memory_gb is None else f"{device.memory_gb:g}"),
    ]
    for label, table in device.alternatives.items():
        rows += [
            (f"{label}: {k}", f"{v:g}" if isinstance(v, float) else str(v))
            for k, v in table.items()
        ]
    if device.calibration is not None:
        rows += [(f"calibration: {k}", str(v)) for k, v in device.calibration.to_dict().items()]
    rows += [("source", s) for s in device.sources]
    if device.notes:
        rows.append(("notes", device.notes))
    rows.append(("file", device.origin))
    print_table(rows, ["field", "value"], title=device.name)
