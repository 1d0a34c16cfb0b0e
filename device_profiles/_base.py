"""What every module of the registry shares: kinds, precisions, the error, number checks."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["KINDS", "MAX_FRACTION", "PRECISIONS", "WORK_REF_S", "DeviceError", "positive"]

KINDS = ("cpu", "gpu")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")


# Every positive number in a device file (GFLOP/s, GB/s, GB, fractions, microseconds) lies in
# this range on any real device; outside it a division or product leaves the float range.
_SANE = (1e-9, 1e12)


class DeviceError(ValueError):
    """An unknown device, or a device file that is malformed or invalid (one-line message)."""


def positive(value: Any, what: str, *, where: str, allow_zero: bool = False) -> float:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        rule = "a number >= 0" if allow_zero else "a positive number"
        raise DeviceError(f"{where}: {what} must be {rule}, got {value!r}; fix the value")
    if value != 0 and not _SANE[0] <= abs(value) <= _SANE[1]:
        # 1e-320 is a float, but a roof that small turns every time into Infinity
        raise DeviceError(
            f"{where}: {what} = {value!r} is outside {_SANE[0]:g}..{_SANE[1]:g}; "
            "give the value in the unit its name states"
        )
    return float(value)


# A fitted "share" of a roof may exceed 1: runtimes that multiply less than the direct count
# (Winograd 3x3 convolutions) beat the compute roof, and activations served from caches beat
# the DRAM bandwidth. Above this bound a fit has gone wrong.
MAX_FRACTION = 16.0
# Reference time of ``Calibration.work_exponent``: an operator taking this long at the peak
# has the fitted fraction exactly.
WORK_REF_S = 1e-4
