"""Every stored run of ``latency_prediction.py`` as one Markdown table, oldest first.

    python benchmarks/latency_runs.py                  # results/latency_prediction*.json
    python benchmarks/latency_runs.py FILE.json [...]  # chosen files

The table is read from the results files themselves (the CPU from the environment each run
recorded, the date from the commit that added the file), so the record of the runs in
``benchmarks/results/host_latency_log.md`` is not transcribed by hand. A run named ``*busy*``
(or listed in ``_BUSY``) had the other core working; the others had it idle. "Held-out
sessions" says how the held-out networks were timed: in a fresh session every turn, or (runs
before 2026-12-05) with every session open through the rounds. Files without a
benchmark run's results (offline cross-scorings, an idle-machine stability check) are listed
as skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
PREFIX = "latency_prediction"
# runs whose other core was busy though their names do not say so
_BUSY = {"amd2"}  # the test suite on core 0

HEADER = (
    "| added (UTC) | run | CPU | core 0 | held-out sessions | networks sampled | "
    "speed scatter calibrating | "
    "within ±10 %, speed-normalised (noise floor) | within ±10 %, raw (noise floor) | ρ | "
    "previous model |"
)


_GIT_ADDED = ("git", "log", "--diff-filter=A", "--format=%ad", "--date=format:%Y-%m-%d %H:%M", "--")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def _added(path: Path) -> str:
    """The date of the commit that added ``path`` ('' outside a git checkout)."""
    try:
        out = subprocess.run(
            [*_GIT_ADDED, path.name],
            capture_output=True,
            text=True,
            cwd=path.parent,
            check=False,
        ).stdout.split("\n")
    except OSError:
        return ""
    dates = [line for line in out if line.strip()]
    return dates[-1] if dates else ""


def row(path: Path) -> dict[str, Any] | None:
    """One run's line of the table, or None for a file that holds no benchmark run."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if "results" not in data or "all" not in data["results"]:
        return None
    overall = data["results"]["all"]
    paced = overall.get("learned_paced")
    name = path.stem.removeprefix(PREFIX).lstrip("_") or "(first)"
    return {
        "added": _added(path),
        "run": name,
        "cpu": data.get("environment", {}).get("cpu", "?").replace("(R)", ""),
        "core0": "busy" if "busy" in name or name in _BUSY else "idle",
        # runs before 2026-12-05 timed the held-out networks with every session open
        "sessions": data.get("held_out_sessions", "open"),
        "networks": data.get("calibration", {}).get("networks"),
        "scatter": data.get("drift", {}).get("speed_scatter_calibrating"),
        "paced": paced["within_10pct"] if paced else None,
        "paced_noise": overall.get("noise_paced_within_10pct") if paced else None,
        "raw": overall["learned"]["within_10pct"],
        "raw_noise": overall.get("noise_within_10pct"),
        "spearman": (paced or overall["learned"])["spearman"],
        "previous": (overall.get("previous_paced") or overall.get("previous") or {}).get(
            "within_10pct"
        ),
    }


def table(paths: list[Path]) -> tuple[str, list[Path]]:
    """The Markdown table of the runs in ``paths`` (oldest first) and the files skipped."""
    rows, skipped = [], []
    for path in paths:
        r = row(path)
        if r is None:
            skipped.append(path)
        else:
            rows.append(r)
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for r in sorted(rows, key=lambda r: (r["added"], r["run"])):
        scatter = "–" if r["scatter"] is None else "±" + _pct(r["scatter"])
        paced = "–" if r["paced"] is None else f"{_pct(r['paced'])} ({_pct(r['paced_noise'])})"
        lines.append(
            f"| {r['added']} | `{r['run']}` | {r['cpu']} | {r['core0']} | {r['sessions']} | "
            f"{r['networks'] or '–'} | "
            f"{scatter} | {paced} | {_pct(r['raw'])} ({_pct(r['raw_noise'])}) | "
            f"{r['spearman']:.3f} | {_pct(r['previous'])} |"
        )
    return "\n".join(lines), skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="results files (default: all stored)")
    args = ap.parse_args()
    paths = args.files or sorted(RESULTS.glob(f"{PREFIX}*.json"))
    text, skipped = table(paths)
    print(text)
    for path in skipped:
        print(f"skipped {path.name}: not a benchmark run's results", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
