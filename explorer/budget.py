"""Budgets a searched model must fit: FLOPs, MACs, parameters, weight bytes, predicted latency.

``parse_budget`` turns what a user types after ``--budget`` into a ``Budget``:

====================  ============================================================
``1e9flops``          at most 1e9 dense FLOPs per sample (FLOPs = 2 * MACs, as the papers)
``500Mflops``         SI prefixes k, M, G, T (case-insensitive): 500e6 FLOPs
``300M macs``         at most 300e6 multiply-accumulates
``2M params``         at most 2e6 parameters
``4MB``               at most 4e6 bytes of weights (``kB``, ``MB``, ``GB``; ``KiB``, ``MiB``...)
``20ms``              predicted latency on the search's ``--device`` (``us``, ``ms``, ``s``)
``20ms@rpi4``         predicted latency on another device (a key, alias or .toml path)
====================  ============================================================

Spaces and case do not matter (``1 GFLOPs``, ``300m MACs``, ``20 MS @ RPi4``). Anything else
raises ``UsageError`` with a one-line message listing these forms, and so does a limit outside
``LIMIT_RANGE`` (``1e999flops`` overflows to infinity, ``1e-320flops`` is subnormal: neither is
a budget any model could be held to). ``tighten`` keeps the tighter of two budgets of one kind.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from explorer.errors import UsageError

__all__ = [
    "BUDGET_FORMS",
    "LIMIT_RANGE",
    "Budget",
    "BudgetCheck",
    "budget_usage",
    "budgets_to_texts",
    "check_budgets",
    "parse_budget",
    "tighten",
]

BUDGET_FORMS = "1e9flops, 500Mflops, 300M macs, 2M params, 4MB (weights), 20ms, 20ms@rpi4"

# metric -> (unit label for messages, name of the ModelProfile attribute or None for latency)
_METRICS: dict[str, tuple[str, str | None]] = {
    "flops": ("FLOPs", "flops"),
    "macs": ("MACs", "macs"),
    "params": ("params", "params"),
    "weight_bytes": ("B", "weight_bytes"),
    "latency_ms": ("ms", None),
}

# metric -> (smallest, largest) limit accepted: at least one operation, parameter or byte and at
# least a nanosecond; at most 1e18 (an exa-FLOP per sample) and 1e9 ms (11.6 days).
LIMIT_RANGE: dict[str, tuple[float, float]] = {
    "flops": (1.0, 1e18),
    "macs": (1.0, 1e18),
    "params": (1.0, 1e18),
    "weight_bytes": (1.0, 1e18),
    "latency_ms": (1e-6, 1e9),
}
_MAX_DIGITS = 40  # longer numbers are typing accidents (a 400-digit number overflows a float)

_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)", re.IGNORECASE)
_COUNT_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BYTE_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30}
_TIME_UNIT = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_COUNT_UNIT = {
    "flop": "flops",
    "flops": "flops",
    "mac": "macs",
    "macs": "macs",
    "param": "params",
    "params": "params",
    "parameters": "params",
}
_COUNT_RE = re.compile(r"^(k|m|g|t)?(" + "|".join(_COUNT_UNIT) + r")$")
_BYTE_RE = re.compile(r"^(ki|mi|gi|k|m|g)?(b|bytes?)$")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """An upper limit on one cost of a model (per sample, batch 1).

    ``metric`` is ``flops`` (dense, 2 * MACs), ``macs``, ``params``, ``weight_bytes`` or
    ``latency_ms`` (predicted by the roofline on ``device``; ``None`` means the search's own
    device). ``text`` is what the user wrote, kept for messages and for storing the budget.
    """

    metric: str
    limit: float
    device: str | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            raise UsageError(f"budget metric {self.metric!r} is unknown; valid: {list(_METRICS)}")
        low, high = LIMIT_RANGE[self.metric]
        if not (isinstance(self.limit, (int, float)) and math.isfinite(self.limit)):
            raise UsageError(
                f"budget {self.text or self.limit!r} must be a finite number; "
                f"give a {self.metric} limit between {low:g} and {high:g}"
            )
        if not low <= self.limit <= high:
            raise UsageError(
                f"budget {self.text or self.limit!r} is out of range: a {self.metric} limit "
                f"must lie between {low:g} and {high:g} {_METRICS[self.metric][0]}"
            )
        if self.device is not None and self.metric != "latency_ms":
            raise UsageError(f"budget {self.text!r}: only a latency budget takes @DEVICE")

    @property
    def label(self) -> str:
        """Short name used in column names and messages, e.g. ``flops`` or ``latency_ms@rpi4``."""
        return f"{self.metric}@{self.device}" if self.device else self.metric

    def describe(self) -> str:
        """Human form, e.g. ``flops <= 1e+09`` or ``latency <= 20 ms on rpi4``."""
        if self.metric == "latency_ms":
            where = f" on {self.device}" if self.device else ""
            return f"latency <= {self.limit:g} ms{where}"
        return f"{self.metric} <= {self.limit:.4g}"

    def value(
        self, totals: Mapping[str, float], latency_ms: Mapping[str, float], device: str
    ) -> float:
        """The budgeted quantity of a model: ``totals`` holds its profile totals
        (flops, macs, params, weight_bytes) and ``latency_ms`` its predicted latency per device
        key; ``device`` is the key a plain latency budget refers to."""
        if self.metric == "latency_ms":
            return float(latency_ms[self.device or device])
        return float(totals[self.metric])


def _error(text: str, why: str = "") -> UsageError:
    why = f" ({why})" if why else ""
    return UsageError(
        f"budget {text!r} is not understood{why}: use one of {BUDGET_FORMS} "
        "(prefixes k/M/G/T; case and spaces do not matter)"
    )


def parse_budget(text: str) -> Budget:
    """Parse ``text`` (see the module docstring) into a ``Budget``.

    Raises:
        UsageError: a one-line message listing the accepted forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise _error(str(text), "empty")
    raw = text.strip()
    device: str | None = None
    body = raw
    if "@" in raw:
        body, _, device = raw.partition("@")
        device = device.strip()
        if not device:
            raise _error(raw, "nothing after @: name a device, e.g. 20ms@rpi4")
    match = _NUMBER.match(body)
    if match is None:
        raise _error(raw, "it must start with a number")
    if len(match.group(1)) > _MAX_DIGITS:
        raise _error(raw, f"the number has more than {_MAX_DIGITS} characters")
    number = float(match.group(1))
    if not number > 0:
        raise _error(raw, "the limit must be positive")
    unit = "".join(body[match.end() :].split()).lower()
    if unit in _TIME_UNIT:
        return Budget(metric="latency_ms", limit=number * _TIME_UNIT[unit], device=device, text=raw)
    if device is not None:
        raise _error(raw, "only a latency budget such as 20ms@rpi4 takes @DEVICE")
    if m := _COUNT_RE.match(unit):
        metric = _COUNT_UNIT[m.group(2)]
        return Budget(metric=metric, limit=number * _COUNT_PREFIX[m.group(1) or ""], text=raw)
    if m := _BYTE_RE.match(unit):
        return Budget(
            metric="weight_bytes", limit=number * _BYTE_PREFIX[m.group(1) or ""], text=raw
        )
    raise _error(raw, "unknown unit" if unit else "no unit")


def tighten(budgets: Sequence[Budget]) -> tuple[tuple[Budget, ...], list[str]]:
    """Keep one budget per kind (metric and device), the tightest, in first-seen order.

    Returns:
        The kept budgets and one notice per dropped budget (``"budgets 20ms and 10ms limit the
        same latency; keeping the tighter, 10ms"``) for the caller to show.
    """
    kept: dict[tuple[str, str | None], Budget] = {}
    notices: list[str] = []
    for budget in budgets:
        key = (budget.metric, budget.device)
        old = kept.get(key)
        if old is None:
            kept[key] = budget
            continue
        tighter = budget if budget.limit < old.limit else old
        what = budget.label.replace("_ms", "")
        notices.append(
            f"budgets {old.text or _canonical(old)} and {budget.text or _canonical(budget)} "
            f"limit the same {what}; keeping the tighter, {tighter.text or _canonical(tighter)}"
        )
        kept[key] = tighter
    return tuple(kept.values()), notices


def budget_usage(
    budgets: Sequence[Budget],
    *,
    totals: Mapping[str, float],
    latency_ms: Mapping[str, float],
    device: str,
) -> tuple[float, ...]:
    """Each budget's used fraction (value / limit); a model fits when every one is <= 1."""
    return tuple(b.value(totals, latency_ms, device) / b.limit for b in budgets)


@dataclass(frozen=True, kw_only=True)
class BudgetCheck:
    """How a model stands against the budgets: each budget's used fraction, in order."""

    budgets: tuple[Budget, ...]
    usage: tuple[float, ...]  # value / limit per budget; above 1 is over

    @property
    def feasible(self) -> bool:
        """Whether the model fits every budget."""
        return all(u <= 1.0 for u in self.usage)

    @property
    def by_label(self) -> dict[str, float]:
        """Used fraction by budget label (``{"flops": 0.4, "latency_ms@rpi4": 1.2}``)."""
        return {b.label: u for b, u in zip(self.budgets, self.usage, strict=True)}

    @property
    def reason(self) -> str:
        """``over budget: flops 1.50x the limit, ...``; '' when the model fits."""
        over = [
            f"{b.label} {u:.2f}x the limit"
            for b, u in zip(self.budgets, self.usage, strict=True)
            if u > 1.0
        ]
        return ("over budget: " + ", ".join(over)) if over else ""


def check_budgets(
    budgets: Sequence[Budget],
    *,
    totals: Mapping[str, float],
    latency_ms: Mapping[str, float],
    device: str,
) -> BudgetCheck:
    """Check a model's profile ``totals`` and predicted ``latency_ms`` (per device key)
    against ``budgets``; ``device`` is the key a plain latency budget refers to."""
    budgets = tuple(budgets)
    usage = budget_usage(budgets, totals=totals, latency_ms=latency_ms, device=device)
    return BudgetCheck(budgets=budgets, usage=usage)


def budgets_to_texts(budgets: Sequence[Budget]) -> list[str]:
    """What the user typed, for storing budgets as plain data (re-parse with parse_budget)."""
    return [b.text or _canonical(b) for b in budgets]


def _canonical(budget: Budget) -> str:
    unit: dict[str, Any] = {"flops": "flops", "macs": "macs", "params": "params"}
    if budget.metric == "weight_bytes":
        return f"{budget.limit:g}B"
    if budget.metric == "latency_ms":
        return f"{budget.limit:g}ms" + (f"@{budget.device}" if budget.device else "")
    return f"{budget.limit:g}{unit[budget.metric]}"
