"""``explorer calibrate``: fit a device's achievable roofs and per-operator overheads."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._output import Format, err_console, print_json, print_table


@app.command("calibrate")
def calibrate_command(
    threads: int = typer.Option(
        1, "--threads", min=1, max=1024, help="ONNX Runtime threads to calibrate for."
    ),
    name: str = typer.Option("host", "--name", help="Key of the written profile."),
    out: Path = typer.Option(None, "--out", help="Output .toml (default: the user device dir)."),
    from_measurements: Path = typer.Option(
        None, "--from-measurements", help="JSON from `explorer bench --format json` on a board."
    ),
    device: str = typer.Option(None, "--device", help="With --from-measurements: the board."),
    clock: str = typer.Option(
        "auto", "--clock", help="auto (cpu for one thread, else wall), wall or cpu."
    ),
    networks: int = typer.Option(
        3, "--networks", min=0, help="Seeded networks per family timed too (0: operators only)."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Measure this machine (about a minute) and write a `host` profile, so `--device host`
    works afterwards; or fit a board's calibration from bench results taken on it.

    Profiles go to $EXPLORER_DEVICES if set, else ~/.config/explorer/devices.
    """
    import device_profiles
    from explorer.errors import UsageError
    from explorer.files import check_output_path, write_text_atomic
    from explorer.latency import calibrate_from_measurements, calibrate_host

    if out is not None:
        check_output_path(out, what="--out")  # before a minute of measuring, not after it
    quiet = format is Format.json
    if from_measurements is not None:
        if not device:
            raise UsageError("--from-measurements needs --device KEY (the board measured)")
        profile = calibrate_from_measurements(from_measurements, device_profiles.get(device))
        extra: dict = {}
    else:
        if device:
            raise UsageError("--device is only for --from-measurements; use --name for host")
        run = calibrate_host(
            threads=threads,
            name=name,
            clock=clock,
            networks=networks,
            log=(lambda _: None) if quiet else (lambda m: err_console.print(m, highlight=False)),
        )
        profile = run.profile
        extra = {"seconds": run.seconds, "samples": run.to_dict()["samples"]}
    path = out or device_profiles.user_device_dir() / f"{profile.key}.toml"
    write_text_atomic(path, device_profiles.to_toml(profile), what="--out")
    if format is Format.json:
        print_json({"path": str(path), "profile": profile.to_dict(), **extra})
        return
    cal = profile.calibration
    rows = [
        ("written to", str(path)),
        ("peak GFLOP/s", f"{profile.peak_gflops_fp32:g}"),
        ("bandwidth GB/s", f"{profile.bandwidth_gb_s:g}"),
    ]
    rows += [(f"calibration {k}", str(v)) for k, v in cal.to_dict().items()] if cal else []
    if "seconds" in extra:
        rows.append(("took", f"{extra['seconds']:.1f} s"))
    print_table(rows, ["field", "value"], title=f"calibrated {profile.key}")
