"""A search run directory as plain data: ``load_run`` reads it into ``RunData``.

The run directory holds (written by ``explorer search``):

``results.csv`` — one row per trial. Columns read (any order; extra columns are kept and shown
in the trials table; missing ones are simply not charted):

- ``number`` (int), ``state`` (COMPLETE, PRUNED, FAIL, RUNNING), ``family``,
  ``feasible`` (true/false: within every budget), ``pareto`` (true/false, optional: the
  search's own front, shown in the table; charts recompute membership per pair of axes);
- scores: ``macro_f1``, ``accuracy`` (fractions; the chart uses ``macro_f1_mean`` when
  present, else ``macro_f1``); ``macro_f1_mean``, ``macro_f1_ci95`` (half-width of its 95 %
  interval, drawn as error bars), ``evaluations``, ``dominated_by``, ``dominance``
  (``significant`` / ``not significant``) after the search's confirmation stage;
- costs: ``params``, ``macs``, ``flops`` (2 x MACs), ``elementwise_flops``, ``weight_bytes``,
  ``traffic_bytes``, ``peak_activation_bytes``, ``predicted_ms_<device key>`` (one column per
  device), ``measured_ms_<device key>``, ``host_ms``;
- ``objective`` (name of the cost the search minimised, e.g. ``predicted_ms_rpi4``) and
  ``cost`` (its value), ``config_json`` (the trial's config as JSON), anything else.

``search.json`` (optional) — a JSON object; keys read: ``study`` or ``name``, ``objectives``
(list of ``{"name", "direction", "label"}``, ``label`` optional: 2 or 3 give the search's own
Pareto view), ``costs`` (the same for every cost the search could minimise: axis labels),
``devices``
(list of ``DeviceProfile.to_dict()``, or ``device``: one), ``references`` (list of
``{"name", "objectives": {column: value}, "note"}`` or flat ``{"name", column: value, ...,
"predicted_ms": {device: ms}}``), ``environment`` (dict); every other key is shown as a setting.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._inputs import DeviceRoof
from .pareto import ReferencePoint

__all__ = ["RunData", "device_roofs", "load_run", "number", "references"]


@dataclass(frozen=True, kw_only=True)
class RunData:
    """What ``load_run`` read from a run directory."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what was wrong with the files and left out


def load_run(run_dir: str | Path) -> RunData:
    """Read ``results.csv`` (required) and ``search.json`` (optional) from ``run_dir``.

    Raises:
        FileNotFoundError: no directory or no results.csv in it (message says what to run).
        ValueError: results.csv has no header or no ``number`` column; search.json is not JSON;
            either is not a regular file.
    """
    path = Path(run_dir)
    csv_path = path / "results.csv"
    if not path.is_dir():
        raise FileNotFoundError(
            f"run directory {str(path)!r} does not exist: pass the --out "
            "directory of `explorer search` (runs/<study>)"
        )
    for name in ("results.csv", "search.json"):  # reading a FIFO would block forever
        if os.path.lexists(path / name) and not (path / name).is_file():
            raise ValueError(
                f"{str(path / name)!r} is not a regular file (a FIFO, device, directory or "
                "broken link): replace it with the file `explorer search` wrote"
            )
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"{str(csv_path)!r} does not exist: RUN_DIR must be a directory "
            "written by `explorer search`"
        )
    columns, rows, notes = _read_results(csv_path)
    settings = _read_settings(path / "search.json")
    return RunData(path=path, columns=columns, rows=rows, settings=settings, notes=tuple(notes))


def _read_results(
    csv_path: Path,
) -> tuple[tuple[str, ...], tuple[dict[str, str], ...], list[str]]:
    """(columns, trial rows, notes on left-out rows) of a results.csv."""
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            rows = tuple(dict(r) for r in reader)
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise ValueError(
            f"{str(csv_path)!r} is not a readable CSV ({exc}): re-run `explorer search` with "
            "the same arguments to rewrite it"
        ) from None
    notes: list[str] = []
    # DictReader fills a short row with None: the file ends mid-row (a killed writer, a copy
    # cut short); such rows would show as trials with missing values
    complete = tuple(r for r in rows if None not in r.values() and None not in r)
    if len(complete) < len(rows):
        notes.append(
            f"{str(csv_path)!r} has {len(rows) - len(complete)} incomplete row(s) (the file is "
            f"truncated or hand-edited); left out, {len(complete)} trial(s) shown: re-run "
            "`explorer search` with the same arguments to rewrite it"
        )
        rows = complete
    if "number" not in columns:
        raise ValueError(
            f"{str(csv_path)!r} has no 'number' column (columns: "
            f"{', '.join(columns) or 'none'}): it is not a results.csv of a search"
        )
    # a trial number is what links a row to its study and checkpoint: a row without a valid
    # one (text, nan, a negative or fractional number) is an edit, not a trial
    numbered = tuple(r for r in rows if str(r.get("number") or "").strip().isdigit())
    if len(numbered) < len(rows):
        notes.append(
            f"{str(csv_path)!r} has {len(rows) - len(numbered)} row(s) whose 'number' is not a "
            f"trial number (a whole number >= 0); left out, {len(numbered)} trial(s) shown"
        )
        rows = numbered
    return columns, rows, notes


def _read_settings(json_path: Path) -> dict[str, Any]:
    """search.json as a dict (empty when there is none; a non-object under ``settings``)."""
    settings: dict[str, Any] = {}
    if json_path.is_file():
        try:
            settings = json.loads(json_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{str(json_path)!r} is not valid JSON ({exc.msg} at line "
                f"{exc.lineno}): fix or delete it"
            ) from None
        except RecursionError:
            raise ValueError(
                f"{str(json_path)!r} nests deeper than any search.json `explorer search` "
                "writes: fix or delete it"
            ) from None
        if not isinstance(settings, dict):
            settings = {"settings": settings}
    return settings


def references(settings: Mapping[str, Any]) -> list[ReferencePoint]:
    """The reference points (papers' presets) in search.json; malformed entries are skipped."""
    out = []
    for ref in settings.get("references") or []:
        if not isinstance(ref, Mapping) or "name" not in ref:
            continue
        objs: dict[str, float] = {}
        source = ref.get("objectives") if isinstance(ref.get("objectives"), Mapping) else ref
        for k, v in source.items():
            if isinstance(v, Mapping) and k in ("predicted_ms", "measured_ms"):
                objs.update(
                    {f"{k}_{dev}": float(x) for dev, x in v.items() if isinstance(x, (int, float))}
                )
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                objs[k] = float(v)
        errors = {
            k: objs[k.removesuffix("_mean") + "_ci95"]
            for k in objs
            if k.removesuffix("_mean") + "_ci95" in objs and not k.endswith("_ci95")
        }
        out.append(
            ReferencePoint(
                name=str(ref["name"]), objectives=objs, note=str(ref.get("note", "")), errors=errors
            )
        )
    return out


def device_roofs(settings: Mapping[str, Any]) -> list[DeviceRoof]:
    """The roofs of the search's devices (``devices``, or one ``device``) in search.json;
    devices without positive roofs are left out, a calibration without positive fractions
    is ignored."""
    raw = settings.get("devices") or ([settings["device"]] if "device" in settings else [])
    out = []
    for d in raw:
        if not isinstance(d, Mapping) or "peak_gflops_fp32" not in d:
            continue
        cal = d.get("calibration") or None
        if not isinstance(cal, Mapping) or not all(
            _positive(cal.get(k)) for k in ("compute_fraction", "bandwidth_fraction")
        ):
            cal = None
        peak, bw = d.get("peak_gflops_fp32"), d.get("bandwidth_gb_s")
        if not (_positive(peak) and _positive(bw)):
            continue  # an edited search.json: no roofline can be drawn for this device
        peak, bw = float(peak), float(bw)
        out.append(
            DeviceRoof(
                key=str(d.get("key", "device")),
                name=str(d.get("name", d.get("key", "device"))),
                peak_gflop_s=peak,
                bandwidth_gb_s=bw,
                achievable_peak_gflop_s=peak * cal["compute_fraction"] if cal else None,
                achievable_bandwidth_gb_s=bw * cal["bandwidth_fraction"] if cal else None,
            )
        )
    return out


def _positive(value: Any) -> bool:
    """A finite number > 0 (roofs and fractions read from search.json)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def number(text: str | None) -> float:
    """A results.csv cell as a float; NaN when it is blank or not a number."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan
