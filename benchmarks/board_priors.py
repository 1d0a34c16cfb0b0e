"""Board priors: fit every target of the shipped measurement tables, leave-one-model-out.

For each ``board:target`` in ``device_profiles/measurements/*.csv`` this fits the target's
efficiencies and fixed costs (``explorer.board_fit``), predicts each network with a fit made
without it, and prints the number of points and the shares of predictions within ±10/±25/±50 %
of the published measurement, beside the same shares for the uncalibrated roofline.

A built-in board's default target without rows of its own gets a prior from the other boards'
measured targets of its kind (``board_fit.fit_transfer``: those of boards of its processor
generation lend their efficiencies and fixed costs, any others only their fixed costs),
and the table's last rows give that transfer's error, leave-one-board-out: each measured board
predicted by a fit on the others only.

    python benchmarks/board_priors.py                # the table (markdown)
    python benchmarks/board_priors.py --write        # also store the fits in the device TOMLs
    python benchmarks/board_priors.py --format json  # every row
    python benchmarks/board_priors.py --sweep        # the fit's prior widths, on a grid

``--write`` replaces the block after the ``# --- fitted priors`` marker at the end of each
built-in device file, so the priors are plain, versioned TOML beside the figures they scale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import device_profiles
from explorer.board_fit import fit_target, fit_transfer, roofline_errors, summarise
from explorer.measurements import group_by_target, profile_measurements, shipped_measurements

MARKER = "# --- fitted priors: written by benchmarks/board_priors.py --write; do not edit ---"


def fit_all() -> list[dict]:
    rows = shipped_measurements()
    profiles = profile_measurements(rows)
    out = []
    for address, group in group_by_target(rows).items():
        profile = device_profiles.get(address)
        samples = [
            (m.model, profiles[(m.model, m.input_shape, m.batch)], m.latency_ms) for m in group
        ]
        source = f"device_profiles/measurements/{profile.key}.csv ({len(group)} rows)"
        result = fit_target(profile.target, samples, source=source)
        out.append(
            {
                "address": address,
                "default": profile.target.name == profile.default_target_name,
                "result": result,
                "samples": samples,
                "lomo": summarise(result.rows),
                "roofline": roofline_errors(result.rows),
            }
        )
    return out


def transfer_pool(target, fits: list[dict]) -> tuple[list, bool]:
    """The measured targets a target without measurements borrows from, and whether they
    share its processor generation. Measured targets of its runtime (``tensorrt`` also in ONNX
    Runtime's TensorRT provider) at its precision on two or more boards of its architecture
    (``architecture`` in the device files, e.g. the Ampere Jetsons): their efficiencies and
    fixed costs move. Else those of its processor and runtime on any boards, when they span
    two boards or more (so that the transfer has a leave-one-board-out error), else every
    measured target of its processor: only their fixed costs move (a launch costs the same at
    FP16 and FP32)."""
    same_kind = [f for f in fits if f["result"].target.processor == target.processor]
    runtime = [f for f in same_kind if target.runtime in f["result"].target.runtime]
    arch = _architecture(target)
    kin = [
        f
        for f in runtime
        if arch
        and _architecture(f["result"].target) == arch
        and f["result"].target.precision == target.precision
    ]
    if len({f["result"].target.device for f in kin}) > 1:
        return [(f["result"].target, f["samples"]) for f in kin], True
    chosen = runtime if len({f["result"].target.device for f in runtime}) > 1 else same_kind
    return [(f["result"].target, f["samples"]) for f in chosen], False


def _architecture(target) -> str:
    """The generation of the processor ``target`` runs on, where its board names one."""
    profile = device_profiles.get(target.device)
    return profile.architecture if profile.kind == target.processor else ""


def transferred(fits: list[dict]) -> list[dict]:
    """Every built-in board's default target without measurements of its own gets a prior
    fitted to the other boards' measurements (``board_fit.fit_transfer``), whose range is the
    leave-one-board-out error: what moving a fit to a board it has not seen costs."""
    measured = {f["address"] for f in fits}
    out = []
    # The Zenbo's default target stays the roofline Lu et al. (2025) report (84.8 ms for their
    # model); their measured 58 ms is the cpu-fp32-app target's own row.
    keep_roofline = {"zenbo-junior-2"}
    builtin = Path(device_profiles.__file__).resolve().parent / "devices"
    for profile in device_profiles.list_devices():
        target = profile.target
        if Path(profile.origin).resolve().parent != builtin:
            continue
        if f"{profile.key}:{target.name}" in measured or profile.key in keep_roofline:
            continue
        pool, same_architecture = transfer_pool(target, fits)
        result = fit_transfer(target, pool, same_architecture=same_architecture)
        out.append(
            {
                "address": profile.key,
                "target": result.target,
                "result": result,
                "lomo": summarise(result.rows),
                "roofline": roofline_errors(result.rows),
            }
        )
    return out


def write_priors(fits: list[dict], transfers: list[dict]) -> None:
    items = [{"address": f["address"], "target": f["result"].target} for f in fits]
    by_board: dict[str, list] = {}
    for item in items + transfers:
        by_board.setdefault(item["target"].device, []).append(item["target"])
    for board, targets in by_board.items():
        path = Path(device_profiles.get(board).origin)
        text = path.read_text(encoding="utf-8").split(MARKER)[0].rstrip("\n")
        blocks = [device_profiles.fit_toml(t) for t in targets]
        path.write_text(text + "\n\n" + MARKER + "\n" + "\n".join(blocks), encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def sweep() -> None:
    """Mean leave-one-model-out share within ±25 % over the targets with >= 5 points, for a
    grid of the fit's three widths (data, work exponent, prior); how board_fit's were chosen."""
    import itertools
    import math

    from explorer import board_fit

    rows = shipped_measurements()
    profiles = profile_measurements(rows)
    groups = [(a, g) for a, g in group_by_target(rows).items() if len(g) >= 5]
    print("data sigma | exponent sigma | prior sigma | " + " | ".join(a for a, _ in groups)
          + " | mean")  # fmt: skip
    for ds, es, ps in itertools.product((0.05, 0.1, 0.2), (0.1, 0.2, 0.5), (1.0, math.log(10))):
        board_fit._DATA_SIGMA, board_fit._EXPONENT_SIGMA, board_fit._PRIOR_SIGMA = ds, es, ps
        shares = []
        for address, group in groups:
            samples = [(m.model, profiles[(m.model, m.input_shape, m.batch)], m.latency_ms)
                       for m in group]  # fmt: skip
            lomo = board_fit.cross_validate(device_profiles.get(address).target, samples)
            shares.append(summarise(lomo)["within_25"])
        print(f"{ds} | {es} | {ps:.2f} | " + " | ".join(_pct(x) for x in shares)
              + f" | {_pct(sum(shares) / len(shares))}")  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the fits in the TOMLs")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--sweep", action="store_true", help="grid of the fit's prior widths")
    args = parser.parse_args()
    if args.sweep:
        sweep()
        return
    fits = fit_all()
    transfers = transferred(fits)
    if args.write:
        write_priors(fits, transfers)
    if args.format == "json":
        print(json.dumps([{**{k: v for k, v in f.items() if k not in ("result", "samples",
                                                                     "target")},
                           **f["result"].to_dict()} for f in fits + transfers],
                         indent=1))  # fmt: skip
        return
    print("| target | default | points | LOMO ±10 % | ±25 % | ±50 % | roofline ±10 % | ±25 % "
          "| ±50 % | per kernel µs | per inference µs |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in fits:
        _row(f["address"], "yes" if f["default"] else "", f)
    for f in transfers:  # their points are other boards' networks, left out board by board
        _row(f"{f['address']} (no rows of its own: leave-one-board-out)", "yes", f)


def _row(label: str, default: str, f: dict) -> None:
    lo, rf, t = f["lomo"], f["roofline"], f["result"].target
    print(
        f"| {label} | {default} | {lo['points']} | "
        f"{_pct(lo['within_10'])} | {_pct(lo['within_25'])} | {_pct(lo['within_50'])} | "
        f"{_pct(rf.get('within_10', 0))} | {_pct(rf.get('within_25', 0))} | "
        f"{_pct(rf.get('within_50', 0))} | {t.kernel_us:.3g} | {t.inference_us:.3g} |"
    )


if __name__ == "__main__":
    main()
