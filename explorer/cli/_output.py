"""Printing helpers shared by the commands: rich tables, JSON and CSV on stdout."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["Format", "console", "err_console", "print_csv", "print_json", "print_table"]

console = Console()
err_console = Console(stderr=True)
_UNBOUNDED = 100_000  # columns offered to a table measured for a pipe or a file


class Format(StrEnum):
    """Output formats of ``--format``."""

    table = "table"
    json = "json"
    csv = "csv"


def print_json(data: Any) -> None:
    """One JSON document on stdout and nothing else there."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    """Rows as CSV on stdout (columns default to the first row's keys)."""
    if not rows:
        return
    columns = list(columns or rows[0].keys())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buf.getvalue())


def print_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    right_align: Iterable[int] = (),
) -> None:
    """A rich table on stdout; ``right_align`` lists numeric column indexes."""
    right = set(right_align)
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out = console
    if not console.is_terminal:
        # Piped or logged: rich would squeeze the table into 80 columns and cut cells
        # ("checkp…"); print it at its natural width instead, whatever that is.
        natural = console.measure(table, options=console.options.update_width(_UNBOUNDED))
        out = Console(file=sys.stdout, width=max(natural.maximum, console.width))
    out.print(table)


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (SI prefixes), for table cells."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}".rstrip()
