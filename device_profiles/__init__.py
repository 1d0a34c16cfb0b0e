"""The device registry: one TOML file per device, aliases, user files and calibration.

    >>> import device_profiles
    >>> dev = device_profiles.get("rpi4b")           # key or alias, case-insensitive
    >>> round(dev.ridge_flops_per_byte, 2)
    2.34
    >>> device_profiles.get("my-board.toml")         # or a path to a user file
    >>> device_profiles.get("rpi4:cpu-fp32-xnnpack").target   # KEY:TARGET: an execution target

Built-in profiles use a paper's figures where a paper gives them (so the tool reproduces its
tables) and record datasheet or measured values under ``alternatives``. User profiles live in
``~/.config/explorer/devices`` (``$XDG_CONFIG_HOME/explorer/devices``) and in the directory named
by ``EXPLORER_DEVICES``; ``explorer calibrate`` writes to ``user_device_dir()``. This package
imports nothing else of the project.
"""

from __future__ import annotations

from ._loader import (
    fit_toml,
    get,
    list_devices,
    load_file,
    looks_like_path,
    resolve,
    split_address,
    to_toml,
    user_device_dir,
)
from ._profile import MAX_FRACTION, WORK_REF_S, Calibration, DeviceError, DeviceProfile
from ._target import CrossValidation, Target

__all__ = [
    "MAX_FRACTION",
    "WORK_REF_S",
    "Calibration",
    "CrossValidation",
    "DeviceError",
    "DeviceProfile",
    "Target",
    "fit_toml",
    "get",
    "list_devices",
    "load_file",
    "looks_like_path",
    "resolve",
    "split_address",
    "to_toml",
    "user_device_dir",
]
