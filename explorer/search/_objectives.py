"""The search's objectives, in one registry: name, results.csv column, label, unit, direction
and how a trial's value is computed.

Every search has two objectives: ``SCORE`` (validation macro-F1, maximised, from training) and
one cost chosen with ``--objective`` among the registered ones. Everything else reads this
registry: ``SearchConfig`` (the accepted names), the trial (``compute``), the study (its
directions and metric names), results.csv (the column), search.json (the plain description
the report's charts label their axes with), and the command line's summary table.

To add a cost, register it here::

    register_objective(
        SearchObjective(
            name="weights",  # --objective weights
            column="weight_kib",  # its results.csv column
            label="Weights",
            unit="KiB",
            compute=lambda c: c.totals["weight_bytes"] / 1024,
        )
    )

A column holding ``{device}`` is filled with the target's key (``predicted_ms_{device}``). A
column that is neither a profile total nor per device is the objective's own: each trial
stores its value as a user attribute of that name, and results.csv has the column.

Light on purpose (no torch, no Optuna): the command line imports it at start-up.
"""

from __future__ import annotations

import difflib
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.errors import UsageError

if TYPE_CHECKING:
    from explorer.profiling import ModelProfile

__all__ = [
    "PROFILE_TOTALS",
    "SCORE",
    "CostInputs",
    "SearchObjective",
    "get_objective",
    "measure_host_ms",
    "objective_names",
    "own_columns",
    "profile_totals",
    "register_objective",
]

DIRECTIONS = ("maximize", "minimize")

# The totals of a ``ModelProfile`` a trial stores, and results.csv shows, under these names.
PROFILE_TOTALS = (
    "params",
    "macs",
    "flops",
    "elementwise_flops",
    "weight_bytes",
    "peak_activation_bytes",
    "traffic_bytes",
)


def profile_totals(profile: ModelProfile) -> dict[str, int]:
    """The ``PROFILE_TOTALS`` of an ``explorer.profiling.ModelProfile``, as integers."""
    return {name: int(getattr(profile, name)) for name in PROFILE_TOTALS}


@dataclass(frozen=True, kw_only=True)
class CostInputs:
    """What a cost is computed from: a built candidate, its profile totals
    (``PROFILE_TOTALS``) and its predicted latency (ms) per device key; ``device`` is the
    search's target key."""

    model: Any
    totals: Mapping[str, float]
    latency_ms: Mapping[str, float]
    device: str


@dataclass(frozen=True, kw_only=True)
class SearchObjective:
    """One objective of the search.

    ``name`` is what ``--objective`` takes; ``column`` its results.csv column (``{device}``
    stands for the target's key); ``label`` and ``unit`` name the axis (``label`` may hold
    ``{device}`` too); ``direction`` is ``minimize`` or ``maximize``; ``compute`` returns a
    trial's value from ``CostInputs`` (None for the score, which training gives); ``help`` is
    the one-line description ``explorer search --help`` shows.
    """

    name: str
    column: str
    label: str
    unit: str = ""
    direction: str = "minimize"
    compute: Callable[[CostInputs], float] | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"objective {self.name!r}: direction must be maximize or minimize, "
                f"got {self.direction!r}"
            )

    def column_for(self, device: str) -> str:
        """The results.csv column on the target ``device`` (``predicted_ms_rpi4``)."""
        return self.column.replace("{device}", device)

    def title(self, device: str) -> str:
        """Axis and table title: ``Predicted latency on rpi4 (ms)``."""
        label = self.label.replace("{device}", device)
        return f"{label} ({self.unit})" if self.unit else label

    @property
    def own_column(self) -> bool:
        """Whether the trial stores the value under ``column`` (not a profile total, not a
        per-device column that the search writes anyway)."""
        return "{device}" not in self.column and self.column not in PROFILE_TOTALS

    def minimised(self, value: float) -> float:
        """``value`` turned so that lower is better (negated for a maximised objective)."""
        return float(value) if self.direction == "minimize" else -float(value)

    def describe(self, device: str) -> dict[str, str]:
        """Plain data for search.json (the report labels its charts with it)."""
        return {
            "name": self.column_for(device),
            "objective": self.name,
            "direction": self.direction,
            "label": self.title(device),
            "unit": self.unit,
        }


SCORE = SearchObjective(
    name="macro_f1", column="macro_f1", label="Validation macro-F1", direction="maximize"
)

_COSTS: dict[str, SearchObjective] = {}


def register_objective(objective: SearchObjective) -> SearchObjective:
    """Add a cost objective; raises ``ValueError`` on a name or column already registered."""
    if objective.name in _COSTS or objective.name == SCORE.name:
        raise ValueError(f"objective {objective.name!r} is registered twice")
    if objective.compute is None:
        raise ValueError(f"objective {objective.name!r} needs a compute function")
    if any(o.column == objective.column for o in _COSTS.values()):
        raise ValueError(f"objective {objective.name!r}: column {objective.column!r} is taken")
    _COSTS[objective.name] = objective
    return objective


def objective_names() -> tuple[str, ...]:
    """The names ``--objective`` accepts, in registration order."""
    return tuple(_COSTS)


def get_objective(name: str) -> SearchObjective:
    """The cost objective ``name``; a ``UsageError`` lists the valid names and the closest."""
    try:
        return _COSTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_COSTS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"--objective {name!r} is unknown{hint}: use one of {', '.join(_COSTS)}"
        ) from None


def own_columns() -> tuple[str, ...]:
    """The results.csv columns of the registered objectives that have their own
    (``SearchObjective.own_column``), in registration order."""
    return tuple(o.column for o in _COSTS.values() if o.own_column)


def measure_host_ms(model: Any, *, runs: int = 5, warmup: int = 2) -> float:
    """Median wall time (ms) of a batch-1 forward on this machine's CPU with PyTorch."""
    import torch

    import search_spaces as ss

    inputs = ss.example_inputs(model, 1)
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            model(*inputs)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return float(statistics.median(times))


# The costs every search knows; add yours here (see the module docstring).
for _cost in (
    SearchObjective(
        name="latency",
        column="predicted_ms_{device}",
        label="Predicted latency on {device}",
        unit="ms",
        compute=lambda c: c.latency_ms[c.device],
        help="predicted on --device",
    ),
    SearchObjective(
        name="flops",
        column="flops",
        label="FLOPs per inference",
        unit="2 × MACs",
        compute=lambda c: c.totals["flops"],
        help="dense FLOPs",
    ),
    SearchObjective(
        name="params",
        column="params",
        label="Parameters",
        unit="count",
        compute=lambda c: c.totals["params"],
        help="parameter count",
    ),
    SearchObjective(
        name="host_latency",
        column="host_ms",
        label="Latency measured on the search host",
        unit="ms",
        compute=lambda c: measure_host_ms(c.model),
        help="timed with PyTorch on this machine",
    ),
):
    register_objective(_cost)
