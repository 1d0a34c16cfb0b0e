"""Measured latencies of networks on boards: the tables priors are fitted to.

A measurement table is a CSV with the columns ``MEASUREMENT_COLUMNS``, one measured network
per row::

    board,target,model,input_shape,batch,runtime,precision,threads,latency_ms,statistic,source
    rpi4,cpu-fp32-ncnn,explorer.zoo:resnet18,1x3x224x224,1,ncnn,fp32,4,123.12,avg,Tencent/ncnn ...

``board:target`` must name an execution target of the registry, ``model`` any MODEL spec
(``input_shape`` gives the input of a ``module:function`` model without an input spec), and
every row needs a positive latency and a source (repository and path, or URL). The tables
shipped in ``device_profiles/measurements/`` hold published numbers; ``explorer bench
--format json`` results taken on a board are read as rows too.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.errors import UsageError

__all__ = [
    "MEASUREMENT_COLUMNS",
    "SHIPPED_DIR",
    "Measurement",
    "group_by_target",
    "parse_shape",
    "profile_measurements",
    "read_measurements",
    "shipped_measurements",
]

MEASUREMENT_COLUMNS = (
    "board", "target", "model", "input_shape", "batch", "runtime", "precision", "threads",
    "latency_ms", "statistic", "source",
)  # fmt: skip
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "device_profiles" / "measurements"


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One measured latency of one network on one execution target (``board:target``)."""

    board: str
    target: str
    model: str
    input_shape: tuple[int, ...] | None
    batch: int
    runtime: str
    precision: str
    threads: int | None
    latency_ms: float
    statistic: str
    source: str
    where: str = ""  # file:line, for messages

    @property
    def address(self) -> str:
        """``board:target``."""
        return f"{self.board}:{self.target}"

    def to_dict(self) -> dict[str, Any]:
        """The row as the CSV columns (input shape as ``1x3x224x224``)."""
        shape = "x".join(map(str, self.input_shape)) if self.input_shape else ""
        return {
            "board": self.board, "target": self.target, "model": self.model,
            "input_shape": shape, "batch": self.batch, "runtime": self.runtime,
            "precision": self.precision, "threads": self.threads or "",
            "latency_ms": self.latency_ms, "statistic": self.statistic, "source": self.source,
        }  # fmt: skip


def parse_shape(text: str, where: str) -> tuple[int, ...] | None:
    """``1x3x224x224`` -> ``(1, 3, 224, 224)``; "" -> None.

    Raises:
        UsageError: not positive integers joined by ``x`` (``where`` starts the message).
    """
    text = text.strip().lower()
    if not text:
        return None
    try:
        dims = tuple(int(d) for d in text.split("x"))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise UsageError(f"{where}: input_shape must be like 1x3x224x224, got {text!r}")
    return dims


def _positive_int(text: str, what: str, where: str, *, empty: int | None) -> int | None:
    text = text.strip()
    if not text:
        return empty
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"{where}: {what} must be a positive integer, got {text!r}")
    return value


def _row(raw: dict[str, str], where: str) -> Measurement:
    import device_profiles

    source = (raw.get("source") or "").strip()
    if not source:
        raise UsageError(
            f"{where}: the row has no source; every measurement needs one (repository and path, "
            "or URL, where the number was published)"
        )
    try:
        latency = float(raw.get("latency_ms") or "nan")
    except ValueError:
        latency = math.nan
    if not math.isfinite(latency) or latency <= 0:
        raise UsageError(
            f"{where}: latency_ms must be a positive number of milliseconds, "
            f"got {raw.get('latency_ms')!r}"
        )
    board = (raw.get("board") or "").strip()
    target = (raw.get("target") or "").strip()
    try:
        profile = device_profiles.get(f"{board}:{target}" if target else board)
    except device_profiles.DeviceError as exc:
        raise UsageError(f"{where}: {exc}") from None
    model = (raw.get("model") or "").strip()
    if not model:
        raise UsageError(f"{where}: model is empty; give a MODEL spec (e.g. explorer.zoo:resnet18)")
    return Measurement(
        board=profile.key,
        target=profile.target.name,
        model=model,
        input_shape=parse_shape(raw.get("input_shape") or "", where),
        batch=_positive_int(raw.get("batch") or "", "batch", where, empty=1) or 1,
        runtime=(raw.get("runtime") or "").strip(),
        precision=(raw.get("precision") or "").strip(),
        threads=_positive_int(raw.get("threads") or "", "threads", where, empty=None),
        latency_ms=latency,
        statistic=(raw.get("statistic") or "").strip(),
        source=source,
        where=where,
    )


def _read_csv(path: Path) -> list[Measurement]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    columns = tuple(c.strip() for c in (reader.fieldnames or ()))
    missing = [c for c in MEASUREMENT_COLUMNS if c not in columns]
    if missing:
        raise UsageError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be "
            f"{','.join(MEASUREMENT_COLUMNS)}"
        )
    rows = []
    for line, raw in enumerate(reader, start=2):
        raw = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
        rows.append(_row(raw, f"{path.name}:{line}"))
    return rows


def read_bench_results(path: Path) -> list[dict[str, Any]]:
    """The results of ``explorer bench --format json`` (one object or a list) in ``path``.

    Raises:
        UsageError: not JSON, or an item without ``model`` and ``median_ms``.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise UsageError(
            f"{path} is not JSON ({exc}); write it with `explorer bench MODEL --format json > FILE`"
        ) from None
    items = data if isinstance(data, list) else data.get("results", [data])
    if not items or not all(
        isinstance(r, dict) and "model" in r and "median_ms" in r for r in items
    ):
        raise UsageError(
            f"{path}: expected bench results with 'model' and 'median_ms' (one object or a list)"
        )
    return items


def _read_bench_json(path: Path, device: str) -> list[Measurement]:
    items = read_bench_results(path)
    board, _, target = device.partition(":") if ":" in device else (device, "", "")
    out = []
    for i, r in enumerate(items, start=1):
        raw = {
            "board": board, "target": target, "model": str(r["model"]), "input_shape": "",
            "batch": str(r.get("batch_size", 1)), "runtime": str(r.get("backend", "")),
            "precision": "fp32", "threads": str(r.get("threads") or ""),
            "latency_ms": str(r["median_ms"]), "statistic": "median",
            "source": f"explorer bench on the board ({path.name})",
        }  # fmt: skip
        out.append(_row(raw, f"{path.name}[{i}]"))
    return out


def read_measurements(path: str | Path, *, device: str | None = None) -> tuple[Measurement, ...]:
    """Read a measurement CSV, or ``explorer bench --format json`` results taken on ``device``.

    Args:
        path: a ``.csv`` table (columns ``MEASUREMENT_COLUMNS``) or bench JSON.
        device: for bench JSON, the ``KEY[:TARGET]`` the results were measured on.

    Raises:
        UsageError: a missing file or column, a row without a source, a non-positive latency,
            an unknown board or target (one line naming the file and row).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"measurements file {str(path)!r} does not exist: give a .csv table "
            "(board,target,model,...) or the JSON of `explorer bench --format json`"
        )
    if path.suffix.lower() == ".csv":
        return tuple(_read_csv(path))
    if not device:
        raise UsageError(f"{path}: bench results need --device KEY[:TARGET] (the board measured)")
    return tuple(_read_bench_json(path, device))


def shipped_measurements() -> tuple[Measurement, ...]:
    """Every row of the tables shipped in ``device_profiles/measurements/``."""
    return tuple(m for p in sorted(SHIPPED_DIR.glob("*.csv")) for m in read_measurements(p))


def profile_measurements(rows: Iterable[Measurement]) -> dict[tuple[str, Any, int], Any]:
    """Profile each distinct (model, input shape, batch) of ``rows`` once.

    Returns:
        ``{(model, input_shape, batch): ModelProfile}``.

    Raises:
        UsageError: an unknown model (one line naming the row).
    """
    from explorer.models import resolve_model
    from explorer.profiling import profile_model

    out: dict[tuple[str, Any, int], Any] = {}
    for m in rows:
        key = (m.model, m.input_shape, m.batch)
        if key in out:
            continue
        shape = m.input_shape
        if shape is not None and m.batch != shape[0]:
            shape = (m.batch, *shape[1:])
        try:
            resolved = resolve_model(m.model, batch_size=m.batch, input_shape=shape)
        except UsageError as exc:
            raise UsageError(f"{m.where}: {exc}") from None
        out[key] = profile_model(resolved.model, resolved.example_inputs, name=m.model, meta=True)
    return out


def group_by_target(rows: Sequence[Measurement]) -> dict[str, list[Measurement]]:
    """Rows by ``board:target``, in the order first seen."""
    out: dict[str, list[Measurement]] = {}
    for m in rows:
        out.setdefault(m.address, []).append(m)
    return out
