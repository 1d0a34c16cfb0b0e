"""``explorer calibrate``: fit a device's achievable roofs and per-operator overheads."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app
from ._output import Format, err_console, print_json, print_table
from ._torch_device import torch_device_option


@app.command("calibrate")
def calibrate_command(
    threads: int = typer.Option(
        1,
        "--threads",
        min=1,
        max=1024,
        help="Threads to calibrate for (ONNX Runtime's, or PyTorch's on a CPU).",
    ),
    name: str = typer.Option(
        None,
        "--name",
        help="Key of the written profile (default host; with --backend torch, host-cuda or "
        "host-torch).",
    ),
    out: Path = typer.Option(None, "--out", help="Output .toml (default: the user device dir)."),
    from_measurements: Path = typer.Option(
        None,
        "--from-measurements",
        help="A measurement .csv (board,target,model,...,latency_ms,statistic,source) or the "
        "JSON of `explorer bench --format json` taken on the board.",
    ),
    device: str = typer.Option(
        None, "--device", help="With --from-measurements: KEY or KEY:TARGET to fit."
    ),
    cross_validate: bool = typer.Option(
        False,
        "--cross-validate",
        help="Also report each network predicted by a fit made without it (leave-one-model-out).",
    ),
    clock: str = typer.Option(
        "auto", "--clock", help="auto (cpu for one thread, else wall), wall or cpu."
    ),
    networks: int = typer.Option(
        3, "--networks", min=0, help="Seeded networks per family timed too (0: operators only)."
    ),
    time_budget: str = typer.Option(
        "5m", "--time", help="Budget for learned kernels, e.g. 90s, 5m (more: better fit)."
    ),
    method: str = typer.Option(
        None,
        "--method",
        help="learned (per-kernel regressors + roofline, within --time; the default) or "
        "roofline (only; the one --backend torch has).",
    ),
    backend: str = typer.Option(
        "ort",
        "--backend",
        help="ort (ONNX Runtime) or torch (PyTorch eager, as `explorer bench --backend torch`).",
    ),
    torch_device: str = torch_device_option("cpu", help="With --backend torch: cpu or cuda[:i]."),
    exclude_family: list[str] = typer.Option(
        [], "--exclude-family", help="Leave a search-space family out of the samples."
    ),
    format: Format = typer.Option(Format.table, "--format", help="table or json."),
) -> None:
    """Measure this machine and write a `host` profile, so `--device host` works afterwards;
    or fit a board's execution target (its efficiencies, per-kernel and per-inference costs) to
    measured latencies (`--from-measurements`): bench on the board, calibrate here.

    By default (`--method learned`) it samples kernels for `--time` (5 minutes): networks are
    profiled node by node in ONNX Runtime and one regressor per kernel kind is fitted; the
    model goes to HOST.kernels.json beside the profile. Run it on a board and copy both files
    back to predict for that board. Profiles go to $EXPLORER_DEVICES if set, else
    ~/.config/explorer/devices.

    `--backend torch --torch-device cuda` calibrates PyTorch eager on this machine's GPU
    instead (the operator suite and family networks timed with CUDA events, one fitted cost
    per operator class): `--device host-cuda` then predicts `explorer bench --backend torch
    --torch-device cuda`.
    """
    import device_profiles
    from explorer.errors import UsageError
    from explorer.files import check_output_path, write_text_atomic
    from explorer.latency import NOISY_SCATTER, calibrate_host

    if out is not None:
        check_output_path(out, what="--out")  # before a minute of measuring, not after it
    quiet = format is Format.json
    kernels = None
    if from_measurements is not None:
        if not device:
            raise UsageError("--from-measurements needs --device KEY[:TARGET] (the board measured)")
        _from_measurements(from_measurements, device, out, cross_validate, format)
        return
    if cross_validate:
        raise UsageError("--cross-validate is only for --from-measurements")
    if backend not in ("ort", "torch"):
        raise UsageError(f"--backend must be ort or torch, got {backend!r}")
    if backend == "ort" and torch_device != "cpu":
        raise UsageError(
            f"--torch-device {torch_device} is for --backend torch (PyTorch eager); "
            "ONNX Runtime is calibrated on the CPU"
        )
    if backend == "torch" and device:
        raise UsageError(
            f"--device names a board (with --from-measurements); for where PyTorch runs use "
            f"--torch-device (got --device {device!r})"
        )
    if backend == "torch" and method not in (None, "roofline"):
        raise UsageError(
            "--backend torch calibrates with --method roofline only (the learned kernels are "
            "ONNX Runtime's optimised nodes); leave --method out"
        )
    method = method or ("learned" if backend == "ort" else "roofline")
    if name is None and backend == "ort":
        name = "host"  # calibrate_torch names its own: host-cuda or host-torch
    extra: dict = {}
    if method == "learned":
        if device:
            raise UsageError("--device is only for --from-measurements; use --name for host")
        learned = _calibrate_learned(
            seconds=parse_duration(time_budget),
            threads=threads,
            name=name,
            exclude=exclude_family,
            quiet=quiet,
        )
        profile = learned.roofline.profile
        kernels = learned.kernels
        extra = {
            "seconds": learned.seconds,
            "networks": len(learned.samples),
            "nodes": kernels.meta.get("nodes"),
            "kinds": {k: m.method for k, m in kernels.kinds.items()},
            "fit_within_10pct": kernels.meta.get("within_10pct"),
            "slowdown_range": kernels.meta.get("slowdown_range"),
            "speed_scatter": kernels.meta.get("speed_scatter"),
        }
        scatter = extra["speed_scatter"] or 0.0
        if scatter > NOISY_SCATTER:  # printed with --quiet too: it says what the file is worth
            err_console.print(
                f"warning: this machine's speed jumped by ±{scatter:.0%} between timings "
                "seconds apart while calibrating; the calibration divided it out run by run, but "
                "a plain timing here is no closer than that to another: measure when it is quiet",
                highlight=False,
            )
    elif method != "roofline":
        raise UsageError(f"--method must be learned or roofline, got {method!r}")
    else:
        if device:
            raise UsageError("--device is only for --from-measurements; use --name for host")
        log = (lambda _: None) if quiet else (lambda m: err_console.print(m, highlight=False))
        if backend == "torch":
            from explorer.latency import calibrate_torch

            if torch_device.split(":")[0] == "cpu":  # printed with --format json too
                err_console.print(
                    "warning: PyTorch eager on a CPU is priced less well than on a GPU (unseen "
                    "networks came out about 30 % fast where it was checked); for a CPU the "
                    "default ONNX Runtime calibration is the one to trust",
                    highlight=False,
                )

            run = calibrate_torch(
                torch_device=torch_device, threads=threads, name=name, networks=networks, log=log
            )
        else:
            run = calibrate_host(
                threads=threads, name=name, clock=clock, networks=networks, log=log
            )
        profile = run.profile
        extra = {"seconds": run.seconds, "samples": run.to_dict()["samples"]}
    path = out or device_profiles.user_device_dir() / f"{profile.key}.toml"
    write_text_atomic(path, device_profiles.to_toml(profile), what="--out")
    from explorer.latency import family_of, kernel_file_for

    side = kernel_file_for(path)
    if kernels is not None:
        write_text_atomic(side, kernels.to_json(), what="kernel latency file")
        extra["kernels_path"] = str(side)
    elif side.exists() and from_measurements is None:
        side.unlink()  # --method roofline on this machine: not an older learned model
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
    if "kernels_path" in extra:
        rows.append(("kernel model", extra["kernels_path"]))
        rows.append(("networks / nodes sampled", f"{extra['networks']} / {extra['nodes']}"))
        within = f"{extra['fit_within_10pct']:.0%}"
        rows.append(("its networks within ±10 % (each priced out of fold)", within))
        low, high = extra["slowdown_range"]  # time over the median time: speed is 1 / that
        speeds = f"{1 / high:.2f}-{1 / low:.2f} of its median (divided out, run by run)"
        rows.append(("machine speed while sampling", speeds))
        rows.append(("speed, second to second", f"±{extra['speed_scatter']:.1%}"))
    networks_fitted = [x for x in extra.get("samples", ()) if family_of(x["name"])]
    if networks_fitted:
        errors = [abs(x["predicted_ms"] / x["measured_ms"] - 1) for x in networks_fitted]
        shares = " / ".join(f"{sum(e <= t for e in errors) / len(errors):.0%}" for t in (0.1, 0.25))
        rows.append((f"its {len(errors)} networks within ±10 / 25 % (fitted on them)", shares))
    if "seconds" in extra:
        rows.append(("took", f"{extra['seconds']:.1f} s"))
    print_table(rows, ["field", "value"], title=f"calibrated {profile.key}")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``5m`` or ``1h``.

    Raises:
        UsageError: anything else, or not positive.
    """
    import re

    from explorer.errors import UsageError

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--time must be a duration such as 90s or 5m, got {text!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _calibrate_learned(*, seconds: float, threads: int, name: str, exclude, quiet: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from explorer.latency import calibrate_host_learned

    if quiet:
        return calibrate_host_learned(
            time_s=seconds, threads=threads, name=name, exclude_families=tuple(exclude)
        )
    with Progress(
        TextColumn("sampling kernels"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("sample", total=1.0, last="")
        return calibrate_host_learned(
            time_s=seconds,
            threads=threads,
            name=name,
            exclude_families=tuple(exclude),
            log=lambda m: bar.console.print(m, highlight=False),
            progress=lambda f, last: bar.update(task, completed=f, last=last[:40]),
        )


def _write(profile, out: Path | None) -> Path:
    import device_profiles
    from explorer.files import write_text_atomic

    path = out or device_profiles.user_device_dir() / f"{profile.key}.toml"
    write_text_atomic(path, device_profiles.to_toml(profile), what="--out")
    return path


def _from_measurements(
    source: Path, device: str, out: Path | None, cross_validate: bool, format: Format
) -> None:
    from explorer.board_fit import calibrate_from_table

    profile, result = calibrate_from_table(source, device)
    path = _write(profile, out)
    target = result.target
    if format is Format.json:
        d = {"path": str(path), "device": profile.address, **result.to_dict()}
        if not cross_validate:
            for key in ("rows", "summary", "roofline_summary"):
                d.pop(key, None)
        print_json(d)
        return
    rows = [("written to", str(path)), ("target", profile.address)]
    rows += [(f"calibration {k}", str(v)) for k, v in target.calibration.to_dict().items()]
    cv = target.cross_validation
    if cv is not None:
        rows.append((
            "leave-one-model-out",
            f"{cv.points} points: {cv.within_10:.0%} within ±10 %, {cv.within_25:.0%} within "
            f"±25 %, {cv.within_50:.0%} within ±50 %",
        ))  # fmt: skip
    print_table(rows, ["field", "value"], title=f"calibrated {profile.address}")
    if cross_validate:
        print_table(
            [(r.model, f"{r.measured_ms:.3g}", f"{r.predicted_ms:.3g}", f"{r.error:+.0%}")
             for r in result.rows],
            ["model", "measured ms", "predicted ms (left out)", "error"],
            title="leave-one-model-out",
            right_align=(1, 2, 3),
        )  # fmt: skip
