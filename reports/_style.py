"""Colours, symbols and number formats shared by the charts (so a kind or family looks the
same in every chart of a report)."""

from __future__ import annotations

__all__ = [
    "KIND_COLOURS",
    "device_colour",
    "family_colour",
    "fmt_bytes",
    "fmt_count",
    "model_symbol",
]

# One colour per OpRecord.kind (explorer/profiling/_types.py OP_KINDS).
KIND_COLOURS = {
    "conv": "#1f77b4",
    "linear": "#ff7f0e",
    "matmul": "#e377c2",
    "attention": "#d62728",
    "rnn": "#9467bd",
    "norm": "#8c564b",
    "activation": "#2ca02c",
    "pool": "#17becf",
    "elementwise": "#bcbd22",
    "reduction": "#aec7e8",
    "memory": "#7f7f7f",
    "other": "#c7c7c7",
}

_DEVICE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_FAMILY_COLOURS = {
    "ding": "#1f77b4",
    "lu": "#d62728",
    "yang": "#2ca02c",
    "ishtiaq": "#9467bd",
    "kumar": "#ff7f0e",
    "hybrid": "#17becf",
}
_EXTRA = ("#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
_SYMBOLS = ("circle", "square", "triangle-up", "x", "star", "cross", "pentagon", "hexagon")


def device_colour(i: int) -> str:
    return _DEVICE_COLOURS[i % len(_DEVICE_COLOURS)]


def family_colour(family: str) -> str:
    if family in _FAMILY_COLOURS:
        return _FAMILY_COLOURS[family]
    return _EXTRA[sum(map(ord, family)) % len(_EXTRA)]


def model_symbol(i: int) -> str:
    return _SYMBOLS[i % len(_SYMBOLS)]


def fmt_count(n: float) -> str:
    """14324736 -> '14.3 M' (with a trailing space, to prefix a unit)."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}"
    return f"{n:.3g} "


def fmt_bytes(n: float) -> str:
    """266336 -> '266 kB' (decimal prefixes, like the bandwidths in GB/s)."""
    return f"{fmt_count(n)}B"
