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
            d.default_target_name,
            _fit_summary(d.target),
        )
        for d in devices
    ]
    print_table(
        rows,
        [
            "key",
            "name",
            "kind",
            "FP32 GFLOP/s",
            "GB/s",
            "ridge FLOP/B",
            "default target",
            "its fit",
        ],
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
    for name, target in device.all_targets.items():
        rows += _target_rows(device, name, target)
    rows += [("source", s) for s in device.sources]
    if device.notes:
        rows.append(("notes", device.notes))
    rows.append(("file", device.origin))
    print_table(rows, ["field", "value"], title=device.name)


def _fit_summary(target) -> str:
    """One line: how the target's predictions are made and how far to trust them."""
    cal, cv = target.calibration, target.cross_validation
    if cal is None:
        return "uncalibrated: the roofline, a lower bound"
    if cv is None:
        # a prior borrowed from a similar board says so: its error on this board is unknown
        origin = cal.source if cal.source.startswith("transferred") else "fitted"
        return f"{origin}; no leave-one-model-out error (no upper bound on its predictions)"
    shares = f"{cv.within_10:.0%} / {cv.within_25:.0%} / {cv.within_50:.0%} within ±10/25/50 %"
    if cal.source.startswith("transferred"):
        # no rows of its own: the error is other boards' networks, each left out with its board
        boards = cal.source.removeprefix("transferred from ").split(" (")[0]
        return f"transferred from {boards}; {cv.points} points, leave-one-board-out {shares}"
    return f"{cv.points} points; leave-one-model-out {shares}"


def _kernel_costs(cal) -> str:
    """What a kernel costs: one figure, or, where classes have their own (an eager or a
    grouped-convolution cost), each of them and the figure the other classes take."""
    own = cal.kind_overhead_us
    if not own:
        return f"{cal.overhead_us:.3g} µs per kernel"
    by_class = ", ".join(f"{k} {v:.3g}" for k, v in sorted(own.items(), key=lambda kv: kv[1]))
    return f"µs per kernel by class: {by_class}; {cal.overhead_us:.3g} for any other class"


def _target_rows(device, name: str, target) -> list[tuple[str, str]]:
    tags = [t for t, on in (("default", name == device.default_target_name),
                            ("selected", name == device.target.name)) if on]  # fmt: skip
    head = f"target {name}" + (f" ({', '.join(tags)})" if tags else "")
    threads = f", {target.threads} threads" if target.threads else ""
    rows = [
        (head, f"{target.processor}, {target.runtime}, {target.precision}{threads}"),
        (f"  {name}: roofs", f"{target.peak_gflops:g} GFLOP/s, {target.bandwidth_gb_s:g} GB/s"),
    ]
    cal = target.calibration
    if cal is not None:
        shares = ", ".join(f"{k} {v:.3g}" for k, v in cal.kind_compute_fraction.items())
        rows += [
            (f"  {name}: fixed costs",
             f"{_kernel_costs(cal)}, {cal.call_overhead_us:.3g} µs per inference"),
            (f"  {name}: efficiencies",
             f"compute {cal.compute_fraction:.3g}" + (f" ({shares})" if shares else "")
             + f", bandwidth {cal.bandwidth_fraction:.3g}, work exponent {cal.work_exponent:.3g}"),
        ]  # fmt: skip
    rows.append((f"  {name}: fit", _fit_summary(target)))
    cv = target.cross_validation
    if cv is not None and cv.points >= 3:
        fixed = f"; its fixed costs /{cv.fixed_ratio:.3g} .. x{cv.fixed_ratio:.3g}"
        span = f"x{cv.low_ratio:.3g} .. x{cv.high_ratio:.3g} of a prediction"
        rows.append((f"  {name}: range", span + (fixed if cv.fixed_ratio > 1 else "")))
    rows += [(f"  {name}: source", s) for s in target.sources]
    if cal is not None and cal.source:
        rows.append((f"  {name}: fitted from", cal.source))
    if target.notes:
        rows.append((f"  {name}: notes", target.notes))
    return rows
