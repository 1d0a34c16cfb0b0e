"""A finished (or running) search's trials as a pandas ``DataFrame`` for notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from explorer.errors import UsageError

__all__ = ["load_results"]

_BOOLEAN = ("feasible", "pareto")


def load_results(run_dir: str | Path) -> Any:
    """Read a search's ``results.csv`` into a ``DataFrame``, one row per trial.

    Every column of the file is kept as written (profile totals, predicted latencies per
    device, budget usage, and any interval or other column a newer search writes), with
    numbers as numbers, ``feasible`` and ``pareto`` as booleans, and empty cells as missing.

    Args:
        run_dir: the search's output directory (``--out``), or its ``results.csv``.

    Returns:
        The trials, in trial-number order; ``df[df.pareto]`` is the Pareto front.

    Raises:
        UsageError: no ``results.csv`` there, or a file that is not a search's results.
    """
    import pandas as pd  # here, not at the top: the CLI's start-up does not pay for it

    path = Path(run_dir)
    csv_path = path / "results.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise UsageError(
            f"no results.csv in {str(run_dir)!r}: name the directory an `explorer search` "
            "wrote (its --out), or its results.csv"
        )
    try:
        frame = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{str(csv_path)!r} is not a readable CSV file ({exc})") from None
    missing = [c for c in ("number", *_BOOLEAN) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"{str(csv_path)!r} lacks the column(s) {', '.join(missing)}: it is not the "
            "results.csv of `explorer search`"
        )
    for column in _BOOLEAN:
        frame[column] = frame[column].map(_as_bool).astype(bool)
    return frame.sort_values("number", kind="stable").reset_index(drop=True)


def _as_bool(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")
